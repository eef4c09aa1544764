/* run.c - flt_run: files -> flt_eval -> sout, at the speed of zstd.
 *
 * Two threads.  The reader decompresses (pipeline/sio) into a ring of NBLK
 * blocks of BLK bytes, each cut after its last '\n' (the partial line moves
 * to the next block; a block grows when one line does not fit), one file per
 * block.  The caller's thread splits blocks into lines, decides each line,
 * and writes runs of consecutive kept lines with one sout_write, straight
 * from the block.  Memory: NBLK blocks plus the longest line, whatever the
 * input size.  On an error the reader stops at its next block. */
#include "filters/filter.h"
#include "pipeline/frame.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLK ((size_t)4 << 20)
#define NBLK 4

typedef struct {
    char *p; size_t len, cap;
    int file;           /* index into paths */
    int last;           /* last block of its file */
    uint64_t raw;       /* bytes read from the file, set on its last block */
} blk;

typedef struct {
    pthread_mutex_t mu; pthread_cond_t cv;
    blk b[NBLK];
    uint64_t posted, consumed;   /* block sequence numbers; block = seq % NBLK */
    int done, failed, stop;
    char err[1024];
    const char *const *paths; int npaths;
} ring;

/* Reader side: waits until block `seq` is free; NULL when asked to stop. */
static blk *take_free(ring *g, uint64_t seq) {
    pthread_mutex_lock(&g->mu);
    while (!g->stop && seq - g->consumed >= NBLK) pthread_cond_wait(&g->cv, &g->mu);
    blk *b = g->stop ? NULL : &g->b[seq % NBLK];
    pthread_mutex_unlock(&g->mu);
    return b;
}

