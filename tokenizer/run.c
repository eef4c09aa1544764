/* run.c - wp_run: see run.h. */
#include "tokenizer/run.h"
#include "pipeline/frame.h"
#include "pipeline/sio.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20)

typedef struct chunk {
    /* input */
    const char *file;
    uint64_t first_line;            /* line number of lines[0] */
    char *buf; size_t len, cap;     /* the lines, each followed by NUL */
    size_t *off; size_t nlines, offcap;
    /* output */
    char *out; size_t outlen, outcap;
    uint64_t docs, tokens;
    int err; char msg[1024];
    int done;
} chunk;

typedef struct {
    const wp_tokenizer *tok;
    int jsonl, bin;
    js_path path;
} config;

static int out_reserve(chunk *c, size_t more) {
    if (c->outlen + more <= c->outcap) return 0;
    size_t cap = c->outcap ? c->outcap : 1 << 16;
    while (cap < c->outlen + more) cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p) return -1;
    c->out = p; c->outcap = cap;
    return 0;
}

static size_t fmt_u32(char *p, uint32_t v) {
    char tmp[10]; size_t n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (size_t k = 0; k < n; k++) p[k] = tmp[n - 1 - k];
    return n;
}

static int emit(const config *cf, chunk *c, const wp_out *o) {
    if (cf->bin) {
        if (o->n > TS_MAX_DOC_TOKENS) {
            snprintf(c->msg, sizeof c->msg, "a document has %zu tokens, more than the token stream allows", o->n);
            return -1;
        }
        if (out_reserve(c, 4 + 2 * o->n) < 0) return -1;
        unsigned char *p = (unsigned char *)c->out + c->outlen;
        uint32_t n = (uint32_t)o->n;
        p[0] = (unsigned char)n; p[1] = (unsigned char)(n >> 8); p[2] = (unsigned char)(n >> 16); p[3] = (unsigned char)(n >> 24);
        p += 4;
        for (size_t k = 0; k < o->n; k++) { p[2 * k] = (unsigned char)o->ids[k]; p[2 * k + 1] = (unsigned char)(o->ids[k] >> 8); }
        c->outlen += 4 + 2 * o->n;
    } else {
        if (out_reserve(c, 11 * o->n + 1) < 0) return -1;
        char *p = c->out + c->outlen;
        for (size_t k = 0; k < o->n; k++) {
            if (k) *p++ = ' ';
            p += fmt_u32(p, o->ids[k]);
        }
        *p++ = '\n';
        c->outlen = (size_t)(p - c->out);
    }
    c->docs++; c->tokens += o->n;
    return 0;
}

/* Parses and tokenises every line of c into c->out; on the first bad line,
 * stops with c->err set and c->out holding the documents before it. */
static void process(const config *cf, chunk *c, wp_out *o, char **sbuf, size_t *scap) {
    c->outlen = 0; c->docs = c->tokens = 0; c->err = 0;
    for (size_t k = 0; k < c->nlines; k++) {
        const char *line = c->buf + c->off[k];
        size_t n = (k + 1 < c->nlines ? c->off[k + 1] - 1 : c->len - 1) - c->off[k];
        uint64_t lineno = c->first_line + k;
        const char *text = line; size_t tlen = n;
        if (cf->jsonl) {
            size_t s = 0;
            while (s < n && (line[s] == ' ' || line[s] == '\t' || line[s] == '\r')) s++;
            if (s == n) continue;                    /* a blank line holds no document */
            js_val v; char err[256];
            if (js_scan(line, n, &cf->path, 1, &v, err, sizeof err) < 0) {
                snprintf(c->msg, sizeof c->msg, "%s:%llu: malformed JSON: %s", c->file, (unsigned long long)lineno, err);
                c->err = 1; return;
            }
            if (v.type != JS_STRING) {
                snprintf(c->msg, sizeof c->msg, "%s:%llu: field \"%s%s%s\" is %s, not a string", c->file,
                         (unsigned long long)lineno, cf->path.key[0], cf->path.depth > 1 ? "..." : "",
                         cf->path.depth > 1 ? cf->path.key[cf->path.depth - 1] : "",
                         v.type == JS_ABSENT ? "absent" : "of another type");
                c->err = 1; return;
            }
            long sl = js_string(&v, sbuf, scap);
            if (sl < 0) { snprintf(c->msg, sizeof c->msg, "out of memory"); c->err = 1; return; }
            text = *sbuf; tlen = (size_t)sl;
        }
        if (wp_encode(cf->tok, text, tlen, o) < 0 || emit(cf, c, o) < 0) {
            if (!c->msg[0]) snprintf(c->msg, sizeof c->msg, "out of memory");
            snprintf(c->msg + strlen(c->msg), sizeof c->msg - strlen(c->msg), " (%s:%llu)", c->file, (unsigned long long)lineno);
            c->err = 1; return;
        }
    }
}

