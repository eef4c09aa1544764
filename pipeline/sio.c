/* sio.c - see sio.h.  One buffered reader over read(2); zstd through the
 * streaming ZSTD_DCtx API so memory stays at a few hundred KB whatever the
 * input size.  A line that lies whole in the current buffer is returned in
 * place (its '\n' overwritten by NUL); only a line that straddles buffers is
 * copied into a growable line buffer, as large as the longest such line. */
#include "pipeline/sio.h"
#include "pipeline/atomic.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/mman.h>
#define ZSTD_STATIC_LINKING_ONLY   /* ZSTD_customMem, ZSTD_create[CD]Ctx_advanced (stable since zstd 1.0) */
#include <zstd.h>

#define INBUF (1 << 17)

/* zstd's large buffers (the decoder's window, the multi-threaded encoder's
 * input ring and job buffers: ~70 MB at level 3 with 2 workers) come from
 * sio_big_alloc: on the bench machine this spares oscar-filter -z about
 * 12,000 of its 17,600 page faults and a tenth of a second.  The advice is
 * ignored where transparent huge pages are off. */
#define HUGE ((size_t)2 << 20)
void *sio_big_alloc(size_t n) {
    if (n < HUGE) return malloc(n);
    size_t t = (n + HUGE - 1) / HUGE * HUGE;
    void *p = NULL;
    if (posix_memalign(&p, HUGE, t) != 0) return NULL;
    madvise(p, t, MADV_HUGEPAGE);
    return p;
}
static void *huge_alloc(void *opaque, size_t n) { (void)opaque; return sio_big_alloc(n); }
static void huge_free(void *opaque, void *p) { (void)opaque; free(p); }
static const ZSTD_customMem huge_mem = { huge_alloc, huge_free, NULL };

struct sio {
    int fd, own_fd, zstd, eof_in, done;
    const volatile sig_atomic_t *cancel;
    char name[512];
    char err[768];
    unsigned char *in; size_t in_pos, in_len;   /* raw bytes from fd */
    uint64_t off_in, off_out, lineno;
    ZSTD_DCtx *dz; size_t zret;                 /* zret: hint from last decompressStream; 0 = at frame end */
    unsigned char *out; size_t out_pos, out_len; /* decompressed bytes (zstd only) */
    char *line; size_t line_cap;
};

static int fail(sio *r, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    int k = snprintf(r->err, sizeof r->err, "%s: ", r->name);
    vsnprintf(r->err + k, sizeof r->err - k, fmt, ap);
    va_end(ap);
    return -1;
}

static int fill_in(sio *r) {  /* refill raw buffer; returns bytes added, 0 at EOF, <0 error */
    if (r->in_pos < r->in_len && r->in_pos > 0) {
        memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
        r->in_len -= r->in_pos; r->in_pos = 0;
    } else if (r->in_pos == r->in_len) r->in_pos = r->in_len = 0;
    if (r->eof_in) return 0;
    for (;;) {
        if (r->cancel) {    /* wait at most a second at a time, so that *cancel is seen while the input is idle */
            struct pollfd pf = { r->fd, POLLIN, 0 };
            if (*r->cancel) return fail(r, "interrupted while reading byte %llu", (unsigned long long)r->off_in);
            int k = poll(&pf, 1, 1000);
            if (k == 0 || (k < 0 && errno == EINTR)) continue;
        }
        ssize_t k = read(r->fd, r->in + r->in_len, INBUF - r->in_len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fail(r, "read error at byte %llu: %s", (unsigned long long)r->off_in, strerror(errno));
        if (k == 0) r->eof_in = 1;
        r->in_len += (size_t)k;
        return (int)k;
    }
}

sio *sio_open(const char *path, char *err, size_t errlen) { return sio_open_cancellable(path, NULL, err, errlen); }

sio *sio_open_cancellable(const char *path, const volatile sig_atomic_t *cancel, char *err, size_t errlen) {
    sio *r = calloc(1, sizeof *r);
    if (!r) { snprintf(err, errlen, "out of memory"); return NULL; }
    r->cancel = cancel;
    if (!path || !strcmp(path, "-")) { r->fd = 0; snprintf(r->name, sizeof r->name, "<stdin>"); }
    else {
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); free(r); return NULL; }
        r->own_fd = 1; snprintf(r->name, sizeof r->name, "%s", path);
    }
    r->in = malloc(INBUF);
    if (!r->in) { snprintf(err, errlen, "out of memory"); sio_close(r); return NULL; }
    while (r->in_len < 4 && !r->eof_in)
        if (fill_in(r) < 0) { snprintf(err, errlen, "%s", r->err); sio_close(r); return NULL; }
    static const unsigned char magic[4] = {0x28, 0xB5, 0x2F, 0xFD};
    if (r->in_len >= 4 && (!memcmp(r->in, magic, 4) || ((r->in[0] & 0xF0) == 0x50 && r->in[1] == 0x2A && r->in[2] == 0x4D && r->in[3] == 0x18))) {
        r->zstd = 1;
        r->dz = ZSTD_createDCtx_advanced(huge_mem);
        r->out = malloc(ZSTD_DStreamOutSize());
        if (!r->dz || !r->out) { snprintf(err, errlen, "out of memory"); sio_close(r); return NULL; }
        r->zret = 0;
    }
    return r;
}

