/* fetch.c - the download engine: a libcurl multi loop driving one state
 * machine per job (see fetch.h for the guarantees).
 *
 *   queued -> [check existing final file] -> transfer <-> wait (back-off)
 *          -> verify (hasher catches up, fsync) -> rename -> done
 *
 * Redirects are not left to libcurl: a 3xx ends the request and the engine
 * issues the next one itself, adding "Authorization: Bearer" only when the
 * next URL has the origin of the job's first URL.  A retry always starts
 * again from the first URL (CDN links are signed and expire).
 *
 * Three sinks: a .part file, a file descriptor (stdout, hashed inline,
 * resumed by skipping what was already written) and memory (checksum lists).
 * A .part download uses three helper threads, so that the transfer's thread
 * only receives and copies into 1 MiB buffers: a writer (pwrite of a ring of
 * buffers), a hasher (reads the file back from the page cache behind the
 * writer, so a resumed .part is hashed while the rest arrives) and a flusher
 * (fdatasync every 32 MiB, so the one before the rename is short). */
#include "pipeline/atomic.h"
#include "pipeline/fetch.h"
#include "pipeline/sha256.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the hasher: sha256 of a file that is still being written ------------ */

/* A download hands its body over in WBUF-byte buffers, a ring of NBUF of
 * them, to the writer thread (pwrite), so the copy into the page cache (the
 * costliest step of a download on the VM measured) overlaps the receiving. */
enum { WBUF = 1 << 20, NBUF = 4 };

typedef struct hasher {
    pthread_t th, fth, wth;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* wakes the hasher */
    pthread_cond_t fcv;     /* wakes the flusher */
    pthread_cond_t wcv;     /* wakes the writer */
    pthread_cond_t mcv;     /* wakes the transfer's thread: a buffer came free */
    int fd;                 /* pread, pwrite */
    CURLM *wake;            /* curl_multi_wakeup when a result is ready */
    int sync;               /* a download: fdatasync before reporting, flusher and writer threads */
    char *rb[NBUF];         /* the ring (downloads) */
    size_t rlen[NBUF];
    uint64_t rat[NBUF];     /* file offset of each buffer */
    /* shared, under mu */
    unsigned head, wtail;   /* buffers handed over, buffers written */
    int werr;               /* errno of a failed pwrite (the later buffers are dropped) */
    uint64_t written;       /* bytes of this generation in the file */
    uint64_t flushed;       /* of which the flusher's last fdatasync covered */
    int flush_errno;        /* a failed fdatasync of the flusher (sticky: the
                               kernel reports a write-back error only once) */
    unsigned gen;           /* bumped when the file is truncated */
    int writer_done;        /* no more bytes will come in this generation */
    int cancel;
    int finished;           /* result for generation fin_gen is ready */
    unsigned fin_gen;
    char hex[65];
    int io_errno;
} hasher;

static void *hasher_main(void *arg) {
    hasher *h = arg;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    sha256_ctx c;
    sha256_init(&c);
    uint64_t pos = 0;
    pthread_mutex_lock(&h->mu);
    unsigned mygen = h->gen;
    int failed = 0;
    if (!buf) { h->io_errno = ENOMEM; failed = 1; }
    for (;;) {
        while (!h->cancel && h->gen == mygen && (failed || h->finished || (pos >= h->written && !h->writer_done)))
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->cancel) break;
        if (h->gen != mygen) {                /* truncated: start over */
            mygen = h->gen; pos = 0; sha256_init(&c); failed = 0; h->io_errno = 0;
            continue;
        }
        if (pos >= h->written && h->writer_done) {
            unsigned char d[32];
            sha256_final(&c, d);
            pthread_mutex_unlock(&h->mu);
            int e = 0;
            if (h->sync && fdatasync(h->fd) < 0 && errno != EINVAL) e = errno;
            pthread_mutex_lock(&h->mu);
            if (!e) e = h->flush_errno;
            if (h->gen == mygen) {
                sha256_hex(d, h->hex);
                h->io_errno = e;
                h->finished = 1; h->fin_gen = mygen;
                curl_multi_wakeup(h->wake);
            }
            continue;
        }
        uint64_t avail = h->written - pos;
        pthread_mutex_unlock(&h->mu);
        size_t want = avail < CHUNK ? (size_t)avail : CHUNK;
        ssize_t k = pread(h->fd, buf, want, (off_t)pos);
        int e = errno;
        if (k > 0) {
            sha256_update(&c, buf, (size_t)k);
            pos += (uint64_t)k;
        }
        pthread_mutex_lock(&h->mu);
        if (h->gen != mygen) continue;        /* the bytes may be stale: loop resets */
        if (k < 0 && e == EINTR) continue;
        if (k <= 0) {                         /* a file shorter than written: report */
            h->io_errno = k < 0 ? e : EIO;
            h->finished = 1; h->fin_gen = mygen; h->hex[0] = 0; failed = 1;
            curl_multi_wakeup(h->wake);
        }
    }
    pthread_mutex_unlock(&h->mu);
    free(buf);
    return NULL;
}

/* The flusher (downloads only): an fdatasync each time FLUSH_STEP more bytes
 * are in the file, so that the disk takes the file while it arrives and the
 * fdatasync before the rename has only the last few MiB left.  It has its own
 * thread because an fdatasync blocks for as long as the disk takes: in the
 * hasher's thread it held the hashing back (measured: the hash then finished
 * up to a second after the last byte came in).  sync_file_range, used
 * before, starts the write-back but leaves the disk's volatile cache to the
 * final fdatasync: on this VM's virtual disk that flush was 0.3-0.5 s per
 * GiB at the end.  See bench/results/fetch.md. */
enum { FLUSH_STEP = 32 << 20 };

