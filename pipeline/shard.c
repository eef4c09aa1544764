/* shard.c - see shard.h.  Four parts: the .npy header writer/parser and the
 * mmap reader; manifest.json writing and parsing (with pipeline/json.h);
 * the packer (document stream -> samples -> reservoir or train shard
 * writer); and the folder-level operations built on them (shard_set,
 * shard_verify, shard_merge).
 *
 * A shard writer streams: the header is written first for a full shard
 * (shard_samples rows) and the sha256 runs along with the writes.  Only the
 * last shard of each split can be short; for it the header is rewritten in
 * place (same length, padded) and the file hashed again from disk, once. */
#include "pipeline/shard.h"
#include "pipeline/strbuf.h"
#include "pipeline/atomic.h"
#include "pipeline/json.h"
#include "pipeline/sha256.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shard.c writes '<u2' arrays straight from memory: little-endian hosts only"
#endif

static int errf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

const char *shard_split_name(int split) { return split == SHARD_VALIDATION ? "validation" : "train"; }

/* ------------------------------------------------------------------ .npy */

void shard_npy_header(unsigned char out[SHARD_NPY_HEADER], uint64_t rows, uint32_t cols) {
    memset(out, ' ', SHARD_NPY_HEADER);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    unsigned hl = SHARD_NPY_HEADER - 10;
    out[8] = (unsigned char)(hl & 0xff); out[9] = (unsigned char)(hl >> 8);
    char d[SHARD_NPY_HEADER];
    int k = snprintf(d, sizeof d, "{'descr': '<u2', 'fortran_order': False, 'shape': (%" PRIu64 ", %u), }", rows, cols);
    memcpy(out + 10, d, (size_t)k);      /* at most 87 bytes: fits in 118 */
    out[SHARD_NPY_HEADER - 1] = '\n';
}

typedef struct { const char *p, *e; } cur;
static void skip_ws(cur *c) { while (c->p < c->e && (*c->p == ' ' || *c->p == '\t')) c->p++; }
static int eat(cur *c, char ch) { skip_ws(c); if (c->p < c->e && *c->p == ch) { c->p++; return 1; } return 0; }
/* a Python string literal in ' or "; no escapes (none appear in valid headers) */
static int py_str(cur *c, const char **s, size_t *n) {
    skip_ws(c);
    if (c->p >= c->e || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    const char *b = c->p;
    while (c->p < c->e && *c->p != q) { if (*c->p == '\\' || *c->p == '\n') return -1; c->p++; }
    if (c->p >= c->e) return -1;
    *s = b; *n = (size_t)(c->p - b); c->p++;
    return 0;
}
static int py_uint(cur *c, uint64_t *v) {
    skip_ws(c);
    if (c->p >= c->e || *c->p < '0' || *c->p > '9') return -1;
    uint64_t x = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    if (c->p < c->e && *c->p == 'L') c->p++;   /* Python 2 long suffix, written by old numpy */
    *v = x;
    return 0;
}
static int kw(cur *c, const char *w) {
    skip_ws(c); size_t n = strlen(w);
    if ((size_t)(c->e - c->p) >= n && !memcmp(c->p, w, n)) { c->p += n; return 1; }
    return 0;
}

int shard_npy_parse(const unsigned char *buf, size_t n, uint64_t *rows, uint32_t *cols,
                    size_t *data_off, char *err, size_t errlen) {
    if (n < 10 || memcmp(buf, "\x93NUMPY", 6)) return errf(err, errlen, "not an .npy file (bad magic)");
    unsigned major = buf[6];
    size_t hl, off;
    if (major == 1) { hl = (size_t)buf[8] | (size_t)buf[9] << 8; off = 10; }
    else if (major == 2 || major == 3) {
        if (n < 12) return errf(err, errlen, ".npy header truncated");
        hl = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24; off = 12;
    } else return errf(err, errlen, ".npy format version %u.%u not supported", major, buf[7]);
    if (hl > n - off) return errf(err, errlen, ".npy header claims %zu bytes, file has %zu", hl, n - off);
    cur c = { (const char *)buf + off, (const char *)buf + off + hl };
    if (hl == 0 || c.e[-1] != '\n') return errf(err, errlen, ".npy header does not end with a newline");
    c.e--;
    int have_descr = 0, have_fo = 0, have_shape = 0;
    uint64_t dims[2] = { 0, 0 }; int ndim = 0;
    if (!eat(&c, '{')) return errf(err, errlen, ".npy header is not a dict");
    for (;;) {
        if (eat(&c, '}')) break;
        const char *k; size_t kn;
        if (py_str(&c, &k, &kn) < 0 || !eat(&c, ':')) return errf(err, errlen, ".npy header: bad dict key");
        if (kn == 5 && !memcmp(k, "descr", 5)) {
            const char *v; size_t vn;
            if (py_str(&c, &v, &vn) < 0) return errf(err, errlen, ".npy header: descr is not a string");
            if (!(vn == 3 && !memcmp(v, "<u2", 3)))
                return errf(err, errlen, ".npy dtype '%.*s', expected '<u2' (uint16)", (int)(vn > 20 ? 20 : vn), v);
            have_descr = 1;
        } else if (kn == 13 && !memcmp(k, "fortran_order", 13)) {
            if (kw(&c, "False")) have_fo = 1;
            else if (kw(&c, "True")) return errf(err, errlen, ".npy array is in Fortran order, expected C order");
            else return errf(err, errlen, ".npy header: fortran_order is not True/False");
        } else if (kn == 5 && !memcmp(k, "shape", 5)) {
            if (!eat(&c, '(')) return errf(err, errlen, ".npy header: shape is not a tuple");
            ndim = 0;
            for (;;) {
                if (eat(&c, ')')) break;
                uint64_t d;
                if (py_uint(&c, &d) < 0) return errf(err, errlen, ".npy header: bad shape");
                if (ndim < 2) dims[ndim] = d;
                ndim++;
                if (eat(&c, ',')) continue;
                if (eat(&c, ')')) break;
                return errf(err, errlen, ".npy header: bad shape");
            }
            have_shape = 1;
        } else return errf(err, errlen, ".npy header: unexpected key '%.*s'", (int)(kn > 20 ? 20 : kn), k);
        if (eat(&c, ',')) continue;
        if (eat(&c, '}')) break;
        return errf(err, errlen, ".npy header: expected ',' or '}'");
    }
    skip_ws(&c);
    if (c.p != c.e) return errf(err, errlen, ".npy header: junk after the dict");
    if (!have_descr || !have_fo || !have_shape) return errf(err, errlen, ".npy header lacks descr, fortran_order or shape");
    if (ndim != 2) return errf(err, errlen, ".npy array has %d dimensions, expected 2 (samples, seq_len)", ndim);
    if (dims[1] == 0 || dims[1] > SHARD_MAX_SEQ_LEN) return errf(err, errlen, ".npy rows of %" PRIu64 " ids: out of range", dims[1]);
    *rows = dims[0]; *cols = (uint32_t)dims[1]; *data_off = off + hl;
    return 0;
}

int shard_npy_open(shard_npy *a, const char *path, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return errf(err, errlen, "%s: %s", path, strerror(errno)); }
    if (st.st_size < 10) { close(fd); return errf(err, errlen, "%s: not an .npy file (%lld bytes)", path, (long long)st.st_size); }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return errf(err, errlen, "%s: mmap: %s", path, strerror(errno));
    char e[256];
    uint64_t rows; uint32_t cols; size_t off;
    if (shard_npy_parse(map, size, &rows, &cols, &off, e, sizeof e) < 0) {
        munmap(map, size); return errf(err, errlen, "%s: %s", path, e);
    }
    if (off % 2) { munmap(map, size); return errf(err, errlen, "%s: .npy data at odd offset %zu", path, off); }
    uint64_t want = (size - off) / 2 / cols;   /* rows that fit */
    if (rows > want || off + rows * cols * 2 != size) {
        munmap(map, size);
        return errf(err, errlen, "%s: %zu bytes, but the header says (%" PRIu64 ", %u) uint16 after %zu header bytes (a truncated or padded file)",
                    path, size, rows, cols, off);
    }
    a->map = map; a->size = size; a->data_off = off; a->rows = rows; a->cols = cols;
    a->data = (const uint16_t *)((const char *)map + off);
    return 0;
}

