# tokenizer/: the bert-base-uncased WordPiece tokenizer (library `tokenizer`,
# prefix wp_) and its CLI bin/wordpiece.
LIBS += tokenizer
tokenizer_SRC := tokenizer/vocab.c tokenizer/wordpiece.c tokenizer/hfcompat.c
TOKENIZER_LDLIBS := -lutf8proc

TOOLS += wordpiece
wordpiece_SRC := tokenizer/main.c
wordpiece_LIBS := tokenizer pipeline
wordpiece_LDLIBS := $(TOKENIZER_LDLIBS) -lzstd
