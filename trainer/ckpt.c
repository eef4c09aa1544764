/* ckpt.c - safetensors, trainer_state.json and checkpoint folders (see ckpt.h).
 *
 * safetensors: 8-byte little-endian header length N, N bytes of JSON
 * {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [...],
 * "data_offsets": [begin, end]}, ...} padded with spaces to a multiple of
 * 8, then the raw little-endian data, offsets relative to its start. */
#include "trainer/ckpt.h"
#include "pipeline/atomic.h"
#include "pipeline/json.h"
#include "pipeline/sha256.h"
#include "pipeline/strbuf.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) { va_list ap; va_start(ap, fmt); vsnprintf(err, errlen, fmt, ap); va_end(ap); }
    return -1;
}

#define ST_MAX_HEADER (100u << 20)

/* ------------------------------------------------------------ safetensors */

int bt_st_write(const char *path, const bt_layout *L, int nbufs, const char *const *prefixes,
                const float *const *bufs, char *err, size_t errlen) {
    strbuf h = { 0 };
    strbuf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int k = 0; k < nbufs; k++)
        for (int i = 0; i < L->n; i++) {
            const bt_tensor *t = &L->t[i];
            strbuf_printf(&h, ",\"%s%s\":{\"dtype\":\"F32\",\"shape\":[", prefixes[k], t->name);
            for (int d = 0; d < t->ndim; d++) strbuf_printf(&h, "%s%d", d ? "," : "", t->shape[d]);
            strbuf_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + (uint64_t)t->numel * 4);
            off += (uint64_t)t->numel * 4;
        }
    strbuf_printf(&h, "}");
    while (!h.oom && (h.n + 8) % 8) strbuf_printf(&h, " ");
    if (h.oom) { free(h.p); return fail(err, errlen, "%s: out of memory", path); }
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    afile f;
    if (afile_open(&f, path, err, errlen)) { free(h.p); return -1; }
    int rc = afile_write(&f, len, 8, err, errlen);
    if (!rc) rc = afile_write(&f, h.p, h.n, err, errlen);
    free(h.p);
    for (int k = 0; k < nbufs && !rc; k++)   /* the table is contiguous: one write per buffer */
        rc = afile_write(&f, bufs[k], L->total * sizeof(float), err, errlen);
    if (rc) { afile_abort(&f); return -1; }
    return afile_commit(&f, err, errlen);
}

static int read_all(int fd, void *buf, size_t n, off_t off) {
    char *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k; n -= (size_t)k; off += k;
    }
    return 0;
}

/* A JSON array of non-negative integers into v[0..max): count, or -1. */
static int int_array(const js_val *a, uint64_t *v, int max) {
    if (a->type != JS_ARRAY) return -1;
    size_t pos = 0; js_val e; int n = 0;
    while (js_array_next(a, &pos, &e)) {
        if (e.type != JS_NUMBER || n >= max) return -1;
        double d = js_number(&e);
        if (!(d >= 0 && d <= 9007199254740992.0 && d == floor(d))) return -1;
        v[n++] = (uint64_t)d;
    }
    return n;
}