/* Decompresses into dst (cap bytes): returns >0 bytes, 0 at the end, <0 on
 * error.  sio_read passes the caller's buffer when it is large, which saves
 * copying every byte once more through r->out. */
static long zdec(sio *r, unsigned char *dst, size_t cap) {
    size_t got = 0;
    while (got == 0) {
        if (r->in_pos == r->in_len && !r->eof_in && fill_in(r) < 0) return -1;
        ZSTD_inBuffer ib = { r->in, r->in_len, r->in_pos };
        ZSTD_outBuffer ob = { dst, cap, 0 };
        size_t prev = r->zret;
        size_t ret = ZSTD_decompressStream(r->dz, &ob, &ib);
        size_t used = ib.pos - r->in_pos;
        r->off_in += used;
        r->in_pos = ib.pos;
        if (ZSTD_isError(ret))
            return fail(r, "corrupt zstd stream near byte %llu: %s", (unsigned long long)r->off_in, ZSTD_getErrorName(ret));
        got = ob.pos;
        if (ob.pos == 0 && used == 0 && r->in_pos == r->in_len && r->eof_in) {
            /* no progress at the end of input: complete only if the last
             * call that did something finished a frame */
            if (prev != 0)
                return fail(r, "truncated zstd stream: input ends inside a frame at byte %llu", (unsigned long long)r->off_in);
            return 0;
        }
        r->zret = ret;
    }
    return (long)got;
}

/* Produce more decompressed bytes into r->out; returns >0 bytes, 0 at end, <0 error. */
static long zfill(sio *r) {
    r->out_pos = r->out_len = 0;
    long k = zdec(r, r->out, ZSTD_DStreamOutSize());
    if (k > 0) r->out_len = (size_t)k;
    return k;
}

long sio_read(sio *r, void *buf, size_t n) {
    if (r->done) return 0;
    if (r->zstd) {
        if (r->out_pos == r->out_len && n >= ZSTD_DStreamOutSize()) {   /* straight into buf */
            long k = zdec(r, buf, n);
            if (k <= 0) { if (k == 0) r->done = 1; return k; }
            r->off_out += (uint64_t)k;
            return k;
        }
        if (r->out_pos == r->out_len) {
            long k = zfill(r);
            if (k <= 0) { if (k == 0) r->done = 1; return k; }
        }
        size_t m = r->out_len - r->out_pos; if (m > n) m = n;
        memcpy(buf, r->out + r->out_pos, m); r->out_pos += m; r->off_out += m;
        return (long)m;
    }
    if (r->in_pos == r->in_len) {
        int k = fill_in(r);
        if (k < 0) return -1;
        if (r->in_len == 0) { r->done = 1; return 0; }
    }
    size_t m = r->in_len - r->in_pos; if (m > n) m = n;
    memcpy(buf, r->in + r->in_pos, m); r->in_pos += m; r->off_in += m; r->off_out += m;
    return (long)m;
}

/* Current window of available bytes (without copying). */
static int window(sio *r, const unsigned char **p, size_t *n) {
    if (r->zstd) {
        if (r->out_pos == r->out_len) { long k = zfill(r); if (k <= 0) return (int)k; }
        *p = r->out + r->out_pos; *n = r->out_len - r->out_pos; return 1;
    }
    if (r->in_pos == r->in_len) { int k = fill_in(r); if (k < 0) return -1; if (r->in_len == 0) return 0; }
    *p = r->in + r->in_pos; *n = r->in_len - r->in_pos; return 1;
}
static void consume(sio *r, size_t n) {
    if (r->zstd) r->out_pos += n; else { r->in_pos += n; r->off_in += n; }
    r->off_out += n;
}

int sio_getline(sio *r, const char **line, size_t *len) {
    size_t have = 0;
    if (r->done) return 0;
    for (;;) {
        const unsigned char *p = NULL; size_t n = 0;
        int k = window(r, &p, &n);
        if (k < 0) return -1;
        if (k == 0) {
            r->done = 1;
            if (have == 0) return 0;
            break;
        }
        const unsigned char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (nl && have == 0) {          /* whole line in the window: no copy */
            unsigned char *w = (unsigned char *)p;
            w[take] = 0;
            consume(r, take + 1);
            r->lineno++;
            *line = (const char *)w; *len = take;
            return 1;
        }
        if (have + take + 1 > r->line_cap) {
            size_t cap = r->line_cap ? r->line_cap : 4096;
            while (cap < have + take + 1) cap *= 2;
            char *nb = realloc(r->line, cap);
            if (!nb) return fail(r, "out of memory for a line of %zu bytes at line %llu", have + take, (unsigned long long)r->lineno + 1);
            r->line = nb; r->line_cap = cap;
        }
        memcpy(r->line + have, p, take); have += take;
        consume(r, take + (nl ? 1 : 0));
        if (nl) break;
    }
    r->line[have] = 0;
    r->lineno++;
    *line = r->line; *len = have;
    return 1;
}