/* ---- the pool ---- */
typedef struct {
    const config *cf;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    chunk **queue; size_t qhead, qtail, qcap;   /* chunks waiting for a worker */
    int stop;
} pool;

static void *worker(void *arg) {
    pool *p = arg;
    wp_out o; memset(&o, 0, sizeof o);
    char *sbuf = NULL; size_t scap = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->qhead == p->qtail && !p->stop) pthread_cond_wait(&p->work, &p->mu);
        if (p->qhead == p->qtail) break;
        chunk *c = p->queue[p->qhead++ % p->qcap];
        pthread_mutex_unlock(&p->mu);
        process(p->cf, c, &o, &sbuf, &scap);
        pthread_mutex_lock(&p->mu);
        c->done = 1;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    wp_out_free(&o); free(sbuf);
    return NULL;
}

/* ---- the caller's side: read, hand out, write in order ---- */
typedef struct {
    const wp_run_opts *o;
    config cf;
    pool P;
    chunk *ring; size_t nring;
    int nthreads;
    size_t submitted, written;      /* chunk sequence numbers */
    wp_out o1; char *sbuf1; size_t scap1;   /* the caller's thread when there are no workers */
    wp_run_stats st;
    ts_totals tt;                   /* bin: what the trailer will say */
    int failed; char *err; size_t errlen;
} engine;

static void fail(engine *e, const char *msg) {
    if (!e->failed) snprintf(e->err, e->errlen, "%s", msg);
    e->failed = 1;
}

static void submit(engine *e, chunk *c) {
    if (e->nthreads) {
        pthread_mutex_lock(&e->P.mu);
        e->P.queue[e->P.qtail++ % e->P.qcap] = c;
        pthread_cond_signal(&e->P.work);
        pthread_mutex_unlock(&e->P.mu);
    } else { process(&e->cf, c, &e->o1, &e->sbuf1, &e->scap1); c->done = 1; }
    e->submitted++;
}

static int chunk_done(engine *e, chunk *c, int wait) {
    if (!e->nthreads) return 1;
    pthread_mutex_lock(&e->P.mu);
    while (wait && !c->done) pthread_cond_wait(&e->P.done, &e->P.mu);
    int d = c->done;
    pthread_mutex_unlock(&e->P.mu);
    return d;
}

/* Writes the oldest chunk in flight, waiting for it if need be. */
static void write_oldest(engine *e) {
    chunk *c = &e->ring[e->written % e->nring];
    chunk_done(e, c, 1);
    char msg[1200];
    if (!e->failed && c->outlen) {
        if (e->o->write(e->o->ud, c->out, c->outlen, msg, sizeof msg) < 0) fail(e, msg);
        else if (e->cf.bin) ts_totals_add_records(&e->tt, (const unsigned char *)c->out, c->outlen);
    }
    if (!e->failed) { e->st.docs += c->docs; e->st.tokens += c->tokens; }
    if (!e->failed && c->err) fail(e, c->msg);
    e->written++;
}

static int put(engine *e, const void *buf, size_t n) {
    char msg[1200];
    if (e->o->write(e->o->ud, buf, n, msg, sizeof msg) < 0) { fail(e, msg); return -1; }
    return 0;
}

/* Adds one line to the chunk being filled (*cp; a new one when NULL). */
static int add_line(engine *e, chunk **cp, const char *name, uint64_t lineno, const char *line, size_t n) {
    chunk *c = *cp;
    if (!c) {
        if (e->submitted - e->written == e->nring) write_oldest(e);
        if (e->failed) return -1;
        c = *cp = &e->ring[e->submitted % e->nring];
        c->file = name; c->first_line = lineno; c->len = 0; c->nlines = 0; c->done = 0; c->msg[0] = 0;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : CHUNK_BYTES + (1 << 16);
        while (cap < c->len + n + 1) cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb) { fail(e, "out of memory"); return -1; }
        c->buf = nb; c->cap = cap;
    }
    if (c->nlines == c->offcap) {
        size_t cap = c->offcap ? c->offcap * 2 : 4096;
        size_t *no = realloc(c->off, cap * sizeof *no);
        if (!no) { fail(e, "out of memory"); return -1; }
        c->off = no; c->offcap = cap;
    }
    c->off[c->nlines++] = c->len;
    memcpy(c->buf + c->len, line, n); c->buf[c->len + n] = 0;
    c->len += n + 1;
    e->st.bytes_in += n + 1;
    return 0;
}

