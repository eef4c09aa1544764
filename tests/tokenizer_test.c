/* tokenizer_test.c - the tokenizer library: vocab, UTF-8 policy, every code
 * point against the Hugging Face dump, canonical reordering against the
 * Hugging Face pairs probe, and WordPiece on chosen inputs.
 *
 * Needs the bert-base-uncased vocab ($SYMBERT_TEST_VOCAB, else the
 * repository's $ROOT/data/vocab/bert-base-uncased-vocab.txt), the copy of it
 * that `make` puts beside the build's bin/ (../share/symbert/vocab.txt from
 * this program's folder: the vocab lookup's last step), and
 * $ROOT/tests/data/wordpiece/ (hf_codepoints.tsv.zst, hf_ccc_pairs.txt.zst,
 * written by tests/hf_parity_ids.py with tokenizers 0.23.2).  The corpus
 * parity test is tests/wordpiece_test.sh (through the CLI). */
#include "t.h"
#include "tokenizer/vocab.h"
#include "tokenizer/wordpiece.h"
#include "pipeline/sha256.h"
#include "pipeline/sio.h"
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char vocab_path[4096], data_dir[4096];
static wp_vocab *V;
static wp_tokenizer *T;

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(s, 1, n, f); fclose(f); }
}

/* ids of text as "101 ... 102" */
static const char *enc(const char *text, size_t len) {
    static char buf[1 << 16];
    static wp_out o;
    if (wp_encode(T, text, len, &o) < 0) return "OOM";
    size_t k = 0;
    for (size_t i = 0; i < o.n && k + 12 < sizeof buf; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%u", i ? " " : "", o.ids[i]);
    buf[k] = 0;
    return buf;
}
#define ENC(s) enc(s, sizeof(s) - 1)

/* ---- vocab ---- */
static void test_vocab_load(void) {
    REQUIRE(V, "vocab %s did not load", vocab_path);
    CHECK(wp_vocab_size(V) == 30522, "size %u", wp_vocab_size(V));
    char hex[65]; sha256_hex(wp_vocab_sha256(V), hex);
    CHECK(!strcmp(hex, WP_BERT_UNCASED_SHA256), "sha256 %s", hex);
    CHECK(wp_vocab_id(V, "[CLS]", 5) == 101 && wp_vocab_id(V, "[SEP]", 5) == 102 && wp_vocab_id(V, "[UNK]", 5) == 100, "unexpected");
    CHECK(wp_vocab_id(V, "[PAD]", 5) == 0 && wp_vocab_id(V, "[MASK]", 6) == 103, "unexpected");
    CHECK(wp_vocab_id(V, "the", 3) == 1996 && wp_vocab_id(V, "##ing", 5) == 2075, "unexpected");
    CHECK(wp_vocab_id(V, "the", 2) == wp_vocab_id(V, "th", 2), "unexpected");
    CHECK(wp_vocab_id(V, "qqqqzzzz", 8) == -1, "unexpected");
    CHECK(wp_vocab_token(V, 1996) && !strcmp(wp_vocab_token(V, 1996), "the"), "unexpected");
    CHECK(wp_vocab_token(V, 30522) == NULL && wp_vocab_token(V, UINT32_MAX) == NULL, "unexpected");
    for (uint32_t id = 0; id < wp_vocab_size(V); id++) {   /* every token finds its own id */
        const char *tk = wp_vocab_token(V, id);
        if (wp_vocab_id(V, tk, strlen(tk)) != (int)id) { CHECK(0, "token %u '%s' -> %d", id, tk, wp_vocab_id(V, tk, strlen(tk))); break; }
    }
}

static void test_vocab_lines(void) {
    /* trailing white space and '\r' dropped; a duplicate takes the later id; no final newline */
    const char *v1 = "[PAD]\n[UNK]\r\n[CLS] \n[SEP]\t\nab\nab\nc";
    write_file("v1.txt", v1, strlen(v1));
    char err[256];
    wp_vocab *v = wp_vocab_load("v1.txt", err, sizeof err);
    REQUIRE(v, "%s", err);
    CHECK(wp_vocab_size(v) == 7, "size %u", wp_vocab_size(v));
    CHECK(wp_vocab_id(v, "[UNK]", 5) == 1 && wp_vocab_id(v, "[CLS]", 5) == 2 && wp_vocab_id(v, "[SEP]", 5) == 3, "unexpected");
    CHECK(wp_vocab_id(v, "ab", 2) == 5, "ab -> %d", wp_vocab_id(v, "ab", 2));
    CHECK(wp_vocab_id(v, "c", 1) == 6, "unexpected");
    CHECK(!strcmp(wp_vocab_token(v, 4), "ab") && !strcmp(wp_vocab_token(v, 2), "[CLS]"), "unexpected");
    wp_tokenizer *t = wp_new(v, err, sizeof err);
    REQUIRE(t, "%s", err);
    wp_out o; memset(&o, 0, sizeof o);
    CHECK(wp_encode(t, "ab c abc", 8, &o) == 0, "unexpected");
    CHECK(o.n == 5 && o.ids[0] == 2 && o.ids[1] == 5 && o.ids[2] == 6 && o.ids[3] == 1 && o.ids[4] == 3,
          "n=%zu %u %u %u", o.n, o.ids[1], o.ids[2], o.ids[3]);
    wp_out_free(&o); wp_free(t); wp_vocab_free(v);
    /* a vocab without [SEP] cannot tokenise */
    write_file("v2.txt", "[UNK]\n[CLS]\na\n", strlen("[UNK]\n[CLS]\na\n"));
    v = wp_vocab_load("v2.txt", err, sizeof err);
    REQUIRE(v, "%s", err);
    t = wp_new(v, err, sizeof err);
    CHECK(!t && strstr(err, "[SEP]"), "%s", err);
    wp_free(t); wp_vocab_free(v);
    write_file("empty.txt", "", 0);
    CHECK(!wp_vocab_load("empty.txt", err, sizeof err) && strstr(err, "empty"), "%s", err);
    CHECK(!wp_vocab_load("no/such/file", err, sizeof err) && strstr(err, "no/such/file"), "%s", err);
}

/* The lookup order of every tool: --vocab, $SYMBERT_VOCAB, the place of
 * `oscar-fetch vocab`, the copy shipped beside the tools; a path given by
 * the first two is never passed over. */
static void test_vocab_locate(void) {
    char out[4096], want[4200], err[512], cwd[2048], xdg[2100];
    REQUIRE(getcwd(cwd, sizeof cwd), "unexpected");
    snprintf(xdg, sizeof xdg, "%s/xdg", cwd);
    write_file("given.txt", "x\n", 2);
    write_file("env.txt", "y\n", 2);
    mkdir("xdg", 0755); mkdir("xdg/symbert", 0755);
    write_file("xdg/symbert/vocab.txt", "z\n", 2);
    setenv("XDG_DATA_HOME", xdg, 1);
    setenv("SYMBERT_VOCAB", "env.txt", 1);
    /* 1. --vocab first; a missing one is an error, not a reason to look on */
    CHECK(wp_vocab_locate("given.txt", out, sizeof out, err, sizeof err) == 0 && !strcmp(out, "given.txt"), "%s", out);
    CHECK(wp_vocab_locate("missing.txt", out, sizeof out, err, sizeof err) == -1, "--vocab passed over");
    CHECK(strstr(err, "missing.txt") && strstr(err, "--vocab"), "%s", err);
    /* 2. then $SYMBERT_VOCAB, the same */
    CHECK(wp_vocab_locate(NULL, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, "env.txt"), "%s", out);
    CHECK(wp_vocab_locate("", out, sizeof out, err, sizeof err) == 0 && !strcmp(out, "env.txt"), "empty --vocab: %s", out);
    setenv("SYMBERT_VOCAB", "missing-env.txt", 1);
    CHECK(wp_vocab_locate(NULL, out, sizeof out, err, sizeof err) == -1, "$SYMBERT_VOCAB passed over");
    CHECK(strstr(err, "missing-env.txt") && strstr(err, "SYMBERT_VOCAB"), "%s", err);
    /* 3. then the place of oscar-fetch vocab (an empty SYMBERT_VOCAB is unset) */
    setenv("SYMBERT_VOCAB", "", 1);
    snprintf(want, sizeof want, "%s/symbert/vocab.txt", xdg);
    CHECK(wp_vocab_locate(NULL, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, want), "%s", out);
    unsetenv("SYMBERT_VOCAB");
    CHECK(wp_vocab_default_path(out, sizeof out) == 0 && !strcmp(out, want), "%s", out);
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", cwd, 1);
    snprintf(want, sizeof want, "%s/.local/share/symbert/vocab.txt", cwd);
    CHECK(wp_vocab_default_path(out, sizeof out) == 0 && !strcmp(out, want), "%s", out);
    /* 4. last, the shipped copy: PREFIX/share/symbert/vocab.txt for PREFIX/bin/tool */
    CHECK(wp_vocab_shipped_path("/opt/sb/bin/wordpiece", out, sizeof out) == 0 && !strcmp(out, "/opt/sb/share/symbert/vocab.txt"), "%s", out);
    CHECK(wp_vocab_shipped_path("/bin/wordpiece", out, sizeof out) == 0 && !strcmp(out, "/share/symbert/vocab.txt"), "%s", out);
    CHECK(wp_vocab_shipped_path("bin/wordpiece", out, sizeof out) == 0 && !strcmp(out, "share/symbert/vocab.txt"), "%s", out);
    CHECK(wp_vocab_shipped_path("wordpiece", out, sizeof out) == -1, "no folder: %s", out);
    /* this program is build/<variant>/tests/tokenizer_test; make put the copy in build/<variant>/share */
    char self[4096], shipped[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0, "readlink /proc/self/exe");
    self[n] = 0;
    *strrchr(self, '/') = 0; *strrchr(self, '/') = 0;
    snprintf(want, sizeof want, "%s/share/symbert/vocab.txt", self);
    REQUIRE(wp_vocab_shipped_path(NULL, shipped, sizeof shipped) == 0 && !strcmp(shipped, want), "%s, want %s", shipped, want);
    CHECK(access(shipped, R_OK) == 0, "%s: not built (make tests puts it there)", shipped);
    wp_vocab *sv = wp_vocab_load(shipped, err, sizeof err);
    if (sv) {
        char hx[65]; sha256_hex(wp_vocab_sha256(sv), hx);
        CHECK(!strcmp(hx, WP_BERT_UNCASED_SHA256), "%s: sha256 %s", shipped, hx);
        wp_vocab_free(sv);
    } else CHECK(0, "%s", err);
    CHECK(wp_vocab_locate(NULL, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, shipped), "no fetched vocab: %s (%s)", out, err);
    unsetenv("HOME");
    CHECK(wp_vocab_locate(NULL, out, sizeof out, err, sizeof err) == 0 && !strcmp(out, shipped), "no HOME: %s (%s)", out, err);
    /* the fetched vocab wins over the shipped copy */
    setenv("XDG_DATA_HOME", xdg, 1);
    CHECK(wp_vocab_locate(NULL, out, sizeof out, err, sizeof err) == 0 && strstr(out, "/xdg/symbert/vocab.txt"), "%s", out);
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", cwd, 1);
}

/* ---- UTF-8 policy ---- */
static void test_utf8(void) {
    struct { const char *s; size_t n; uint32_t cp[6]; int ncp; } c[] = {
        { "A", 1, {0x41}, 1 }, { "\xc3\xa9", 2, {0xE9}, 1 }, { "\xe2\x82\xac", 3, {0x20AC}, 1 },
        { "\xf0\x9f\x98\x80", 4, {0x1F600}, 1 }, { "\xf4\x8f\xbf\xbf", 4, {0x10FFFF}, 1 },
        { "\xff", 1, {0xFFFD}, 1 }, { "\x80\xbf", 2, {0xFFFD, 0xFFFD}, 2 },
        { "\xc0\xaf", 2, {0xFFFD, 0xFFFD}, 2 },                 /* overlong */
        { "\xe0\x80\xaf", 3, {0xFFFD, 0xFFFD, 0xFFFD}, 3 },     /* overlong */
        { "\xed\xa0\x80", 3, {0xFFFD, 0xFFFD, 0xFFFD}, 3 },     /* surrogate */
        { "\xf4\x90\x80\x80", 4, {0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}, 4 },  /* > U+10FFFF */
        { "\xc3", 1, {0xFFFD}, 1 }, { "\xe2\x82", 2, {0xFFFD, 0xFFFD}, 2 },   /* truncated */
        { "\xc3(", 2, {0xFFFD, '('}, 2 }, { "\xe2(\xa1", 3, {0xFFFD, '(', 0xFFFD}, 3 },
        { "\xf0\x9f\x98" "a", 4, {0xFFFD, 0xFFFD, 0xFFFD, 'a'}, 4 },
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        size_t i = 0; int n = 0, ok = 1;
        while (i < c[k].n) {
            uint32_t cp = wp_utf8_next((const unsigned char *)c[k].s, c[k].n, &i);
            if (n >= c[k].ncp || cp != c[k].cp[n]) ok = 0;
            n++;
        }
        CHECK(ok && n == c[k].ncp, "case %zu: %d code points", k, n);
    }
    /* the policy seen from the tokenizer: invalid bytes vanish, words join */
    char want[4096]; snprintf(want, sizeof want, "%s", ENC("abcd efg"));
    CHECK(!strcmp(ENC("ab\xff" "cd e\xc3" "fg"), want), "%s", enc("ab\xff" "cd e\xc3" "fg", 11));
    CHECK(!strcmp(ENC("ab\xed\xa0\x80" "cd e\xe2\x82" "fg"), want), "unexpected");
}

/* ---- every code point against the Hugging Face dump ---- */
static void test_codepoints(void) {
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/hf_codepoints.tsv.zst", data_dir);
    sio *in = sio_open(path, err, sizeof err);
    REQUIRE(in, "%s", err);
    const char *line; size_t len;
    long rows = 0, cps = 0, bad = 0;
    uint32_t next = 0;
    while (sio_getline(in, &line, &len) > 0) {
        if (line[0] == '#') continue;
        unsigned lo, hi; char kind, cls; char out[256] = "";
        int f = sscanf(line, "%x %x %c %c %255s", &lo, &hi, &kind, &cls, out);
        if (f < 4) { CHECK(0, "bad line %ld: %s", rows, line); bad++; break; }
        rows++;
        if (lo != next) { CHECK(0, "gap before U+%04X", lo); bad++; }
        next = hi + 1;
        if (next == 0xD800) next = 0xE000;
        for (uint32_t cp = lo; cp <= hi; cp++) {
            cps++;
            wp_cpinfo ci; wp_cpinfo_compute(cp, &ci);
            char mk = 'N', mine[256] = ""; int k = 0, kept = 0;
            for (int i = 0; i < ci.n; i++) {
                if (ci.item[i] & WP_ITEM_BARRIER) continue;
                k += snprintf(mine + k, sizeof mine - k, "%s%X", kept ? "." : "", WP_ITEM_CP(ci.item[i]));
                kept++;
            }
            if (ci.kind == WP_CP_DROP || (ci.kind == WP_CP_KEEP && kept == 0)) { mk = 'D'; mine[0] = 0; }
            else if (ci.kind == WP_CP_SPACE) mk = 'S';
            else if (ci.kind == WP_CP_CJK) mk = 'C';
            char hexcp[16]; snprintf(hexcp, sizeof hexcp, "%X", cp);
            const char *want = !strcmp(out, "=") ? hexcp : out;
            int mcls = wp_cp_pretok_class(cp);
            /* the punctuation flag of the item must agree with the dump's class of that code point */
            int pflag_ok = 1;
            if (mk == 'N' && kept == 1 && !strcmp(out, "=")) pflag_ok = !!(ci.item[0] & WP_ITEM_PUNCT) == (cls == 'P');
            if (mk != kind || mcls != cls || (mk != 'D' && mk != 'S' && strcmp(mine, want)) || !pflag_ok) {
                if (bad < 10) CHECK(0, "U+%04X: dump %c %c %s, tokenizer %c %c %s", cp, kind, cls, out, mk, mcls, mine);
                bad++;
            }
        }
    }
    sio_close(in);
    CHECK(bad == 0, "%ld code points differ", bad);
    CHECK(cps == 0x110000 - 0x800, "%ld code points in the dump", cps);
    printf("     %ld code points (%ld runs) identical to Hugging Face's normaliser and pre-tokenizer\n", cps, rows);
}

/* ---- canonical reordering against the pairs probe ---- */
typedef struct { char s[64]; size_t n; int words; } wbuf;
static void collect(void *ctx, const unsigned char *w, size_t n, uint32_t nchars) {
    wbuf *b = ctx;
    if (b->words++ == 0 && n < sizeof b->s) { memcpy(b->s, w, n); b->n = n; }
}
static size_t put8(char *p, uint32_t cp) {
    if (cp < 0x80) { p[0] = (char)cp; return 1; }
    if (cp < 0x800) { p[0] = (char)(0xC0 | cp >> 6); p[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) { p[0] = (char)(0xE0 | cp >> 12); p[1] = (char)(0x80 | (cp >> 6 & 0x3F)); p[2] = (char)(0x80 | (cp & 0x3F)); return 3; }
    p[0] = (char)(0xF0 | cp >> 18); p[1] = (char)(0x80 | (cp >> 12 & 0x3F)); p[2] = (char)(0x80 | (cp >> 6 & 0x3F)); p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
static void test_reordering(void) {
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/hf_ccc_pairs.txt.zst", data_dir);
    sio *in = sio_open(path, err, sizeof err);
    REQUIRE(in, "%s", err);
    const char *line; size_t len;
    int got = sio_getline(in, &line, &len);
    REQUIRE(got > 0 && strstr(line, "K:"), "no K line in %s", path);
    static uint32_t k[4096]; int nk = 0;
    for (const char *p = strstr(line, "K:") + 2; *p && nk < 4096; ) {
        char *end; unsigned long v = strtoul(p, &end, 16);
        if (end == p) break;
        k[nk++] = (uint32_t)v; p = end;
    }
    static unsigned char *sw;   /* sw[i * nk + j]: pair (k[i], k[j]) reordered */
    sw = calloc((size_t)nk * nk, 1);
    long nsw = 0;
    while (sio_getline(in, &line, &len) > 0) {
        unsigned a, b;
        if (sscanf(line, "%x %x", &a, &b) != 2) continue;
        int i = -1, j = -1;
        for (int q = 0; q < nk; q++) { if (k[q] == a) i = q; if (k[q] == b) j = q; }
        REQUIRE(i >= 0 && j >= 0, "pair %X %X not in K", a, b);
        sw[i * nk + j] = 1; nsw++;
    }
    sio_close(in);
    REQUIRE(nk > 100 && nsw > 100, "K %d, pairs %ld", nk, nsw);
    wp_out o; memset(&o, 0, sizeof o);
    long bad = 0, tried = 0;
    for (int i = 0; i < nk; i++) for (int j = 0; j < nk; j++) {
        if (i == j) continue;
        char text[16], ab[16], ba[16]; size_t n = 0, nab, nba;
        text[n++] = 'x'; n += put8(text + n, k[i]); n += put8(text + n, k[j]);
        nab = 0; ab[nab++] = 'x'; nab += put8(ab + nab, k[i]); nab += put8(ab + nab, k[j]);
        nba = 0; ba[nba++] = 'x'; nba += put8(ba + nba, k[j]); nba += put8(ba + nba, k[i]);
        wbuf b; memset(&b, 0, sizeof b);
        wp_words(T, text, n, &o, collect, &b);
        int swapped = b.n == nba && !memcmp(b.s, ba, nba);
        int same = b.n == nab && !memcmp(b.s, ab, nab);
        tried++;
        if (b.words != 1 || !(swapped || same) || swapped != sw[i * nk + j]) {
            if (bad < 10) CHECK(0, "x U+%04X U+%04X: %d words, reordered %d, Hugging Face %d", k[i], k[j], b.words, swapped, sw[i * nk + j]);
            bad++;
        }
    }
    wp_out_free(&o); free(sw);
    CHECK(bad == 0, "%ld of %ld pairs differ", bad, tried);
    printf("     %ld pairs of combining marks ordered as Hugging Face orders them (%ld reordered)\n", tried, nsw);
}

/* ---- the pipeline on chosen inputs ---- */
static void test_pipeline(void) {
    CHECK(!strcmp(ENC(""), "101 102"), "unexpected");
    CHECK(!strcmp(ENC(" \t\n\r "), "101 102"), "unexpected");
    CHECK(!strcmp(ENC("Hello, World!"), "101 7592 1010 2088 999 102"), "%s", ENC("Hello, World!"));
    /* case, accents composed and decomposed, NFD of a precomposed letter */
    char a[4096]; snprintf(a, sizeof a, "%s", ENC("cafe"));
    CHECK(!strcmp(ENC("CAFÉ"), a) && !strcmp(ENC("cafe\xcc\x81"), a) && !strcmp(ENC("Caf\xc3\xa9"), a), "%s", a);
    /* control and zero-width characters vanish inside a word */
    snprintf(a, sizeof a, "%s", ENC("hello"));
    CHECK(!strcmp(ENC("hel\x01lo"), a) && !strcmp(ENC("hel\xe2\x80\x8blo"), a) && !strcmp(enc("hel\0lo", 6), a), "unexpected");
    /* \v and \f are controls (dropped), not white space */
    CHECK(!strcmp(ENC("hel\vlo"), a) && !strcmp(ENC("hel\flo"), a), "unexpected");
    /* every punctuation character is its own word, ASCII symbols included */
    snprintf(a, sizeof a, "%s", ENC("a $ b + c < d = e > f ^ g ` h | i ~ j"));
    CHECK(!strcmp(ENC("a$b+c<d=e>f^g`h|i~j"), a), "%s", ENC("a$b+c<d=e>f^g`h|i~j"));
    /* CJK ideographs are words of their own */
    snprintf(a, sizeof a, "%s", ENC("\xe4\xb8\xad \xe6\x96\x87"));
    CHECK(!strcmp(ENC("\xe4\xb8\xad\xe6\x96\x87"), a), "unexpected");
    /* special tokens: exact case, anywhere, before normalisation */
    CHECK(!strcmp(ENC("[CLS][SEP][PAD][MASK][UNK]"), "101 101 102 0 103 100 102"), "%s", ENC("[CLS][SEP][PAD][MASK][UNK]"));
    snprintf(a, sizeof a, "%s", ENC("x [MASK] y"));
    CHECK(!strcmp(ENC("x[MASK]y"), a), "unexpected");
    CHECK(strcmp(ENC("[cls]"), "101 101 102") != 0 && strcmp(ENC("[CLS\xe2\x80\x8b]"), "101 101 102") != 0, "unexpected");
    snprintf(a, sizeof a, "%s", ENC("[ cls ]"));
    CHECK(!strcmp(ENC("[cls]"), a) && !strcmp(ENC("[C\xe2\x80\x8bLS]"), a), "%s / %s", ENC("[cls]"), a);
}

static void test_word_length(void) {
    char w[512];
    /* "ab" repeated: a word WordPiece can cover; 100 characters pass, 101 are [UNK] */
    for (int n = 98; n <= 102; n++) {
        for (int i = 0; i < n; i++) w[i] = "ab"[i % 2];
        const char *r = enc(w, (size_t)n);
        int unk = !strcmp(r, "101 100 102");
        CHECK(unk == (n > 100), "%d characters: %s", n, r);
    }
    /* characters are counted after normalisation: dropped marks and controls do not count */
    size_t k = 0;
    for (int i = 0; i < 100; i++) { w[k++] = "ab"[i % 2]; if (i % 3 == 0) { w[k++] = '\xcc'; w[k++] = '\x81'; } if (i % 7 == 0) w[k++] = '\x01'; }
    CHECK(strcmp(enc(w, k), "101 100 102") != 0, "100 letters with marks and controls: %s", enc(w, k));
    w[k++] = 'a';
    CHECK(!strcmp(enc(w, k), "101 100 102"), "101 letters with marks: %s", enc(w, k));
    /* a word that cannot be covered is one [UNK] */
    CHECK(!strcmp(ENC("\xe2\x98\x83\xe2\x98\x83"), "101 100 102"), "%s", ENC("\xe2\x98\x83\xe2\x98\x83"));
}

static void collect_all(void *ctx, const unsigned char *w, size_t n, uint32_t nchars) {
    char *s = ctx; size_t l = strlen(s);
    snprintf(s + l, 1024 - l, "%s%.*s", l ? "|" : "", (int)n, (const char *)w);
}
static void test_words(void) {
    char s[1024] = ""; wp_out o; memset(&o, 0, sizeof o);
    const char *in = "H\xc3\xa9llo, \xe4\xb8\xad\xe6\x96\x87![SEP]\xc4\xb0stanbul \xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3";
    CHECK(wp_words(T, in, strlen(in), &o, collect_all, s) == 0, "unexpected");
    CHECK(!strcmp(s, "hello|,|\xe4\xb8\xad|\xe6\x96\x87|!|[SEP]|istanbul|\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83"), "%s", s);
    wp_out_free(&o);
}

/* determinism and bounds on mixed text */
static void test_ids_in_range(void) {
    static const char *texts[] = { "Hello world", "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 family", "\xee\x80\x80\xf3\xb0\x80\x80",
                                   "x\xcc\x81\xcc\xa7\xe1\xaa\xbf\xe1\xab\x81", "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4" };
    wp_out o; memset(&o, 0, sizeof o);
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        REQUIRE(wp_encode(T, texts[k], strlen(texts[k]), &o) == 0, "unexpected");
        CHECK(o.n >= 2 && o.ids[0] == 101 && o.ids[o.n - 1] == 102, "unexpected");
        for (size_t i = 0; i < o.n; i++) CHECK(o.ids[i] < 30522, "unexpected");
    }
    wp_out_free(&o);
}

int main(void) {
    const char *root = t_env("ROOT", ".");
    snprintf(vocab_path, sizeof vocab_path, "%s", t_env("SYMBERT_TEST_VOCAB", ""));
    if (!vocab_path[0]) snprintf(vocab_path, sizeof vocab_path, "%s/data/vocab/bert-base-uncased-vocab.txt", root);
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/wordpiece", root);
    char err[512];
    V = wp_vocab_load(vocab_path, err, sizeof err);
    if (V) T = wp_new(V, err, sizeof err);
    if (!V || !T) { printf("FAIL setup: %s\n", err); return 1; }
    T_RUN(test_vocab_load);
    T_RUN(test_vocab_lines);
    T_RUN(test_vocab_locate);
    T_RUN(test_utf8);
    T_RUN(test_codepoints);
    T_RUN(test_reordering);
    T_RUN(test_pipeline);
    T_RUN(test_word_length);
    T_RUN(test_words);
    T_RUN(test_ids_in_range);
    wp_free(T); wp_vocab_free(V);
    return T_DONE();
}
