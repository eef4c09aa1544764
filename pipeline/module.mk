# pipeline/: streaming I/O (sio), atomic files, sha256, the JSONL scanner and
# the token stream format shared by every tool.
LIBS += pipeline
pipeline_SRC := pipeline/sio.c pipeline/sha256.c pipeline/atomic.c pipeline/json.c pipeline/tokstream.c pipeline/frame.c pipeline/strbuf.c
PIPELINE_LDLIBS := -lzstd

TESTS += pipeline_test
pipeline_test_SRC := tests/pipeline_test.c
pipeline_test_LIBS := pipeline
pipeline_test_LDLIBS := $(PIPELINE_LDLIBS)

FUZZ += fuzz_json
fuzz_json_SRC := tests/fuzz_json.c
fuzz_json_LIBS := pipeline
fuzz_json_LDLIBS := $(PIPELINE_LDLIBS)
