/* wordpiece.c - see wordpiece.h for the pipeline and the design.
 *
 * Layout of the work: wp_encode walks the bytes once.  ASCII bytes are
 * classified by a 128-entry table (word byte, space, punctuation, dropped
 * control, '[' that may open a special token); word bytes are lowercased into
 * the current word.  Other code points are decoded and looked up in the
 * per-code-point table (BMP, built in wp_new) or computed with utf8proc
 * (planes 1-16).  A word ends at white space, punctuation, a CJK ideograph or
 * a special token, and is then cut into vocab pieces.
 *
 * NFD reorders runs of combining marks by combining class.  Marks that are
 * Mn vanish anyway; the few that stay (Mc, Me with a class > 0) are kept in
 * order by an insertion step on the word's trailing run of non-starters. */
#include "tokenizer/wordpiece.h"
#include "tokenizer/hfcompat.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- Unicode: what Hugging Face's BertNormalizer and BertPreTokenizer do ---- */

static int in_ranges(const uint32_t (*r)[2], int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid - 1;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int is_white_space(uint32_t cp) {   /* the White_Space property (Rust's char::is_whitespace) */
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

static int hf_is_other(uint32_t cp) {
    /* Hugging Face's "other" is Cc Cf Co Cs: unassigned code points stay */
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    int o = c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CS ||
            c == UTF8PROC_CATEGORY_CO;
    return o ^ in_ranges(wp_hf_other_flip, wp_hf_other_flip_n, cp);
}

static int hf_is_mn(uint32_t cp) {
    int m = utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_MN;
    return m ^ in_ranges(wp_hf_mn_flip, wp_hf_mn_flip_n, cp);
}

static int hf_is_punct(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    int p = c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
    return p ^ in_ranges(wp_hf_punct_flip, wp_hf_punct_flip_n, cp);
}

static uint32_t hf_lower(uint32_t cp) {
    int lo = 0, hi = wp_hf_lower_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < wp_hf_lower[mid][0]) hi = mid - 1;
        else if (cp > wp_hf_lower[mid][0]) lo = mid + 1;
        else return wp_hf_lower[mid][1];
    }
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

int wp_cp_pretok_class(uint32_t cp) {
    return is_white_space(cp) ? 'W' : hf_is_punct(cp) ? 'P' : 'L';
}

static int is_cjk(uint32_t cp) {   /* BertNormalizer's ranges, 0x2B920 included */
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void wp_cpinfo_compute(uint32_t cp, wp_cpinfo *ci) {
    ci->n = 0;
    if (cp >= 0x110000 || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0 || cp == 0xFFFD ||
        (cp != '\t' && cp != '\n' && cp != '\r' && hf_is_other(cp))) {
        ci->kind = WP_CP_DROP;
        return;
    }
    if (is_white_space(cp)) { ci->kind = WP_CP_SPACE; return; }
    ci->kind = is_cjk(cp) ? WP_CP_CJK : WP_CP_KEEP;
    utf8proc_int32_t d[16];
    utf8proc_ssize_t nd = 1;
    d[0] = (utf8proc_int32_t)cp;
    if (!in_ranges(wp_hf_nfd_none, wp_hf_nfd_none_n, cp)) {
        nd = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 16, UTF8PROC_DECOMPOSE, NULL);
        if (nd < 1 || nd > 16) { d[0] = (utf8proc_int32_t)cp; nd = 1; }
    }
    for (utf8proc_ssize_t k = 0; k < nd; k++) {
        uint32_t x = (uint32_t)d[k];
        uint32_t ccc = utf8proc_get_property(d[k])->combining_class;
        if (ccc && in_ranges(wp_hf_ccc0, wp_hf_ccc0_n, x)) ccc = 0;
        if (hf_is_mn(x)) {
            if (ccc == 0 && ci->n < WP_CP_MAXITEMS) ci->item[ci->n++] = x | WP_ITEM_BARRIER;
            continue;
        }
        uint32_t y = hf_lower(x);
        if (ci->n < WP_CP_MAXITEMS)
            ci->item[ci->n++] = y | ccc << 21 | (hf_is_punct(y) ? WP_ITEM_PUNCT : 0);
    }
}

uint32_t wp_utf8_next(const unsigned char *s, size_t n, size_t *i) {
    size_t p = *i;
    unsigned b = s[p];
    if (b < 0x80) { *i = p + 1; return b; }
    uint32_t cp; size_t need; unsigned lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) { cp = b & 0x1F; need = 1; }
    else if (b >= 0xE0 && b <= 0xEF) {
        cp = b & 0x0F; need = 2;
        if (b == 0xE0) lo = 0xA0; else if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        cp = b & 0x07; need = 3;
        if (b == 0xF0) lo = 0x90; else if (b == 0xF4) hi = 0x8F;
    } else { *i = p + 1; return 0xFFFD; }
    if (p + need >= n) { *i = p + 1; return 0xFFFD; }   /* truncated */
    unsigned c = s[p + 1];
    if (c < lo || c > hi) { *i = p + 1; return 0xFFFD; }
    cp = cp << 6 | (c & 0x3F);
    for (size_t k = 2; k <= need; k++) {
        c = s[p + k];
        if ((c & 0xC0) != 0x80) { *i = p + 1; return 0xFFFD; }
        cp = cp << 6 | (c & 0x3F);
    }
    *i = p + need + 1;
    return cp;
}