int bt_st_read(const char *path, const bt_layout *L, const char *prefix, float *buf, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    unsigned char len[8];
    if (fstat(fd, &st) < 0 || read_all(fd, len, 8, 0)) { close(fd); return fail(err, errlen, "%s: too short for safetensors", path); }
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)len[i] << (8 * i);
    if (n < 2 || n > ST_MAX_HEADER || n + 8 > (uint64_t)st.st_size) {
        close(fd); return fail(err, errlen, "%s: byte 0: header length %" PRIu64 " impossible for a file of %lld bytes", path, n, (long long)st.st_size);
    }
    char *h = malloc(n);
    if (!h) { close(fd); return fail(err, errlen, "%s: out of memory", path); }
    if (read_all(fd, h, n, 8)) { free(h); close(fd); return fail(err, errlen, "%s: read error", path); }
    const uint64_t data0 = 8 + n, dlen = (uint64_t)st.st_size - data0;
    int rc = 0;
    char name[160], jerr[200];
    for (int i = 0; i < L->n && !rc; i++) {
        const bt_tensor *t = &L->t[i];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        js_path p = { { name }, 1 };
        js_val v;
        if (js_scan(h, n, &p, 1, &v, jerr, sizeof jerr)) { rc = fail(err, errlen, "%s: header: %s", path, jerr); break; }
        if (v.type == JS_ABSENT) { rc = fail(err, errlen, "%s: tensor %s missing", path, name); break; }
        js_path q[3] = { { { "dtype" }, 1 }, { { "shape" }, 1 }, { { "data_offsets" }, 1 } };
        js_val w[3];
        if (v.type != JS_OBJECT || js_scan(v.p, v.n, q, 3, w, jerr, sizeof jerr)) { rc = fail(err, errlen, "%s: tensor %s: not an object", path, name); break; }
        if (w[0].type != JS_STRING || !js_string_eq(&w[0], "F32", 0)) {
            rc = fail(err, errlen, "%s: tensor %s: dtype %.*s, only F32 is read", path, name, (int)(w[0].n > 20 ? 20 : w[0].n), w[0].p ? w[0].p : "");
            break;
        }
        uint64_t shape[8], offs[3];
        int nd = int_array(&w[1], shape, 8), no = int_array(&w[2], offs, 3);
        int same = nd == t->ndim;
        for (int d = 0; same && d < nd; d++) same = shape[d] == (uint64_t)t->shape[d];
        if (!same) {
            char want[64] = "", got[64] = "";
            for (int d = 0; d < t->ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "," : "", t->shape[d]);
            for (int d = 0; d < nd; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRIu64, d ? "," : "", shape[d]);
            rc = fail(err, errlen, "%s: tensor %s: shape [%s], the config wants [%s]", path, name, nd < 0 ? "?" : got, want);
            break;
        }
        if (no != 2 || offs[1] < offs[0] || offs[1] - offs[0] != (uint64_t)t->numel * 4 || offs[1] > dlen) {
            rc = fail(err, errlen, "%s: tensor %s: data_offsets wrong or beyond the end of the file", path, name);
            break;
        }
        if (read_all(fd, buf + t->offset, (size_t)t->numel * 4, (off_t)(data0 + offs[0])))
            rc = fail(err, errlen, "%s: read error in tensor %s", path, name);
    }
    free(h);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ options and state */

void bt_opts_defaults(bt_opts *o) {
    memset(o, 0, sizeof *o);
    bt_optim_defaults(&o->optim);
    o->batch = 256; o->micro_batch = 0; o->dropout = 1; o->seed = 42; o->eval_seed = 0;
    o->eval_every = 250; o->eval_samples = 0; o->save_every = 1000; o->log_every = 1; o->keep = 0;
    snprintf(o->device, sizeof o->device, "cpu");
}

int bt_state_to_json(const bt_opts *o, const bt_state *s, char *buf, size_t cap) {
    strbuf b = { 0 };
    strbuf_printf(&b, "{\n  \"format\": \"symbert-train-state\",\n  \"version\": 1,\n");
    strbuf_printf(&b, "  \"step\": %ld,\n  \"tokens\": %.17g,\n  \"elapsed_s\": %.17g,\n", s->step, s->tokens, s->elapsed);
    strbuf_printf(&b, "  \"seed\": \"%" PRIu64 "\",\n  \"eval_seed\": \"%" PRIu64 "\",\n", o->seed, o->eval_seed);
    strbuf_printf(&b, "  \"data\": "); strbuf_json_str(&b, o->data);
    strbuf_printf(&b, ",\n  \"device\": "); strbuf_json_str(&b, o->device);
    strbuf_printf(&b, ",\n  \"batch\": %d,\n  \"micro_batch\": %d,\n  \"dropout\": %d,\n", o->batch, o->micro_batch, o->dropout);
    char f[6][32];
    strbuf_printf(&b, "  \"lr\": %s,\n  \"beta1\": %s,\n  \"beta2\": %s,\n  \"eps\": %s,\n  \"weight_decay\": %s,\n  \"clip\": %s,\n",
              bt_float_str(o->optim.lr, f[0]), bt_float_str(o->optim.beta1, f[1]), bt_float_str(o->optim.beta2, f[2]),
              bt_float_str(o->optim.eps, f[3]), bt_float_str(o->optim.weight_decay, f[4]), bt_float_str(o->optim.clip, f[5]));
    strbuf_printf(&b, "  \"warmup\": %ld,\n  \"steps\": %ld,\n", o->optim.warmup, o->optim.total);
    strbuf_printf(&b, "  \"eval_every\": %ld,\n  \"eval_samples\": %ld,\n  \"save_every\": %ld,\n  \"log_every\": %ld,\n  \"keep\": %d",
              o->eval_every, o->eval_samples, o->save_every, o->log_every, o->keep);
    if (o->data_manifest_sha256[0])
        strbuf_printf(&b, ",\n  \"data_manifest_sha256\": \"%s\",\n  \"data_seq_len\": %d,\n  \"data_vocab_sha256\": \"%s\"",
                      o->data_manifest_sha256, o->data_seq_len, o->data_vocab_sha256);
    strbuf_printf(&b, "\n}\n");
    int n = b.oom ? -1 : (int)b.n;
    if (n >= 0) snprintf(buf, cap, "%s", b.p);
    free(b.p);
    return n;
}