static void *flusher_main(void *arg) {
    hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->cancel && (h->writer_done || h->written - h->flushed < FLUSH_STEP))
            pthread_cond_wait(&h->fcv, &h->mu);
        if (h->cancel) break;
        unsigned g = h->gen;
        uint64_t upto = h->written;
        pthread_mutex_unlock(&h->mu);
        int r = fdatasync(h->fd), e = errno;
        pthread_mutex_lock(&h->mu);
        if (r < 0 && e != EINVAL && !h->flush_errno) h->flush_errno = e;
        if (h->gen == g) h->flushed = upto;
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static int write_all_at(int fd, const char *p, size_t n, uint64_t at) {
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k; n -= (size_t)k; at += (uint64_t)k;
    }
    return 0;
}

/* The writer: writes the ring's buffers in order, then lets the hasher (and
 * the flusher) know that the file has grown. */
static void *writer_main(void *arg) {
    hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->cancel && h->wtail == h->head)
            pthread_cond_wait(&h->wcv, &h->mu);
        if (h->cancel) break;
        unsigned i = h->wtail % NBUF;
        int failed = h->werr;
        pthread_mutex_unlock(&h->mu);
        int r = failed ? 0 : write_all_at(h->fd, h->rb[i], h->rlen[i], h->rat[i]), e = errno;
        pthread_mutex_lock(&h->mu);
        if (r < 0 && !h->werr) h->werr = e ? e : EIO;
        if (!h->werr) {
            h->written += h->rlen[i];
            pthread_cond_signal(&h->cv);
            if (h->written - h->flushed >= FLUSH_STEP) pthread_cond_signal(&h->fcv);
        }
        h->wtail++;
        pthread_cond_signal(&h->mcv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* The caller's threads stop (and are joined) in reverse. */
static void hasher_cancel(hasher *h, int nthreads) {
    pthread_mutex_lock(&h->mu);
    h->cancel = 1;
    pthread_cond_signal(&h->cv);
    pthread_cond_signal(&h->fcv);
    pthread_cond_signal(&h->wcv);
    pthread_mutex_unlock(&h->mu);
    if (nthreads > 2) pthread_join(h->wth, NULL);
    if (nthreads > 1) pthread_join(h->fth, NULL);
    if (nthreads > 0) pthread_join(h->th, NULL);
    for (int i = 0; i < NBUF; i++) { free(h->rb[i]); h->rb[i] = NULL; }
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv); pthread_cond_destroy(&h->fcv);
    pthread_cond_destroy(&h->wcv); pthread_cond_destroy(&h->mcv);
}

/* sync: a download (ring, writer, flusher, fdatasync at the end); else only
 * hashes the `written` bytes already in the file. */
static int hasher_start(hasher *h, int fd, uint64_t written, int writer_done, int sync, CURLM *wake) {
    memset(h, 0, sizeof *h);
    h->fd = fd; h->written = written; h->writer_done = writer_done; h->sync = sync; h->wake = wake;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL); pthread_cond_init(&h->fcv, NULL);
    pthread_cond_init(&h->wcv, NULL); pthread_cond_init(&h->mcv, NULL);
    int n = 0;
    for (int i = 0; sync && i < NBUF; i++)
        if (posix_memalign((void **)&h->rb[i], 4096, WBUF) != 0) { h->rb[i] = NULL; goto fail; }
    if (pthread_create(&h->th, NULL, hasher_main, h) != 0) goto fail;
    n++;
    if (!sync) return 0;
    if (pthread_create(&h->fth, NULL, flusher_main, h) != 0) goto fail;
    n++;
    if (pthread_create(&h->wth, NULL, writer_main, h) != 0) goto fail;
    return 0;
fail:
    hasher_cancel(h, n);
    return -1;
}

/* A free buffer of the ring for the next body bytes (waits for the writer
 * when all NBUF are taken). */
static char *ring_slot(hasher *h) {
    pthread_mutex_lock(&h->mu);
    while (h->head - h->wtail >= NBUF) pthread_cond_wait(&h->mcv, &h->mu);
    char *b = h->rb[h->head % NBUF];
    pthread_mutex_unlock(&h->mu);
    return b;
}

/* Hands the buffer from ring_slot over: n bytes for file offset `at`.
 * Returns the errno of an earlier failed write, or 0. */
static int ring_submit(hasher *h, size_t n, uint64_t at) {
    pthread_mutex_lock(&h->mu);
    unsigned i = h->head % NBUF;
    h->rlen[i] = n; h->rat[i] = at;
    h->head++;
    pthread_cond_signal(&h->wcv);
    int e = h->werr;
    pthread_mutex_unlock(&h->mu);
    return e;
}

/* Waits until every buffer handed over is in the file; the errno of a
 * failed write, or 0. */
static int ring_drain(hasher *h) {
    pthread_mutex_lock(&h->mu);
    while (h->wtail != h->head) pthread_cond_wait(&h->mcv, &h->mu);
    int e = h->werr;
    pthread_mutex_unlock(&h->mu);
    return e;
}

