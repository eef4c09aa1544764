/* pipeline_test.c - sio (plain, zstd, truncated, long lines), sha256, json
 * scanner, token stream, atomic files. */
#include "tests/t.h"
#include "pipeline/sio.h"
#include "pipeline/sha256.h"
#include "pipeline/json.h"
#include "pipeline/atomic.h"
#include "pipeline/tokstream.h"
#include "pipeline/frame.h"
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zstd.h>

static void put(const char *path, const void *p, size_t n) { FILE *f = fopen(path, "wb"); fwrite(p, 1, n, f); fclose(f); }

static void test_sha256_vectors(void) {
    const char *in[] = { "", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" };
    const char *want[] = { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" };
    for (int i = 0; i < 3; i++) {
        sha256_ctx c; unsigned char d[32]; char hx[65];
        sha256_init(&c); sha256_update(&c, in[i], strlen(in[i])); sha256_final(&c, d); sha256_hex(d, hx);
        CHECK(!strcmp(hx, want[i]), "vector %d: %s", i, hx);
    }
    /* a million 'a', fed in odd pieces */
    sha256_ctx c; sha256_init(&c); char a[997]; memset(a, 'a', sizeof a);
    size_t left = 1000000; while (left) { size_t k = left < sizeof a ? left : sizeof a; sha256_update(&c, a, k); left -= k; }
    unsigned char d[32]; char hx[65]; sha256_final(&c, d); sha256_hex(d, hx);
    CHECK(!strcmp(hx, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hx);
}

/* The bulk path (SHA-NI where the CPU has it) against the one-block-at-a-time
 * path: the same data fed whole and one byte at a time. */
static void test_sha256_paths_agree(void) {
    size_t n = 100003; unsigned char *d = malloc(n); uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) { x = x * 1103515245u + 12345u; d[i] = (unsigned char)(x >> 16); }
    for (size_t len = 0; len < n; len = len * 3 + 61) {
        sha256_ctx a, b; unsigned char da[32], db[32];
        sha256_init(&a); sha256_update(&a, d, len); sha256_final(&a, da);
        sha256_init(&b); for (size_t i = 0; i < len; i++) sha256_update(&b, d + i, 1); sha256_final(&b, db);
        CHECK(!memcmp(da, db, 32), "length %zu", len);
    }
    free(d);
}

static int read_lines(const char *path, char *joined, size_t cap, int *nlines, char *err) {
    char e[512]; sio *r = sio_open(path, e, sizeof e);
    if (!r) { strcpy(err, e); return -1; }
    const char *l; size_t n; size_t k = 0; int rc; *nlines = 0;
    while ((rc = sio_getline(r, &l, &n)) == 1) {
        if (k + n + 1 < cap) { memcpy(joined + k, l, n); k += n; joined[k++] = '|'; }
        (*nlines)++;
    }
    joined[k] = 0;
    if (rc < 0) strcpy(err, sio_error(r));
    sio_close(r);
    return rc;
}

static void test_sio_plain_and_zstd(void) {
    const char *text = "one\ntwo\n\nfour";
    put("p.txt", text, strlen(text));
    char buf[256], err[512] = ""; int n;
    REQUIRE(read_lines("p.txt", buf, sizeof buf, &n, err) == 0, "%s", err);
    CHECK(n == 4 && !strcmp(buf, "one|two||four|"), "got %d '%s'", n, buf);
    /* two concatenated zstd frames */
    char z[512]; size_t z1 = ZSTD_compress(z, sizeof z, "one\ntw", 6, 3);
    size_t z2 = ZSTD_compress(z + z1, sizeof z - z1, "o\n\nfour", 7, 19);
    put("p.zst", z, z1 + z2);
    REQUIRE(read_lines("p.zst", buf, sizeof buf, &n, err) == 0, "%s", err);
    CHECK(n == 4 && !strcmp(buf, "one|two||four|"), "zstd got %d '%s'", n, buf);
    /* truncated */
    put("t.zst", z, z1 + z2 - 3);
    CHECK(read_lines("t.zst", buf, sizeof buf, &n, err) < 0, "truncated zstd must fail");
    CHECK(strstr(err, "t.zst") && strstr(err, "byte"), "message names file and byte: %s", err);
    /* corrupt */
    z[z1 + 8] ^= 0x55; z[z1 + 9] ^= 0x55;
    put("c.zst", z, z1 + z2);
    CHECK(read_lines("c.zst", buf, sizeof buf, &n, err) < 0, "corrupt zstd must fail");
    /* missing file */
    char e[256]; sio *r = sio_open("nope.txt", e, sizeof e);
    CHECK(!r && strstr(e, "nope.txt"), "missing file message: %s", e);
}

static void test_sio_long_line(void) {
    size_t n = 5 << 20; char *big = malloc(n + 10);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    memcpy(big + n, "\nx\n", 3);
    put("long.txt", big, n + 3);
    char e[256]; sio *r = sio_open("long.txt", e, sizeof e);
    REQUIRE(r, "%s", e);
    const char *l; size_t ln;
    CHECK(sio_getline(r, &l, &ln) == 1 && ln == n && !memcmp(l, big, n), "5 MB line");
    CHECK(sio_getline(r, &l, &ln) == 1 && ln == 1 && l[0] == 'x' && sio_lineno(r) == 2, "second line");
    CHECK(sio_getline(r, &l, &ln) == 0, "end");
    sio_close(r); free(big);
}

static void test_sout_zstd_roundtrip(void) {
    char e[256];
    int fd = open("o.zst", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sout *w = sout_fd(fd, "o.zst", 3, 0, e, sizeof e);
    REQUIRE(w, "%s", e);
    for (int i = 0; i < 100000; i++) { char l[32]; int k = snprintf(l, sizeof l, "line %d\n", i); sout_write(w, l, (size_t)k); }
    CHECK(sout_finish(w) == 0, "finish");
    sout_free(w); close(fd);
    sio *r = sio_open("o.zst", e, sizeof e);
    REQUIRE(r, "%s", e);
    CHECK(sio_is_zstd(r), "detected zstd");
    const char *l; size_t ln; int i = 0, bad = 0;
    while (sio_getline(r, &l, &ln) == 1) { char want[32]; snprintf(want, sizeof want, "line %d", i++); if (strcmp(l, want)) bad++; }
    CHECK(i == 100000 && !bad, "lines %d bad %d", i, bad);
    sio_close(r);
}

static void test_json_scan(void) {
    js_path paths[] = { {{"content"}, 1}, {{"metadata", "harmful_pp"}, 2}, {{"metadata", "categories"}, 2}, {{"a", "b", "c"}, 3} };
    js_val v[4]; char err[128];
    const char *doc = "{\"metadata\": {\"harmful_pp\": 1.5e3, \"categories\": [\"adult\", \"x\\u0041\"]}, \"cont\\u0065nt\": \"h\\u00e9\\ud83d\\ude00\\n\", \"z\": [1, {\"content\": 3}]}";
    REQUIRE(js_scan(doc, strlen(doc), paths, 4, v, err, sizeof err) == 0, "%s", err);
    CHECK(v[0].type == JS_STRING, "content type %d", v[0].type);
    char *b = NULL; size_t cap = 0; long n = js_string(&v[0], &b, &cap);
    CHECK(n == 8 && !memcmp(b, "h\xc3\xa9\xf0\x9f\x98\x80\n", 8), "decoded %ld", n);
    CHECK(v[1].type == JS_NUMBER && js_number(&v[1]) == 1500.0, "harmful_pp");
    CHECK(v[2].type == JS_ARRAY, "categories");
    size_t pos = 0; js_val el; int k = 0;
    while (js_array_next(&v[2], &pos, &el)) {
        if (k == 0) CHECK(js_string_eq(&el, "adult", 0), "el0");
        if (k == 1) CHECK(js_string_eq(&el, "xa", 1) && !js_string_eq(&el, "xa", 0), "el1 case");
        k++;
    }
    CHECK(k == 2, "two categories, got %d", k);
    CHECK(v[3].type == JS_ABSENT, "absent path");
    /* last duplicate wins, including for a whole repeated parent */
    const char *dup = "{\"metadata\":{\"harmful_pp\":1},\"metadata\":{\"x\":null}}";
    REQUIRE(js_scan(dup, strlen(dup), paths, 4, v, err, sizeof err) == 0, "%s", err);
    CHECK(v[1].type == JS_ABSENT, "repeated parent resets");
    const char *nan = "{\"metadata\":{\"harmful_pp\":NaN}}";
    REQUIRE(js_scan(nan, strlen(nan), paths, 4, v, err, sizeof err) == 0, "%s", err);
    CHECK(isnan(js_number(&v[1])), "NaN accepted as Python does");
    free(b);
}

static void test_json_errors(void) {
    const char *bad[] = { "", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":\"x\ty\"}", "{\"a\":1} x", "{\"a\":tru}",
                          "{\"a\":\"\\x\"}", "{\"a\":1.}", "[1,2", "{\"a\" 1}", "{\"a\":-}", "{\"a\":\"\\u12g4\"}" };
    js_path p = {{"a"}, 1}; js_val v; char err[128];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = js_scan(bad[i], strlen(bad[i]), &p, 1, &v, err, sizeof err);
        CHECK(rc < 0 && !strncmp(err, "byte ", 5), "'%s' must be rejected with a byte offset (rc %d, %s)", bad[i], rc, err);
    }
    const char *good[] = { "{}", " {\"a\" : [ ] } ", "[]", "\"s\"", "-0.5E+3", "{\"a\":-Infinity}", "{\"a\":{\"b\":[[[]]]}}" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(js_scan(good[i], strlen(good[i]), &p, 1, &v, err, sizeof err) == 0, "'%s' must be accepted: %s", good[i], err);
    char deep[2000]; memset(deep, '[', 1000); memset(deep + 1000, ']', 1000);
    CHECK(js_scan(deep, 2000, &p, 1, &v, err, sizeof err) < 0, "1000 levels of nesting rejected, not a stack overflow");
}

/* Writes s.bin: `streams` copies of header + one record (+ trailer unless
 * cut), concatenated; returns the file size. */
static long write_stream(int streams, int with_trailer, uint32_t version) {
    ts_header h = { 30522, {0} }; h.vocab_sha256[0] = 7;
    unsigned char hb[TS_HEADER_SIZE]; ts_header_pack(&h, hb);
    hb[4] = (unsigned char)version;
    unsigned char rec[10] = { 3, 0, 0, 0, 101, 0, 0xe7, 0x07, 102, 0 };    /* 101 2023 102 */
    ts_totals t = { 0, 0, TS_CHECKSUM_INIT };
    ts_totals_add_records(&t, rec, sizeof rec);
    unsigned char tb[TS_TRAILER_SIZE]; ts_trailer_pack(&t, tb);
    FILE *f = fopen("s.bin", "wb");
    for (int i = 0; i < streams; i++) {
        fwrite(hb, 1, sizeof hb, f); fwrite(rec, 1, sizeof rec, f);
        if (with_trailer) fwrite(tb, 1, sizeof tb, f);
    }
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Reads s.bin to the end: the number of documents, or -1 with the error in e. */
static int read_stream(int flags, char *e, size_t elen, int *untrailed) {
    sio *in = sio_open("s.bin", e, elen);
    ts_reader *r = in ? ts_reader_new(in, flags, e, elen) : NULL;
    if (!r) { sio_close(in); return -1; }
    const uint16_t *ids; uint32_t n; int docs = 0, k;
    while ((k = ts_next(r, &ids, &n)) == 1) {
        CHECK(n == 3 && ids[1] == 2023, "doc");
        docs++;
    }
    if (k < 0) snprintf(e, elen, "%s", ts_error(r));
    if (untrailed) *untrailed = ts_untrailed(r);
    ts_reader_free(r); sio_close(in);
    return k < 0 ? -1 : docs;
}

static void test_tokstream(void) {
    char e[512]; int untrailed;
    write_stream(2, 1, TS_VERSION);
    CHECK(read_stream(0, e, sizeof e, &untrailed) == 2 && !untrailed, "two docs through a concatenated header: %s", e);

    /* the trailer's checksum is that of tests/tokstream.py: FNV-1a 64 over the values 3, 101, 2023, 102 */
    uint64_t h = TS_CHECKSUM_INIT;
    uint32_t vals[] = { 3, 101, 2023, 102 };
    for (int i = 0; i < 4; i++) h = (h ^ vals[i]) * TS_CHECKSUM_PRIME;
    unsigned char rec[10] = { 3, 0, 0, 0, 101, 0, 0xe7, 0x07, 102, 0 };
    ts_totals t = { 0, 0, TS_CHECKSUM_INIT }; ts_totals_add_records(&t, rec, sizeof rec);
    CHECK(t.checksum == h && t.documents == 1 && t.tokens == 3, "checksum over values");

    /* no trailer: refused, unless allowed; a header after an untrailed stream too */
    write_stream(1, 0, TS_VERSION);
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "without its trailer") && strstr(e, "--accept-partial"), "no trailer: %s", e);
    CHECK(read_stream(TS_ALLOW_NO_TRAILER, e, sizeof e, &untrailed) == 1 && untrailed, "no trailer, allowed: %s", e);
    write_stream(2, 0, TS_VERSION);
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "a header at byte 58 follows a stream without its trailer"), "%s", e);
    /* a version 1 stream (never had a trailer) only when allowed */
    write_stream(2, 0, 1);
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "version 1"), "v1: %s", e);
    CHECK(read_stream(TS_ALLOW_NO_TRAILER, e, sizeof e, NULL) == 2, "v1 allowed: %s", e);
    /* ... also when a version 2 stream follows it */
    {
        unsigned char a[256], b[256];
        long na = write_stream(1, 0, 1); FILE *g = fopen("s.bin", "rb"); CHECK(g && fread(a, 1, (size_t)na, g) == (size_t)na, "read v1"); fclose(g);
        long nb = write_stream(1, 1, TS_VERSION); g = fopen("s.bin", "rb"); CHECK(g && fread(b, 1, (size_t)nb, g) == (size_t)nb, "read v2"); fclose(g);
        g = fopen("s.bin", "wb"); fwrite(a, 1, (size_t)na, g); fwrite(b, 1, (size_t)nb, g); fclose(g);
        CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "version 1"), "v1 then v2: %s", e);
        CHECK(read_stream(TS_ALLOW_NO_TRAILER, e, sizeof e, &untrailed) == 2 && untrailed, "v1 then v2, allowed: %s", e);
    }

    /* a trailer that does not match the records */
    long n = write_stream(1, 1, TS_VERSION);
    FILE *f = fopen("s.bin", "r+b"); fseek(f, n - 24, SEEK_SET); fputc(2, f); fclose(f);   /* documents: 2 */
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "counts 2 documents"), "bad trailer: %s", e);
    /* bytes after a trailer that are not a header */
    n = write_stream(1, 1, TS_VERSION);
    f = fopen("s.bin", "ab"); fwrite(rec, 1, sizeof rec, f); fclose(f);
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "data after the trailer"), "after trailer: %s", e);

    /* truncation: inside a record, inside the trailer, inside the first header (named as the header) */
    n = write_stream(1, 1, TS_VERSION);
    CHECK(truncate("s.bin", TS_HEADER_SIZE + 4 + 3) == 0, "truncate");
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "truncated inside the ids of document 1"), "record: %s", e);
    n = write_stream(1, 1, TS_VERSION);
    CHECK(truncate("s.bin", n - 5) == 0, "truncate");
    CHECK(read_stream(TS_ALLOW_NO_TRAILER, e, sizeof e, NULL) < 0 && strstr(e, "inside the trailer"), "trailer: %s", e);
    CHECK(truncate("s.bin", 20) == 0, "truncate");
    CHECK(read_stream(0, e, sizeof e, NULL) < 0 && strstr(e, "inside the header that starts at byte 0") && !strstr(e, "document"),
          "header: %s", e);
}