static char *slurp(const char *path, size_t *n, size_t max, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { fail(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
    char *b = malloc(max + 1);
    if (!b) { fclose(f); fail(err, errlen, "%s: out of memory", path); return NULL; }
    *n = fread(b, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || *n > max) { free(b); fail(err, errlen, "%s: %s", path, bad ? "read error" : "too large"); return NULL; }
    b[*n] = 0;
    return b;
}

int bt_state_read(const char *path, bt_opts *o, bt_state *s, char *err, size_t errlen) {
    enum { FORMAT, VERSION, STEP, TOKENS, ELAPSED, SEED, ESEED, DATA, DEVICE, BATCH, MICRO, DROPOUT, LR, B1, B2, EPS,
           WD, CLIP, WARMUP, STEPS, EVERY, ESAMPLES, SAVE, LOG, KEEP, NK, DMAN = NK, DSEQ, DVOCAB, NKEYS };
    static const char *keys[NKEYS] = { "format", "version", "step", "tokens", "elapsed_s", "seed", "eval_seed", "data",
        "device", "batch", "micro_batch", "dropout", "lr", "beta1", "beta2", "eps", "weight_decay", "clip", "warmup",
        "steps", "eval_every", "eval_samples", "save_every", "log_every", "keep",
        "data_manifest_sha256", "data_seq_len", "data_vocab_sha256" };   /* the last three: optional (older states) */
    size_t n;
    char *text = slurp(path, &n, 1 << 20, err, errlen);
    if (!text) return -1;
    js_path p[NKEYS]; js_val v[NKEYS]; char jerr[200];
    for (int i = 0; i < NKEYS; i++) { p[i].key[0] = keys[i]; p[i].depth = 1; }
    if (js_scan(text, n, p, NKEYS, v, jerr, sizeof jerr)) { free(text); return fail(err, errlen, "%s: %s", path, jerr); }
    int rc = 0;
    if (v[FORMAT].type != JS_STRING || !js_string_eq(&v[FORMAT], "symbert-train-state", 0)) rc = fail(err, errlen, "%s: not a symbert trainer_state.json", path);
    for (int i = VERSION; i < NK && !rc; i++) {
        if (i == SEED || i == ESEED || i == DATA || i == DEVICE) {
            if (v[i].type != JS_STRING) { rc = fail(err, errlen, "%s: \"%s\" missing or not a string", path, keys[i]); break; }
            char *sv = NULL; size_t scap = 0;
            long k = js_string(&v[i], &sv, &scap);
            if (k < 0) { rc = fail(err, errlen, "%s: out of memory", path); break; }
            if (i == DATA) snprintf(o->data, sizeof o->data, "%s", sv);
            else if (i == DEVICE) snprintf(o->device, sizeof o->device, "%s", sv);
            else {
                char *end; errno = 0;
                unsigned long long u = strtoull(sv, &end, 10);
                if (errno || end == sv || *end) rc = fail(err, errlen, "%s: \"%s\" is not an unsigned integer", path, keys[i]);
                else if (i == SEED) o->seed = u; else o->eval_seed = u;
            }
            free(sv);
            continue;
        }
        if (v[i].type != JS_NUMBER) { rc = fail(err, errlen, "%s: \"%s\" missing or not a number", path, keys[i]); break; }
        double d = js_number(&v[i]);
        if (i >= LR && i <= CLIP && v[i].n < 40) {   /* read floats as floats: no double rounding */
            char tmp[48]; memcpy(tmp, v[i].p, v[i].n); tmp[v[i].n] = 0;
            d = (double)strtof(tmp, NULL);
        }
        if (!isfinite(d)) { rc = fail(err, errlen, "%s: \"%s\" is not finite", path, keys[i]); break; }
        int integral = !(i == TOKENS || i == ELAPSED || (i >= LR && i <= CLIP));
        if (integral && (d != floor(d) || d < 0 || d > (double)LONG_MAX / 2)) { rc = fail(err, errlen, "%s: \"%s\" must be a non-negative integer", path, keys[i]); break; }
        switch (i) {
        case VERSION: if (d != 1) rc = fail(err, errlen, "%s: version %g not supported", path, d); break;
        case STEP: s->step = (long)d; break;
        case TOKENS: s->tokens = d; break;
        case ELAPSED: s->elapsed = d; break;
        case BATCH: o->batch = (int)d; break;
        case MICRO: o->micro_batch = (int)d; break;
        case DROPOUT: o->dropout = (int)d; break;
        case LR: o->optim.lr = (float)d; break;
        case B1: o->optim.beta1 = (float)d; break;
        case B2: o->optim.beta2 = (float)d; break;
        case EPS: o->optim.eps = (float)d; break;
        case WD: o->optim.weight_decay = (float)d; break;
        case CLIP: o->optim.clip = (float)d; break;
        case WARMUP: o->optim.warmup = (long)d; break;
        case STEPS: o->optim.total = (long)d; break;
        case EVERY: o->eval_every = (long)d; break;
        case ESAMPLES: o->eval_samples = (long)d; break;
        case SAVE: o->save_every = (long)d; break;
        case LOG: o->log_every = (long)d; break;
        case KEEP: o->keep = (int)d; break;
        }
    }
    o->data_manifest_sha256[0] = o->data_vocab_sha256[0] = 0; o->data_seq_len = 0;
    if (!rc && v[DMAN].type != JS_ABSENT) {
        int ok = v[DMAN].type == JS_STRING && v[DMAN].n == 66 && v[DVOCAB].type == JS_STRING && v[DVOCAB].n <= 66 &&
                 v[DSEQ].type == JS_NUMBER && js_number(&v[DSEQ]) >= 1 && js_number(&v[DSEQ]) <= INT_MAX;
        if (!ok) rc = fail(err, errlen, "%s: \"data_manifest_sha256\", \"data_seq_len\" or \"data_vocab_sha256\" malformed", path);
        else {
            snprintf(o->data_manifest_sha256, sizeof o->data_manifest_sha256, "%.64s", v[DMAN].p + 1);
            snprintf(o->data_vocab_sha256, sizeof o->data_vocab_sha256, "%.*s", (int)v[DVOCAB].n - 2, v[DVOCAB].p + 1);
            o->data_seq_len = (int)js_number(&v[DSEQ]);
        }
    }
    free(text);
    return rc;
}

int bt_data_bind(bt_opts *o, int seq_len, const char *vocab_sha256, char *err, size_t errlen) {
    char path[2200], hex[65];
    snprintf(path, sizeof path, "%s/manifest.json", o->data);
    if (sha256_file(path, hex) < 0) return fail(err, errlen, "%s: %s", path, strerror(errno));
    if (!o->data_manifest_sha256[0]) {      /* a fresh run (or a state from before these fields) */
        memcpy(o->data_manifest_sha256, hex, 65);
        o->data_seq_len = seq_len;
        snprintf(o->data_vocab_sha256, sizeof o->data_vocab_sha256, "%s", vocab_sha256);
        return 0;
    }
    if (!strcmp(hex, o->data_manifest_sha256) && seq_len == o->data_seq_len && !strcmp(vocab_sha256, o->data_vocab_sha256)) return 0;
    strbuf b = { 0 };
    strbuf_printf(&b, "%s is not the data this run trained on:", o->data);
    if (seq_len != o->data_seq_len) strbuf_printf(&b, " seq_len %d, the run's %d;", seq_len, o->data_seq_len);
    if (strcmp(vocab_sha256, o->data_vocab_sha256))
        strbuf_printf(&b, " vocab_sha256 %.12s..., the run's %.12s...;", vocab_sha256, o->data_vocab_sha256);
    strbuf_printf(&b, " manifest.json sha256 %.12s..., the run's %.12s... (other shards)", hex, o->data_manifest_sha256);
    strbuf_printf(&b, "; resume with the run's own shard folder (a moved copy of it is fine)");
    fail(err, errlen, "%s", b.oom ? "the data differs from the run's" : b.p);
    free(b.p);
    return -1;
}

/* ------------------------------------------------------------ folders */

static int rm_folder(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    char p[4600];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* "checkpoint-123" -> 123, else -1 */
static long ckpt_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) || !name[11]) return -1;
    char *end; errno = 0;
    long s = strtol(name + 11, &end, 10);
    return (errno || *end || s < 0) ? -1 : s;
}

