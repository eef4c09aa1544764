/* main.c - bin/wordpiece: JSONL or text in, token ids out.
 *
 * The main thread reads lines (pipeline/sio: files or stdin, zstd detected)
 * into chunks of about 1 MB; worker threads parse and tokenise whole chunks
 * into formatted output; the main thread writes the chunks in the order they
 * were read, so that the output of -j N is byte for byte that of -j 1.  At
 * most 2N+2 chunks are in flight: memory depends on N and on the longest
 * document, not on the number of documents. */
#include "tokenizer/wordpiece.h"
#include "tokenizer/vocab.h"
#include "pipeline/atomic.h"
#include "pipeline/json.h"
#include "pipeline/sha256.h"
#include "pipeline/sio.h"
#include "pipeline/tokstream.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *USAGE =
"usage: wordpiece [options] [FILE...]\n"
"Tokenises documents with the bert-base-uncased WordPiece tokenizer, exactly as\n"
"Hugging Face tokenizers does, and writes token ids ([CLS] ... [SEP] per document).\n"
"FILEs (default: standard input, also '-') may be zstd-compressed (detected).\n"
"\n"
"  --vocab FILE       vocab.txt; without it, the first of: $SYMBERT_VOCAB,\n"
"                     ${XDG_DATA_HOME:-~/.local/share}/symbert/vocab.txt (where\n"
"                     oscar-fetch vocab puts it), the copy that ships with the\n"
"                     tools (../share/symbert/vocab.txt from this program's folder)\n"
"  --any-vocab        accept a vocab whose sha256 is not bert-base-uncased's\n"
"  --input jsonl|text jsonl (default): one JSON object per line, the document is\n"
"                     the string at --field; text: each line is a document\n"
"  --field NAME       JSON field holding the text (default: content; a.b for nested)\n"
"  --format bin|ids   bin (default): the token stream of pipeline/tokstream.h;\n"
"                     ids: one line per document, ids separated by spaces\n"
"  -o FILE            write FILE (whole or not at all) instead of standard output\n"
"  -j N               worker threads (default 1); output identical for every N\n"
"  -v                 progress and a summary on stderr (default when a terminal)\n"
"  -h, --help         this help\n"
"\n"
"Errors (bad JSON, missing field, unreadable input) name the file and line and\n"
"exit with status 1; with -o nothing is written then.\n";

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