void shard_npy_close(shard_npy *a) {
    if (a->map) munmap(a->map, a->size);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------- manifest */

int shard_manifest_write(const char *dir, const shard_manifest *m, char *err, size_t errlen) {
    strbuf b = { 0 };
    strbuf_printf(&b, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"seq_len\": %u,\n  \"vocab_size\": %u,\n"
               "  \"vocab_sha256\": \"%s\",\n  \"dtype\": \"<u2\",\n  \"shard_samples\": %" PRIu64 ",\n"
               "  \"seed\": %" PRIu64 ",\n  \"val_samples_requested\": %" PRIu64 ",\n"
               "  \"validation_selection\": \"reservoir (Algorithm R) over sample indices, keyed by seed\",\n"
               "  \"packing\": \"documents concatenated, cut every seq_len ids; final partial sample dropped\",\n"
               "  \"shards\": [",
           SHARD_FORMAT, SHARD_VERSION, m->seq_len, m->vocab_size, m->vocab_sha256, m->shard_samples,
           m->seed, m->val_requested);
    for (size_t i = 0; i < m->nshards; i++) {
        const shard_entry *e = &m->shards[i];
        strbuf_printf(&b, "%s\n    {\"name\": \"%s\", \"split\": \"%s\", \"samples\": %" PRIu64 ", \"sha256\": \"%s\"}",
               i ? "," : "", e->name, shard_split_name(e->split), e->samples, e->sha256);
    }
    strbuf_printf(&b, "\n  ],\n  \"totals\": {\"documents\": %" PRIu64 ", \"tokens\": %" PRIu64 ", \"samples\": %" PRIu64
               ", \"train_samples\": %" PRIu64 ", \"validation_samples\": %" PRIu64 ", \"dropped_tail_tokens\": %" PRIu64 "}",
           m->t.documents, m->t.tokens, m->t.samples, m->t.train_samples, m->t.validation_samples, m->t.dropped_tail_tokens);
    if (m->nsources) {
        strbuf_printf(&b, ",\n  \"merged_from\": [");
        for (size_t i = 0; i < m->nsources; i++) { if (i) strbuf_printf(&b, ", "); strbuf_json_str(&b, m->sources[i]); }
        strbuf_printf(&b, "]");
    }
    strbuf_printf(&b, "\n}\n");
    if (b.oom) { free(b.p); return errf(err, errlen, "out of memory"); }
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    int rc = afile_put(path, b.p, b.n, err, errlen);
    free(b.p);
    return rc;
}

int shard_manifest_add(shard_manifest *m, const shard_entry *e) {
    if (m->nshards == m->cap) {
        size_t c = m->cap ? m->cap * 2 : 16;
        shard_entry *q = realloc(m->shards, c * sizeof *q);
        if (!q) return -1;
        m->shards = q; m->cap = c;
    }
    m->shards[m->nshards++] = *e;
    return 0;
}

void shard_manifest_free(shard_manifest *m) {
    free(m->shards);
    for (size_t i = 0; i < m->nsources; i++) free(m->sources[i]);
    free(m->sources);
    memset(m, 0, sizeof *m);
}

/* a non-negative JSON integer, exactly (no fraction, no exponent) */
static int js_u64(const js_val *v, uint64_t *out) {
    if (v->type != JS_NUMBER || v->n == 0 || v->n > 20) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < v->n; i++) {
        char ch = v->p[i];
        if (ch < '0' || ch > '9') return -1;
        unsigned d = (unsigned)(ch - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}
/* a string value into buf (cap bytes incl. NUL); -1 if not a string or too long */
static int js_str_into(const js_val *v, char *buf, size_t cap) {
    if (v->type != JS_STRING) return -1;
    char *tmp = NULL; size_t tcap = 0;
    long k = js_string(v, &tmp, &tcap);
    if (k < 0 || (size_t)k >= cap || memchr(tmp, 0, (size_t)k)) { free(tmp); return -1; }
    memcpy(buf, tmp, (size_t)k); buf[k] = 0;
    free(tmp);
    return 0;
}
static int is_hex64(const char *s) {
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++) if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}
/* "train-00012.npy" -> split, number; -1 if not a shard name */
static int shard_name_parse(const char *name, int *split, unsigned *num) {
    const char *d;
    if (!strncmp(name, "train-", 6)) { *split = SHARD_TRAIN; d = name + 6; }
    else if (!strncmp(name, "validation-", 11)) { *split = SHARD_VALIDATION; d = name + 11; }
    else return -1;
    unsigned x = 0;
    for (int i = 0; i < 5; i++) { if (d[i] < '0' || d[i] > '9') return -1; x = x * 10 + (unsigned)(d[i] - '0'); }
    if (strcmp(d + 5, ".npy")) return -1;
    *num = x;
    return 0;
}

enum { MF_FORMAT, MF_VERSION, MF_SEQ, MF_VSIZE, MF_VSHA, MF_SHSAMP, MF_SEED, MF_VALREQ, MF_SHARDS,
       MF_DOCS, MF_TOK, MF_SAMP, MF_TRAIN, MF_VAL, MF_DROP, MF_MERGED, MF_N };

int shard_manifest_parse(const char *text, size_t n, shard_manifest *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    static const js_path paths[MF_N] = {
        {{"format"}, 1}, {{"version"}, 1}, {{"seq_len"}, 1}, {{"vocab_size"}, 1}, {{"vocab_sha256"}, 1},
        {{"shard_samples"}, 1}, {{"seed"}, 1}, {{"val_samples_requested"}, 1}, {{"shards"}, 1},
        {{"totals", "documents"}, 2}, {{"totals", "tokens"}, 2}, {{"totals", "samples"}, 2},
        {{"totals", "train_samples"}, 2}, {{"totals", "validation_samples"}, 2}, {{"totals", "dropped_tail_tokens"}, 2},
        {{"merged_from"}, 1},
    };
    js_val v[MF_N];
    char e[256];
    if (js_scan(text, n, paths, MF_N, v, e, sizeof e) < 0) return errf(err, errlen, "manifest.json is not valid JSON: %s", e);
    if (!js_string_eq(&v[MF_FORMAT], SHARD_FORMAT, 0))
        return errf(err, errlen, "manifest.json: \"format\" is not \"%s\"", SHARD_FORMAT);
    uint64_t ver, x;
    if (js_u64(&v[MF_VERSION], &ver) < 0) return errf(err, errlen, "manifest.json: \"version\" missing or not an integer");
    if (ver != SHARD_VERSION) return errf(err, errlen, "manifest.json: version %" PRIu64 " not supported (this build reads %d)", ver, SHARD_VERSION);
    if (js_u64(&v[MF_SEQ], &x) < 0 || x == 0 || x > SHARD_MAX_SEQ_LEN) return errf(err, errlen, "manifest.json: \"seq_len\" missing or out of range");
    m->seq_len = (uint32_t)x;
    if (js_u64(&v[MF_VSIZE], &x) < 0 || x == 0 || x > 65536) return errf(err, errlen, "manifest.json: \"vocab_size\" missing or not in 1..65536");
    m->vocab_size = (uint32_t)x;
    if (js_str_into(&v[MF_VSHA], m->vocab_sha256, sizeof m->vocab_sha256) < 0 || !is_hex64(m->vocab_sha256))
        return errf(err, errlen, "manifest.json: \"vocab_sha256\" missing or not 64 hex digits");
    const struct { int k; uint64_t *dst; const char *name; } opt[] = {
        { MF_SHSAMP, &m->shard_samples, "shard_samples" }, { MF_SEED, &m->seed, "seed" },
        { MF_VALREQ, &m->val_requested, "val_samples_requested" } };
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        if (v[opt[i].k].type != JS_ABSENT && js_u64(&v[opt[i].k], opt[i].dst) < 0)
            return errf(err, errlen, "manifest.json: \"%s\" is not a non-negative integer", opt[i].name);
    const struct { int k; uint64_t *dst; const char *name; } tot[] = {
        { MF_DOCS, &m->t.documents, "documents" }, { MF_TOK, &m->t.tokens, "tokens" }, { MF_SAMP, &m->t.samples, "samples" },
        { MF_TRAIN, &m->t.train_samples, "train_samples" }, { MF_VAL, &m->t.validation_samples, "validation_samples" },
        { MF_DROP, &m->t.dropped_tail_tokens, "dropped_tail_tokens" } };
    for (size_t i = 0; i < sizeof tot / sizeof tot[0]; i++)
        if (js_u64(&v[tot[i].k], tot[i].dst) < 0) return errf(err, errlen, "manifest.json: \"totals.%s\" missing or not an integer", tot[i].name);
    if (v[MF_SHARDS].type != JS_ARRAY) return errf(err, errlen, "manifest.json: \"shards\" missing or not a list");
    static const js_path sp[4] = { {{"name"}, 1}, {{"split"}, 1}, {{"samples"}, 1}, {{"sha256"}, 1} };
    size_t pos = 0; js_val el;
    while (js_array_next(&v[MF_SHARDS], &pos, &el)) {
        size_t k = m->nshards;
        js_val f[4];
        shard_entry se; memset(&se, 0, sizeof se);
        char split[16]; unsigned num;
        if (el.type != JS_OBJECT || js_scan(el.p, el.n, sp, 4, f, e, sizeof e) < 0) {
            shard_manifest_free(m); return errf(err, errlen, "manifest.json: shard %zu is not an object", k);
        }
        if (js_str_into(&f[0], se.name, sizeof se.name) < 0 || shard_name_parse(se.name, &se.split, &num) < 0) {
            shard_manifest_free(m); return errf(err, errlen, "manifest.json: shard %zu: name missing or not like train-00000.npy", k);
        }
        if (js_str_into(&f[1], split, sizeof split) < 0 || strcmp(split, shard_split_name(se.split))) {
            shard_manifest_free(m); return errf(err, errlen, "manifest.json: %s: split is not \"%s\"", se.name, shard_split_name(se.split));
        }
        if (js_u64(&f[2], &se.samples) < 0) { shard_manifest_free(m); return errf(err, errlen, "manifest.json: %s: samples missing or not an integer", se.name); }
        if (js_str_into(&f[3], se.sha256, sizeof se.sha256) < 0 || !is_hex64(se.sha256)) {
            shard_manifest_free(m); return errf(err, errlen, "manifest.json: %s: sha256 missing or not 64 hex digits", se.name);
        }
        if (m->nshards >= SHARD_MAX_SHARDS * 2 || shard_manifest_add(m, &se) < 0) {
            shard_manifest_free(m); return errf(err, errlen, "manifest.json: too many shards");
        }
    }
    if (v[MF_MERGED].type != JS_ABSENT) {
        if (v[MF_MERGED].type != JS_ARRAY) { shard_manifest_free(m); return errf(err, errlen, "manifest.json: \"merged_from\" is not a list"); }
        pos = 0;
        while (js_array_next(&v[MF_MERGED], &pos, &el)) {
            char *name = NULL; size_t cap = 0;
            char **ns = realloc(m->sources, (m->nsources + 1) * sizeof *ns);
            if (ns) m->sources = ns;
            if (el.type != JS_STRING || !ns || js_string(&el, &name, &cap) < 0) {
                free(name); shard_manifest_free(m);
                return errf(err, errlen, "manifest.json: \"merged_from\" holds something other than folder names");
            }
            m->sources[m->nsources++] = name;
        }
    }
    return 0;
}

static int slurp(const char *path, char **out, size_t *n, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) { close(fd); return errf(err, errlen, "%s: unreadable or larger than 64 MiB", path); }
    char *b = malloc((size_t)st.st_size + 1);
    if (!b) { close(fd); return errf(err, errlen, "out of memory"); }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, b + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { free(b); close(fd); return errf(err, errlen, "%s: read error", path); }
        got += (size_t)k;
    }
    close(fd);
    b[got] = 0; *out = b; *n = got;
    return 0;
}

