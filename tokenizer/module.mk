# tokenizer/: the bert-base-uncased WordPiece tokenizer (library `tokenizer`,
# prefix wp_) and its CLI bin/wordpiece.
LIBS += tokenizer
tokenizer_SRC := tokenizer/vocab.c
TOKENIZER_LDLIBS := -lutf8proc