static void hasher_done_writing(hasher *h) {
    pthread_mutex_lock(&h->mu);
    h->writer_done = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* New generation: the file is about to be truncated to 0. */
static void hasher_reset(hasher *h) {
    pthread_mutex_lock(&h->mu);
    h->gen++; h->written = h->flushed = 0; h->writer_done = 0; h->finished = 0; h->hex[0] = 0; h->io_errno = 0;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* 1 with the digest (or io error) when the current generation is hashed. */
static int hasher_result(hasher *h, char hex[65], int *io_errno) {
    pthread_mutex_lock(&h->mu);
    int r = h->finished && h->fin_gen == h->gen;
    if (r) { memcpy(hex, h->hex, 65); *io_errno = h->io_errno; }
    pthread_mutex_unlock(&h->mu);
    return r;
}

static void hasher_stop(hasher *h) { hasher_cancel(h, h->sync ? 3 : 1); }

/* ---- per-job state ------------------------------------------------------- */

enum sink { SINK_FILE, SINK_FD, SINK_MEM };
enum xstate { X_QUEUED, X_CHECK, X_XFER, X_WAIT, X_VERIFY, X_END };

typedef struct xfer {
    struct engine *e;
    fetch_job *job;
    enum xstate st;
    enum sink sink;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;               /* URL of the current request (after redirects) */
    int redirects;
    int fails;               /* failed attempts in a row without progress */
    int64_t wake_ms;
    /* SINK_FILE */
    char part[4200];
    int fd;
    char *wbuf;              /* body bytes not yet written to the .part */
    size_t wlen;
    uint64_t wat;            /* file offset of wbuf[0] */
    int64_t wsince;          /* when wbuf got its first byte (ms) */
    int hashing;             /* hasher running */
    hasher h;
    int checking_final;      /* hashing an existing final file (verify_existing) */
    int restarted;           /* a stale .part was dropped once already */
    /* SINK_FD */
    int outfd;
    sha256_ctx sc;
    uint64_t skip;
    uint64_t verified_before; /* bytes of earlier, verified jobs already written */
    /* SINK_MEM */
    char *mem;
    size_t memlen, memcap, memmax;
    /* the current attempt */
    uint64_t from;           /* Range start asked (0: none) */
    long code;
    int hdr_done, discard, has_cr, bad_range;
    uint64_t cr_first, cr_last, cr_total;
    long retry_after_ms;
    uint64_t got;            /* body bytes stored by this attempt */
    int sink_err;
    char sink_msg[4400];
    char curl_err[CURL_ERROR_SIZE];
} xfer;

typedef struct engine {
    const fetch_opts *o;
    CURLM *multi;
    fetch_job *jobs;
    size_t njobs;
    xfer *x;
    size_t *act;             /* indices of jobs not queued and not ended */
    size_t nact;
    uint32_t rng;
    int stop;                /* a fatal failure: stop everything */
    int stop_on_failure;     /* fetch_stream: the first failure is fatal */
    char stop_why[600];
    int64_t last_tick;
} engine;

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint32_t rnd(engine *e) {  /* xorshift32 */
    uint32_t v = e->rng;
    v ^= v << 13; v ^= v >> 17; v ^= v << 5;
    return e->rng = v;
}

static void emit(engine *e, enum fetch_event_kind k, fetch_job *j, long delay, int attempt, const char *msg) {
    if (!e->o->on_event) return;
    fetch_event ev = {k, j, e->jobs, e->njobs, delay, attempt, msg};
    e->o->on_event(&ev, e->o->ctx);
}

/* "HTTP 404 Not Found" */
static const char *http_str(long code, char *buf, size_t len) {
    const char *t = "";
    switch (code) {
    case 400: t = " Bad Request"; break; case 401: t = " Unauthorized"; break;
    case 403: t = " Forbidden"; break; case 404: t = " Not Found"; break;
    case 408: t = " Request Timeout"; break; case 410: t = " Gone"; break;
    case 416: t = " Range Not Satisfiable"; break; case 429: t = " Too Many Requests"; break;
    case 500: t = " Internal Server Error"; break; case 502: t = " Bad Gateway"; break;
    case 503: t = " Service Unavailable"; break; case 504: t = " Gateway Timeout"; break;
    }
    snprintf(buf, len, "HTTP %ld%s", code, t);
    return buf;
}

/* ---- sinks ---------------------------------------------------------------- */


/* libcurl hands the body over in pieces of at most 16 KiB: gather them into
 * WBUF bytes per write (65536 pwrite calls per GiB were 35 s of strace time
 * before).  A slow transfer still writes what it has every WBUF_MS, so the
 * .part (and the progress a resume starts from) stays close behind. */
enum { WBUF_MS = 250 };

static void write_failed(xfer *x, int e) {
    x->sink_err = 1;
    snprintf(x->sink_msg, sizeof x->sink_msg, "%s: write error: %s", x->part, strerror(e));
}

/* Hands the gathered body bytes to the writer thread. */
static int flush_wbuf(xfer *x) {
    size_t n = x->wlen;
    if (!n) return 0;
    x->wlen = 0; x->wbuf = NULL;
    int e = ring_submit(&x->h, n, x->wat);
    x->wat += n;
    if (e) { write_failed(x, e); return -1; }
    return 0;
}

/* All the body bytes received so far are in the .part (end of an attempt). */
static int drain_wbuf(xfer *x) {
    if (flush_wbuf(x) < 0) return -1;
    int e = ring_drain(&x->h);
    if (e) { write_failed(x, e); return -1; }
    return 0;
}

/* Drops the bytes of a .part file: the next body starts the file again. */
static int restart_file(xfer *x) {
    x->wlen = 0; x->wat = 0;
    ring_drain(&x->h);   /* (none in flight: attempts drain when they end) */
    hasher_reset(&x->h);
    x->job->have = 0;
    if (ftruncate(x->fd, 0) < 0) {
        x->sink_err = 1;
        snprintf(x->sink_msg, sizeof x->sink_msg, "%s: cannot truncate: %s", x->part, strerror(errno));
        return -1;
    }
    return 0;
}

/* End of the response headers: decide what to do with the body. */
static void on_headers_done(xfer *x) {
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    x->code = code;
    x->hdr_done = 1;
    if (code < 200 || code > 299) { x->discard = 1; return; }
    uint64_t skip = 0;
    enum fetch_range_action a = x->sink == SINK_MEM ? FETCH_APPEND
        : fetch_range_plan(x->from, code, x->has_cr, x->cr_first, x->sink == SINK_FILE, &skip);
    curl_off_t cl = -1;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    switch (a) {
    case FETCH_APPEND:
        if (code == 206 && x->cr_total != UINT64_MAX) x->job->total = x->cr_total;
        else if (cl >= 0) x->job->total = x->from + (uint64_t)cl;
        break;
    case FETCH_RESTART: {
        char m[160];
        snprintf(m, sizeof m, "server ignored the Range request (HTTP %ld): starting again from byte 0", code);
        restart_file(x);
        emit(x->e, FETCH_EV_NOTE, x->job, 0, 0, m);
        if (cl >= 0) x->job->total = (uint64_t)cl;
        break;
    }
    case FETCH_SKIP: {
        char m[200];
        snprintf(m, sizeof m, "server ignored the Range request (HTTP %ld): skipping the %llu bytes already written",
                 code, (unsigned long long)skip);
        emit(x->e, FETCH_EV_NOTE, x->job, 0, 0, m);
        x->skip = skip;
        if (cl >= 0) x->job->total = (uint64_t)cl;
        break;
    }
    case FETCH_BAD_RANGE:
        x->bad_range = 1; x->discard = 1;
        break;
    }
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    size_t n = sz * nm;
    if (n >= 5 && !strncmp(p, "HTTP/", 5)) {           /* a new response (after a 1xx) */
        x->has_cr = 0; x->retry_after_ms = -1; x->hdr_done = 0; x->discard = 0;
        return n;
    }
    if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 || code == 0) on_headers_done(x);
        return n;
    }
    char line[512];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, p, k); line[k] = 0;
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = 0;
    char *v = colon + 1;
    if (!strcasecmp(line, "Retry-After")) {
        x->retry_after_ms = fetch_retry_after_ms(v, time(NULL), x->e->o->retry_after_cap_ms);
    } else if (!strcasecmp(line, "Content-Range")) {
        x->has_cr = fetch_parse_content_range(v, &x->cr_first, &x->cr_last, &x->cr_total) == 0;
    }
    return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    size_t n = sz * nm;
    if (!x->hdr_done) on_headers_done(x);
    if (x->discard || x->sink_err) return x->sink_err ? 0 : n;
    const char *q = p;
    size_t m = n;
    if (x->skip) {
        size_t s = x->skip < m ? (size_t)x->skip : m;
        x->skip -= s; q += s; m -= s;
        if (!m) return n;
    }
    fetch_job *j = x->job;
    switch (x->sink) {
    case SINK_FILE:
        for (const char *r = q, *end = q + m; r < end;) {
            if (!x->wbuf) x->wbuf = ring_slot(&x->h);
            if (!x->wlen) { x->wat = j->have + (uint64_t)(r - q); x->wsince = now_ms(); }
            size_t k = WBUF - x->wlen;
            if (k > (size_t)(end - r)) k = (size_t)(end - r);
            memcpy(x->wbuf + x->wlen, r, k);
            x->wlen += k; r += k;
            if ((x->wlen == WBUF || now_ms() - x->wsince >= WBUF_MS) && flush_wbuf(x) < 0) return 0;
        }
        break;
    case SINK_FD:
        if (fd_write_all(x->outfd, q, m) < 0) {
            x->sink_err = 1;
            snprintf(x->sink_msg, sizeof x->sink_msg, "%s", errno == EPIPE ? "standard output was closed"
                     : "write error on standard output");
            if (errno != EPIPE) snprintf(x->sink_msg + strlen(x->sink_msg), sizeof x->sink_msg - strlen(x->sink_msg),
                                         ": %s", strerror(errno));
            return 0;
        }
        sha256_update(&x->sc, q, m);
        break;
    case SINK_MEM:
        if (x->memlen + m > x->memmax) {
            x->sink_err = 1;
            snprintf(x->sink_msg, sizeof x->sink_msg, "larger than %zu bytes: not a checksum list?", x->memmax);
            return 0;
        }
        if (x->memlen + m + 1 > x->memcap) {
            size_t nc = x->memcap ? x->memcap : 4096;
            while (nc < x->memlen + m + 1) nc *= 2;
            char *nb = realloc(x->mem, nc);
            if (!nb) { x->sink_err = 1; snprintf(x->sink_msg, sizeof x->sink_msg, "out of memory"); return 0; }
            x->mem = nb; x->memcap = nc;
        }
        memcpy(x->mem + x->memlen, q, m);
        x->memlen += m;
        break;
    }
    j->have += m;
    x->got += m;
    return n;
}