int shard_manifest_read(const char *dir, shard_manifest *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    char path[4200], e[512];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    struct stat st;
    if (stat(path, &st) < 0) {
        if (stat(dir, &st) < 0) return errf(err, errlen, "%s: no such folder", dir);
        return errf(err, errlen, "%s: no manifest.json: not a shard-pack folder, or an unfinished one", dir);
    }
    char *text = NULL; size_t n = 0;
    if (slurp(path, &text, &n, err, errlen) < 0) return -1;
    int rc = shard_manifest_parse(text, n, m, e, sizeof e);
    free(text);
    if (rc < 0) return errf(err, errlen, "%s/%s", dir, e);
    return 0;
}

/* ---------------------------------------------------------------- packer */

#define WBUF (1u << 20)

typedef struct {
    afile f; int open; sha256_ctx h;
    uint64_t rows; unsigned idx;
    unsigned char *buf; size_t len;
} writer;

struct shard_packer {
    shard_opts o;
    char dir[4096];
    writer w[2];
    uint16_t *cur; uint32_t cur_n;              /* the sample being filled */
    uint64_t nsample;                           /* samples offered to the reservoir draw */
    uint16_t *res; uint64_t *res_idx; uint64_t res_n, res_cap;
    uint64_t docs, extra_docs, extra_dropped, n_split[2];
    shard_manifest m;                           /* shards done (pending names) */
    int finished, renamed;
    int made_dir;           /* this run created the folder: a failed run removes it if empty */
    char err[1200];
};

