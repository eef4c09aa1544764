# tokenizer/: the bert-base-uncased WordPiece tokenizer (library `tokenizer`,
# prefix wp_) and its CLI bin/wordpiece.
LIBS += tokenizer
tokenizer_SRC := tokenizer/vocab.c tokenizer/vocab_locate.c tokenizer/wordpiece.c tokenizer/hfcompat.c tokenizer/run.c
TOKENIZER_LDLIBS := -lutf8proc

TOOLS += wordpiece
wordpiece_SRC := tokenizer/main.c
wordpiece_LIBS := tokenizer pipeline
wordpiece_LDLIBS := $(TOKENIZER_LDLIBS) -lzstd

TESTS += tokenizer_test
tokenizer_test_SRC := tests/tokenizer_test.c
tokenizer_test_LIBS := tokenizer pipeline
tokenizer_test_LDLIBS := $(TOKENIZER_LDLIBS) -lzstd

FUZZ += fuzz_wordpiece
fuzz_wordpiece_SRC := tests/fuzz_wordpiece.c
fuzz_wordpiece_LIBS := tokenizer pipeline
fuzz_wordpiece_LDLIBS := $(TOKENIZER_LDLIBS) -lzstd

TESTS += wp_run_test
wp_run_test_SRC := tests/wp_run_test.c
wp_run_test_LIBS := tokenizer pipeline
wp_run_test_LDLIBS := $(TOKENIZER_LDLIBS) -lzstd
