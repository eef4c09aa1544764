/* fuzz_wordpiece.c - the tokenizer on arbitrary bytes: no crash, [CLS] first
 * and [SEP] last, every id below the vocab size, at most one id per input
 * byte (plus two), the same ids on a second run, and the word splitter
 * (wp_words) agreeing with the number of words that make ids.
 *
 * The vocab comes from $SYMBERT_TEST_VOCAB, $ROOT/data/vocab/ (the
 * repository's copy), or the tools' own search (wp_vocab_locate). */
#include "tokenizer/wordpiece.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wp_vocab *V;
static wp_tokenizer *T;

static void setup(void) {
    char path[4096], err[512];
    const char *p = getenv("SYMBERT_TEST_VOCAB");
    if (p && *p) snprintf(path, sizeof path, "%s", p);
    else if (getenv("ROOT")) snprintf(path, sizeof path, "%s/data/vocab/bert-base-uncased-vocab.txt", getenv("ROOT"));
    else if (wp_vocab_locate(NULL, path, sizeof path, err, sizeof err) < 0) { fprintf(stderr, "fuzz_wordpiece: %s\n", err); abort(); }
    V = wp_vocab_load(path, err, sizeof err);
    if (V) T = wp_new(V, err, sizeof err);
    if (!V || !T) { fprintf(stderr, "fuzz_wordpiece: %s\n", err); abort(); }
}

static void count(void *ctx, const unsigned char *w, size_t n, uint32_t nchars) {
    if (nchars > 0 && nchars <= WP_MAX_WORD_CHARS && n == 0) abort();   /* a word has bytes */
    if (nchars > WP_MAX_WORD_CHARS + 1) abort();
    ++*(size_t *)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!T) setup();
    static wp_out a, b;
    if (wp_encode(T, (const char *)data, size, &a) < 0) abort();
    uint32_t nv = wp_vocab_size(V);
    if (a.n < 2 || a.n > size + 2 || a.ids[0] != wp_id_cls(T) || a.ids[a.n - 1] != wp_id_sep(T)) abort();
    for (size_t i = 0; i < a.n; i++) if (a.ids[i] >= nv) abort();
    if (wp_encode(T, (const char *)data, size, &b) < 0 || b.n != a.n || memcmp(a.ids, b.ids, a.n * sizeof a.ids[0])) abort();
    size_t words = 0;
    if (wp_words(T, (const char *)data, size, &b, count, &words) < 0) abort();
    if (words > a.n - 2) abort();                 /* every word makes at least one id */
    if ((words == 0) != (a.n == 2)) abort();
    return 0;
}
