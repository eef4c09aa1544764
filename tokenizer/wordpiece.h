/* wordpiece.h - the bert-base-uncased tokenizer: text in, token ids out,
 * identical to Hugging Face `tokenizers` (BertWordPieceTokenizer(vocab,
 * lowercase=True), which equals the hub's tokenizer.json).
 *
 * The pipeline, as Hugging Face runs it:
 *   1. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] (those the vocab
 *      holds) are matched in the raw text, exact case, anywhere, and emitted
 *      as their ids; the text between them goes through steps 2-5 alone;
 *   2. clean text: U+0000, U+FFFD and every "other" character (Cc Cf Co Cs Cn)
 *      are dropped, except \t \n \r; white space (\t \n \r and White_Space)
 *      becomes a space;
 *   3. each CJK ideograph becomes a word of its own;
 *   4. NFD, drop nonspacing marks (Mn), lowercase each character;
 *   5. split on white space and isolate every punctuation character (ASCII
 *      33-47 58-64 91-96 123-126 and the Unicode P* categories);
 *   6. WordPiece: greedy longest match from the left, "##" for the pieces
 *      after the first; a word that cannot be covered, or has more than 100
 *      characters, is one [UNK];
 *   7. [CLS] first, [SEP] last.
 * Hugging Face's Unicode tables (the unicode_categories crate) predate the
 * Unicode version of utf8proc; tokenizer/hfcompat.c lists the code points on
 * which they differ, measured against the Hugging Face tokenizer itself.
 *
 * Bytes that are not valid UTF-8 are read one byte at a time as U+FFFD, which
 * step 2 drops: "ab\xffcd" is the word "abcd".  Text is any bytes, NULs too.
 *
 * Speed: ASCII goes through a byte-class table and never reaches utf8proc;
 * the per-code-point behaviour of the BMP is computed once in wp_new.  Vocab
 * lookups use a hash of the word's bytes that is extended byte by byte, so
 * that every prefix tried by the greedy match costs one probe.
 *
 * A wp_tokenizer is read-only after wp_new: any number of threads may call
 * wp_encode on it at once, each with its own wp_out. */
#ifndef SYMBERT_WORDPIECE_H
#define SYMBERT_WORDPIECE_H
#include <stddef.h>
#include <stdint.h>
#include "tokenizer/vocab.h"

typedef struct wp_tokenizer wp_tokenizer;

/* Builds a tokenizer over v (which must outlive it).  The vocab must hold
 * [UNK], [CLS] and [SEP].  Returns NULL with a message in err. */
wp_tokenizer *wp_new(const wp_vocab *v, char *err, size_t errlen);
void wp_free(wp_tokenizer *t);
uint32_t wp_id_cls(const wp_tokenizer *t);
uint32_t wp_id_sep(const wp_tokenizer *t);
uint32_t wp_id_unk(const wp_tokenizer *t);

#define WP_MAX_WORD_CHARS 100
#define WP_WORD_BYTES 512          /* > (WP_MAX_WORD_CHARS + 1) * 4 */

/* Output and per-call scratch space: zero-initialise, reuse across calls,
 * free with wp_out_free.  ids[0..n) is the last document's ids. */
typedef struct wp_out {
    uint32_t *ids;
    size_t n, cap;
    /* scratch (private) */
    unsigned char w[WP_WORD_BYTES];
    size_t wn;                     /* bytes in w */
    uint32_t wchars;               /* characters in the word (capped at 101) */
    uint32_t run_n;                /* trailing non-starters (ccc > 0) in w */
    size_t run_byte;               /* where they start in w */
    uint32_t run_cp[WP_MAX_WORD_CHARS + 2];
    uint8_t run_ccc[WP_MAX_WORD_CHARS + 2];
    uint64_t ph[WP_WORD_BYTES + 1];
    void (*word_fn)(void *ctx, const unsigned char *w, size_t n, uint32_t nchars);
    void *word_ctx;
} wp_out;

/* Tokenises one document of len bytes into o->ids, [CLS] ... [SEP].
 * Returns 0, or -1 when out of memory. */
int wp_encode(const wp_tokenizer *t, const char *text, size_t len, wp_out *o);
void wp_out_free(wp_out *o);

/* Steps 1-5 only, for tests and inspection: calls fn for each word, in
 * order, with its normalised UTF-8 bytes and its number of characters
 * (101 for a word longer than 100 characters, whose bytes are then cut; 0
 * for a special token, whose bytes are then its text).  Returns 0 or -1. */
int wp_words(const wp_tokenizer *t, const char *text, size_t len, wp_out *o,
             void (*fn)(void *ctx, const unsigned char *w, size_t n, uint32_t nchars), void *ctx);

/* ---- What steps 2-5 do with one code point (exposed for tests) ---- */
enum { WP_CP_KEEP = 0,    /* part of a word: items are what it becomes */
       WP_CP_DROP,        /* removed by clean text */
       WP_CP_SPACE,       /* white space: ends the word */
       WP_CP_CJK };       /* a word of its own: items are what it becomes */
#define WP_CP_MAXITEMS 4
/* An item: the code point after NFD + lowercase (bits 0-20), its canonical
 * combining class (bits 21-28), and a flag. */
#define WP_ITEM_CP(x)    ((x) & 0x1FFFFFu)
#define WP_ITEM_CCC(x)   (((x) >> 21) & 0xFFu)
#define WP_ITEM_PUNCT    (1u << 29)   /* isolated by the pre-tokenizer */
#define WP_ITEM_BARRIER  (1u << 30)   /* a dropped mark of class 0 (stops reordering) */
typedef struct { uint8_t kind, n; uint32_t item[WP_CP_MAXITEMS]; } wp_cpinfo;
/* Fills ci for any cp < 0x110000 (surrogates: dropped). */
void wp_cpinfo_compute(uint32_t cp, wp_cpinfo *ci);
/* What the pre-tokenizer alone does with cp: 'W' splits (white space),
 * 'P' isolates (punctuation), 'L' keeps it in the word. */
int wp_cp_pretok_class(uint32_t cp);

/* Decodes the code point at s[*i] (i < n) and advances *i; an invalid or
 * truncated sequence yields 0xFFFD and advances by one byte. */
uint32_t wp_utf8_next(const unsigned char *s, size_t n, size_t *i);
#endif