static void test_frame(void) {
    char b[128], e[512];
    frame_state fs; memset(&fs, 0, sizeof fs);
    size_t n = frame_begin(b, sizeof b, "t");
    CHECK(frame_is_record(b, n - 1) && !frame_is_record("{\"content\":1}", 13), "records are recognised");
    CHECK(frame_record(&fs, b, n - 1, "x", 1, e, sizeof e) == 0 && fs.open, "%s", e);
    fs.lines = 2;
    n = frame_end(b, sizeof b, "t", 3);
    CHECK(frame_record(&fs, b, n - 1, "x", 4, e, sizeof e) < 0 && strstr(e, "x:4: the end record says 3 lines") && strstr(e, "holds 2"), "%s", e);
    n = frame_end(b, sizeof b, "t", 2);
    CHECK(frame_record(&fs, b, n - 1, "x", 4, e, sizeof e) == 0 && !fs.open, "%s", e);
    CHECK(frame_finish(&fs, "x", e, sizeof e) == 0, "closed stream finishes");
    CHECK(frame_record(&fs, b, n - 1, "x", 5, e, sizeof e) < 0 && strstr(e, "without a begin"), "%s", e);
    n = frame_begin(b, sizeof b, "t");
    frame_record(&fs, b, n - 1, "x", 6, e, sizeof e);
    CHECK(frame_record(&fs, b, n - 1, "x", 9, e, sizeof e) < 0 && strstr(e, "x:9: a begin record while"), "%s", e);
    CHECK(frame_finish(&fs, "x", e, sizeof e) < 0 && strstr(e, "ends without the end record"), "%s", e);
    n = frame_end(b, sizeof b, "t", -1);
    memset(&fs, 0, sizeof fs); fs.open = 1; fs.lines = 7;
    CHECK(frame_record(&fs, b, n - 1, "x", 8, e, sizeof e) == 0, "an end record without lines: %s", e);
    const char *bad = "{\"symbert_stream\":\"middle\"}";
    CHECK(frame_record(&fs, bad, strlen(bad), "x", 1, e, sizeof e) < 0 && strstr(e, "must be"), "%s", e);
    bad = "{\"symbert_stream\":\"begin\"";
    CHECK(frame_record(&fs, bad, strlen(bad), "x", 1, e, sizeof e) < 0 && strstr(e, "malformed"), "%s", e);
}