static int perr(shard_packer *p, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return -1;
}

static void pending_path(const shard_packer *p, const char *name, char *out, size_t n) { snprintf(out, n, "%s/.pending-%s", p->dir, name); }
static void final_path(const shard_packer *p, const char *name, char *out, size_t n) { snprintf(out, n, "%s/%s", p->dir, name); }

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

/* names in a shard folder that a run of ours may have written */
static int ours_final(const char *n) { int s; unsigned k; return shard_name_parse(n, &s, &k) == 0; }
static int ours_leftover(const char *n) {
    int s; unsigned k;
    if (!strncmp(n, ".pending-", 9) && shard_name_parse(n + 9, &s, &k) == 0) return 1;   /* finished shard of a killed run */
    if (!strncmp(n, "..pending-", 10) && strstr(n, ".npy.tmp.")) return 1;              /* its temporary file */
    if (!strncmp(n, ".manifest.json.tmp.", 19)) return 1;
    return 0;
}

static int prepare_dir(shard_packer *p) {
    char e[512], path[4400];
    struct stat st;
    p->made_dir = stat(p->dir, &st) < 0;
    if (mkdir_p(p->dir, e, sizeof e) < 0) return perr(p, "%s", e);
    snprintf(path, sizeof path, "%s/manifest.json", p->dir);
    int has_manifest = stat(path, &st) == 0;
    size_t finals = 0;
    DIR *d = opendir(p->dir);
    if (!d) return perr(p, "%s: cannot list: %s", p->dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) finals += ours_final(de->d_name);
    closedir(d);
    if ((has_manifest || finals) && !p->o.force) {
        if (has_manifest) return perr(p, "%s already holds shards (manifest.json); pass --force to replace them", p->dir);
        return perr(p, "%s holds %zu shard file(s) but no manifest.json (an interrupted run?); pass --force to replace them", p->dir, finals);
    }
    /* the manifest goes first, so that no manifest ever describes files being replaced */
    if (has_manifest) {
        if (unlink(path) < 0) return perr(p, "%s: cannot remove: %s", path, strerror(errno));
        fsync_dir(p->dir);
    }
    d = opendir(p->dir);
    if (!d) return perr(p, "%s: cannot list: %s", p->dir, strerror(errno));
    while ((de = readdir(d))) {
        if (!ours_final(de->d_name) && !ours_leftover(de->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", p->dir, de->d_name);
        if (unlink(path) < 0 && errno != ENOENT) { closedir(d); return perr(p, "%s: cannot remove: %s", path, strerror(errno)); }
    }
    closedir(d);
    fsync_dir(p->dir);
    return 0;
}

shard_packer *shard_packer_open(const shard_opts *o, char *err, size_t errlen) {
    shard_opts oo = *o;
    if (!oo.seq_len) oo.seq_len = SHARD_DEFAULT_SEQ_LEN;
    if (!oo.shard_samples) oo.shard_samples = SHARD_DEFAULT_SHARD_SAMPLES;
    if (!o->dir || !*o->dir) { errf(err, errlen, "no output folder"); return NULL; }
    if (strlen(o->dir) > 3900) { errf(err, errlen, "%s: path too long", o->dir); return NULL; }
    if (oo.seq_len > SHARD_MAX_SEQ_LEN) { errf(err, errlen, "--seq-len %u: more than %u", oo.seq_len, SHARD_MAX_SEQ_LEN); return NULL; }
    if (oo.vocab_size == 0 || oo.vocab_size > 65536) {
        errf(err, errlen, "vocab size %u (from the token stream's header): uint16 shards need a vocab of 1..65536 tokens", oo.vocab_size); return NULL;
    }
    if (oo.shard_samples > ((uint64_t)1 << 40) / oo.seq_len) { errf(err, errlen, "--shard-samples %" PRIu64 ": too large", oo.shard_samples); return NULL; }
    if (oo.val_samples && oo.val_samples > (uint64_t)(SIZE_MAX / 4) / oo.seq_len) {
        errf(err, errlen, "--val-samples %" PRIu64 ": the reservoir would not fit in memory", oo.val_samples); return NULL;
    }
    shard_packer *p = calloc(1, sizeof *p);
    if (!p) { errf(err, errlen, "out of memory"); return NULL; }
    p->o = oo;
    snprintf(p->dir, sizeof p->dir, "%s", o->dir);
    size_t dl = strlen(p->dir);
    while (dl > 1 && p->dir[dl - 1] == '/') p->dir[--dl] = 0;
    p->o.dir = p->dir;
    p->cur = malloc((size_t)oo.seq_len * 2);
    p->w[0].buf = malloc(WBUF); p->w[1].buf = malloc(WBUF);
    if (!p->cur || !p->w[0].buf || !p->w[1].buf) { errf(err, errlen, "out of memory"); shard_packer_close(p); return NULL; }
    p->m.seq_len = oo.seq_len; p->m.vocab_size = oo.vocab_size; sha256_hex(oo.vocab_sha256, p->m.vocab_sha256);
    p->m.shard_samples = oo.shard_samples; p->m.seed = oo.seed; p->m.val_requested = oo.val_samples;
    if (prepare_dir(p) < 0) {
        errf(err, errlen, "%s", p->err);
        if (p->made_dir) rmdir(p->dir);
        p->finished = 1; shard_packer_close(p); return NULL;
    }
    return p;
}

const char *shard_packer_error(const shard_packer *p) { return p->err; }

static int w_flush(shard_packer *p, writer *w) {
    if (!w->len) return 0;
    char e[512];
    if (afile_write(&w->f, w->buf, w->len, e, sizeof e) < 0) return perr(p, "%s", e);
    sha256_update(&w->h, w->buf, w->len);
    w->len = 0;
    return 0;
}

static int w_start(shard_packer *p, int split) {
    writer *w = &p->w[split];
    if (w->idx >= SHARD_MAX_SHARDS) return perr(p, "more than %d %s shards: raise --shard-samples", SHARD_MAX_SHARDS, shard_split_name(split));
    char name[32], path[4200], e[512];
    snprintf(name, sizeof name, "%s-%05u.npy", shard_split_name(split), w->idx);
    pending_path(p, name, path, sizeof path);
    if (afile_open(&w->f, path, e, sizeof e) < 0) return perr(p, "%s", e);
    w->open = 1; w->rows = 0; w->len = 0;
    sha256_init(&w->h);
    shard_npy_header(w->buf, p->o.shard_samples, p->o.seq_len);
    w->len = SHARD_NPY_HEADER;
    return 0;
}

/* completes the open shard of a split: header fixed if short, fsync, rename to its pending name */
static int w_end(shard_packer *p, int split) {
    writer *w = &p->w[split];
    if (!w->open) return 0;
    char e[512];
    if (w_flush(p, w) < 0) return -1;
    shard_entry se; memset(&se, 0, sizeof se);
    snprintf(se.name, sizeof se.name, "%s-%05u.npy", shard_split_name(split), w->idx);
    se.split = split; se.samples = w->rows;
    unsigned char d[32];
    if (w->rows != p->o.shard_samples) {
        unsigned char hdr[SHARD_NPY_HEADER];
        shard_npy_header(hdr, w->rows, p->o.seq_len);
        if (pwrite(w->f.fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) return perr(p, "%s: write error: %s", w->f.tmp, strerror(errno));
        /* afile's descriptor is write-only: hash the file again through a second one */
        int rfd = open(w->f.tmp, O_RDONLY | O_CLOEXEC);
        if (rfd < 0) return perr(p, "%s: read back: %s", w->f.tmp, strerror(errno));
        sha256_init(&w->h);
        for (;;) {
            ssize_t k = read(rfd, w->buf, WBUF);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) { close(rfd); return perr(p, "%s: read back: %s", w->f.tmp, strerror(errno)); }
            if (k == 0) break;
            sha256_update(&w->h, w->buf, (size_t)k);
        }
        close(rfd);
    }
    sha256_final(&w->h, d); sha256_hex(d, se.sha256);
    w->open = 0;
    if (afile_commit(&w->f, e, sizeof e) < 0) return perr(p, "%s", e);
    if (shard_manifest_add(&p->m, &se) < 0) return perr(p, "out of memory");
    w->idx++;
    return 0;
}

static int w_put(shard_packer *p, int split, const uint16_t *ids) {
    writer *w = &p->w[split];
    if (!w->open && w_start(p, split) < 0) return -1;
    size_t n = (size_t)p->o.seq_len * 2;
    const unsigned char *src = (const unsigned char *)ids;
    while (n) {
        size_t k = WBUF - w->len < n ? WBUF - w->len : n;
        memcpy(w->buf + w->len, src, k);
        w->len += k; src += k; n -= k;
        if (w->len == WBUF && w_flush(p, w) < 0) return -1;
    }
    w->rows++; p->n_split[split]++;
    if (w->rows == p->o.shard_samples) return w_end(p, split);
    return 0;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t shard_reservoir_slot(uint64_t seed, uint64_t i, uint64_t val_samples) {
    if (i < val_samples) return i;
    uint64_t h = mix64(mix64(seed) ^ i);
    /* uniform in [0, i]: bias at most (i+1)/2^64 */
    uint64_t j = (uint64_t)(((unsigned __int128)h * ((unsigned __int128)i + 1)) >> 64);
    return j < val_samples ? j : val_samples;
}

static int check_ids(shard_packer *p, const uint16_t *ids, size_t n, const char *what) {
    uint32_t vs = p->o.vocab_size;
    if (vs >= 65536) return 0;
    uint16_t mx = 0;
    for (size_t i = 0; i < n; i++) mx = ids[i] > mx ? ids[i] : mx;
    if (mx < vs) return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= vs) return perr(p, "%s: id %u at position %zu >= vocab size %u", what, ids[i], i, vs);
    return 0;
}

static int offer(shard_packer *p, const uint16_t *ids) {
    uint64_t N = p->o.val_samples, i = p->nsample++;
    size_t L = p->o.seq_len;
    if (!N) return w_put(p, SHARD_TRAIN, ids);
    if (i < N) {   /* fill the reservoir */
        if (p->res_n == p->res_cap) {
            uint64_t c = p->res_cap ? p->res_cap * 2 : 64;
            if (c > N) c = N;
            uint16_t *r = realloc(p->res, (size_t)c * L * 2);
            if (!r) return perr(p, "out of memory for the validation reservoir (%" PRIu64 " samples)", c);
            p->res = r;
            uint64_t *ri = realloc(p->res_idx, (size_t)c * sizeof *ri);
            if (!ri) return perr(p, "out of memory for the validation reservoir");
            p->res_idx = ri; p->res_cap = c;
        }
        memcpy(p->res + (size_t)p->res_n * L, ids, L * 2);
        p->res_idx[p->res_n++] = i;
        return 0;
    }
    uint64_t s = shard_reservoir_slot(p->o.seed, i, N);
    if (s == N) return w_put(p, SHARD_TRAIN, ids);
    if (w_put(p, SHARD_TRAIN, p->res + (size_t)s * L) < 0) return -1;   /* evicted: it is train after all */
    memcpy(p->res + (size_t)s * L, ids, L * 2);
    p->res_idx[s] = i;
    return 0;
}

int shard_packer_doc(shard_packer *p, const uint16_t *ids, uint32_t n) {
    if (check_ids(p, ids, n, "document") < 0) return -1;
    p->docs++;
    uint32_t L = p->o.seq_len;
    while (n) {
        uint32_t k = L - p->cur_n < n ? L - p->cur_n : n;
        memcpy(p->cur + p->cur_n, ids, (size_t)k * 2);
        p->cur_n += k; ids += k; n -= k;
        if (p->cur_n == L) { p->cur_n = 0; if (offer(p, p->cur) < 0) return -1; }
    }
    return 0;
}

int shard_packer_sample(shard_packer *p, const uint16_t *ids, int forced_validation) {
    if (check_ids(p, ids, p->o.seq_len, "sample") < 0) return -1;
    if (forced_validation) return w_put(p, SHARD_VALIDATION, ids);
    return offer(p, ids);
}

void shard_packer_count(shard_packer *p, uint64_t documents, uint64_t dropped) {
    p->extra_docs += documents; p->extra_dropped += dropped;
}

static int cmp_idx(const void *a, const void *b, void *ctx) {
    const uint64_t *ix = ctx;
    uint64_t x = ix[*(const uint64_t *)a], y = ix[*(const uint64_t *)b];
    return x < y ? -1 : x > y;
}

int shard_packer_finish(shard_packer *p, shard_manifest *out) {
    if (out) memset(out, 0, sizeof *out);
    if (p->finished) return perr(p, "shard_packer_finish called twice");
    uint64_t samples = p->n_split[SHARD_TRAIN] + p->n_split[SHARD_VALIDATION] + p->res_n;
    uint64_t tail = p->cur_n;
    if (samples == 0)
        return perr(p, "no complete sample: the input holds %" PRIu64 " tokens in %" PRIu64 " documents, fewer than --seq-len %u",
                    tail, p->docs, p->o.seq_len);
    if (p->o.val_samples && p->nsample <= p->o.val_samples)
        return perr(p, "only %" PRIu64 " samples, and --val-samples %" PRIu64 " would take them all: nothing left to train on",
                    p->nsample, p->o.val_samples);
    if (p->res_n) {   /* the reservoir, in stream order */
        uint64_t *order = malloc((size_t)p->res_n * sizeof *order);
        if (!order) return perr(p, "out of memory");
        for (uint64_t i = 0; i < p->res_n; i++) order[i] = i;
        qsort_r(order, (size_t)p->res_n, sizeof *order, cmp_idx, p->res_idx);
        for (uint64_t i = 0; i < p->res_n; i++)
            if (w_put(p, SHARD_VALIDATION, p->res + (size_t)order[i] * p->o.seq_len) < 0) { free(order); return -1; }
        free(order);
    }
    if (w_end(p, SHARD_TRAIN) < 0 || w_end(p, SHARD_VALIDATION) < 0) return -1;
    /* train shards first, then validation, each in number order */
    shard_manifest *m = &p->m;
    size_t nt = 0;
    shard_entry *sorted = malloc((m->nshards ? m->nshards : 1) * sizeof *sorted);
    if (!sorted) return perr(p, "out of memory");
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < m->nshards; i++) if (m->shards[i].split == s) sorted[nt++] = m->shards[i];
    memcpy(m->shards, sorted, nt * sizeof *sorted);
    free(sorted);
    m->t.documents = p->docs + p->extra_docs;
    m->t.samples = samples;
    m->t.train_samples = p->n_split[SHARD_TRAIN];
    m->t.validation_samples = p->n_split[SHARD_VALIDATION];
    m->t.dropped_tail_tokens = tail + p->extra_dropped;
    m->t.tokens = samples * p->o.seq_len + m->t.dropped_tail_tokens;
    p->renamed = 1;
    for (size_t i = 0; i < m->nshards; i++) {
        char a[4200], b[4200];
        pending_path(p, m->shards[i].name, a, sizeof a);
        final_path(p, m->shards[i].name, b, sizeof b);
        if (rename(a, b) < 0) return perr(p, "%s: rename: %s", b, strerror(errno));
    }
    fsync_dir(p->dir);
    char e[512];
    if (shard_manifest_write(p->dir, m, e, sizeof e) < 0) return perr(p, "%s", e);
    p->finished = 1;
    if (out) {
        *out = *m;
        out->shards = malloc((m->nshards ? m->nshards : 1) * sizeof *out->shards);
        out->sources = NULL; out->nsources = 0; out->cap = m->nshards;
        if (!out->shards) { memset(out, 0, sizeof *out); return perr(p, "out of memory"); }
        memcpy(out->shards, m->shards, m->nshards * sizeof *m->shards);
    }
    return 0;
}

void shard_packer_close(shard_packer *p) {
    if (!p) return;
    if (!p->finished) {   /* leave nothing behind */
        for (int s = 0; s < 2; s++) if (p->w[s].open) afile_abort(&p->w[s].f);
        for (size_t i = 0; i < p->m.nshards; i++) {
            char a[4200];
            pending_path(p, p->m.shards[i].name, a, sizeof a); unlink(a);
            if (p->renamed) { final_path(p, p->m.shards[i].name, a, sizeof a); unlink(a); }
        }
        fsync_dir(p->dir);
        if (p->made_dir) rmdir(p->dir);     /* only if empty */
    }
    free(p->cur); free(p->w[0].buf); free(p->w[1].buf);
    free(p->res); free(p->res_idx);
    shard_manifest_free(&p->m);
    free(p);
}

/* ------------------------------------------------------------- shard_set */

struct shard_set {
    shard_manifest m;
    shard_npy *npy;
    size_t *list[2], nlist[2];      /* shard indices per split, in order */
    uint64_t *start[2];             /* first sample of each listed shard */
    char dir[4096];
};

void shard_set_close(shard_set *s) {
    if (!s) return;
    if (s->npy) for (size_t i = 0; i < s->m.nshards; i++) shard_npy_close(&s->npy[i]);
    free(s->npy);
    for (int k = 0; k < 2; k++) { free(s->list[k]); free(s->start[k]); }
    shard_manifest_free(&s->m);
    free(s);
}

shard_set *shard_set_open(const char *dir, char *err, size_t errlen) {
    shard_set *s = calloc(1, sizeof *s);
    if (!s) { errf(err, errlen, "out of memory"); return NULL; }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    if (shard_manifest_read(dir, &s->m, err, errlen) < 0) { free(s); return NULL; }
    size_t n = s->m.nshards;
    s->npy = calloc(n ? n : 1, sizeof *s->npy);
    for (int k = 0; k < 2; k++) { s->list[k] = calloc(n ? n : 1, sizeof(size_t)); s->start[k] = calloc(n + 1, sizeof(uint64_t)); }
    if (!s->npy || !s->list[0] || !s->list[1] || !s->start[0] || !s->start[1]) { errf(err, errlen, "out of memory"); shard_set_close(s); return NULL; }
    for (size_t i = 0; i < n; i++) {
        const shard_entry *e = &s->m.shards[i];
        char path[4200], e2[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->name);
        if (shard_npy_open(&s->npy[i], path, e2, sizeof e2) < 0) { errf(err, errlen, "%s", e2); shard_set_close(s); return NULL; }
        if (s->npy[i].rows != e->samples || s->npy[i].cols != s->m.seq_len) {
            errf(err, errlen, "%s: shape (%" PRIu64 ", %u), but manifest.json says (%" PRIu64 ", %u)",
                 path, s->npy[i].rows, s->npy[i].cols, e->samples, s->m.seq_len);
            shard_set_close(s); return NULL;
        }
        int k = e->split;
        s->list[k][s->nlist[k]] = i;
        s->start[k][s->nlist[k] + 1] = s->start[k][s->nlist[k]] + e->samples;
        s->nlist[k]++;
    }
    return s;
}

const shard_manifest *shard_set_manifest(const shard_set *s) { return &s->m; }
uint64_t shard_set_count(const shard_set *s, int split) { return s->start[split][s->nlist[split]]; }
const shard_npy *shard_set_shard(const shard_set *s, size_t k) { return k < s->m.nshards ? &s->npy[k] : NULL; }

const uint16_t *shard_set_sample(const shard_set *s, int split, uint64_t i, char *where, size_t wlen) {
    if (split != SHARD_TRAIN && split != SHARD_VALIDATION) return NULL;
    size_t n = s->nlist[split];
    if (i >= s->start[split][n]) return NULL;
    size_t lo = 0, hi = n;          /* last shard whose start <= i */
    while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if (s->start[split][mid] <= i) lo = mid; else hi = mid; }
    size_t k = s->list[split][lo];
    uint64_t row = i - s->start[split][lo];
    if (where) snprintf(where, wlen, "%s row %" PRIu64, s->m.shards[k].name, row);
    return s->npy[k].data + row * s->m.seq_len;
}