/* ---- attempts ------------------------------------------------------------- */

static void finish(xfer *x, enum fetch_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void release(xfer *x, int keep_part) {
    if (x->easy) { curl_multi_remove_handle(x->e->multi, x->easy); curl_easy_cleanup(x->easy); x->easy = NULL; }
    curl_slist_free_all(x->hdrs); x->hdrs = NULL;
    if (keep_part && x->fd >= 0 && x->hashing && x->h.sync) drain_wbuf(x);   /* what arrived stays for a resume */
    x->wlen = 0; x->wbuf = NULL;
    if (x->hashing) { hasher_stop(&x->h); x->hashing = 0; }
    if (x->sink == SINK_FILE && x->fd >= 0) {
        struct stat st;
        if (keep_part && fstat(x->fd, &st) == 0 && st.st_size == 0) keep_part = 0;   /* nothing to resume */
        close(x->fd); x->fd = -1;
        if (!keep_part) unlink(x->part);
    }
    free(x->url); x->url = NULL;
}

static void finish(xfer *x, enum fetch_status s, const char *fmt, ...) {
    fetch_job *j = x->job;
    j->status = s;
    j->err[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, sizeof j->err, fmt, ap);
        va_end(ap);
    }
    /* A .part is kept for a later run unless its content is known bad or
     * the file is not on the server. */
    release(x, s != FETCH_E_CHECKSUM && s != FETCH_E_NOTFOUND);
    x->st = X_END;
    j->phase = FETCH_PH_END;
    engine *e = x->e;
    for (size_t i = 0; i < e->nact; i++)
        if (&e->x[e->act[i]] == x) { e->act[i] = e->act[--e->nact]; break; }
    if (s != FETCH_OK && s != FETCH_SKIPPED && s != FETCH_E_CANCELLED) {
        if ((s == FETCH_E_AUTH || e->stop_on_failure) && !e->stop) {
            e->stop = 1;
            snprintf(e->stop_why, sizeof e->stop_why, "%s", j->err);
        }
    }
    emit(e, FETCH_EV_DONE, j, 0, 0, NULL);
}