/* ---- the tokenizer ---- */

enum { A_WORD = 0, A_SPACE, A_DROP, A_PUNCT, A_BRACKET };

#define FNV_INIT 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

struct wp_tokenizer {
    const wp_vocab *v;
    uint32_t unk, cls, sep;
    uint8_t acls[128];
    unsigned char lower[128];
    int32_t ascii_single[128];       /* id of the one-character word, -1 if none */
    /* hash table of the tokens: a slot is tag << idbits | id, all ones when
     * empty; 2^k slots for at least twice as many tokens (256 KB for
     * bert-base-uncased), so that the slots of frequent words stay cached */
    uint32_t *tab, mask, idbits, idmask;
    uint32_t *meta;                  /* per id: offset in arena << 8 | length */
    unsigned char *arena;            /* token bytes, each followed by NUL, then 16 bytes of padding */
    uint64_t h_cont;                 /* FNV state after "##" */
    int nspecial;
    struct { const char *s; size_t n; uint32_t id; } special[5];
    wp_cpinfo *bmp;                  /* 65536 entries */
};

static inline uint64_t fmix(uint64_t h) {
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
    return h;
}

static inline uint64_t load8(const unsigned char *p) { uint64_t x; memcpy(&x, p, 8); return x; }

/* a[0..n) == b[0..n); both may be read up to 7 bytes past n */
static inline int same_bytes(const unsigned char *a, const unsigned char *b, size_t n) {
    while (n >= 8) {
        if (load8(a) != load8(b)) return 0;
        a += 8; b += 8; n -= 8;
    }
    if (!n) return 1;
    uint64_t m = (1ull << (8 * n)) - 1;   /* little-endian: the first n bytes */
    return ((load8(a) ^ load8(b)) & m) == 0;
}

static void tab_insert(wp_tokenizer *t, uint64_t state, uint32_t id) {
    uint64_t h = fmix(state);
    uint32_t i = (uint32_t)h & t->mask, tag = (uint32_t)(h >> 32) << t->idbits;
    uint32_t len = t->meta[id] & 0xFF;
    const unsigned char *tok = t->arena + (t->meta[id] >> 8);
    for (;; i = (i + 1) & t->mask) {
        uint32_t s = t->tab[i];
        if (s == UINT32_MAX) { t->tab[i] = tag | id; return; }
        uint32_t sid = s & t->idmask;
        if ((s & ~t->idmask) == tag && (t->meta[sid] & 0xFF) == len && !memcmp(t->arena + (t->meta[sid] >> 8), tok, len)) {
            t->tab[i] = tag | id;   /* a duplicate token: the later line wins, as in Hugging Face */
            return;
        }
    }
}

/* The id of the piece s[0..n) (with "##" before it when cont), -1 if absent;
 * state is the FNV state after hashing exactly those bytes.  s may be read
 * up to 7 bytes past n. */
static inline int64_t tab_find(const wp_tokenizer *t, uint64_t state, const unsigned char *s, size_t n, int cont) {
    uint64_t h = fmix(state);
    uint32_t i = (uint32_t)h & t->mask, tag = (uint32_t)(h >> 32) << t->idbits;
    uint32_t want = (uint32_t)n + (cont ? 2 : 0);
    for (;; i = (i + 1) & t->mask) {
        uint32_t sl = t->tab[i];
        if (sl == UINT32_MAX) return -1;
        if ((sl & ~t->idmask) != tag) continue;
        uint32_t id = sl & t->idmask, m = t->meta[id];
        if ((m & 0xFF) != want) continue;
        const unsigned char *tk = t->arena + (m >> 8);
        if (cont ? (tk[0] == '#' && tk[1] == '#' && same_bytes(tk + 2, s, n)) : same_bytes(tk, s, n)) return id;
    }
}