/* ---------------------------------------------------------------- verify */

typedef struct { shard_report_fn fn; void *ctx; long n; } reporter;
static void rep(reporter *r, const char *fmt, ...) {
    char line[1200];
    va_list ap; va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->n++;
    if (r->fn) r->fn(r->ctx, line);
}

long shard_verify(const char *dir, const unsigned char *vocab_sha256, uint32_t cls_id, shard_report_fn report, void *ctx) {
    reporter r = { report, ctx, 0 };
    shard_manifest m;
    char e[1024];
    if (shard_manifest_read(dir, &m, e, sizeof e) < 0) { rep(&r, "%s", e); return r.n; }
    if (vocab_sha256) {
        char hx[65]; sha256_hex(vocab_sha256, hx);
        if (strcmp(hx, m.vocab_sha256)) rep(&r, "%s/manifest.json: made with vocab sha256 %s, not the given vocab (%s)", dir, m.vocab_sha256, hx);
    }
    uint64_t sum[2] = { 0, 0 }, cls = 0, most = 0;   /* cls: [CLS] ids in the shards */
    long shard_problems = r.n;
    unsigned next[2] = { 0, 0 };
    for (size_t i = 0; i < m.nshards; i++) {
        const shard_entry *se = &m.shards[i];
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, se->name);
        int sp; unsigned num;
        shard_name_parse(se->name, &sp, &num);
        if (num != next[sp]) rep(&r, "%s/manifest.json: %s listed where %s-%05u.npy was expected (numbering must be contiguous)", dir, se->name, shard_split_name(sp), next[sp]);
        next[sp] = num + 1;
        sum[sp] += se->samples;
        shard_npy a;
        if (shard_npy_open(&a, path, e, sizeof e) < 0) { rep(&r, "%s", e); continue; }
        if (a.rows != se->samples || a.cols != m.seq_len)
            rep(&r, "%s: shape (%" PRIu64 ", %u), manifest.json says (%" PRIu64 ", %u)", path, a.rows, a.cols, se->samples, m.seq_len);
        sha256_ctx h; unsigned char d[32]; char hx[65];
        sha256_init(&h); sha256_update(&h, a.map, a.size); sha256_final(&h, d); sha256_hex(d, hx);
        if (strcmp(hx, se->sha256)) rep(&r, "%s: sha256 %s, manifest.json says %s (file changed or corrupt)", path, hx, se->sha256);
        if (se->samples > most) most = se->samples;
        /* one pass: the [CLS] ids, and the first id >= vocab_size (none can be when it is >= 65536) */
        size_t total = (size_t)a.rows * a.cols;
        const uint16_t *x = a.data;
        int id_reported = m.vocab_size >= 65536;
        for (size_t j = 0; j < total; j += 65536) {
            size_t end = j + 65536 < total ? j + 65536 : total;
            uint16_t mx = 0;
            for (size_t q = j; q < end; q++) { mx = x[q] > mx ? x[q] : mx; cls += x[q] == cls_id; }
            if (id_reported || mx < m.vocab_size) continue;
            size_t q = j; while (x[q] < m.vocab_size) q++;
            rep(&r, "%s: id %u at row %zu, column %zu is not < vocab size %u", path, x[q], q / a.cols, q % a.cols, m.vocab_size);
            id_reported = 1;
        }
        shard_npy_close(&a);
    }
    shard_problems = r.n - shard_problems;
    if (sum[0] != m.t.train_samples) rep(&r, "%s/manifest.json: train shards hold %" PRIu64 " samples, totals.train_samples says %" PRIu64, dir, sum[0], m.t.train_samples);
    if (sum[1] != m.t.validation_samples) rep(&r, "%s/manifest.json: validation shards hold %" PRIu64 " samples, totals.validation_samples says %" PRIu64, dir, sum[1], m.t.validation_samples);
    if (m.t.samples != m.t.train_samples + m.t.validation_samples) rep(&r, "%s/manifest.json: totals.samples %" PRIu64 " != train + validation", dir, m.t.samples);
    if (m.t.samples > (UINT64_MAX - m.t.dropped_tail_tokens) / m.seq_len ||
        m.t.tokens != m.t.samples * m.seq_len + m.t.dropped_tail_tokens)
        rep(&r, "%s/manifest.json: totals.tokens %" PRIu64 " != samples x seq_len + dropped_tail_tokens", dir, m.t.tokens);
    /* documents: every one starts with [CLS]; those not in a shard lie whole (>= 2 ids) in a dropped tail.
     * A [CLS] can also come from the text, so only an upper bound holds, and at least one document. */
    if (!shard_problems && (m.t.documents > cls + m.t.dropped_tail_tokens / 2 || (m.t.samples && !m.t.documents)))
        rep(&r, "%s/manifest.json: totals.documents %" PRIu64 " cannot be: the shards hold %" PRIu64 " [CLS] ids and the dropped "
            "tails %" PRIu64 " tokens", dir, m.t.documents, cls, m.t.dropped_tail_tokens);
    /* each packed stream drops less than one sample; a merge adds up its inputs' tails (inputs may be
     * merges themselves: at most one stream per document) */
    uint64_t streams = m.nsources ? m.t.documents : 1;
    if (m.t.dropped_tail_tokens > streams * (m.seq_len - 1))
        rep(&r, "%s/manifest.json: totals.dropped_tail_tokens %" PRIu64 " is more than %" PRIu64 " stream%s can drop (less than "
            "seq_len %u each)", dir, m.t.dropped_tail_tokens, streams, streams == 1 ? "" : "s", m.seq_len);
    if (most > m.shard_samples)
        rep(&r, "%s/manifest.json: a shard holds %" PRIu64 " samples, more than shard_samples %" PRIu64, dir, most, m.shard_samples);
    /* a pack draws exactly the validation samples asked for; a merge adds its inputs' own */
    if (m.nsources ? m.t.validation_samples < m.val_requested : m.t.validation_samples != m.val_requested)
        rep(&r, "%s/manifest.json: totals.validation_samples %" PRIu64 " but val_samples_requested %" PRIu64, dir,
            m.t.validation_samples, m.val_requested);
    DIR *dd = opendir(dir);
    struct dirent *de;
    while (dd && (de = readdir(dd))) {
        if (!ours_final(de->d_name)) continue;
        size_t i = 0;
        while (i < m.nshards && strcmp(m.shards[i].name, de->d_name)) i++;
        if (i == m.nshards) rep(&r, "%s/%s: a shard file that manifest.json does not list", dir, de->d_name);
    }
    if (dd) closedir(dd);
    shard_manifest_free(&m);
    return r.n;
}