static void prune(const char *run, int keep, long newest) {
    if (keep <= 0) return;
    DIR *d = opendir(run);
    if (!d) return;
    long *steps = NULL; size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long s = ckpt_step(e->d_name);
        if (s < 0 || s == newest) continue;
        if (n == cap) { cap = cap ? cap * 2 : 16; long *ns = realloc(steps, cap * sizeof *ns); if (!ns) break; steps = ns; }
        steps[n++] = s;
    }
    closedir(d);
    if (steps) qsort(steps, n, sizeof *steps, cmp_long);
    char p[4200];
    for (size_t i = 0; i + (size_t)(keep - 1) < n; i++) {   /* the newest is kept besides keep-1 older ones */
        if (steps[i] > newest) continue;
        snprintf(p, sizeof p, "%s/checkpoint-%ld", run, steps[i]);
        rm_folder(p);
    }
    free(steps);
}

int bt_ckpt_save(const bt_opts *o, const bt_state *s, const bt_layout *L, const float *params,
                 const float *m, const float *v, char *path_out, size_t path_cap, char *err, size_t errlen) {
    char tmp[2300], fin[2300], old[2300], f[2400];
    if (mkdir_p(o->out, err, errlen)) return -1;
    snprintf(tmp, sizeof tmp, "%s/.tmp-checkpoint-%ld.%ld", o->out, s->step, (long)getpid());
    snprintf(fin, sizeof fin, "%s/checkpoint-%ld", o->out, s->step);
    snprintf(old, sizeof old, "%s/.old-checkpoint-%ld.%ld", o->out, s->step, (long)getpid());
    rm_folder(tmp);
    if (mkdir(tmp, 0755) < 0) return fail(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = 0;
    char *text = malloc(1 << 16);
    if (!text) rc = fail(err, errlen, "out of memory");
    if (!rc) {
        snprintf(f, sizeof f, "%s/config.json", tmp);
        int k = bt_config_to_json(&L->cfg, text, 1 << 16);
        rc = afile_put(f, text, (size_t)k, err, errlen);
    }
    if (!rc) {
        snprintf(f, sizeof f, "%s/model.safetensors", tmp);
        const char *pre[1] = { "" }; const float *bufs[1] = { params };
        rc = bt_st_write(f, L, 1, pre, bufs, err, errlen);
    }
    if (!rc && m && v) {
        snprintf(f, sizeof f, "%s/optimizer.safetensors", tmp);
        const char *pre[2] = { "exp_avg.", "exp_avg_sq." }; const float *bufs[2] = { m, v };
        rc = bt_st_write(f, L, 2, pre, bufs, err, errlen);
    }
    if (!rc) {
        int k = bt_state_to_json(o, s, text, 1 << 16);
        if (k < 0 || k >= (1 << 16)) rc = fail(err, errlen, "trainer state too long");
        else { snprintf(f, sizeof f, "%s/trainer_state.json", tmp); rc = afile_put(f, text, (size_t)k, err, errlen); }
    }
    free(text);
    if (rc) { rm_folder(tmp); return -1; }
    fsync_dir(tmp);
    struct stat st;
    int had = stat(fin, &st) == 0;
    if (had && rename(fin, old) < 0) { rm_folder(tmp); return fail(err, errlen, "%s: cannot move aside: %s", fin, strerror(errno)); }
    if (rename(tmp, fin) < 0) {
        int e = errno;
        if (had) rename(old, fin);
        rm_folder(tmp);
        return fail(err, errlen, "%s: rename: %s", fin, strerror(e));
    }
    fsync_dir(o->out);
    char latest[2300], name[64];
    snprintf(latest, sizeof latest, "%s/latest", o->out);
    int k = snprintf(name, sizeof name, "checkpoint-%ld\n", s->step);
    if (afile_put(latest, name, (size_t)k, err, errlen)) return -1;
    if (had) rm_folder(old);
    prune(o->out, o->keep, s->step);
    if (path_out) snprintf(path_out, path_cap, "%s", fin);
    return 0;
}

/* The PID after the last '.' of a temporary's name, or -1. */
static long name_pid(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || !dot[1]) return -1;
    char *end; errno = 0;
    long pid = strtol(dot + 1, &end, 10);
    return (errno || *end || pid <= 0) ? -1 : pid;
}