wp_tokenizer *wp_new(const wp_vocab *v, char *err, size_t errlen) {
    wp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { snprintf(err, errlen, "out of memory"); return NULL; }
    t->v = v;
    uint32_t n = wp_vocab_size(v);
    int unk = wp_vocab_id(v, "[UNK]", 5), cls = wp_vocab_id(v, "[CLS]", 5), sep = wp_vocab_id(v, "[SEP]", 5);
    if (unk < 0 || cls < 0 || sep < 0) {
        snprintf(err, errlen, "vocab lacks %s", unk < 0 ? "[UNK]" : cls < 0 ? "[CLS]" : "[SEP]");
        free(t); return NULL;
    }
    t->unk = (uint32_t)unk; t->cls = (uint32_t)cls; t->sep = (uint32_t)sep;
    static const char *names[5] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
    for (int k = 0; k < 5; k++) {
        int id = wp_vocab_id(v, names[k], strlen(names[k]));
        if (id >= 0) { t->special[t->nspecial].s = names[k]; t->special[t->nspecial].n = strlen(names[k]); t->special[t->nspecial++].id = (uint32_t)id; }
    }
    for (int b = 0; b < 128; b++) {
        t->lower[b] = (unsigned char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
        if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')) t->acls[b] = A_WORD;
        else if (b == ' ' || b == '\t' || b == '\n' || b == '\r') t->acls[b] = A_SPACE;
        else if (b < 32 || b == 127) t->acls[b] = A_DROP;
        else t->acls[b] = b == '[' ? A_BRACKET : A_PUNCT;
    }
    size_t total = 0;
    for (uint32_t id = 0; id < n; id++) {
        size_t len = strlen(wp_vocab_token(v, id));
        if (len > 255) { wp_free(t); snprintf(err, errlen, "vocab token %u is longer than 255 bytes", id); return NULL; }
        total += len + 1;
    }
    if (total >= (1u << 24) || n >= (1u << 30)) { wp_free(t); snprintf(err, errlen, "vocab too large"); return NULL; }
    uint32_t tsize = 1024;
    while (tsize < 2 * n) tsize <<= 1;
    t->idbits = 1;
    while ((1u << t->idbits) < n + 1) t->idbits++;
    t->idmask = (1u << t->idbits) - 1;
    t->tab = malloc(sizeof *t->tab * tsize);
    t->meta = malloc(sizeof *t->meta * (n ? n : 1));
    t->arena = calloc(total + 16, 1);
    t->bmp = malloc(sizeof *t->bmp * 65536);
    if (!t->tab || !t->meta || !t->arena || !t->bmp) { wp_free(t); snprintf(err, errlen, "out of memory"); return NULL; }
    t->mask = tsize - 1;
    memset(t->tab, 0xff, sizeof *t->tab * tsize);
    t->h_cont = ((FNV_INIT ^ '#') * FNV_PRIME ^ '#') * FNV_PRIME;
    size_t off = 0;
    for (uint32_t id = 0; id < n; id++) {
        const char *tok = wp_vocab_token(v, id);
        size_t len = strlen(tok);
        memcpy(t->arena + off, tok, len);
        t->meta[id] = (uint32_t)off << 8 | (uint32_t)len;
        off += len + 1;
        uint64_t h = FNV_INIT;
        for (size_t k = 0; k < len; k++) h = (h ^ (unsigned char)tok[k]) * FNV_PRIME;
        tab_insert(t, h, id);
    }
    for (int b = 0; b < 128; b++) {
        unsigned char c = (unsigned char)b;
        unsigned char pad[8] = { c };
        t->ascii_single[b] = (int32_t)tab_find(t, (FNV_INIT ^ c) * FNV_PRIME, pad, 1, 0);
    }
    for (uint32_t cp = 0; cp < 65536; cp++) wp_cpinfo_compute(cp, &t->bmp[cp]);
    return t;
}

void wp_free(wp_tokenizer *t) {
    if (!t) return;
    free(t->tab); free(t->meta); free(t->arena); free(t->bmp); free(t);
}

uint32_t wp_id_cls(const wp_tokenizer *t) { return t->cls; }
uint32_t wp_id_sep(const wp_tokenizer *t) { return t->sep; }
uint32_t wp_id_unk(const wp_tokenizer *t) { return t->unk; }

void wp_out_free(wp_out *o) { free(o->ids); o->ids = NULL; o->n = o->cap = 0; }

static int grow(wp_out *o, size_t need) {
    if (o->n + need <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->n + need) cap *= 2;
    uint32_t *p = realloc(o->ids, cap * sizeof *p);
    if (!p) return -1;
    o->ids = p; o->cap = cap;
    return 0;
}

/* Cuts the current word into pieces (greedy longest match first). */
/* words: called by wp_words (report the word) rather than wp_encode; a
 * constant, so that the compiler makes a copy of each function for each. */
static inline __attribute__((always_inline)) int flush_word(const wp_tokenizer *t, wp_out *o, const int words) {
    size_t wn = o->wn;
    uint32_t chars = o->wchars;
    o->wn = 0; o->wchars = 0; o->run_n = 0;
    if (chars == 0) return 0;
    if (words) { o->word_fn(o->word_ctx, o->w, wn, chars); return 0; }
    if (grow(o, chars + 1) < 0) return -1;
    if (chars > WP_MAX_WORD_CHARS) { o->ids[o->n++] = t->unk; return 0; }
    const unsigned char *w = o->w;
    int ascii = chars == wn;
    /* the whole word, hashed once: the common case */
    uint64_t h = FNV_INIT;
    for (size_t k = 0; k < wn; k++) h = (h ^ w[k]) * FNV_PRIME;
    int64_t id = tab_find(t, h, w, wn, 0);
    if (id >= 0) { o->ids[o->n++] = (uint32_t)id; return 0; }
    size_t first = o->n, start = 0;
    while (start < wn) {
        h = start ? t->h_cont : FNV_INIT;    /* the hash of every prefix of w[start..] */
        for (size_t k = start; k < wn; k++) { h = (h ^ w[k]) * FNV_PRIME; o->ph[k + 1] = h; }
        id = -1;
        size_t end = start == 0 ? wn - 1 : wn;   /* the whole word was tried above */
        for (; end > start; end--) {
            if (!ascii && end < wn && (w[end] & 0xC0) == 0x80) continue;   /* not a character boundary */
            id = tab_find(t, o->ph[end], w + start, end - start, start > 0);
            if (id >= 0) break;
        }
        if (id < 0) { o->n = first; o->ids[o->n++] = t->unk; return 0; }
        o->ids[o->n++] = (uint32_t)id;
        start = end;
    }
    return 0;
}

static void put_utf8(wp_out *o, uint32_t cp) {
    unsigned char *p = o->w + o->wn;
    if (cp < 0x80) { p[0] = (unsigned char)cp; o->wn += 1; }
    else if (cp < 0x800) { p[0] = (unsigned char)(0xC0 | cp >> 6); p[1] = (unsigned char)(0x80 | (cp & 0x3F)); o->wn += 2; }
    else if (cp < 0x10000) {
        p[0] = (unsigned char)(0xE0 | cp >> 12); p[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        p[2] = (unsigned char)(0x80 | (cp & 0x3F)); o->wn += 3;
    } else {
        p[0] = (unsigned char)(0xF0 | cp >> 18); p[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        p[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)); p[3] = (unsigned char)(0x80 | (cp & 0x3F)); o->wn += 4;
    }
}

/* Appends one normalised character to the word, keeping runs of
 * non-starters in canonical order. */
static void word_add(wp_out *o, uint32_t cp, uint32_t ccc) {
    if (o->wchars > WP_MAX_WORD_CHARS) return;          /* already too long: [UNK] whatever follows */
    if (++o->wchars > WP_MAX_WORD_CHARS) return;
    if (ccc == 0) { o->run_n = 0; put_utf8(o, cp); return; }
    if (o->run_n == 0) o->run_byte = o->wn;
    uint32_t k = o->run_n;
    if (k == 0 || o->run_ccc[k - 1] <= ccc) {
        o->run_cp[k] = cp; o->run_ccc[k] = (uint8_t)ccc; o->run_n++;
        put_utf8(o, cp);
        return;
    }
    while (k > 0 && o->run_ccc[k - 1] > ccc) k--;       /* stable: after equal classes */
    memmove(o->run_cp + k + 1, o->run_cp + k, (o->run_n - k) * sizeof o->run_cp[0]);
    memmove(o->run_ccc + k + 1, o->run_ccc + k, (o->run_n - k) * sizeof o->run_ccc[0]);
    o->run_cp[k] = cp; o->run_ccc[k] = (uint8_t)ccc; o->run_n++;
    o->wn = o->run_byte;
    for (uint32_t j = 0; j < o->run_n; j++) put_utf8(o, o->run_cp[j]);
}

static inline __attribute__((always_inline)) int add_items(const wp_tokenizer *t, wp_out *o, const wp_cpinfo *ci, const int words) {
    for (int k = 0; k < ci->n; k++) {
        uint32_t it = ci->item[k];
        if (it & WP_ITEM_BARRIER) { o->run_n = 0; continue; }
        if (it & WP_ITEM_PUNCT) {
            if (flush_word(t, o, words) < 0) return -1;
            word_add(o, WP_ITEM_CP(it), 0);
            if (flush_word(t, o, words) < 0) return -1;
            continue;
        }
        word_add(o, WP_ITEM_CP(it), WP_ITEM_CCC(it));
    }
    return 0;
}

static inline __attribute__((always_inline)) int encode(const wp_tokenizer *t, const char *text, size_t len, wp_out *o, const int words) {
    const unsigned char *p = (const unsigned char *)text;
    o->n = 0; o->wn = 0; o->wchars = 0; o->run_n = 0;
    if (grow(o, 2) < 0) return -1;
    o->ids[o->n++] = t->cls;
    size_t i = 0;
    while (i < len) {
        unsigned b = p[i];
        if (b < 0x80) {
            switch (t->acls[b]) {
            case A_WORD: {
                size_t j = i + 1;
                while (j < len && p[j] < 0x80 && t->acls[p[j]] == A_WORD) j++;
                size_t n = j - i;
                o->run_n = 0;
                if (o->wchars + n > WP_MAX_WORD_CHARS) o->wchars = WP_MAX_WORD_CHARS + 1;
                else {
                    unsigned char *w = o->w + o->wn;
                    for (size_t k = 0; k < n; k++) w[k] = t->lower[p[i + k]];
                    o->wn += n; o->wchars += (uint32_t)n;
                }
                i = j;
                continue;
            }
            case A_SPACE:
                if (o->wchars && flush_word(t, o, words) < 0) return -1;
                i++;
                continue;
            case A_DROP:
                i++;
                continue;
            case A_BRACKET:
                for (int k = 0; k < t->nspecial; k++) {
                    if (len - i >= t->special[k].n && !memcmp(p + i, t->special[k].s, t->special[k].n)) {
                        if (flush_word(t, o, words) < 0 || grow(o, 1) < 0) return -1;
                        if (words) o->word_fn(o->word_ctx, (const unsigned char *)t->special[k].s, t->special[k].n, 0);
                        o->ids[o->n++] = t->special[k].id;
                        i += t->special[k].n;
                        goto next;
                    }
                }
                /* a plain '[' */
                /* fall through */
            default:   /* A_PUNCT */
                if (o->wchars && flush_word(t, o, words) < 0) return -1;
                if (grow(o, 1) < 0) return -1;
                if (words) { unsigned char c = (unsigned char)b; o->word_fn(o->word_ctx, &c, 1, 1); }
                o->ids[o->n++] = t->ascii_single[b] >= 0 ? (uint32_t)t->ascii_single[b] : t->unk;
                i++;
                continue;
            }
        }
        {
            uint32_t cp = wp_utf8_next(p, len, &i);
            wp_cpinfo tmp;
            const wp_cpinfo *ci = cp < 65536 ? &t->bmp[cp] : (wp_cpinfo_compute(cp, &tmp), &tmp);
            switch (ci->kind) {
            case WP_CP_DROP: break;
            case WP_CP_SPACE: if (flush_word(t, o, words) < 0) return -1; break;
            case WP_CP_CJK:
                if (flush_word(t, o, words) < 0 || add_items(t, o, ci, words) < 0 || flush_word(t, o, words) < 0) return -1;
                break;
            default:
                if (add_items(t, o, ci, words) < 0) return -1;
            }
        }
    next:;
    }
    if (flush_word(t, o, words) < 0 || grow(o, 1) < 0) return -1;
    o->ids[o->n++] = t->sep;
    return 0;
}

int wp_encode(const wp_tokenizer *t, const char *text, size_t len, wp_out *o) {
    o->word_fn = NULL; o->word_ctx = NULL;
    return encode(t, text, len, o, 0);
}

int wp_words(const wp_tokenizer *t, const char *text, size_t len, wp_out *o,
             void (*fn)(void *ctx, const unsigned char *w, size_t n, uint32_t nchars), void *ctx) {
    o->word_fn = fn; o->word_ctx = ctx;
    int r = encode(t, text, len, o, 1);
    o->word_fn = NULL; o->word_ctx = NULL;
    return r;
}