/* Hands the chunk being filled to the workers and writes what is finished. */
static void flush(engine *e, chunk **cp) {
    if (!*cp) return;
    if ((*cp)->nlines) submit(e, *cp);
    *cp = NULL;
    while (e->written < e->submitted && !e->failed && chunk_done(e, &e->ring[e->written % e->nring], 0)) write_oldest(e);
    if (e->o->progress) e->o->progress(e->o->ud, &e->st);
}

/* Writes every chunk in flight (the documents before an error go out too). */
static void drain(engine *e) {
    while (e->written < e->submitted) write_oldest(e);
}

/* One input: its lines into chunks; stream records checked, not tokenised. */
static void read_input(engine *e, const char *path) {
    char msg[1200];
    sio *in = sio_open(path, msg, sizeof msg);
    if (!in) { fail(e, msg); return; }
    const char *name = strcmp(path, "-") ? path : "<stdin>";   /* outlives the reader: chunks name it */
    chunk *c = NULL;
    frame_state fs; memset(&fs, 0, sizeof fs);
    for (;;) {
        const char *line; size_t n;
        int r = sio_getline(in, &line, &n);
        if (r < 0) { flush(e, &c); drain(e); fail(e, sio_error(in)); break; }
        if (r == 0) {
            flush(e, &c);
            if (e->cf.jsonl && frame_finish(&fs, name, msg, sizeof msg) < 0) { drain(e); fail(e, msg); }
            break;
        }
        if (e->cf.jsonl && frame_is_record(line, n)) {
            flush(e, &c);       /* chunks hold consecutive lines */
            if (frame_record(&fs, line, n, name, sio_lineno(in), msg, sizeof msg) < 0) { drain(e); fail(e, msg); break; }
            continue;
        }
        fs.lines++;
        if (add_line(e, &c, name, sio_lineno(in), line, n) < 0) break;
        if (c->len >= CHUNK_BYTES) flush(e, &c);
    }
    sio_close(in);
}

int wp_run(const wp_tokenizer *tok, const char *const *paths, int npaths, const wp_run_opts *o,
           wp_run_stats *st, char *err, size_t errlen) {
    engine E; memset(&E, 0, sizeof E);
    engine *e = &E;
    e->o = o; e->err = err; e->errlen = errlen;
    e->cf.tok = tok; e->cf.jsonl = o->jsonl; e->cf.bin = o->bin; e->cf.path = o->path;
    e->tt.checksum = TS_CHECKSUM_INIT;
    int threads = o->threads > 1 ? o->threads : 1;
    e->nthreads = threads > 1 ? threads : 0;
    e->nring = (size_t)(threads > 1 ? 2 * threads + 2 : 1);
    e->ring = calloc(e->nring, sizeof *e->ring);
    e->P.cf = &e->cf; e->P.qcap = e->nring; e->P.queue = calloc(e->nring, sizeof *e->P.queue);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!e->ring || !e->P.queue || !tid) { free(e->ring); free(e->P.queue); free(tid); snprintf(err, errlen, "out of memory"); return -1; }
    pthread_mutex_init(&e->P.mu, NULL); pthread_cond_init(&e->P.work, NULL); pthread_cond_init(&e->P.done, NULL);
    {   /* pipeline/json.c fills a table on its first call: do that before the workers start */
        js_val v0; char e0[64];
        (void)js_scan("{}", 2, &e->cf.path, 1, &v0, e0, sizeof e0);
    }
    int started = 0;
    for (; started < e->nthreads; started++)
        if (pthread_create(&tid[started], NULL, worker, &e->P) != 0) { fail(e, "cannot start a worker thread"); break; }

    if (o->bin && !e->failed) {
        unsigned char hb[TS_HEADER_SIZE]; ts_header_pack(&o->header, hb);
        put(e, hb, sizeof hb);
    }
    for (int fi = 0; fi < (npaths ? npaths : 1) && !e->failed; fi++) read_input(e, npaths ? paths[fi] : "-");
    drain(e);
    if (o->bin && !e->failed) {
        unsigned char tb[TS_TRAILER_SIZE]; ts_trailer_pack(&e->tt, tb);
        put(e, tb, sizeof tb);
    }

    pthread_mutex_lock(&e->P.mu); e->P.stop = 1; pthread_cond_broadcast(&e->P.work); pthread_mutex_unlock(&e->P.mu);
    for (int k = 0; k < started; k++) pthread_join(tid[k], NULL);
    pthread_mutex_destroy(&e->P.mu); pthread_cond_destroy(&e->P.work); pthread_cond_destroy(&e->P.done);
    for (size_t k = 0; k < e->nring; k++) { free(e->ring[k].buf); free(e->ring[k].off); free(e->ring[k].out); }
    free(e->ring); free(e->P.queue); free(tid); free(e->sbuf1); wp_out_free(&e->o1);
    *st = e->st;
    return e->failed ? -1 : 0;
}