static int start_attempt(xfer *x) {
    engine *e = x->e;
    const fetch_opts *o = e->o;
    fetch_job *j = x->job;
    x->code = 0; x->hdr_done = 0; x->discard = 0; x->has_cr = 0; x->bad_range = 0;
    x->cr_first = x->cr_last = x->cr_total = 0;
    x->retry_after_ms = -1; x->got = 0; x->skip = 0; x->curl_err[0] = 0;
    if (x->sink == SINK_MEM) { x->memlen = 0; j->have = 0; }
    x->from = j->have;
    if (!x->easy) x->easy = curl_easy_init();
    else curl_easy_reset(x->easy);
    curl_slist_free_all(x->hdrs); x->hdrs = NULL;
    if (!x->easy) { finish(x, FETCH_E_IO, "%s: cannot create a transfer (out of memory)", j->name); return -1; }
    CURL *c = x->easy;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o->stall_bytes);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->stall_secs);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "symbert-oscar-fetch/1");
    if (x->from) {
        char r[48];
        snprintf(r, sizeof r, "%llu-", (unsigned long long)x->from);
        curl_easy_setopt(c, CURLOPT_RANGE, r);
    }
    /* The token goes only to the origin of the job's first URL. */
    if (o->token && *o->token && fetch_same_origin(x->url, j->url)) {
        size_t L = strlen(o->token) + 32;
        char *h = malloc(L);
        if (!h) { finish(x, FETCH_E_IO, "%s: out of memory", j->name); return -1; }
        snprintf(h, L, "Authorization: Bearer %s", o->token);
        x->hdrs = curl_slist_append(NULL, h);
        memset(h, 0, L);
        free(h);
        if (!x->hdrs) { finish(x, FETCH_E_IO, "%s: out of memory", j->name); return -1; }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    }
    j->attempts++;
    if (curl_multi_add_handle(e->multi, c) != CURLM_OK) {
        finish(x, FETCH_E_IO, "%s: cannot start a transfer", j->name);
        return -1;
    }
    x->st = X_XFER;
    j->phase = FETCH_PH_TRANSFER;
    return 0;
}

static void schedule_retry(xfer *x, const char *why) {
    engine *e = x->e;
    const fetch_opts *o = e->o;
    fetch_job *j = x->job;
    curl_multi_remove_handle(e->multi, x->easy);
    if (x->got > 0) x->fails = 0;                 /* it made progress */
    x->fails++;
    if (x->fails > o->retries) {
        finish(x, FETCH_E_RETRIES, "%s: gave up after %d failed attempts in a row: %s", j->name, x->fails, why);
        return;
    }
    long d = fetch_backoff_ms(x->fails, o->retry_base_ms, o->retry_cap_ms, rnd(e));
    if (x->retry_after_ms >= 0 && x->retry_after_ms > d) d = x->retry_after_ms;
    free(x->url);
    x->url = strdup(j->url);
    x->redirects = 0;
    if (!x->url) { finish(x, FETCH_E_IO, "%s: out of memory", j->name); return; }
    x->wake_ms = now_ms() + d;
    x->st = X_WAIT;
    j->phase = FETCH_PH_WAIT;
    emit(e, FETCH_EV_RETRY, j, d, x->fails, why);
}

static int retryable_curl(CURLcode r) {
    switch (r) {
    case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE: case CURLE_OPERATION_TIMEDOUT: case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: case CURLE_HTTP3: case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_BAD_CONTENT_ENCODING:
        return 1;
    default:
        return 0;
    }
}

static void transfer_complete(xfer *x);