static void test_atomic(void) {
    char e[256];
    CHECK(mkdir_p("d1/d2/d3", e, sizeof e) == 0, "%s", e);
    afile f; REQUIRE(afile_open(&f, "d1/d2/d3/out.txt", e, sizeof e) == 0, "%s", e);
    afile_write(&f, "abc", 3, e, sizeof e);
    struct stat st;
    CHECK(stat("d1/d2/d3/out.txt", &st) < 0, "final name absent before commit");
    CHECK(afile_commit(&f, e, sizeof e) == 0, "%s", e);
    CHECK(stat("d1/d2/d3/out.txt", &st) == 0 && st.st_size == 3, "present after commit");
    REQUIRE(afile_open(&f, "d1/gone.txt", e, sizeof e) == 0, "%s", e);
    afile_abort(&f);
    CHECK(stat("d1/gone.txt", &st) < 0 && stat(f.tmp, &st) < 0, "abort leaves nothing");
    /* a device is written in place, never renamed over */
    REQUIRE(afile_open(&f, "/dev/null", e, sizeof e) == 0, "%s", e);
    CHECK(f.direct, "/dev/null written directly");
    afile_write(&f, "abc", 3, e, sizeof e);
    CHECK(afile_commit(&f, e, sizeof e) == 0, "%s", e);
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null is still a character device");
    CHECK(afile_open(&f, "d1", e, sizeof e) < 0 && strstr(e, "folder"), "a folder is refused: %s", e);
}

int main(void) {
    T_RUN(test_sha256_vectors);
    T_RUN(test_sha256_paths_agree);
    T_RUN(test_sio_plain_and_zstd);
    T_RUN(test_sio_long_line);
    T_RUN(test_sout_zstd_roundtrip);
    T_RUN(test_json_scan);
    T_RUN(test_json_errors);
    T_RUN(test_tokstream);
    T_RUN(test_frame);
    T_RUN(test_atomic);
    return T_DONE();
}
