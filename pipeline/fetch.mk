# pipeline/fetch.mk - oscar-fetch: verified, resumable, parallel downloads of
# OSCAR-2301 parts, the UT1 blocklist and the BERT vocab (libcurl multi,
# libarchive for unpacking).  Library `fetch`, tool bin/oscar-fetch.
LIBS += fetch
fetch_SRC := pipeline/fetch.c pipeline/fetch_util.c pipeline/fetch_unpack.c
FETCH_LDLIBS := -lcurl -larchive -lzstd

TOOLS += oscar-fetch
oscar-fetch_SRC := pipeline/fetch_main.c
oscar-fetch_LIBS := fetch tokenizer pipeline   # tokenizer: wp_vocab_default_path
oscar-fetch_LDLIBS := $(FETCH_LDLIBS)

TESTS += fetch_test
fetch_test_SRC := tests/fetch_test.c
fetch_test_LIBS := fetch pipeline
fetch_test_LDLIBS := $(FETCH_LDLIBS)