int bt_run_clean(const char *run) {
    DIR *d = opendir(run);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char p[4600], fin[4600];
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        int tmpdir = !strncmp(nm, ".tmp-checkpoint-", 16), olddir = !strncmp(nm, ".old-checkpoint-", 16);
        size_t len = strlen(nm);
        int tmpfile = nm[0] == '.' && !tmpdir && !olddir && strstr(nm, ".tmp.") && len > 5;
        if (!tmpdir && !olddir && !tmpfile) continue;
        long pid = name_pid(nm);
        if (pid < 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;   /* live */
        snprintf(p, sizeof p, "%s/%s", run, nm);
        if (olddir) {       /* .old-checkpoint-STEP.PID: back to checkpoint-STEP if that is missing */
            struct stat st;
            snprintf(fin, sizeof fin, "%s/checkpoint-%.*s", run, (int)(strrchr(nm, '.') - nm - 16), nm + 16);
            if (stat(fin, &st) < 0 && rename(p, fin) == 0) { n++; continue; }
        }
        if ((tmpfile ? unlink(p) : rm_folder(p)) == 0) n++;
    }
    closedir(d);
    if (n) fsync_dir(run);
    return n;
}

int bt_ckpt_find(const char *path, char *out, size_t cap, char *err, size_t errlen) {
    char f[4200];
    struct stat st;
    snprintf(f, sizeof f, "%s/trainer_state.json", path);
    if (stat(f, &st) == 0) { snprintf(out, cap, "%s", path); return 0; }
    bt_run_clean(path);     /* a run folder: first undo what a kill left (a checkpoint moved aside) */
    snprintf(f, sizeof f, "%s/latest", path);
    size_t n;
    char e2[300];
    char *t = slurp(f, &n, 4096, e2, sizeof e2);
    if (!t) return fail(err, errlen, "%s: no checkpoint here (neither trainer_state.json nor latest)", path);
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r')) t[--n] = 0;
    if (ckpt_step(t) < 0) { fail(err, errlen, "%s: does not name a checkpoint-STEP folder", f); free(t); return -1; }
    snprintf(out, cap, "%s/%s", path, t);
    free(t);
    snprintf(f, sizeof f, "%s/trainer_state.json", out);
    if (stat(f, &st) != 0) return fail(err, errlen, "%s: missing (named by %s/latest)", f, path);
    return 0;
}

int bt_ckpt_load_meta(const char *dir, bt_config *cfg, bt_opts *o, bt_state *s, char *err, size_t errlen) {
    char f[4200];
    snprintf(f, sizeof f, "%s/config.json", dir);
    if (bt_config_load_json(f, cfg, err, errlen)) return -1;
    snprintf(f, sizeof f, "%s/trainer_state.json", dir);
    return bt_state_read(f, o, s, err, errlen);
}

int bt_ckpt_load_tensors(const char *dir, const bt_layout *L, float *params, float *m, float *v, char *err, size_t errlen) {
    char f[4200];
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    if (bt_st_read(f, L, "", params, err, errlen)) return -1;
    if (!m || !v) return 0;
    snprintf(f, sizeof f, "%s/optimizer.safetensors", dir);
    if (bt_st_read(f, L, "exp_avg.", m, err, errlen)) return -1;
    return bt_st_read(f, L, "exp_avg_sq.", v, err, errlen);
}