/* ----------------------------------------------------------------- merge */

static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* merge --link: every input shard hard-linked to its pending name in the output */
static int merge_link(shard_packer *p, const char *const *dirs, const shard_manifest *ms, size_t ndirs, char *err, size_t errlen) {
    unsigned num[2] = { 0, 0 };
    uint64_t most = 0;
    for (int split = 0; split < 2; split++)
        for (size_t i = 0; i < ndirs; i++) {
            for (size_t k = 0; k < ms[i].nshards; k++) {
                const shard_entry *se = &ms[i].shards[k];
                if (se->split != split) continue;
                char src[4200], dst[4200], e[1024];
                snprintf(src, sizeof src, "%s/%s", dirs[i], se->name);
                shard_npy a;
                if (shard_npy_open(&a, src, e, sizeof e) < 0) return errf(err, errlen, "merge: %s", e);
                int shape_ok = a.rows == se->samples && a.cols == p->o.seq_len;
                shard_npy_close(&a);
                if (!shape_ok) return errf(err, errlen, "merge: %s: shape differs from its manifest.json", src);
                if (num[split] >= SHARD_MAX_SHARDS) return errf(err, errlen, "merge: more than %d %s shards", SHARD_MAX_SHARDS, shard_split_name(split));
                shard_entry ne = *se;
                snprintf(ne.name, sizeof ne.name, "%s-%05u.npy", shard_split_name(split), num[split]++);
                pending_path(p, ne.name, dst, sizeof dst);
                if (link(src, dst) < 0)
                    return errf(err, errlen, "merge --link: %s -> %s: %s%s", src, dst, strerror(errno),
                                errno == EXDEV ? " (inputs and output must be on one file system; merge without --link copies)" : "");
                if (shard_manifest_add(&p->m, &ne) < 0) { unlink(dst); return errf(err, errlen, "out of memory"); }
                p->n_split[split] += se->samples;
                if (se->samples > most) most = se->samples;
            }
        }
    for (size_t i = 0; i < ndirs; i++) shard_packer_count(p, ms[i].t.documents, ms[i].t.dropped_tail_tokens);
    p->m.shard_samples = most;      /* the largest shard */
    return 0;
}

