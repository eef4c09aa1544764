/* tokstream.c - see tokstream.h. */
#include "pipeline/tokstream.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_reader {
    sio *in; ts_header h; int flags;
    int open, v1, untrailed;    /* open: a header was read and its trailer not yet */
    uint64_t docs, off;
    ts_totals cur;              /* of the stream since its header */
    uint16_t *ids; size_t cap;
    char err[768];
};

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }
static void wr64(unsigned char *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

void ts_header_pack(const ts_header *h, unsigned char out[TS_HEADER_SIZE]) {
    memcpy(out, TS_MAGIC, 4); wr32(out + 4, TS_VERSION); wr32(out + 8, h->vocab_size); wr32(out + 12, 0);
    memcpy(out + 16, h->vocab_sha256, 32);
}

void ts_trailer_pack(const ts_totals *t, unsigned char out[TS_TRAILER_SIZE]) {
    memcpy(out, TS_TRAILER_MAGIC, 4); wr32(out + 4, 0);
    wr64(out + 8, t->documents); wr64(out + 16, t->tokens); wr64(out + 24, t->checksum);
}

void ts_totals_add_records(ts_totals *t, const unsigned char *p, size_t len) {
    const unsigned char *e = p + len;
    uint64_t h = t->checksum;
    while (e - p >= 4) {
        uint32_t n = rd32(p); p += 4;
        h = (h ^ n) * TS_CHECKSUM_PRIME;
        if ((size_t)(e - p) / 2 < n) n = (uint32_t)((size_t)(e - p) / 2);   /* never past the buffer */
        for (uint32_t i = 0; i < n; i++, p += 2) h = (h ^ (uint32_t)(p[0] | p[1] << 8)) * TS_CHECKSUM_PRIME;
        t->documents++; t->tokens += n;
    }
    t->checksum = h;
}

/* exactly n bytes: 1 ok, 0 clean end before any byte, -1 error/short.
 * `what` names the part being read, e.g. "the ids of document 3". */
static int rd(ts_reader *r, void *buf, size_t n, const char *what) {
    size_t got = 0;
    while (got < n) {
        long k = sio_read(r->in, (char *)buf + got, n - got);
        if (k < 0) { snprintf(r->err, sizeof r->err, "%s", sio_error(r->in)); return -1; }
        if (k == 0) {
            if (got == 0) return 0;
            snprintf(r->err, sizeof r->err, "%s: token stream truncated inside %s: it ends at byte %llu",
                     sio_name(r->in), what, (unsigned long long)(r->off + got));
            return -1;
        }
        got += (size_t)k;
    }
    r->off += n;
    return 1;
}

/* The n bytes of a header or trailer (`part`) after its magic, which stood at byte `at`. */
static int rd_rest(ts_reader *r, unsigned char *b, size_t n, const char *part, uint64_t at) {
    char what[64]; snprintf(what, sizeof what, "the %s that starts at byte %llu", part, (unsigned long long)at);
    int k = rd(r, b, n, what);
    if (k == 0) snprintf(r->err, sizeof r->err, "%s: token stream truncated inside %s: it ends after its magic", sio_name(r->in), what);
    return k > 0 ? 0 : -1;
}

/* The 44 bytes of a header after its magic, read at byte `at`. */
static int header_rest(ts_reader *r, ts_header *h, uint64_t at) {
    unsigned char b[TS_HEADER_SIZE - 4];
    if (rd_rest(r, b, sizeof b, "header", at) < 0) return -1;
    uint32_t v = rd32(b);
    if (v != TS_VERSION && v != 1) {
        snprintf(r->err, sizeof r->err, "%s: token stream version %u not supported (this build reads 1 and %u)", sio_name(r->in), v, TS_VERSION);
        return -1;
    }
    h->vocab_size = rd32(b + 4);
    if (h->vocab_size == 0 || h->vocab_size > 65536) {
        snprintf(r->err, sizeof r->err, "%s: the token stream header at byte %llu says vocab size %u: ids are u16, so 1..65536",
                 sio_name(r->in), (unsigned long long)at, h->vocab_size);
        return -1;
    }
    memcpy(h->vocab_sha256, b + 12, 32);
    r->v1 = v == 1;
    r->open = 1;
    r->cur.documents = r->cur.tokens = 0; r->cur.checksum = TS_CHECKSUM_INIT;
    return 0;
}

ts_reader *ts_reader_new(sio *in, int flags, char *err, size_t errlen) {
    ts_reader *r = calloc(1, sizeof *r);
    if (!r) { snprintf(err, errlen, "out of memory"); return NULL; }
    r->in = in; r->flags = flags;
    unsigned char m[4];
    int k = rd(r, m, 4, "the header that starts at byte 0");
    if (k <= 0 || memcmp(m, TS_MAGIC, 4)) {
        if (k == 0) snprintf(err, errlen, "%s: empty input (expected a wordpiece token stream)", sio_name(in));
        else if (k > 0) snprintf(err, errlen, "%s: not a wordpiece token stream (bad magic; run wordpiece with --format bin)", sio_name(in));
        else snprintf(err, errlen, "%s", r->err);
        free(r); return NULL;
    }
    if (header_rest(r, &r->h, 0) < 0) { snprintf(err, errlen, "%s", r->err); free(r); return NULL; }
    return r;
}

const ts_header *ts_reader_header(const ts_reader *r) { return &r->h; }

static const char NO_TRAILER[] = "its writer stopped before the end (killed, or its own input failed); "
                                 "pass --accept-partial to use the documents before the cut";

/* The 28 bytes of a trailer after its magic, read at byte `at`; checked
 * against the documents read since the header. */
static int trailer_rest(ts_reader *r, uint64_t at) {
    unsigned char b[TS_TRAILER_SIZE - 4];
    if (rd_rest(r, b, sizeof b, "trailer", at) < 0) return -1;
    ts_totals t = { rd64(b + 4), rd64(b + 12), rd64(b + 20) };
    if (!r->open || r->v1) {
        snprintf(r->err, sizeof r->err, "%s: a trailer at byte %llu %s", sio_name(r->in), (unsigned long long)at,
                 r->v1 ? "in a version 1 stream" : "follows another trailer: corrupt token stream");
        return -1;
    }
    if (t.documents != r->cur.documents || t.tokens != r->cur.tokens || t.checksum != r->cur.checksum) {
        snprintf(r->err, sizeof r->err, "%s: the trailer at byte %llu counts %llu documents, %llu tokens, checksum %016llx; "
                 "the stream before it holds %llu, %llu, %016llx: corrupt token stream", sio_name(r->in), (unsigned long long)at,
                 (unsigned long long)t.documents, (unsigned long long)t.tokens, (unsigned long long)t.checksum,
                 (unsigned long long)r->cur.documents, (unsigned long long)r->cur.tokens, (unsigned long long)r->cur.checksum);
        return -1;
    }
    r->open = 0;
    return 0;
}

/* The input ended (header 0) or a new header began (1) at byte `at`: the stream
 * before it must have ended with its trailer, unless TS_ALLOW_NO_TRAILER (then it
 * is only marked untrailed).  A version 1 stream has none: it cannot be told from
 * a cut one, at the end of the input or before another stream. */
static int stream_unended(ts_reader *r, uint64_t at, int header) {
    if (!r->open) return 0;
    if (r->flags & TS_ALLOW_NO_TRAILER) { r->untrailed = 1; return 0; }
    if (r->v1)
        snprintf(r->err, sizeof r->err, "%s: a version 1 token stream (no trailer, from an older wordpiece) cannot be "
                 "told from a cut one: write it again, or pass --accept-partial", sio_name(r->in));
    else if (header)
        snprintf(r->err, sizeof r->err, "%s: a header at byte %llu follows a stream without its trailer: %s",
                 sio_name(r->in), (unsigned long long)at, NO_TRAILER);
    else
        snprintf(r->err, sizeof r->err, "%s: token stream ends at byte %llu without its trailer: %s",
                 sio_name(r->in), (unsigned long long)at, NO_TRAILER);
    return -1;
}

int ts_next(ts_reader *r, const uint16_t **ids, uint32_t *n) {
    for (;;) {
        unsigned char b[4];
        uint64_t at = r->off;
        char what[80]; snprintf(what, sizeof what, "the length of document %llu", (unsigned long long)r->docs + 1);
        int k = rd(r, b, 4, what);
        if (k < 0) return -1;
        if (k == 0) return stream_unended(r, at, 0) < 0 ? -1 : 0;
        uint32_t len = rd32(b);
        if (len == TS_MAGIC_U32) {          /* a concatenated stream */
            if (stream_unended(r, at, 1) < 0) return -1;
            ts_header h;
            if (header_rest(r, &h, at) < 0) return -1;
            if (h.vocab_size != r->h.vocab_size || memcmp(h.vocab_sha256, r->h.vocab_sha256, 32)) {
                snprintf(r->err, sizeof r->err, "%s: concatenated token stream at byte %llu was made with another vocab", sio_name(r->in), (unsigned long long)at);
                return -1;
            }
            continue;
        }
        if (len == TS_TRAILER_U32) {
            if (trailer_rest(r, at) < 0) return -1;
            continue;
        }
        if (!r->open) {
            snprintf(r->err, sizeof r->err, "%s: data after the trailer at byte %llu (neither a header nor the end): corrupt token stream",
                     sio_name(r->in), (unsigned long long)at);
            return -1;
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
        snprintf(what, sizeof what, "the ids of document %llu", (unsigned long long)r->docs + 1);
        if (len && (k = rd(r, r->ids, (size_t)len * 2, what)) <= 0) {
            if (k == 0) snprintf(r->err, sizeof r->err, "%s: token stream truncated inside %s: it ends at byte %llu",
                                 sio_name(r->in), what, (unsigned long long)r->off);
            return -1;
        }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (uint32_t i = 0; i < len; i++) r->ids[i] = (uint16_t)(r->ids[i] >> 8 | r->ids[i] << 8);
#endif
        uint64_t h = (r->cur.checksum ^ len) * TS_CHECKSUM_PRIME;
        for (uint32_t i = 0; i < len; i++) {
            if (r->ids[i] >= r->h.vocab_size) {   /* header_rest refuses a vocab size of 0 */
                snprintf(r->err, sizeof r->err, "%s: document %llu has id %u >= vocab size %u (byte %llu)", sio_name(r->in),
                         (unsigned long long)r->docs + 1, r->ids[i], r->h.vocab_size, (unsigned long long)(r->off - 2 * (len - i)));
                return -1;
            }
            h = (h ^ r->ids[i]) * TS_CHECKSUM_PRIME;
        }
        r->cur.checksum = h; r->cur.documents++; r->cur.tokens += len;
        r->docs++;
        *ids = r->ids; *n = len;
        return 1;
    }
}

const char *ts_error(const ts_reader *r) { return r->err; }
uint64_t ts_docs(const ts_reader *r) { return r->docs; }
int ts_untrailed(const ts_reader *r) { return r->untrailed; }
void ts_reader_free(ts_reader *r) { if (r) { free(r->ids); free(r); } }
