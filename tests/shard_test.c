/* shard_test.c - the shard library: .npy headers (written and parsed, bad
 * ones refused), packing equals the concatenation of the documents, the
 * validation draw (exact count, disjoint from train, deterministic, uniform),
 * manifest round trip and its errors, folder safety (refusal without force,
 * cleanup of killed runs, nothing left by an aborted run), verify catching
 * each kind of damage, and merge. */
#include "tests/t.h"
#include "pipeline/shard.h"
#include "pipeline/sha256.h"
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

/* a corpus: ndocs documents of random length, [CLS] ... [SEP] */
typedef struct { uint16_t *ids; size_t n; uint32_t *len; size_t ndocs; } corpus;
static corpus make_corpus(size_t ndocs, uint32_t maxlen, uint64_t seed) {
    rs = seed * 2654435761u + 1;
    corpus c = { 0 };
    c.len = malloc(ndocs * sizeof *c.len); c.ndocs = ndocs;
    size_t cap = 1024; c.ids = malloc(cap * 2);
    for (size_t d = 0; d < ndocs; d++) {
        uint32_t L = 2 + (uint32_t)(rnd() % maxlen);
        if (d % 17 == 3) L = 2;                    /* empty document: [CLS] [SEP] */
        if (d % 29 == 5) L = maxlen * 3;           /* longer than several samples */
        while (c.n + L > cap) { cap *= 2; c.ids = realloc(c.ids, cap * 2); }
        for (uint32_t i = 0; i < L; i++) c.ids[c.n + i] = (uint16_t)(999 + rnd() % 29000);
        c.ids[c.n] = 101; c.ids[c.n + L - 1] = 102;
        c.len[d] = L; c.n += L;
    }
    return c;
}
static void free_corpus(corpus *c) { free(c->ids); free(c->len); }

static shard_opts opts(const char *dir, uint32_t L, uint64_t per, uint64_t val, uint64_t seed) {
    shard_opts o; memset(&o, 0, sizeof o);
    o.dir = dir; o.seq_len = L; o.shard_samples = per; o.val_samples = val; o.seed = seed;
    o.vocab_size = 30522; memset(o.vocab_sha256, 0xab, 32);
    return o;
}

static int pack(const corpus *c, const shard_opts *o, shard_manifest *m, char *err) {
    shard_packer *p = shard_packer_open(o, err, 512);
    if (!p) return -1;
    size_t at = 0;
    for (size_t d = 0; d < c->ndocs; d++) {
        if (shard_packer_doc(p, c->ids + at, c->len[d]) < 0) { strcpy(err, shard_packer_error(p)); shard_packer_close(p); return -1; }
        at += c->len[d];
    }
    int rc = shard_packer_finish(p, m);
    if (rc < 0) snprintf(err, 512, "%s", shard_packer_error(p));
    shard_packer_close(p);
    return rc;
}

static int exists(const char *dir, const char *name) {
    char p[512]; snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st; return stat(p, &st) == 0;
}
static int count_files(const char *dir) {   /* a folder that a failed run removed holds none */
    DIR *d = opendir(dir); if (!d) return errno == ENOENT ? 0 : -1;
    int n = 0; struct dirent *e;
    while ((e = readdir(d))) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d); return n;
}
static void touch(const char *path, const char *text) { FILE *f = fopen(path, "wb"); fputs(text, f); fclose(f); }
static void no_report(void *ctx, const char *line) { (void)line; (*(int *)ctx)++; }
static char last_line[1200];
static void keep_report(void *ctx, const char *line) { (void)ctx; snprintf(last_line, sizeof last_line, "%s", line); }

/* ------------------------------------------------------------------ */

static void test_npy_header_roundtrip(void) {
    unsigned char h[SHARD_NPY_HEADER];
    uint64_t rows_in[] = { 0, 1, 65536, 137000000, UINT64_MAX / 4 };
    for (size_t i = 0; i < 5; i++) {
        shard_npy_header(h, rows_in[i], 512);
        CHECK(!memcmp(h, "\x93NUMPY\x01\x00", 8), "magic");
        CHECK(h[8] + 256 * h[9] == SHARD_NPY_HEADER - 10, "header length");
        CHECK(h[SHARD_NPY_HEADER - 1] == '\n', "newline");
        CHECK(SHARD_NPY_HEADER % 64 == 0, "data aligned");
        uint64_t r; uint32_t c; size_t off; char err[256];
        REQUIRE(shard_npy_parse(h, sizeof h, &r, &c, &off, err, sizeof err) == 0, "%s", err);
        CHECK(r == rows_in[i] && c == 512 && off == SHARD_NPY_HEADER, "got (%llu, %u) at %zu", (unsigned long long)r, c, off);
    }
    shard_npy_header(h, 3, 16);
    CHECK(!memcmp(h + 10, "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 16), }", 60), "dict text '%.60s'", (char *)h + 10);
}