/* A request ended (CURLMSG_DONE). */
static void on_done(xfer *x, CURLcode res) {
    engine *e = x->e;
    fetch_job *j = x->job;
    char why[700], hs[64];
    if (!x->hdr_done) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
    if (x->code) j->http_code = x->code;
    if (x->sink == SINK_FILE) drain_wbuf(x);
    if (x->sink_err) {
        curl_multi_remove_handle(e->multi, x->easy);
        finish(x, FETCH_E_IO, "%s: %s", j->name, x->sink_msg);
        return;
    }
    if (res != CURLE_OK) {
        const char *m = x->curl_err[0] ? x->curl_err : curl_easy_strerror(res);
        if (res == CURLE_OPERATION_TIMEDOUT && x->hdr_done)
            snprintf(why, sizeof why, "transfer stalled (below %ld bytes/s for %ld s): %s", e->o->stall_bytes, e->o->stall_secs, m);
        else
            snprintf(why, sizeof why, "%s", m);
        if (retryable_curl(res)) { schedule_retry(x, why); return; }
        curl_multi_remove_handle(e->multi, x->easy);
        finish(x, FETCH_E_HTTP, "%s: %s (%s)", j->name, why, x->url);
        return;
    }
    long code = x->code;
    if (code >= 200 && code <= 299) {
        curl_multi_remove_handle(e->multi, x->easy);
        if (x->bad_range) {
            snprintf(why, sizeof why, "HTTP 206 with a Content-Range that doesn't start at byte %llu", (unsigned long long)x->from);
            if (x->sink == SINK_FILE && restart_file(x) < 0) { finish(x, FETCH_E_IO, "%s: %s", j->name, x->sink_msg); return; }
            schedule_retry(x, why);
            return;
        }
        if (x->skip) {   /* the whole body was shorter than what had been written */
            snprintf(why, sizeof why, "the server sent %llu bytes fewer than were already written",
                     (unsigned long long)x->skip);
            finish(x, FETCH_E_CHECKSUM, "%s: %s", j->name, why);
            return;
        }
        transfer_complete(x);
        return;
    }
    if (code >= 300 && code <= 399) {
        char *loc = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &loc);
        curl_multi_remove_handle(e->multi, x->easy);
        if (!loc || !*loc) { finish(x, FETCH_E_HTTP, "%s: HTTP %ld without a Location (%s)", j->name, code, x->url); return; }
        if (++x->redirects > e->o->max_redirects) {
            finish(x, FETCH_E_HTTP, "%s: more than %d redirects (last to %s)", j->name, e->o->max_redirects, loc);
            return;
        }
        char *next = strdup(loc);
        if (!next) { finish(x, FETCH_E_IO, "%s: out of memory", j->name); return; }
        free(x->url);
        x->url = next;
        start_attempt(x);
        return;
    }
    if (code == 416 && x->from > 0) {        /* what we have may be the whole file */
        curl_multi_remove_handle(e->multi, x->easy);
        transfer_complete(x);
        return;
    }
    int origin = fetch_same_origin(x->url, j->url);
    if ((code == 401 || code == 403) && origin) {
        curl_multi_remove_handle(e->multi, x->easy);
        finish(x, FETCH_E_AUTH, "%s: %s (%s)", j->name, http_str(code, hs, sizeof hs), x->url);
        return;
    }
    if ((code == 404 || code == 410) && origin) {
        curl_multi_remove_handle(e->multi, x->easy);
        finish(x, FETCH_E_NOTFOUND, "%s: %s (%s)", j->name, http_str(code, hs, sizeof hs), x->url);
        return;
    }
    /* 408, 425, 429, 5xx; and 401/403/404 from a redirect target (an expired
     * signed link): try again from the first URL. */
    if (code == 408 || code == 425 || code == 429 || (code >= 500 && code <= 599) ||
        code == 401 || code == 403 || code == 404 || code == 410) {
        snprintf(why, sizeof why, "%s%s%s", http_str(code, hs, sizeof hs),
                 x->retry_after_ms >= 0 ? ", Retry-After honoured" : "", origin ? "" : " from the redirect target");
        schedule_retry(x, why);
        return;
    }
    curl_multi_remove_handle(e->multi, x->easy);
    finish(x, FETCH_E_HTTP, "%s: %s (%s)", j->name, http_str(code, hs, sizeof hs), x->url);
}

/* The body is all there: verify it. */
static void transfer_complete(xfer *x) {
    fetch_job *j = x->job;
    if (x->sink == SINK_FILE) {
        hasher_done_writing(&x->h);
        x->st = X_VERIFY;
        j->phase = FETCH_PH_VERIFY;
        return;
    }
    if (x->sink == SINK_FD) {
        unsigned char d[32];
        sha256_final(&x->sc, d);
        sha256_hex(d, j->got_sha256);
        if (j->sha256[0] && strcmp(j->sha256, j->got_sha256)) {
            finish(x, FETCH_E_CHECKSUM,
                   "%s: sha256 mismatch after its %llu bytes were written to standard output "
                   "(got %s, expected %s); the first %llu bytes of the output came from verified parts, the rest is suspect",
                   j->name, (unsigned long long)j->have, j->got_sha256, j->sha256,
                   (unsigned long long)x->verified_before);
            return;
        }
        finish(x, FETCH_OK, NULL);
        return;
    }
    finish(x, FETCH_OK, NULL);
}

