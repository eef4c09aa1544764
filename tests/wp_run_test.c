/* wp_run_test.c - the wordpiece engine as a library (tokenizer/run.h): the
 * output of 1 and 3 threads is the same bytes, the token stream ends with a
 * trailer that matches its records, an input cut after its begin record is
 * an error with no trailer written, a failing output stops the run, and in
 * text mode stream records are plain documents.  A ten-token vocab written
 * here, so no external file is needed. */
#include "t.h"
#include "tokenizer/run.h"
#include "tokenizer/vocab.h"
#include "pipeline/frame.h"

typedef struct { unsigned char *p; size_t n, cap; size_t fail_after; } buf;

static int put(void *ud, const void *data, size_t n, char *err, size_t errlen) {
    buf *b = ud;
    if (b->fail_after && b->n + n > b->fail_after) { snprintf(err, errlen, "disk full (test)"); return -1; }
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n); b->n += n;
    return 0;
}

static wp_tokenizer *T;
static wp_vocab *V;

static int run(const char *path, int threads, int jsonl, buf *b, wp_run_stats *st, char *err, size_t errlen) {
    wp_run_opts o; memset(&o, 0, sizeof o);
    o.jsonl = jsonl; o.bin = 1; o.threads = threads;
    o.path.key[0] = "content"; o.path.depth = 1;
    o.header.vocab_size = wp_vocab_size(V); memcpy(o.header.vocab_sha256, wp_vocab_sha256(V), 32);
    o.write = put; o.ud = b;
    const char *paths[1] = { path };
    return wp_run(T, paths, 1, &o, st, err, errlen);
}

static void test_threads_and_trailer(void) {
    FILE *f = fopen("docs.jsonl", "w");
    for (int i = 0; i < 30000; i++) fprintf(f, "{\"content\": \"hello world%s\"}\n", i % 3 ? ", hello" : "");
    fclose(f);
    buf b1 = { 0 }, b3 = { 0 }; wp_run_stats s1, s3; char e[512];
    REQUIRE(run("docs.jsonl", 1, 1, &b1, &s1, e, sizeof e) == 0, "%s", e);
    REQUIRE(run("docs.jsonl", 3, 1, &b3, &s3, e, sizeof e) == 0, "%s", e);
    CHECK(b1.n == b3.n && !memcmp(b1.p, b3.p, b1.n), "-j 3 writes the bytes of -j 1");
    CHECK(s1.docs == 30000 && s3.docs == 30000 && s1.tokens == s3.tokens, "docs %llu", (unsigned long long)s1.docs);
    REQUIRE(b1.n > TS_HEADER_SIZE + TS_TRAILER_SIZE, "size");
    ts_totals t = { 0, 0, TS_CHECKSUM_INIT };
    ts_totals_add_records(&t, b1.p + TS_HEADER_SIZE, b1.n - TS_HEADER_SIZE - TS_TRAILER_SIZE);
    unsigned char tb[TS_TRAILER_SIZE]; ts_trailer_pack(&t, tb);
    CHECK(t.documents == 30000 && t.tokens == s1.tokens, "records: %llu docs", (unsigned long long)t.documents);
    CHECK(!memcmp(b1.p + b1.n - TS_TRAILER_SIZE, tb, TS_TRAILER_SIZE), "the trailer counts the records");
    free(b1.p); free(b3.p);
}

static void test_cut_input(void) {
    char rec[128];
    FILE *f = fopen("cut.jsonl", "w");
    fwrite(rec, 1, frame_begin(rec, sizeof rec, "test"), f);
    for (int i = 0; i < 5000; i++) fprintf(f, "{\"content\": \"hello\"}\n");
    fclose(f);
    for (int threads = 1; threads <= 2; threads++) {
        buf b = { 0 }; wp_run_stats st; char e[512] = "";
        CHECK(run("cut.jsonl", threads, 1, &b, &st, e, sizeof e) < 0 && strstr(e, "cut.jsonl: ends without the end record"), "%s", e);
        CHECK(b.n >= TS_TRAILER_SIZE && memcmp(b.p + b.n - TS_TRAILER_SIZE, TS_TRAILER_MAGIC, 4), "no trailer after a cut input");
        CHECK(st.docs == 5000, "the documents before the cut were written: %llu", (unsigned long long)st.docs);
        free(b.p);
    }
    /* the same with its end record: complete; the records are not documents */
    f = fopen("cut.jsonl", "a");
    fwrite(rec, 1, frame_end(rec, sizeof rec, "test", 5000), f);
    fclose(f);
    buf b = { 0 }; wp_run_stats st; char e[512] = "";
    CHECK(run("cut.jsonl", 2, 1, &b, &st, e, sizeof e) == 0 && st.docs == 5000, "%s", e);
    CHECK(b.n > TS_TRAILER_SIZE && !memcmp(b.p + b.n - TS_TRAILER_SIZE, TS_TRAILER_MAGIC, 4), "trailer");
    free(b.p);
    /* text mode: every line is a document, records included */
    b.p = NULL; b.n = b.cap = 0;
    CHECK(run("cut.jsonl", 1, 0, &b, &st, e, sizeof e) == 0 && st.docs == 5002, "%s (%llu)", e, (unsigned long long)st.docs);
    free(b.p);
}

static void test_output_fails(void) {
    buf b = { 0 }; b.fail_after = 100000; wp_run_stats st; char e[512] = "";
    CHECK(run("docs.jsonl", 2, 1, &b, &st, e, sizeof e) < 0 && strstr(e, "disk full (test)"), "%s", e);
    CHECK(b.n <= 100000 && (b.n < TS_TRAILER_SIZE || memcmp(b.p + b.n - TS_TRAILER_SIZE, TS_TRAILER_MAGIC, 4)), "no trailer");
    free(b.p);
    buf none = { 0 };
    CHECK(run("missing.jsonl", 1, 1, &none, &st, e, sizeof e) < 0 && strstr(e, "missing.jsonl"), "%s", e);
    free(none.p);
}

int main(void) {
    FILE *f = fopen("vocab.txt", "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n,\n##s\nthe\n", f);
    fclose(f);
    char err[512];
    V = wp_vocab_load("vocab.txt", err, sizeof err);
    if (V) T = wp_new(V, err, sizeof err);
    if (!V || !T) { printf("FAIL setup: %s\n", err); return 1; }
    T_RUN(test_threads_and_trailer);
    T_RUN(test_cut_input);
    T_RUN(test_output_fails);
    wp_free(T); wp_vocab_free(V);
    return T_DONE();
}