/* builds a v1 header with the given dict text, padded to 64 */
static size_t mkhdr(unsigned char *out, const char *dict) {
    size_t dl = strlen(dict), total = (10 + dl + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10; out[8] = (unsigned char)hl; out[9] = (unsigned char)(hl >> 8);
    memset(out + 10, ' ', hl); memcpy(out + 10, dict, dl); out[total - 1] = '\n';
    return total;
}

static void test_npy_parse_variants(void) {
    unsigned char b[512]; uint64_t r; uint32_t c; size_t off; char err[256];
    /* what numpy itself writes, other key order, double quotes, tuple with trailing comma */
    const char *ok[] = { "{'descr': '<u2', 'fortran_order': False, 'shape': (10, 512), }",
                         "{'shape': (10, 512), 'fortran_order': False, 'descr': '<u2'}",
                         "{\"descr\": \"<u2\", \"fortran_order\": False, \"shape\": (10,512,)}" };
    for (int i = 0; i < 3; i++) {
        size_t n = mkhdr(b, ok[i]);
        CHECK(shard_npy_parse(b, n, &r, &c, &off, err, sizeof err) == 0 && r == 10 && c == 512 && off == n, "ok[%d]: %s", i, err);
    }
    /* version 2.0: 4-byte header length */
    size_t n = mkhdr(b + 2, ok[0]) + 2;
    memcpy(b, "\x93NUMPY\x02\x00", 8); size_t hl = n - 12; b[8] = (unsigned char)hl; b[9] = (unsigned char)(hl >> 8); b[10] = b[11] = 0;
    CHECK(shard_npy_parse(b, n, &r, &c, &off, err, sizeof err) == 0 && off == n, "v2: %s", err);
    struct { const char *dict, *want; } bad[] = {
        { "{'descr': '<u4', 'fortran_order': False, 'shape': (10, 512), }", "'<u2'" },
        { "{'descr': '>u2', 'fortran_order': False, 'shape': (10, 512), }", "'<u2'" },
        { "{'descr': '<u2', 'fortran_order': True, 'shape': (10, 512), }", "Fortran" },
        { "{'descr': '<u2', 'fortran_order': False, 'shape': (5120,), }", "1 dimensions" },
        { "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 10, 512), }", "3 dimensions" },
        { "{'descr': '<u2', 'shape': (10, 512), }", "lacks" },
        { "{'descr': '<u2', 'fortran_order': False, 'shape': (10, 0), }", "out of range" },
        { "{'descr': '<u2', 'fortran_order': False, 'shape': (-1, 512), }", "bad shape" },
        { "{'descr': '<u2', 'fortran_order': False, 'shape': (99999999999999999999999, 512), }", "bad shape" },
        { "{'descr': '<u2', 'fortran_order': False, 'shape': (10, 512), 'x': 1}", "unexpected key" },
        { "['descr']", "not a dict" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = mkhdr(b, bad[i].dict); err[0] = 0;
        int rc = shard_npy_parse(b, n, &r, &c, &off, err, sizeof err);
        CHECK(rc < 0 && strstr(err, bad[i].want), "bad[%zu] rc %d err '%s' (want '%s')", i, rc, err, bad[i].want);
    }
    n = mkhdr(b, ok[0]);
    CHECK(shard_npy_parse(b, n - 1, &r, &c, &off, err, sizeof err) < 0, "header longer than the bytes");
    CHECK(shard_npy_parse(b, 9, &r, &c, &off, err, sizeof err) < 0, "9 bytes");
    b[n - 1] = ' ';
    CHECK(shard_npy_parse(b, n, &r, &c, &off, err, sizeof err) < 0 && strstr(err, "newline"), "%s", err);
    mkhdr(b, ok[0]); b[0] = 'X';
    CHECK(shard_npy_parse(b, n, &r, &c, &off, err, sizeof err) < 0 && strstr(err, "magic"), "%s", err);
    mkhdr(b, ok[0]); b[6] = 9;
    CHECK(shard_npy_parse(b, n, &r, &c, &off, err, sizeof err) < 0 && strstr(err, "version"), "%s", err);
}

static void test_npy_open_size_checks(void) {
    unsigned char h[SHARD_NPY_HEADER]; shard_npy_header(h, 3, 4);
    FILE *f = fopen("t.npy", "wb"); fwrite(h, 1, sizeof h, f);
    uint16_t d[12]; for (int i = 0; i < 12; i++) d[i] = (uint16_t)(i * 1000);
    fwrite(d, 2, 12, f); fclose(f);
    shard_npy a; char err[512];
    REQUIRE(shard_npy_open(&a, "t.npy", err, sizeof err) == 0, "%s", err);
    CHECK(a.rows == 3 && a.cols == 4 && a.data[5] == 5000 && a.data[11] == 11000, "content");
    shard_npy_close(&a);
    CHECK(truncate("t.npy", SHARD_NPY_HEADER + 22) == 0, "truncate");
    CHECK(shard_npy_open(&a, "t.npy", err, sizeof err) < 0 && strstr(err, "t.npy") && strstr(err, "truncated"), "short: %s", err);
    f = fopen("t.npy", "ab"); fwrite(d, 2, 3, f); fclose(f);   /* now 2 bytes too long */
    CHECK(shard_npy_open(&a, "t.npy", err, sizeof err) < 0, "long file accepted");
    CHECK(shard_npy_open(&a, "nope.npy", err, sizeof err) < 0 && strstr(err, "nope.npy"), "missing: %s", err);
    touch("empty.npy", "");
    CHECK(shard_npy_open(&a, "empty.npy", err, sizeof err) < 0, "empty file accepted");
}

/* every train sample, in order, concatenated */
static uint16_t *read_split(const char *dir, int split, uint64_t *count, shard_manifest *mout) {
    char err[1024];
    shard_set *s = shard_set_open(dir, err, sizeof err);
    if (!s) { printf("     open %s: %s\n", dir, err); return NULL; }
    uint64_t n = shard_set_count(s, split); uint32_t L = shard_set_manifest(s)->seq_len;
    uint16_t *out = malloc((n ? n : 1) * L * 2);
    for (uint64_t i = 0; i < n; i++) memcpy(out + i * L, shard_set_sample(s, split, i, NULL, 0), L * 2);
    if (mout) {
        const shard_manifest *m = shard_set_manifest(s);
        *mout = *m; mout->shards = malloc(m->nshards * sizeof *m->shards + 1); memcpy(mout->shards, m->shards, m->nshards * sizeof *m->shards);
        mout->sources = NULL; mout->nsources = 0;
    }
    shard_set_close(s);
    *count = n;
    return out;
}

static void test_pack_equals_concatenation(void) {
    corpus c = make_corpus(400, 60, 1);
    shard_opts o = opts("p1", 16, 7, 0, 0);
    shard_manifest m; char err[512];
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    uint64_t S = c.n / 16;
    CHECK(m.t.documents == 400 && m.t.tokens == c.n, "docs %llu tokens %llu (want %zu)", (unsigned long long)m.t.documents, (unsigned long long)m.t.tokens, c.n);
    CHECK(m.t.samples == S && m.t.train_samples == S && m.t.validation_samples == 0, "samples %llu", (unsigned long long)m.t.samples);
    CHECK(m.t.dropped_tail_tokens == c.n % 16, "dropped %llu want %zu", (unsigned long long)m.t.dropped_tail_tokens, c.n % 16);
    CHECK(m.nshards == (S + 6) / 7, "shards %zu", m.nshards);
    for (size_t i = 0; i < m.nshards; i++) {
        char want[32]; snprintf(want, sizeof want, "train-%05zu.npy", i);
        CHECK(!strcmp(m.shards[i].name, want) && m.shards[i].samples == (i + 1 < m.nshards ? 7 : S - 7 * i), "shard %zu: %s %llu", i, m.shards[i].name, (unsigned long long)m.shards[i].samples);
        char path[64], hx[65]; snprintf(path, sizeof path, "p1/%s", m.shards[i].name);
        CHECK(sha256_file(path, hx) == 0 && !strcmp(hx, m.shards[i].sha256), "%s sha256", path);
    }
    uint64_t n; uint16_t *got = read_split("p1", SHARD_TRAIN, &n, NULL);
    REQUIRE(got && n == S, "read back %llu", (unsigned long long)n);
    CHECK(!memcmp(got, c.ids, S * 16 * 2), "packed ids differ from the concatenated documents");
    CHECK(exists("p1", "manifest.json") && count_files("p1") == (int)m.nshards + 1, "files: %d", count_files("p1"));
    int bad = 0;
    CHECK(shard_verify("p1", NULL, SHARD_CLS_ID, no_report, &bad) == 0 && bad == 0, "verify of a fresh folder: %d problems", bad);
    free(got); shard_manifest_free(&m); free_corpus(&c);
}

/* each validation and train sample is one aligned chunk of the concatenation; together each exactly once */
static void check_partition(const corpus *c, const char *dir, uint32_t L, uint64_t want_val, uint64_t *val_index_out) {
    uint64_t nt, nv;
    uint16_t *t = read_split(dir, SHARD_TRAIN, &nt, NULL), *v = read_split(dir, SHARD_VALIDATION, &nv, NULL);
    REQUIRE(t && v, "read");
    uint64_t S = c->n / L;
    CHECK(nv == want_val && nt + nv == S, "train %llu + val %llu != %llu", (unsigned long long)nt, (unsigned long long)nv, (unsigned long long)S);
    char *seen = calloc(S, 1);
    uint64_t prev = 0;
    for (uint64_t k = 0; k < nt + nv; k++) {
        const uint16_t *x = k < nt ? t + k * L : v + (k - nt) * L;
        uint64_t j = 0;
        while (j < S && memcmp(c->ids + j * L, x, L * 2)) j++;
        CHECK(j < S, "sample %llu is no chunk of the input", (unsigned long long)k);
        if (j >= S) break;
        CHECK(!seen[j], "chunk %llu appears twice (train and validation?)", (unsigned long long)j);
        seen[j] = 1;
        if (k >= nt) {   /* validation in stream order */
            CHECK(k == nt || j > prev, "validation not in stream order");
            prev = j;
            if (val_index_out) val_index_out[k - nt] = j;
        }
    }
    free(seen); free(t); free(v);
}

static void test_validation_draw(void) {
    corpus c = make_corpus(600, 80, 2);
    shard_opts o = opts("v1", 32, 50, 9, 42);
    shard_manifest m1, m2, m3; char err[512];
    REQUIRE(pack(&c, &o, &m1, err) == 0, "%s", err);
    uint64_t idx1[9], idx2[9], idx3[9];
    check_partition(&c, "v1", 32, 9, idx1);
    CHECK(m1.t.validation_samples == 9 && m1.val_requested == 9 && m1.seed == 42, "manifest val fields");
    /* same seed: the same files, byte for byte */
    o.dir = "v2";
    REQUIRE(pack(&c, &o, &m2, err) == 0, "%s", err);
    check_partition(&c, "v2", 32, 9, idx2);
    CHECK(!memcmp(idx1, idx2, sizeof idx1), "same seed, different validation");
    CHECK(m1.nshards == m2.nshards, "shard count");
    for (size_t i = 0; i < m1.nshards && i < m2.nshards; i++) CHECK(!strcmp(m1.shards[i].sha256, m2.shards[i].sha256), "shard %zu differs", i);
    o.dir = "v3"; o.seed = 43;
    REQUIRE(pack(&c, &o, &m3, err) == 0, "%s", err);
    check_partition(&c, "v3", 32, 9, idx3);
    CHECK(memcmp(idx1, idx3, sizeof idx1), "seed 42 and 43 chose the same validation samples");
    /* not simply the first samples */
    CHECK(idx1[8] > 9, "validation is the first samples");
    int bad = 0;
    CHECK(shard_verify("v1", NULL, SHARD_CLS_ID, no_report, &bad) == 0, "verify");
    shard_manifest_free(&m1); shard_manifest_free(&m2); shard_manifest_free(&m3); free_corpus(&c);
}

static void test_reservoir_uniform(void) {
    /* Algorithm R with the hashed draw: over many seeds each of S samples lands in validation ~ N/S of the time */
    enum { S = 200, N = 10, SEEDS = 4000 };
    static unsigned hits[S];
    uint64_t slot_of[N];
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        for (uint64_t i = 0; i < S; i++) {
            uint64_t s = shard_reservoir_slot(seed, i, N);
            if (i < N) CHECK(s == i, "fill");
            if (s < N) slot_of[s] = i;
        }
        for (int k = 0; k < N; k++) hits[slot_of[k]]++;
    }
    double want = (double)SEEDS * N / S, chi = 0;   /* 200 per sample */
    unsigned lo = ~0u, hi = 0;
    for (int i = 0; i < S; i++) { double d = hits[i] - want; chi += d * d / want; lo = hits[i] < lo ? hits[i] : lo; hi = hits[i] > hi ? hits[i] : hi; }
    /* chi-square with 199 degrees of freedom: mean 199, sd 20; 300 is far in the tail */
    CHECK(chi < 300, "chi-square %.1f (min %u max %u, want %.0f each)", chi, lo, hi, want);
    CHECK(shard_reservoir_slot(7, 5, 0) == 0, "N = 0 sends everything to train");
}

static void test_manifest_roundtrip_and_errors(void) {
    shard_manifest m; memset(&m, 0, sizeof m);
    m.seq_len = 512; m.vocab_size = 30522;
    snprintf(m.vocab_sha256, sizeof m.vocab_sha256, "%s", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3");
    m.shard_samples = 65536; m.seed = UINT64_MAX; m.val_requested = 10000;
    shard_entry e = { "train-00000.npy", SHARD_TRAIN, 65536, "" };
    memset(e.sha256, 'a', 64);
    shard_manifest_add(&m, &e);
    snprintf(e.name, sizeof e.name, "validation-00000.npy"); e.split = SHARD_VALIDATION; e.samples = 10000;
    shard_manifest_add(&m, &e);
    m.t = (shard_totals){ 123456789012ull, 40678653, 75536, 65536, 10000, 301 };
    m.sources = calloc(1, sizeof *m.sources); m.sources[0] = strdup("part \"1\"\\x"); m.nsources = 1;
    char err[512];
    REQUIRE(mkdir("mf", 0755) == 0 || 1, "mkdir");
    REQUIRE(shard_manifest_write("mf", &m, err, sizeof err) == 0, "%s", err);
    shard_manifest r;
    REQUIRE(shard_manifest_read("mf", &r, err, sizeof err) == 0, "%s", err);
    CHECK(r.seq_len == 512 && r.vocab_size == 30522 && !strcmp(r.vocab_sha256, m.vocab_sha256), "header fields");
    CHECK(r.seed == UINT64_MAX && r.val_requested == 10000 && r.shard_samples == 65536, "seed %llu", (unsigned long long)r.seed);
    CHECK(r.nshards == 2 && !strcmp(r.shards[1].name, "validation-00000.npy") && r.shards[1].split == SHARD_VALIDATION && r.shards[1].samples == 10000, "shards");
    CHECK(!memcmp(&r.t, &m.t, sizeof m.t), "totals");
    shard_manifest_free(&r);
    /* what python's json module reads */
    CHECK(system("/usr/bin/python3 -c \"import json; m = json.load(open('mf/manifest.json')); "
                 "assert m['format'] == 'symbert-shards' and m['version'] == 1 and m['merged_from'] == ['part \\\"1\\\"\\\\\\\\x'], m['merged_from']; "
                 "assert m['totals']['dropped_tail_tokens'] == 301 and m['shards'][0]['samples'] == 65536\"") == 0, "python json.load");
    shard_manifest_free(&m);
    const char *good = "{\"format\": \"symbert-shards\", \"version\": 1, \"seq_len\": 8, \"vocab_size\": 100, \"vocab_sha256\": \"%s\","
                       " \"shards\": [%s], \"totals\": {\"documents\": 1, \"tokens\": 8, \"samples\": 1, \"train_samples\": 1, \"validation_samples\": 0, \"dropped_tail_tokens\": 0}%s}";
    const char *H = "0000000000000000000000000000000000000000000000000000000000000000";
    const char *S1 = "{\"name\": \"train-00000.npy\", \"split\": \"train\", \"samples\": 1, \"sha256\": \"0000000000000000000000000000000000000000000000000000000000000000\"}";
    char txt[2048];
    snprintf(txt, sizeof txt, good, H, S1, ", \"extra\": {\"x\": [1, 2]}");
    CHECK(shard_manifest_parse(txt, strlen(txt), &r, err, sizeof err) == 0 && r.nshards == 1, "minimal manifest with unknown fields: %s", err);
    shard_manifest_free(&r);
    struct { const char *from, *to, *want; } bad[] = {
        { "\"symbert-shards\"", "\"other\"", "format" },
        { "\"version\": 1", "\"version\": 2", "version 2" },
        { "\"seq_len\": 8", "\"seq_len\": 8.5", "seq_len" },
        { "\"vocab_size\": 100", "\"vocab_size\": 70000", "vocab_size" },
        { "\"train-00000.npy\"", "\"train-0.npy\"", "name" },
        { "\"train-00000.npy\"", "\"../etc/passwd\"", "name" },
        { "\"split\": \"train\"", "\"split\": \"validation\"", "split" },
        { "\"samples\": 1,", "\"samples\": -1,", "samples" },
        { "\"dropped_tail_tokens\": 0", "\"dropped\": 0", "dropped_tail_tokens" },
        { "\"version\": 1", "\"version\": 1,", "JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t2[2048]; snprintf(txt, sizeof txt, good, H, S1, "");
        char *at = strstr(txt, bad[i].from);
        REQUIRE(at, "pattern %zu", i);
        snprintf(t2, sizeof t2, "%.*s%s%s", (int)(at - txt), txt, bad[i].to, at + strlen(bad[i].from));
        err[0] = 0;
        int rc = shard_manifest_parse(t2, strlen(t2), &r, err, sizeof err);
        CHECK(rc < 0 && strstr(err, bad[i].want), "bad[%zu] rc %d '%s' (want '%s')", i, rc, err, bad[i].want);
        if (rc == 0) shard_manifest_free(&r);
    }
    CHECK(shard_manifest_read("no-such-dir", &r, err, sizeof err) < 0 && strstr(err, "no such folder"), "%s", err);
    CHECK(mkdir("emptydir", 0755) == 0 && shard_manifest_read("emptydir", &r, err, sizeof err) < 0 && strstr(err, "no manifest.json"), "%s", err);
}

static void test_folder_safety(void) {
    corpus c = make_corpus(100, 50, 3);
    shard_opts o = opts("fs", 16, 10, 0, 0);
    shard_manifest m; char err[512];
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    size_t first = m.nshards; shard_manifest_free(&m);
    CHECK(pack(&c, &o, &m, err) < 0 && strstr(err, "--force") && strstr(err, "manifest.json"), "second run: %s", err);
    CHECK(exists("fs", "manifest.json") && exists("fs", "train-00000.npy"), "refusal must not touch the folder");
    /* --force with larger shards: fewer files, the old extra ones gone */
    o.force = 1; o.shard_samples = 1000;
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    CHECK(first > 1 && m.nshards == 1 && !exists("fs", "train-00001.npy") && count_files("fs") == 2, "force: %zu shards, %d files", m.nshards, count_files("fs"));
    shard_manifest_free(&m);
    /* shard files but no manifest: refused too */
    mkdir("fs2", 0755); touch("fs2/train-00000.npy", "x"); touch("fs2/notes.txt", "mine");
    o.dir = "fs2"; o.force = 0;
    CHECK(pack(&c, &o, &m, err) < 0 && strstr(err, "no manifest.json"), "%s", err);
    o.force = 1;
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    CHECK(exists("fs2", "notes.txt"), "--force removed a file that is not ours");
    shard_manifest_free(&m);
    /* leftovers of a killed run are hidden and cleared without --force */
    mkdir("fs3", 0755);
    touch("fs3/.pending-train-00000.npy", "x"); touch("fs3/..pending-train-00001.npy.tmp.99999", "x"); touch("fs3/.manifest.json.tmp.5", "x");
    o.dir = "fs3"; o.force = 0;
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    CHECK(count_files("fs3") == (int)m.nshards + 1 && !exists("fs3", ".pending-train-00000.npy"), "leftovers: %d files", count_files("fs3"));
    shard_manifest_free(&m); free_corpus(&c);
}

static void test_aborted_run_leaves_nothing(void) {
    corpus c = make_corpus(300, 60, 4);
    shard_opts o = opts("ab", 16, 5, 3, 1);
    char err[512];
    shard_packer *p = shard_packer_open(&o, err, sizeof err);
    REQUIRE(p, "%s", err);
    size_t at = 0;
    for (size_t d = 0; d < 200; d++) { REQUIRE(shard_packer_doc(p, c.ids + at, c.len[d]) == 0, "%s", shard_packer_error(p)); at += c.len[d]; }
    /* several shards are complete by now, under hidden names only */
    DIR *dd = opendir("ab"); struct dirent *e; int hidden = 0, visible = 0;
    while ((e = readdir(dd))) { if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue; if (e->d_name[0] == '.') hidden++; else visible++; }
    closedir(dd);
    CHECK(hidden >= 2 && visible == 0, "mid-run: %d hidden, %d visible files", hidden, visible);
    shard_packer_close(p);   /* as on an error or SIGINT */
    CHECK(count_files("ab") == 0, "an aborted run left %d files", count_files("ab"));
    free_corpus(&c);
}

static void test_finish_errors(void) {
    corpus c = make_corpus(3, 5, 5);   /* a few tokens: not one sample of 512 */
    shard_opts o = opts("fe", 512, 10, 0, 0);
    shard_manifest m; char err[512];
    CHECK(pack(&c, &o, &m, err) < 0 && strstr(err, "no complete sample"), "%s", err);
    CHECK(count_files("fe") == 0, "files left: %d", count_files("fe"));
    free_corpus(&c);
    c = make_corpus(50, 40, 6);
    o = opts("fe2", 16, 10, 100000, 0);
    CHECK(pack(&c, &o, &m, err) < 0 && strstr(err, "nothing left to train on"), "%s", err);
    CHECK(count_files("fe2") == 0, "files left: %d", count_files("fe2"));
    /* ids beyond the vocab are refused */
    o = opts("fe3", 16, 10, 0, 0); o.vocab_size = 1000;
    CHECK(pack(&c, &o, &m, err) < 0 && strstr(err, ">= vocab size 1000"), "%s", err);
    o.vocab_size = 70000;
    CHECK(!shard_packer_open(&o, err, sizeof err) && strstr(err, "65536"), "%s", err);
    free_corpus(&c);
}

static void corrupt_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b"); fseek(f, off, SEEK_SET); int ch = fgetc(f); fseek(f, off, SEEK_SET); fputc(ch ^ 0x40, f); fclose(f);
}

static void test_verify_catches_damage(void) {
    corpus c = make_corpus(300, 60, 7);
    shard_opts o = opts("vd", 16, 40, 4, 3);
    shard_manifest m; char err[512];
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    shard_manifest_free(&m);
    REQUIRE(system("cp -r vd vd_a && cp -r vd vd_b && cp -r vd vd_c && cp -r vd vd_d && cp -r vd vd_e && cp -r vd vd_f") == 0, "cp");
    CHECK(shard_verify("vd", NULL, SHARD_CLS_ID, keep_report, NULL) == 0, "clean: %s", last_line);
    corrupt_byte("vd_a/train-00001.npy", 500);
    CHECK(shard_verify("vd_a", NULL, SHARD_CLS_ID, keep_report, NULL) == 1 && strstr(last_line, "train-00001.npy: sha256"), "data byte: %s", last_line);
    CHECK(truncate("vd_b/validation-00000.npy", 200) == 0, "truncate");
    CHECK(shard_verify("vd_b", NULL, SHARD_CLS_ID, keep_report, NULL) >= 1 && strstr(last_line, "validation-00000.npy"), "truncated: %s", last_line);
    unlink("vd_c/train-00000.npy");
    CHECK(shard_verify("vd_c", NULL, SHARD_CLS_ID, keep_report, NULL) == 1 && strstr(last_line, "train-00000.npy: cannot open"), "missing: %s", last_line);
    touch("vd_d/train-00099.npy", "x");
    CHECK(shard_verify("vd_d", NULL, SHARD_CLS_ID, keep_report, NULL) == 1 && strstr(last_line, "does not list"), "stray: %s", last_line);
    /* ids >= vocab size: a manifest claiming a vocab of 1000 (the shards hold ids up to 30000) */
    REQUIRE(shard_manifest_read("vd_e", &m, err, sizeof err) == 0, "%s", err);
    m.vocab_size = 1000;
    REQUIRE(shard_manifest_write("vd_e", &m, err, sizeof err) == 0, "%s", err);
    int n = 0;
    CHECK(shard_verify("vd_e", NULL, SHARD_CLS_ID, no_report, &n) == (long)m.nshards && n == (int)m.nshards, "ids: %d problems for %zu shards", n, m.nshards);
    shard_verify("vd_e", NULL, SHARD_CLS_ID, keep_report, NULL);
    CHECK(strstr(last_line, "not < vocab size 1000") != NULL, "%s", last_line);
    shard_manifest_free(&m);
    /* totals that do not add up; a header rewritten with another shape */
    REQUIRE(shard_manifest_read("vd_f", &m, err, sizeof err) == 0, "%s", err);
    m.t.train_samples++;
    REQUIRE(shard_manifest_write("vd_f", &m, err, sizeof err) == 0, "%s", err);
    CHECK(shard_verify("vd_f", NULL, SHARD_CLS_ID, keep_report, NULL) >= 1 && strstr(last_line, "totals"), "%s", last_line);
    shard_manifest_free(&m);
    unsigned char vs[32]; memset(vs, 0xcd, 32);
    CHECK(shard_verify("vd", vs, SHARD_CLS_ID, keep_report, NULL) == 1 && strstr(last_line, "vocab"), "vocab: %s", last_line);
    memset(vs, 0xab, 32);
    CHECK(shard_verify("vd", vs, SHARD_CLS_ID, keep_report, NULL) == 0, "same vocab: %s", last_line);
    CHECK(shard_verify("nowhere", NULL, SHARD_CLS_ID, keep_report, NULL) == 1, "no folder");
    free_corpus(&c);
}

static void test_merge(void) {
    corpus c1 = make_corpus(200, 60, 8), c2 = make_corpus(150, 60, 9);
    shard_opts o = opts("m1", 16, 30, 0, 0);
    shard_manifest m1, m2, mm; char err[1024];
    REQUIRE(pack(&c1, &o, &m1, err) == 0, "%s", err);
    o.dir = "m2"; o.val_samples = 2;
    REQUIRE(pack(&c2, &o, &m2, err) == 0, "%s", err);
    const char *dirs[] = { "m1", "m2" };
    shard_opts mo = opts("mo", 0, 50, 0, 0);
    REQUIRE(shard_merge(&mo, dirs, 2, &mm, err, sizeof err) == 0, "%s", err);
    CHECK(mm.t.documents == 350 && mm.t.tokens == c1.n + c2.n, "docs %llu tokens %llu", (unsigned long long)mm.t.documents, (unsigned long long)mm.t.tokens);
    CHECK(mm.t.dropped_tail_tokens == m1.t.dropped_tail_tokens + m2.t.dropped_tail_tokens, "dropped");
    CHECK(mm.t.train_samples == m1.t.train_samples + m2.t.train_samples && mm.t.validation_samples == 2, "counts");
    uint64_t n, n1, n2;
    uint16_t *t = read_split("mo", SHARD_TRAIN, &n, NULL), *t1 = read_split("m1", SHARD_TRAIN, &n1, NULL), *t2 = read_split("m2", SHARD_TRAIN, &n2, NULL);
    REQUIRE(t && t1 && t2 && n == n1 + n2, "read");
    CHECK(!memcmp(t, t1, n1 * 32) && !memcmp(t + n1 * 16, t2, n2 * 32), "merged train is not m1 then m2");
    uint64_t nv, nv2; uint16_t *v = read_split("mo", SHARD_VALIDATION, &nv, NULL), *v2 = read_split("m2", SHARD_VALIDATION, &nv2, NULL);
    CHECK(nv == 2 && nv2 == 2 && !memcmp(v, v2, 64), "validation carried over");
    CHECK(shard_verify("mo", NULL, SHARD_CLS_ID, keep_report, NULL) == 0, "verify merged: %s", last_line);
    free(t); free(t1); free(t2); free(v); free(v2);
    shard_manifest_free(&mm);
    /* with a draw: 5 more validation samples from the merged train */
    mo.dir = "mo2"; mo.val_samples = 5; mo.seed = 11;
    REQUIRE(shard_merge(&mo, dirs, 2, &mm, err, sizeof err) == 0, "%s", err);
    CHECK(mm.t.validation_samples == 7 && mm.t.train_samples == n1 + n2 - 5 && mm.val_requested == 5, "draw: %llu val", (unsigned long long)mm.t.validation_samples);
    shard_manifest_free(&mm);
    /* --link: the same samples, nothing copied, inputs intact */
    mo = opts("ml", 0, 0, 0, 0); mo.link = 1;
    REQUIRE(shard_merge(&mo, dirs, 2, &mm, err, sizeof err) == 0, "%s", err);
    CHECK(mm.nshards == m1.nshards + m2.nshards && mm.t.train_samples == n1 + n2 && mm.t.validation_samples == 2, "link: %zu shards", mm.nshards);
    CHECK(mm.t.documents == 350 && mm.t.tokens == c1.n + c2.n, "link totals");
    shard_manifest_free(&mm);
    t = read_split("ml", SHARD_TRAIN, &n, NULL);
    CHECK(t && n == n1 + n2, "link read");
    uint16_t *t1b = read_split("m1", SHARD_TRAIN, &n1, NULL);
    CHECK(t && t1b && !memcmp(t, t1b, n1 * 32), "link: train starts with m1's");
    free(t); free(t1b);
    struct stat st1, st2;
    CHECK(stat("ml/train-00000.npy", &st1) == 0 && stat("m1/train-00000.npy", &st2) == 0 && st1.st_ino == st2.st_ino, "not a hard link");
    CHECK(shard_verify("ml", NULL, SHARD_CLS_ID, keep_report, NULL) == 0 && shard_verify("m1", NULL, SHARD_CLS_ID, keep_report, NULL) == 0, "link verify: %s", last_line);
    mo.dir = "ml2"; mo.val_samples = 3;
    CHECK(shard_merge(&mo, dirs, 2, &mm, err, sizeof err) < 0 && strstr(err, "--link cannot draw"), "%s", err);
    /* refusals */
    mo = opts("m1", 0, 50, 0, 0); mo.force = 1;
    CHECK(shard_merge(&mo, dirs, 2, &mm, err, sizeof err) < 0 && strstr(err, "also an input"), "%s", err);
    CHECK(shard_verify("m1", NULL, SHARD_CLS_ID, keep_report, NULL) == 0, "input damaged by a refused merge");
    shard_manifest_free(&m1);
    o = opts("m3", 8, 30, 0, 0);
    REQUIRE(pack(&c1, &o, &m1, err) == 0, "%s", err);
    shard_manifest_free(&m1);
    const char *dirs3[] = { "m1", "m3" };
    mo.dir = "mo3";
    CHECK(shard_merge(&mo, dirs3, 2, &mm, err, sizeof err) < 0 && strstr(err, "seq_len"), "%s", err);
    corrupt_byte("m2/train-00000.npy", 300);
    mo.dir = "mo4";
    CHECK(shard_merge(&mo, dirs, 2, &mm, err, sizeof err) < 0 && strstr(err, "sha256"), "%s", err);
    CHECK(!exists("mo4", "manifest.json") && count_files("mo4") == 0, "failed merge left %d files", count_files("mo4"));
    shard_manifest_free(&m2);
    free_corpus(&c1); free_corpus(&c2);
}

static void test_shard_set_lookup(void) {
    corpus c = make_corpus(500, 70, 10);
    shard_opts o = opts("ss", 16, 13, 0, 0);
    shard_manifest m; char err[512];
    REQUIRE(pack(&c, &o, &m, err) == 0, "%s", err);
    shard_set *s = shard_set_open("ss", err, sizeof err);
    REQUIRE(s, "%s", err);
    uint64_t S = shard_set_count(s, SHARD_TRAIN);
    char where[128];
    for (uint64_t i = 0; i < S; i += 7) {
        const uint16_t *x = shard_set_sample(s, SHARD_TRAIN, i, where, sizeof where);
        char want[64]; snprintf(want, sizeof want, "train-%05llu.npy row %llu", (unsigned long long)(i / 13), (unsigned long long)(i % 13));
        CHECK(x && !memcmp(x, c.ids + i * 16, 32) && !strcmp(where, want), "sample %llu at '%s'", (unsigned long long)i, where);
    }
    CHECK(!shard_set_sample(s, SHARD_TRAIN, S, NULL, 0) && !shard_set_sample(s, SHARD_VALIDATION, 0, NULL, 0), "out of range");
    shard_set_close(s);
    /* a shard whose shape disagrees with the manifest */
    unsigned char h[SHARD_NPY_HEADER]; shard_npy_header(h, 12, 16);
    FILE *f = fopen("ss/train-00000.npy", "r+b"); fwrite(h, 1, sizeof h, f); fclose(f);
    REQUIRE(truncate("ss/train-00000.npy", SHARD_NPY_HEADER + 12 * 32) == 0, "truncate");
    CHECK(!shard_set_open("ss", err, sizeof err) && strstr(err, "manifest.json says (13, 16)"), "%s", err);
    shard_manifest_free(&m); free_corpus(&c);
}

int main(void) {
    T_RUN(test_npy_header_roundtrip);
    T_RUN(test_npy_parse_variants);
    T_RUN(test_npy_open_size_checks);
    T_RUN(test_pack_equals_concatenation);
    T_RUN(test_validation_draw);
    T_RUN(test_reservoir_uniform);
    T_RUN(test_manifest_roundtrip_and_errors);
    T_RUN(test_folder_safety);
    T_RUN(test_aborted_run_leaves_nothing);
    T_RUN(test_finish_errors);
    T_RUN(test_verify_catches_damage);
    T_RUN(test_merge);
    T_RUN(test_shard_set_lookup);
    return T_DONE();
}
