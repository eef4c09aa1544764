/* tokstream.c - see tokstream.h. */
#include "pipeline/tokstream.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_reader {
    sio *in; ts_header h; uint64_t docs, off;
    uint16_t *ids; size_t cap;
    char err[768];
};

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }

void ts_header_pack(const ts_header *h, unsigned char out[TS_HEADER_SIZE]) {
    memcpy(out, TS_MAGIC, 4); wr32(out + 4, TS_VERSION); wr32(out + 8, h->vocab_size); wr32(out + 12, 0);
    memcpy(out + 16, h->vocab_sha256, 32);
}

/* exactly n bytes: 1 ok, 0 clean end before any byte, -1 error/short */
static int rd(ts_reader *r, void *buf, size_t n, const char *what) {
    size_t got = 0;
    while (got < n) {
        long k = sio_read(r->in, (char *)buf + got, n - got);
        if (k < 0) { snprintf(r->err, sizeof r->err, "%s", sio_error(r->in)); return -1; }
        if (k == 0) {
            if (got == 0) return 0;
            snprintf(r->err, sizeof r->err, "%s: token stream truncated inside %s of document %llu at byte %llu",
                     sio_name(r->in), what, (unsigned long long)r->docs + 1, (unsigned long long)(r->off + got));
            return -1;
        }
        got += (size_t)k;
    }
    r->off += n;
    return 1;
}

static int header_rest(ts_reader *r, ts_header *h, const char *where) {
    unsigned char b[TS_HEADER_SIZE - 4];
    int k = rd(r, b, sizeof b, "a header");
    if (k <= 0) { if (k == 0) snprintf(r->err, sizeof r->err, "%s: token stream truncated in header %s", sio_name(r->in), where); return -1; }
    if (rd32(b) != TS_VERSION) {
        snprintf(r->err, sizeof r->err, "%s: token stream version %u not supported (this build reads %u)", sio_name(r->in), rd32(b), TS_VERSION);
        return -1;
    }
    h->vocab_size = rd32(b + 4);
    memcpy(h->vocab_sha256, b + 12, 32);
    return 0;
}

ts_reader *ts_reader_new(sio *in, char *err, size_t errlen) {
    ts_reader *r = calloc(1, sizeof *r);
    if (!r) { snprintf(err, errlen, "out of memory"); return NULL; }
    r->in = in;
    unsigned char m[4];
    int k = rd(r, m, 4, "the header");
    if (k <= 0 || memcmp(m, TS_MAGIC, 4)) {
        if (k == 0) snprintf(err, errlen, "%s: empty input (expected a wordpiece token stream)", sio_name(in));
        else if (k > 0) snprintf(err, errlen, "%s: not a wordpiece token stream (bad magic; run wordpiece with --format bin)", sio_name(in));
        else snprintf(err, errlen, "%s", r->err);
        free(r); return NULL;
    }
    if (header_rest(r, &r->h, "at byte 0") < 0) { snprintf(err, errlen, "%s", r->err); free(r); return NULL; }
    return r;
}

const ts_header *ts_reader_header(const ts_reader *r) { return &r->h; }

int ts_next(ts_reader *r, const uint16_t **ids, uint32_t *n) {
    for (;;) {
        unsigned char b[4];
        uint64_t at = r->off;
        int k = rd(r, b, 4, "the length");
        if (k <= 0) return k;
        uint32_t len = rd32(b);
        if (len == TS_MAGIC_U32) {          /* a concatenated stream */
            ts_header h;
            char where[64]; snprintf(where, sizeof where, "at byte %llu", (unsigned long long)at);
            if (header_rest(r, &h, where) < 0) return -1;
            if (h.vocab_size != r->h.vocab_size || memcmp(h.vocab_sha256, r->h.vocab_sha256, 32)) {
                snprintf(r->err, sizeof r->err, "%s: concatenated token stream at byte %llu was made with another vocab", sio_name(r->in), (unsigned long long)at);
                return -1;
            }
            continue;
        }
        if (len > TS_MAX_DOC_TOKENS) {
            snprintf(r->err, sizeof r->err, "%s: document %llu at byte %llu claims %u tokens: corrupt token stream",
                     sio_name(r->in), (unsigned long long)r->docs + 1, (unsigned long long)at, len);
            return -1;
        }
        if (len > r->cap) {
            size_t c = r->cap ? r->cap : 4096;
            while (c < len) c *= 2;
            uint16_t *nb = realloc(r->ids, c * sizeof *nb);
            if (!nb) { snprintf(r->err, sizeof r->err, "out of memory"); return -1; }
            r->ids = nb; r->cap = c;
        }
        if (len && (k = rd(r, r->ids, (size_t)len * 2, "the ids")) <= 0) {
            if (k == 0) snprintf(r->err, sizeof r->err, "%s: token stream truncated inside document %llu at byte %llu",
                                 sio_name(r->in), (unsigned long long)r->docs + 1, (unsigned long long)r->off);
            return -1;
        }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (uint32_t i = 0; i < len; i++) r->ids[i] = (uint16_t)(r->ids[i] >> 8 | r->ids[i] << 8);
#endif
        for (uint32_t i = 0; i < len; i++)
            if (r->h.vocab_size && r->ids[i] >= r->h.vocab_size) {
                snprintf(r->err, sizeof r->err, "%s: document %llu has id %u >= vocab size %u (byte %llu)", sio_name(r->in),
                         (unsigned long long)r->docs + 1, r->ids[i], r->h.vocab_size, (unsigned long long)(r->off - 2 * (len - i)));
                return -1;
            }
        r->docs++;
        *ids = r->ids; *n = len;
        return 1;
    }
}

const char *ts_error(const ts_reader *r) { return r->err; }
uint64_t ts_docs(const ts_reader *r) { return r->docs; }
void ts_reader_free(ts_reader *r) { if (r) { free(r->ids); free(r); } }