static void die(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fputs("wordpiece: ", stderr); vfprintf(stderr, fmt, ap); fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

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

/* ---- output ---- */
typedef struct {
    int to_file; afile af; char err[1200];
} sink;

static int sink_write(sink *s, const void *buf, size_t n) {
    if (s->to_file) return afile_write(&s->af, buf, n, s->err, sizeof s->err);
    const char *p = buf;
    while (n) {
        ssize_t k = write(1, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { snprintf(s->err, sizeof s->err, "standard output: write error: %s", strerror(errno)); return -1; }
        p += k; n -= (size_t)k;
    }
    return 0;
}

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    const char *vocab_arg = NULL, *out_path = NULL, *field = "content";
    int any_vocab = 0, jsonl = 1, bin = 1, threads = 1, verbose = isatty(2);
    const char **files = calloc((size_t)argc + 1, sizeof *files); int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        #define NEXT() (i + 1 < argc ? argv[++i] : (die("%s needs a value (see --help)", a), ""))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); free(files); return 0; }
        else if (!strcmp(a, "--vocab")) vocab_arg = NEXT();
        else if (!strcmp(a, "--any-vocab")) any_vocab = 1;
        else if (!strcmp(a, "--input")) {
            const char *v = NEXT();
            if (!strcmp(v, "jsonl")) jsonl = 1; else if (!strcmp(v, "text")) jsonl = 0;
            else die("--input must be jsonl or text, not '%s'", v);
        } else if (!strcmp(a, "--field")) field = NEXT();
        else if (!strcmp(a, "--format")) {
            const char *v = NEXT();
            if (!strcmp(v, "bin")) bin = 1; else if (!strcmp(v, "ids")) bin = 0;
            else die("--format must be bin or ids, not '%s'", v);
        } else if (!strcmp(a, "-o")) out_path = NEXT();
        else if (!strcmp(a, "-j")) {
            const char *v = NEXT(); char *end;
            long j = strtol(v, &end, 10);
            if (*end || j < 1 || j > 256) die("-j needs a number of threads from 1 to 256, not '%s'", v);
            threads = (int)j;
        } else if (!strcmp(a, "-v")) verbose = 1;
        else if (a[0] == '-' && a[1]) die("unknown option '%s' (see --help)", a);
        else files[nfiles++] = a;
        #undef NEXT
    }
    if (nfiles == 0) files[nfiles++] = "-";

    config cf; memset(&cf, 0, sizeof cf);
    cf.jsonl = jsonl; cf.bin = bin;
    char *fieldcopy = strdup(field);
    for (char *s = fieldcopy, *tok; (tok = strsep(&s, ".")); ) {
        if (!*tok || cf.path.depth == JS_MAXDEPTH) die("--field '%s': empty part or deeper than %d", field, JS_MAXDEPTH);
        cf.path.key[cf.path.depth++] = tok;
    }

    char vpath[4096], err[1200];
    if (wp_vocab_locate(vocab_arg, vpath, sizeof vpath, err, sizeof err) < 0) die("%s", err);
    wp_vocab *v = wp_vocab_load(vpath, err, sizeof err);
    if (!v) die("%s", err);
    char hex[65]; sha256_hex(wp_vocab_sha256(v), hex);
    if (strcmp(hex, WP_BERT_UNCASED_SHA256) != 0 && !any_vocab)
        die("vocab %s is not bert-base-uncased's (sha256 %s, want %s); pass --any-vocab to use it anyway", vpath, hex, WP_BERT_UNCASED_SHA256);
    if (bin && wp_vocab_size(v) > 65536) die("vocab %s has %u tokens: --format bin holds ids below 65536", vpath, wp_vocab_size(v));
    wp_tokenizer *tok = wp_new(v, err, sizeof err);
    if (!tok) die("vocab %s: %s", vpath, err);
    cf.tok = tok;

    sink out; memset(&out, 0, sizeof out);
    if (out_path) {
        if (afile_open(&out.af, out_path, out.err, sizeof out.err) < 0) die("%s", out.err);
        out.to_file = 1;
    }
    int failed = 0;
    if (bin) {
        ts_header h; h.vocab_size = wp_vocab_size(v); memcpy(h.vocab_sha256, wp_vocab_sha256(v), 32);
        unsigned char hb[TS_HEADER_SIZE]; ts_header_pack(&h, hb);
        if (sink_write(&out, hb, sizeof hb) < 0) { fprintf(stderr, "wordpiece: %s\n", out.err); failed = 1; }
    }

    /* chunks in flight: a ring of 2N+2, handed out in order */
    size_t nring = (size_t)(threads > 1 ? 2 * threads + 2 : 1);
    chunk *ring = calloc(nring, sizeof *ring);
    pool P; memset(&P, 0, sizeof P);
    P.cf = &cf; P.qcap = nring; P.queue = calloc(nring, sizeof *P.queue);
    pthread_mutex_init(&P.mu, NULL); pthread_cond_init(&P.work, NULL); pthread_cond_init(&P.done, NULL);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    int nthreads = threads > 1 ? threads : 0;
    {   /* pipeline/json.c fills a table on its first call: do that before the workers start */
        js_val v0; char e0[64];
        (void)js_scan("{}", 2, &cf.path, 1, &v0, e0, sizeof e0);
    }
    for (int k = 0; k < nthreads; k++) pthread_create(&tid[k], NULL, worker, &P);
    wp_out o1; memset(&o1, 0, sizeof o1);
    char *sbuf1 = NULL; size_t scap1 = 0;

    uint64_t docs = 0, tokens = 0, bytes_in = 0;
    double t0 = now(), tlast = t0;
    size_t submitted = 0, written = 0;      /* chunk sequence numbers */

    /* writes the oldest chunk once it is done; returns -1 on error */
    #define WRITE_OLDEST() do { \
        chunk *c_ = &ring[written % nring]; \
        if (nthreads) { pthread_mutex_lock(&P.mu); while (!c_->done) pthread_cond_wait(&P.done, &P.mu); pthread_mutex_unlock(&P.mu); } \
        if (!failed && c_->outlen && sink_write(&out, c_->out, c_->outlen) < 0) { fprintf(stderr, "wordpiece: %s\n", out.err); failed = 1; } \
        if (!failed) { docs += c_->docs; tokens += c_->tokens; } \
        if (!failed && c_->err) { fprintf(stderr, "wordpiece: %s\n", c_->msg); failed = 1; } \
        written++; \
    } while (0)

    for (int fi = 0; fi < nfiles && !failed; fi++) {
        sio *in = sio_open(files[fi], err, sizeof err);
        if (!in) { fprintf(stderr, "wordpiece: %s\n", err); failed = 1; break; }
        const char *name = strcmp(files[fi], "-") ? files[fi] : "<stdin>";   /* outlives the reader: chunks name it */
        chunk *c = NULL;
        for (;;) {
            const char *line; size_t n;
            int r = sio_getline(in, &line, &n);
            if (r < 0) {
                /* write what came before, then report */
                if (c && c->nlines) {
                    if (nthreads) { pthread_mutex_lock(&P.mu); P.queue[P.qtail++ % P.qcap] = c; pthread_cond_signal(&P.work); pthread_mutex_unlock(&P.mu); }
                    else { process(&cf, c, &o1, &sbuf1, &scap1); c->done = 1; }
                    submitted++;
                }
                while (written < submitted) WRITE_OLDEST();
                if (!failed) fprintf(stderr, "wordpiece: %s\n", sio_error(in));
                failed = 1;
                break;
            }
            if (r > 0) {
                if (!c) {
                    if (submitted - written == nring) WRITE_OLDEST();
                    if (failed) break;
                    c = &ring[submitted % nring];
                    c->file = name; c->first_line = sio_lineno(in); c->len = 0; c->nlines = 0; c->done = 0; c->msg[0] = 0;
                }
                if (c->len + n + 1 > c->cap) {
                    size_t cap = c->cap ? c->cap : CHUNK_BYTES + (1 << 16);
                    while (cap < c->len + n + 1) cap *= 2;
                    char *nb = realloc(c->buf, cap);
                    if (!nb) die("out of memory");
                    c->buf = nb; c->cap = cap;
                }
                if (c->nlines == c->offcap) {
                    size_t cap = c->offcap ? c->offcap * 2 : 4096;
                    size_t *no = realloc(c->off, cap * sizeof *no);
                    if (!no) die("out of memory");
                    c->off = no; c->offcap = cap;
                }
                c->off[c->nlines++] = c->len;
                memcpy(c->buf + c->len, line, n); c->buf[c->len + n] = 0;
                c->len += n + 1;
                bytes_in += n + 1;
            }
            if (c && (r == 0 || c->len >= CHUNK_BYTES)) {
                if (nthreads) { pthread_mutex_lock(&P.mu); P.queue[P.qtail++ % P.qcap] = c; pthread_cond_signal(&P.work); pthread_mutex_unlock(&P.mu); }
                else { process(&cf, c, &o1, &sbuf1, &scap1); c->done = 1; }
                submitted++;
                c = NULL;
                /* write whatever is already finished, in order */
                while (written < submitted && !failed) {
                    chunk *w = &ring[written % nring];
                    int ready = 1;
                    if (nthreads) { pthread_mutex_lock(&P.mu); ready = w->done; pthread_mutex_unlock(&P.mu); }
                    if (!ready) break;
                    WRITE_OLDEST();
                }
                if (verbose && isatty(2) && now() - tlast > 1.0) {
                    tlast = now();
                    fprintf(stderr, "\rwordpiece: %llu docs, %llu tokens, %.1f MB, %.1f MB/s   ",
                            (unsigned long long)docs, (unsigned long long)tokens, bytes_in / 1e6, bytes_in / 1e6 / (tlast - t0));
                }
            }
            if (r == 0) break;
        }
        sio_close(in);
    }
    while (written < submitted) WRITE_OLDEST();
    pthread_mutex_lock(&P.mu); P.stop = 1; pthread_cond_broadcast(&P.work); pthread_mutex_unlock(&P.mu);
    for (int k = 0; k < nthreads; k++) pthread_join(tid[k], NULL);

    if (!failed && out.to_file && afile_commit(&out.af, out.err, sizeof out.err) < 0) {
        fprintf(stderr, "wordpiece: %s\n", out.err); failed = 1;
    } else if (failed && out.to_file) afile_abort(&out.af);
    if (verbose) {
        double dt = now() - t0;
        fprintf(stderr, "%swordpiece: %llu docs, %llu tokens, %.1f MB in %.2f s, %.1f MB/s, %d thread%s%s\n",
                isatty(2) ? "\r" : "", (unsigned long long)docs, (unsigned long long)tokens, bytes_in / 1e6, dt,
                dt > 0 ? bytes_in / 1e6 / dt : 0.0, threads, threads > 1 ? "s" : "", failed ? " (stopped by an error)" : "");
    }
    for (size_t k = 0; k < nring; k++) { free(ring[k].buf); free(ring[k].off); free(ring[k].out); }
    free(ring); free(P.queue); free(tid); free(sbuf1); wp_out_free(&o1);
    wp_free(tok); wp_vocab_free(v); free(fieldcopy); free(files);
    return failed ? 1 : 0;
}