static void post(ring *g) {
    pthread_mutex_lock(&g->mu);
    g->posted++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void reader_fail(ring *g, const char *msg) {
    pthread_mutex_lock(&g->mu);
    if (!g->failed) { g->failed = 1; snprintf(g->err, sizeof g->err, "%s", msg); }
    pthread_mutex_unlock(&g->mu);
}

/* Blocks come from sio_big_alloc (huge pages, as zstd's buffers): 16 MiB
 * in 4 KiB pages is 4,096 page faults, costly in a VM. */
static int grow(blk *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t c = b->cap ? b->cap : BLK;
    while (c < need) c *= 2;
    void *np = sio_big_alloc(c);
    if (!np) return -1;
    if (b->len) memcpy(np, b->p, b->len);
    free(b->p);
    b->p = np; b->cap = c;
    return 0;
}

static void *reader(void *arg) {
    ring *g = arg;
    uint64_t seq = 0;
    char *carry = NULL; size_t ncarry = 0, carrycap = 0;
    char e[1024];
    int nfiles = g->npaths ? g->npaths : 1;
    for (int fi = 0; fi < nfiles; fi++) {
        const char *path = g->npaths ? g->paths[fi] : "-";
        sio *r = sio_open(path, e, sizeof e);
        if (!r) { reader_fail(g, e); goto out; }
        int eof = 0;
        while (!eof) {
            blk *b = take_free(g, seq);
            if (!b) { sio_close(r); goto out; }
            if (grow(b, ncarry > BLK / 2 ? ncarry * 2 : BLK) < 0) goto oom;
            if (ncarry) memcpy(b->p, carry, ncarry);
            b->len = ncarry; ncarry = 0;
            b->file = fi; b->last = 0; b->raw = 0;
            for (;;) {
                while (b->len < b->cap) {
                    long k = sio_read(r, b->p + b->len, b->cap - b->len);
                    if (k < 0) { reader_fail(g, sio_error(r)); sio_close(r); goto out; }
                    if (k == 0) { eof = 1; break; }
                    b->len += (size_t)k;
                }
                if (eof) break;
                char *nl = memrchr(b->p, '\n', b->len);
                if (nl) {
                    size_t keep = (size_t)(nl + 1 - b->p);
                    ncarry = b->len - keep;
                    if (ncarry > carrycap) {
                        char *nc = realloc(carry, ncarry);
                        if (!nc) goto oom;
                        carry = nc; carrycap = ncarry;
                    }
                    memcpy(carry, nl + 1, ncarry);
                    b->len = keep;
                    break;
                }
                if (grow(b, b->cap * 2) < 0) goto oom;       /* one line longer than the block */
            }
            if (eof) { b->last = 1; b->raw = sio_offset_in(r); }
            seq++;
            post(g);
        }
        sio_close(r);
        continue;
oom:
        snprintf(e, sizeof e, "%s: out of memory reading a line near byte %llu", sio_name(r),
                 (unsigned long long)sio_offset_out(r));
        reader_fail(g, e);
        sio_close(r);
        goto out;
    }
out:
    free(carry);
    pthread_mutex_lock(&g->mu);
    g->done = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Consumer side: block `seq`, or NULL when the reader has finished. */
static blk *take_full(ring *g, uint64_t seq) {
    pthread_mutex_lock(&g->mu);
    while (seq >= g->posted && !g->done) pthread_cond_wait(&g->cv, &g->mu);
    blk *b = seq < g->posted ? &g->b[seq % NBLK] : NULL;
    pthread_mutex_unlock(&g->mu);
    return b;
}

static void give_back(ring *g) {
    pthread_mutex_lock(&g->mu);
    g->consumed++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int emit(sout *out, const char *p, size_t n, char *err, size_t errlen) {
    if (n && sout_write(out, p, n) < 0) { snprintf(err, errlen, "%s", sout_error(out)); return -1; }
    return 0;
}

/* Decides the lines of one block and writes the kept ones.  *lineno counts
 * lines of the current file. */
static int do_block(const flt_rules *r, const blk *b, const char *name, uint64_t *lineno, frame_state *fs, sout *out,
                    const flt_run_opts *o, flt_stats *st, char *err, size_t errlen) {
    const char *p = b->p, *e = b->p + b->len, *run = NULL;
    char why[512], msg[1024];
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(e - p);
        (*lineno)++;
        st->bytes_in += n + (nl != NULL);
        flt_verdict v;
        if (frame_is_record(p, n)) {     /* a stream record (pipeline/frame.h): checked, never a document */
            if (emit(out, run, run ? (size_t)(p - run) : 0, err, errlen) < 0) return -1;
            run = NULL;
            if (frame_record(fs, p, n, name, *lineno, err, errlen) < 0) return -1;
            p = nl ? nl + 1 : e;
            continue;
        }
        fs->lines++;
        if (flt_eval(r, p, n, &v, why, sizeof why) < 0) {
            if (emit(out, run, run ? (size_t)(p - run) : 0, err, errlen) < 0) return -1;
            run = NULL;
            snprintf(msg, sizeof msg, "%s: line %llu: %s", name, (unsigned long long)*lineno, why);
            if (!o || !o->skip_malformed) { snprintf(err, errlen, "%s", msg); return -1; }
            st->malformed++;
            if (o->on_skip) o->on_skip(o->ud, msg);
        } else {
            st->documents++;
            st->unannotated += (uint64_t)v.unannotated;
            st->no_url += (uint64_t)v.no_url;
            if (v.drop) {
                st->dropped++;
                for (int k = 0; k < FLT_NREASONS; k++) if (v.drop >> k & 1) st->by_reason[k]++;
                if (v.drop >> FLT_R_UT1 & 1) st->ut1_by_kind[v.ut1.kind]++;
                if (emit(out, run, run ? (size_t)(p - run) : 0, err, errlen) < 0) return -1;
                run = NULL;
            } else {
                st->kept++;
                st->bytes_out += n + 1;
                if (!run) run = p;
                if (!nl) {      /* a last line without '\n' gets one */
                    if (emit(out, run, (size_t)(e - run), err, errlen) < 0 || emit(out, "\n", 1, err, errlen) < 0) return -1;
                    run = NULL;
                }
            }
        }
        p = nl ? nl + 1 : e;
    }
    return emit(out, run, run ? (size_t)(e - run) : 0, err, errlen);
}

int flt_run(const flt_rules *r, const char *const *paths, int npaths, sout *out,
            const flt_run_opts *o, flt_stats *st, char *err, size_t errlen) {
    ring *g = calloc(1, sizeof *g);
    if (!g) { snprintf(err, errlen, "out of memory"); return -1; }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->paths = paths; g->npaths = npaths;
    pthread_t th;
    if (pthread_create(&th, NULL, reader, g) != 0) {
        snprintf(err, errlen, "cannot start the reader thread");
        free(g); return -1;
    }
    int rc = 0, cur = -1;
    uint64_t lineno = 0;
    frame_state fs;
    for (uint64_t seq = 0;; seq++) {
        blk *b = take_full(g, seq);
        if (!b) break;
        if (b->file != cur) { cur = b->file; lineno = 0; memset(&fs, 0, sizeof fs); }
        const char *name = npaths ? paths[cur] : "<stdin>";
        if (!strcmp(name, "-")) name = "<stdin>";
        rc = do_block(r, b, name, &lineno, &fs, out, o, st, err, errlen);
        if (b->last) {
            st->files++; st->bytes_in_raw += b->raw;
            if (rc == 0) rc = frame_finish(&fs, name, err, errlen);
        }
        give_back(g);
        if (rc < 0) break;
        if (o && o->on_block) o->on_block(o->ud);
    }
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(th, NULL);
    if (rc == 0 && g->failed) { snprintf(err, errlen, "%s", g->err); rc = -1; }
    for (int i = 0; i < NBLK; i++) free(g->b[i].p);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return rc;
}