static int fsync_dir_of(const char *path) {
    char dir[4200];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static void start_download(xfer *x);

/* The hasher finished the current generation (state X_VERIFY or X_CHECK). */
static void on_hashed(xfer *x, const char *hex, int io_errno) {
    fetch_job *j = x->job;
    engine *e = x->e;
    if (io_errno || !hex[0]) {
        finish(x, FETCH_E_IO, "%s: read error while hashing: %s", j->name, strerror(io_errno ? io_errno : EIO));
        return;
    }
    snprintf(j->got_sha256, sizeof j->got_sha256, "%s", hex);
    int match = !j->sha256[0] || !strcmp(j->sha256, hex);
    if (x->checking_final) {
        hasher_stop(&x->h); x->hashing = 0;
        close(x->fd); x->fd = -1;
        x->checking_final = 0;
        if (match) { finish(x, FETCH_SKIPPED, NULL); return; }
        emit(e, FETCH_EV_NOTE, j, 0, 0, "the existing file fails its sha256: downloading it again");
        if (unlink(j->path) < 0) { finish(x, FETCH_E_IO, "%s: cannot remove: %s", j->path, strerror(errno)); return; }
        start_download(x);
        return;
    }
    if (!match) {
        if (j->resumed && !x->restarted) {
            x->restarted = 1;
            j->resumed = 0;
            if (restart_file(x) < 0) { finish(x, FETCH_E_IO, "%s: %s", j->name, x->sink_msg); return; }
            emit(e, FETCH_EV_NOTE, j, 0, 0, "sha256 mismatch with bytes kept from an earlier run: downloading again from byte 0");
            free(x->url); x->url = strdup(j->url); x->redirects = 0;
            if (!x->url) { finish(x, FETCH_E_IO, "%s: out of memory", j->name); return; }
            start_attempt(x);
            return;
        }
        finish(x, FETCH_E_CHECKSUM, "%s: sha256 mismatch (got %s, expected %s); nothing was kept",
               j->name, hex, j->sha256);
        return;
    }
    /* Verified (and fdatasync'ed by the hasher): give it its name. */
    hasher_stop(&x->h); x->hashing = 0;
    if (close(x->fd) < 0) { x->fd = -1; finish(x, FETCH_E_IO, "%s: close: %s", x->part, strerror(errno)); return; }
    x->fd = -1;
    if (rename(x->part, j->path) < 0) { finish(x, FETCH_E_IO, "%s: rename to %s: %s", x->part, j->path, strerror(errno)); return; }
    fsync_dir_of(j->path);
    finish(x, FETCH_OK, NULL);
}

/* Opens (or resumes) the .part file and sends the first request. */
static void start_download(xfer *x) {
    fetch_job *j = x->job;
    engine *e = x->e;
    int n = snprintf(x->part, sizeof x->part, "%s.part", j->path);
    if (n < 0 || (size_t)n >= sizeof x->part) { finish(x, FETCH_E_IO, "%s: path too long", j->path); return; }
    x->fd = open(x->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x->fd < 0) { finish(x, FETCH_E_IO, "%s: cannot open: %s", x->part, strerror(errno)); return; }
    /* Two runs writing one .part would interleave their bytes. */
    if (flock(x->fd, LOCK_EX | LOCK_NB) < 0) {
        finish(x, FETCH_E_IO, "%s: %s", x->part, errno == EWOULDBLOCK
               ? "another oscar-fetch is downloading it now" : strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        finish(x, FETCH_E_IO, "%s: not a regular file", x->part);
        return;
    }
    j->have = (uint64_t)st.st_size;
    j->resumed = j->have > 0;
    x->wlen = 0; x->wbuf = NULL;
    if (hasher_start(&x->h, x->fd, j->have, 0, 1, e->multi) < 0) {
        finish(x, FETCH_E_IO, "%s: cannot start the writer threads (out of memory?)", j->name);
        return;
    }
    x->hashing = 1;
    if (j->resumed) {
        char m[96];
        snprintf(m, sizeof m, "resuming from byte %llu of an earlier run", (unsigned long long)j->have);
        emit(e, FETCH_EV_NOTE, j, 0, 0, m);
    }
    start_attempt(x);
}

static void start_job(engine *e, size_t i) {
    xfer *x = &e->x[i];
    fetch_job *j = x->job;
    e->act[e->nact++] = i;
    x->st = X_XFER;
    x->url = strdup(j->url);
    if (!x->url) { finish(x, FETCH_E_IO, "%s: out of memory", j->name); return; }
    emit(e, FETCH_EV_START, j, 0, 0, NULL);
    if (x->sink != SINK_FILE) { start_attempt(x); return; }
    struct stat st;
    if (stat(j->path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) { finish(x, FETCH_E_IO, "%s: exists and is not a regular file", j->path); return; }
        j->total = j->have = (uint64_t)st.st_size;
        if (!e->o->verify_existing) { finish(x, FETCH_SKIPPED, NULL); return; }
        x->fd = open(j->path, O_RDONLY | O_CLOEXEC);
        if (x->fd < 0) { finish(x, FETCH_E_IO, "%s: cannot open: %s", j->path, strerror(errno)); return; }
        if (hasher_start(&x->h, x->fd, j->have, 1, 0, e->multi) < 0) {
            finish(x, FETCH_E_IO, "%s: cannot start a thread", j->name);
            return;
        }
        x->hashing = 1; x->checking_final = 1;
        x->st = X_CHECK;
        j->phase = FETCH_PH_VERIFY;
        return;
    }
    start_download(x);
}

/* ---- the loop --------------------------------------------------------------- */

static int engine_init(engine *e, const fetch_opts *o, fetch_job *jobs, size_t n, enum sink sk, char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    e->o = o; e->jobs = jobs; e->njobs = n;
    e->rng = o->seed ? o->seed : (uint32_t)(time(NULL) ^ ((uint32_t)getpid() << 16)) | 1u;
    e->multi = curl_multi_init();
    /* One connection per transfer, no HTTP/2 multiplexing: CDNs pace each
     * connection, and parallel parts should not share one TCP window. */
    if (e->multi) curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    e->x = calloc(n ? n : 1, sizeof *e->x);
    e->act = calloc(n ? n : 1, sizeof *e->act);
    if (!e->multi || !e->x || !e->act) {
        snprintf(err, errlen, "out of memory");
        if (e->multi) curl_multi_cleanup(e->multi);
        free(e->x); free(e->act);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        xfer *x = &e->x[i];
        x->e = e; x->job = &jobs[i]; x->sink = sk; x->fd = -1; x->outfd = -1;
        jobs[i].status = FETCH_PENDING; jobs[i].have = jobs[i].total = 0; jobs[i].attempts = 0;
        jobs[i].phase = FETCH_PH_QUEUED; jobs[i].http_code = 0; jobs[i].resumed = 0;
        jobs[i].got_sha256[0] = 0; jobs[i].err[0] = 0;
    }
    return 0;
}

static void engine_free(engine *e) {
    for (size_t i = 0; i < e->njobs; i++) {
        xfer *x = &e->x[i];
        if (x->easy) { curl_multi_remove_handle(e->multi, x->easy); curl_easy_cleanup(x->easy); }
        curl_slist_free_all(x->hdrs);
        if (x->hashing) hasher_stop(&x->h);
        if (x->fd >= 0) close(x->fd);
        free(x->url);
        free(x->mem);
    }
    curl_multi_cleanup(e->multi);
    free(e->x); free(e->act);
}

static int engine_run(engine *e, void (*before_start)(engine *, xfer *), char *err, size_t errlen) {
    const fetch_opts *o = e->o;
    size_t next = 0;
    int parallel = o->parallel < 1 ? 1 : o->parallel;
    e->last_tick = now_ms();
    for (;;) {
        int cancelled = o->cancel && *o->cancel;
        if (cancelled || e->stop) {
            const char *why = cancelled ? "cancelled" : "stopped";
            while (e->nact) {
                xfer *x = &e->x[e->act[0]];
                finish(x, FETCH_E_CANCELLED, "%s: %s%s%s", x->job->name, why, e->stop ? " after: " : "", e->stop ? e->stop_why : "");
            }
            for (; next < e->njobs; next++) {
                xfer *x = &e->x[next];
                x->job->status = FETCH_E_CANCELLED;
                x->job->phase = FETCH_PH_END;
                snprintf(x->job->err, sizeof x->job->err, "%s: not started (%s)", x->job->name, why);
            }
            break;
        }
        int64_t now = now_ms();
        for (size_t k = 0; k < e->nact; k++) {
            xfer *x = &e->x[e->act[k]];
            if (x->st == X_WAIT && now >= x->wake_ms) {
                size_t before = e->nact;
                start_attempt(x);
                if (e->nact < before) k--;
            }
        }
        while ((int)e->nact < parallel && next < e->njobs && !e->stop) {
            xfer *x = &e->x[next];
            if (before_start) before_start(e, x);
            start_job(e, next++);
        }
        if (!e->nact && next >= e->njobs) break;
        int running = 0, changed = 0;
        curl_multi_perform(e->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(e->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode res = m->data.result;
            if (x && x->st == X_XFER) { on_done(x, res); changed = 1; }
        }
        for (size_t k = 0; k < e->nact; k++) {
            xfer *x = &e->x[e->act[k]];
            if ((x->st == X_VERIFY || x->st == X_CHECK) && x->hashing) {
                char hex[65]; int ioe = 0;
                if (hasher_result(&x->h, hex, &ioe)) {
                    size_t before = e->nact;
                    on_hashed(x, hex, ioe);
                    changed = 1;
                    if (e->nact < before) k--;
                }
            }
        }
        now = now_ms();
        if (now - e->last_tick >= 250) { e->last_tick = now; emit(e, FETCH_EV_TICK, NULL, 0, 0, NULL); }
        long timeout = 250;
        for (size_t k = 0; k < e->nact; k++) {
            xfer *x = &e->x[e->act[k]];
            if (x->st == X_WAIT) {
                long d = x->wake_ms - now;
                if (d < timeout) timeout = d < 0 ? 0 : d;
            }
        }
        /* A job ended or moved on: go round again at once (start the next
         * job, or leave), else sleep until a socket, a hasher or a timer. */
        if (timeout > 0 && !changed) curl_multi_poll(e->multi, NULL, 0, (int)timeout, NULL);
    }
    emit(e, FETCH_EV_TICK, NULL, 0, 0, NULL);
    int rc = 0;
    for (size_t i = 0; i < e->njobs; i++) {
        fetch_job *j = &e->jobs[i];
        if (j->status != FETCH_OK && j->status != FETCH_SKIPPED) {
            if (!rc) snprintf(err, errlen, "%s", j->err[0] ? j->err : "failed");
            rc = -1;
        }
    }
    /* Prefer the failure that stopped the run over the "stopped" notes. */
    if (e->stop && e->stop_why[0]) snprintf(err, errlen, "%s", e->stop_why);
    return rc;
}

/* ---- public --------------------------------------------------------------- */

void fetch_opts_init(fetch_opts *o) {
    memset(o, 0, sizeof *o);
    o->parallel = 4;
    o->retries = 8;
    o->retry_base_ms = 1000;
    o->retry_cap_ms = 60000;
    o->retry_after_cap_ms = 600000;
    o->stall_secs = 60;
    o->stall_bytes = 1024;
    o->connect_timeout_s = 30;
    o->max_redirects = 10;
}

int fetch_global_init(char *err, size_t errlen) {
    CURLcode r = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (r != CURLE_OK) { snprintf(err, errlen, "libcurl init: %s", curl_easy_strerror(r)); return -1; }
    return 0;
}

void fetch_global_cleanup(void) { curl_global_cleanup(); }

int fetch_files(const fetch_opts *o, fetch_job *jobs, size_t n, char *err, size_t errlen) {
    engine e;
    if (engine_init(&e, o, jobs, n, SINK_FILE, err, errlen) < 0) return -1;
    int rc = engine_run(&e, NULL, err, errlen);
    engine_free(&e);
    return rc;
}

static void stream_before(engine *e, xfer *x) {
    uint64_t done = 0;
    for (fetch_job *j = e->jobs; j < x->job; j++) done += j->have;
    x->verified_before = done;
    sha256_init(&x->sc);
}

int fetch_stream(const fetch_opts *o, fetch_job *jobs, size_t n, int fd, char *err, size_t errlen) {
    engine e;
    fetch_opts one = *o;
    one.parallel = 1;
    if (engine_init(&e, &one, jobs, n, SINK_FD, err, errlen) < 0) return -1;
    e.stop_on_failure = 1;
    for (size_t i = 0; i < n; i++) e.x[i].outfd = fd;
    int rc = engine_run(&e, stream_before, err, errlen);
    engine_free(&e);
    return rc;
}

int fetch_memory(const fetch_opts *o, const char *url, const char *name, size_t max,
                 char **out, size_t *len, fetch_job *job, char *err, size_t errlen) {
    fetch_job local;
    fetch_job *j = job ? job : &local;
    memset(j, 0, sizeof *j);
    j->url = url; j->name = name;
    engine e;
    fetch_opts one = *o;
    one.parallel = 1;
    *out = NULL; *len = 0;
    if (engine_init(&e, &one, j, 1, SINK_MEM, err, errlen) < 0) return -1;
    e.x[0].memmax = max;
    int rc = engine_run(&e, NULL, err, errlen);
    if (rc == 0) {
        xfer *x = &e.x[0];
        if (!x->mem) x->mem = calloc(1, 1);
        if (!x->mem) { snprintf(err, errlen, "out of memory"); rc = -1; }
        else { x->mem[x->memlen] = 0; *out = x->mem; *len = x->memlen; x->mem = NULL; }
    }
    engine_free(&e);
    return rc;
}