int shard_merge(const shard_opts *o, const char *const *dirs, size_t ndirs, shard_manifest *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof *out);
    if (!ndirs) return errf(err, errlen, "merge: no input folders");
    shard_manifest *ms = calloc(ndirs, sizeof *ms);
    if (!ms) return errf(err, errlen, "out of memory");
    int rc = -1;
    shard_packer *p = NULL;
    for (size_t i = 0; i < ndirs; i++) {
        if (same_file(dirs[i], o->dir)) { errf(err, errlen, "merge: output folder %s is also an input", o->dir); goto done; }
        if (shard_manifest_read(dirs[i], &ms[i], err, errlen) < 0) goto done;
        if (ms[i].seq_len != ms[0].seq_len) { errf(err, errlen, "merge: %s has seq_len %u, %s has %u", dirs[i], ms[i].seq_len, dirs[0], ms[0].seq_len); goto done; }
        if (ms[i].vocab_size != ms[0].vocab_size || strcmp(ms[i].vocab_sha256, ms[0].vocab_sha256)) {
            errf(err, errlen, "merge: %s was made with another vocab than %s", dirs[i], dirs[0]); goto done;
        }
    }
    if (o->seq_len && o->seq_len != ms[0].seq_len) { errf(err, errlen, "merge: --seq-len %u, but the inputs have %u", o->seq_len, ms[0].seq_len); goto done; }
    shard_opts po = *o;
    po.seq_len = ms[0].seq_len; po.vocab_size = ms[0].vocab_size;
    for (int k = 0; k < 32; k++) {
        unsigned hi, lo;
        sscanf(ms[0].vocab_sha256 + 2 * k, "%1x%1x", &hi, &lo);
        po.vocab_sha256[k] = (unsigned char)(hi << 4 | lo);
    }
    if (o->link && o->val_samples) { errf(err, errlen, "merge --link cannot draw validation samples (it copies nothing): draw them per part, or merge without --link"); goto done; }
    if (!(p = shard_packer_open(&po, err, errlen))) goto done;
    p->m.sources = calloc(ndirs, sizeof *p->m.sources);
    if (!p->m.sources) { errf(err, errlen, "out of memory"); goto done; }
    for (size_t i = 0; i < ndirs; i++) {
        if (!(p->m.sources[i] = strdup(dirs[i]))) { errf(err, errlen, "out of memory"); goto done; }
        p->m.nsources++;
    }
    size_t L = po.seq_len;
    if (o->link) {
        if (merge_link(p, dirs, ms, ndirs, err, errlen) < 0) goto done;
        if (shard_packer_finish(p, out) < 0) { errf(err, errlen, "merge: %s", shard_packer_error(p)); goto done; }
        rc = 0;
        goto done;
    }
    for (size_t i = 0; i < ndirs; i++) {
        for (int split = 0; split < 2; split++)
            for (size_t k = 0; k < ms[i].nshards; k++) {
                const shard_entry *se = &ms[i].shards[k];
                if (se->split != split) continue;
                char path[4200], e[1024];
                snprintf(path, sizeof path, "%s/%s", dirs[i], se->name);
                shard_npy a;
                if (shard_npy_open(&a, path, e, sizeof e) < 0) { errf(err, errlen, "merge: %s", e); goto done; }
                if (a.rows != se->samples || a.cols != L) {
                    errf(err, errlen, "merge: %s: shape (%" PRIu64 ", %u), manifest.json says (%" PRIu64 ", %zu)", path, a.rows, a.cols, se->samples, L);
                    shard_npy_close(&a); goto done;
                }
                sha256_ctx h; unsigned char d[32]; char hx[65];
                sha256_init(&h); sha256_update(&h, a.map, a.data_off);
                for (uint64_t r = 0; r < a.rows; r++) {
                    const uint16_t *ids = a.data + r * L;
                    sha256_update(&h, ids, L * 2);
                    if (shard_packer_sample(p, ids, split == SHARD_VALIDATION) < 0) {
                        errf(err, errlen, "merge: %s row %" PRIu64 ": %s", path, r, shard_packer_error(p));
                        shard_npy_close(&a); goto done;
                    }
                }
                sha256_final(&h, d); sha256_hex(d, hx);
                shard_npy_close(&a);
                if (strcmp(hx, se->sha256)) { errf(err, errlen, "merge: %s: sha256 differs from its manifest.json (file changed or corrupt)", path); goto done; }
            }
        shard_packer_count(p, ms[i].t.documents, ms[i].t.dropped_tail_tokens);
    }
    if (shard_packer_finish(p, out) < 0) { errf(err, errlen, "merge: %s", shard_packer_error(p)); goto done; }
    rc = 0;
done:
    shard_packer_close(p);
    for (size_t i = 0; i < ndirs; i++) shard_manifest_free(&ms[i]);
    free(ms);
    return rc;
}