uint64_t sio_lineno(const sio *r) { return r->lineno; }
uint64_t sio_offset_in(const sio *r) { return r->off_in; }
uint64_t sio_offset_out(const sio *r) { return r->off_out; }
int sio_is_zstd(const sio *r) { return r->zstd; }
const char *sio_name(const sio *r) { return r->name; }
const char *sio_error(const sio *r) { return r->err; }

void sio_close(sio *r) {
    if (!r) return;
    if (r->own_fd) close(r->fd);
    ZSTD_freeDCtx(r->dz);
    free(r->in); free(r->out); free(r->line); free(r);
}

/* ---- output ----
 * Plain: writes are gathered in buf and written 128 KB at a time.  zstd:
 * writes of SOUT_DIRECT bytes or more go straight to ZSTD_compressStream2
 * (which copies its input into its own buffers anyway: staging them in buf
 * would copy every byte once more); smaller ones are gathered in buf first.
 * Compressed bytes collect in zbuf and are written ZBUF at a time. */
#define SOUT_DIRECT 4096
#define ZBUF ((size_t)1 << 20)
struct sout {
    int fd, level; char name[512]; char err[768];
    ZSTD_CCtx *cz; unsigned char *zbuf; size_t zcap, zlen;
    unsigned char *buf; size_t len, cap;
};

static int wfail(sout *w, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    int k = snprintf(w->err, sizeof w->err, "%s: ", w->name);
    vsnprintf(w->err + k, sizeof w->err - k, fmt, ap);
    va_end(ap); return -1;
}

static int write_all(sout *w, const void *p, size_t n) {
    return fd_write_all(w->fd, p, n) < 0 ? wfail(w, "write error: %s", strerror(errno)) : 0;
}

sout *sout_fd(int fd, const char *name, int level, int threads, char *err, size_t errlen) {
    sout *w = calloc(1, sizeof *w);
    if (!w) { snprintf(err, errlen, "out of memory"); return NULL; }
    w->fd = fd; w->level = level; snprintf(w->name, sizeof w->name, "%s", name ? name : "<stdout>");
    w->cap = 1 << 17; w->buf = malloc(w->cap);
    if (level > 0) {
        w->cz = ZSTD_createCCtx_advanced(huge_mem);
        w->zcap = ZBUF; w->zbuf = malloc(w->zcap);
        if (!w->cz || !w->zbuf) { snprintf(err, errlen, "out of memory"); sout_free(w); return NULL; }
        ZSTD_CCtx_setParameter(w->cz, ZSTD_c_compressionLevel, level);
        if (threads > 0) ZSTD_CCtx_setParameter(w->cz, ZSTD_c_nbWorkers, threads);
    }
    if (!w->buf) { snprintf(err, errlen, "out of memory"); sout_free(w); return NULL; }
    return w;
}

/* Compresses p[0..n) (mode ZSTD_e_end: and ends the frame); zbuf is written
 * out when full, and at the end of the frame. */
static int zpush(sout *w, const void *p, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer ib = { p, n, 0 };
    for (;;) {
        ZSTD_outBuffer ob = { w->zbuf, w->zcap, w->zlen };
        size_t rem = ZSTD_compressStream2(w->cz, &ob, &ib, mode);
        if (ZSTD_isError(rem)) return wfail(w, "zstd: %s", ZSTD_getErrorName(rem));
        w->zlen = ob.pos;
        int end = mode == ZSTD_e_end ? rem == 0 : ib.pos == ib.size;
        if (w->zlen == w->zcap || (mode == ZSTD_e_end && end && w->zlen)) {
            if (write_all(w, w->zbuf, w->zlen) < 0) return -1;
            w->zlen = 0;
        }
        if (end) return 0;
    }
}

static int flush_buf(sout *w) {
    int rc = w->cz ? zpush(w, w->buf, w->len, ZSTD_e_continue) : write_all(w, w->buf, w->len);
    w->len = 0; return rc;
}

int sout_write(sout *w, const void *p, size_t n) {
    if (w->cz && n >= SOUT_DIRECT) {
        if (w->len && flush_buf(w) < 0) return -1;
        return zpush(w, p, n, ZSTD_e_continue);
    }
    if (w->len + n > w->cap) {
        if (flush_buf(w) < 0) return -1;
        if (n >= w->cap) return w->cz ? zpush(w, p, n, ZSTD_e_continue) : write_all(w, p, n);
    }
    memcpy(w->buf + w->len, p, n); w->len += n;
    return 0;
}

int sout_finish(sout *w) {
    if (flush_buf(w) < 0) return -1;
    if (w->cz) return zpush(w, "", 0, ZSTD_e_end);
    return 0;
}
const char *sout_error(const sout *w) { return w->err; }
void sout_free(sout *w) {
    if (!w) return;
    ZSTD_freeCCtx(w->cz); free(w->zbuf); free(w->buf); free(w);
}
