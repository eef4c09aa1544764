/* shardpack_main.c - bin/shard-pack: flags, the token stream loop, and the
 * printing for the four modes (pack, merge, --verify, --show).  Everything
 * else is in shard.c. */
#include "pipeline/shard.h"
#include "pipeline/sio.h"
#include "pipeline/tokstream.h"
#include "pipeline/sha256.h"
#include "tokenizer/vocab.h"
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
"usage: shard-pack [FILES] -o DIR [options]     pack wordpiece token streams (stdin when no FILES)\n"
"       shard-pack merge -o DIR [options] DIR...  combine shard folders into one\n"
"       shard-pack --verify DIR [--vocab FILE]    check every shard against manifest.json\n"
"       shard-pack --show DIR N [--split S] [--ids] [--vocab FILE]   print sample N\n"
"\n"
"Documents ([CLS] ... [SEP], as wordpiece writes them) are concatenated in order\n"
"and cut into samples of --seq-len ids; the final partial sample is dropped and\n"
"reported.  Samples go to NumPy .npy files of shape (N, seq_len), dtype uint16:\n"
"DIR/train-00000.npy ..., DIR/validation-00000.npy ..., and DIR/manifest.json.\n"
"\n"
"options:\n"
"  -o, --out DIR          output folder (created; refused if it holds shards)\n"
"  --seq-len N            ids per sample (512)\n"
"  --shard-samples N      samples per .npy file (65536)\n"
"  --val-samples N        validation samples, drawn uniformly from the stream by\n"
"                         seeded reservoir sampling; never also in train (0).\n"
"                         Memory: N x seq_len x 2 bytes.  In merge: drawn from\n"
"                         the merged train samples, in addition to the inputs'\n"
"                         own validation samples\n"
"  --seed N               seed of the validation draw (0)\n"
"  --force                replace the shards of a folder that holds some\n"
"  --accept-partial       pack a token stream that ends without its trailer\n"
"                         (its writer was killed or failed); refused otherwise\n"
"  --link                 merge: hard-link the input shards, copy nothing (same\n"
"                         file system; no --val-samples)\n"
"  --split train|validation   split for --show (train)\n"
"  --ids                  --show prints ids, not text (no vocab needed)\n"
"  --vocab FILE           vocab for --show / --verify: the shards' own (manifest.json\n"
"                         has its sha256); without it, the first of: $SYMBERT_VOCAB,\n"
"                         ${XDG_DATA_HOME:-~/.local/share}/symbert/vocab.txt (where\n"
"                         oscar-fetch vocab puts it), the copy that ships with the\n"
"                         tools (../share/symbert/vocab.txt from this program's folder)\n"
"  -q, --quiet            no summary on stderr\n"
"  -h, --help             this text\n"
"See docs/shard-pack.md.\n";

static volatile sig_atomic_t interrupted;   /* the signal number */
static void on_signal(int sig) { interrupted = sig; }

static int parse_u64(const char *s, uint64_t *v) {
    if (!s || !*s) return -1;
    char *e; errno = 0;
    unsigned long long x = strtoull(s, &e, 10);
    if (*e || errno || s[0] == '-') return -1;
    *v = x;
    return 0;
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fputs("shard-pack: ", stderr); vfprintf(stderr, fmt, ap); fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static void summary(const shard_manifest *m, const char *dir, int merged) {
    size_t ns[2] = { 0, 0 };
    for (size_t i = 0; i < m->nshards; i++) ns[m->shards[i].split]++;
    fprintf(stderr, "shard-pack: %" PRIu64 " documents, %" PRIu64 " tokens -> %" PRIu64 " samples of %u "
                    "(%" PRIu64 " train in %zu shard%s, %" PRIu64 " validation in %zu shard%s); "
                    "%s %" PRIu64 " tokens\n",
            m->t.documents, m->t.tokens, m->t.samples, m->seq_len, m->t.train_samples, ns[0], ns[0] == 1 ? "" : "s",
            m->t.validation_samples, ns[1], ns[1] == 1 ? "" : "s",
            merged ? "the inputs dropped tails of" : "dropped final partial sample of", m->t.dropped_tail_tokens);
    fprintf(stderr, "shard-pack: wrote %s/manifest.json\n", dir);
}

static void print_line(void *ctx, const char *line) { (void)ctx; fprintf(stderr, "shard-pack: %s\n", line); }

static int load_vocab(const char *given, wp_vocab **out, char *path, size_t pathlen) {
    char err[1024];
    if (wp_vocab_locate(given, path, pathlen, err, sizeof err) < 0) return die("%s", err);
    if (!(*out = wp_vocab_load(path, err, sizeof err))) return die("%s", err);
    return 0;
}

/* The manifest's vocab_sha256 is checked against the vocab found as --show
 * finds it (--vocab, $SYMBERT_VOCAB, ..., the shipped copy), never skipped. */
static int do_verify(const char *dir, const char *vocab) {
    wp_vocab *v = NULL;
    char vpath[4096];
    if (load_vocab(vocab, &v, vpath, sizeof vpath)) return 1;
    int cls = wp_vocab_id(v, "[CLS]", 5);   /* every document starts with it (wordpiece takes it from the vocab) */
    if (cls < 0) { wp_vocab_free(v); return die("%s: the vocab has no [CLS] token", vpath); }
    long bad = shard_verify(dir, wp_vocab_sha256(v), (uint32_t)cls, print_line, NULL);
    wp_vocab_free(v);
    if (bad) { fprintf(stderr, "shard-pack: %s: %ld problem%s (vocab: %s)\n", dir, bad, bad == 1 ? "" : "s", vpath); return 1; }
    shard_manifest m; char err[1024];
    if (shard_manifest_read(dir, &m, err, sizeof err) < 0) return die("%s", err);
    printf("%s: ok: %zu shards, %" PRIu64 " train + %" PRIu64 " validation samples of %u ids, sha256 and ids < %u checked\n",
           dir, m.nshards, m.t.train_samples, m.t.validation_samples, m.seq_len, m.vocab_size);
    shard_manifest_free(&m);
    return 0;
}

static int do_show(const char *dir, const char *nstr, int split, int ids_only, const char *vocab) {
    uint64_t n;
    if (parse_u64(nstr, &n) < 0) return die("--show: sample number '%s' is not a non-negative integer", nstr);
    char err[1024], where[128];
    shard_set *s = shard_set_open(dir, err, sizeof err);
    if (!s) return die("%s", err);
    const shard_manifest *m = shard_set_manifest(s);
    const uint16_t *x = shard_set_sample(s, split, n, where, sizeof where);
    if (!x) {
        uint64_t c = shard_set_count(s, split);
        shard_set_close(s);
        return die("%s: no %s sample %" PRIu64 " (the folder has %" PRIu64 ", numbered from 0)", dir, shard_split_name(split), n, c);
    }
    wp_vocab *v = NULL;
    if (!ids_only) {
        char vpath[4096];
        if (load_vocab(vocab, &v, vpath, sizeof vpath)) { shard_set_close(s); return 1; }
        char hx[65]; sha256_hex(wp_vocab_sha256(v), hx);
        if (strcmp(hx, m->vocab_sha256)) {
            die("the vocab %s (sha256 %s) is not the one these shards were made with (%s): pass --vocab FILE, or --ids", vpath, hx, m->vocab_sha256);
            wp_vocab_free(v); shard_set_close(s);
            return 1;
        }
    }
    printf("%s sample %" PRIu64 " (%s), %u ids:\n", shard_split_name(split), n, where, m->seq_len);
    for (uint32_t i = 0; i < m->seq_len; i++) {
        if (ids_only) { printf(i ? " %u" : "%u", x[i]); continue; }
        const char *t = wp_vocab_token(v, x[i]);
        if (!t) t = "[?]";
        if (!strncmp(t, "##", 2) && i) fputs(t + 2, stdout);
        else {
            if (i) putchar(x[i] == 101 ? '\n' : ' ');
            fputs(t, stdout);
        }
    }
    putchar('\n');
    wp_vocab_free(v);
    shard_set_close(s);
    return ferror(stdout) ? die("write error on standard output") : 0;
}

static int do_pack(shard_opts *o, char **files, int nfiles, int quiet, int partial) {
    char err[1024];
    shard_packer *p = NULL;
    ts_header h0;
    int rc = 1;
    const char *stdin_only[] = { "-" };
    if (!nfiles) {
        if (isatty(0)) return die("no input: pipe wordpiece's output in, or name token stream files (see --help)");
        files = (char **)stdin_only; nfiles = 1;
    }
    for (int f = 0; f < nfiles && !interrupted; f++) {
        sio *in = sio_open_cancellable(files[f], &interrupted, err, sizeof err);
        if (!in) { if (!interrupted) die("%s", err); goto out; }
        ts_reader *r = ts_reader_new(in, partial ? TS_ALLOW_NO_TRAILER : 0, err, sizeof err);
        if (!r) { sio_close(in); if (!interrupted) die("%s", err); goto out; }
        const ts_header *h = ts_reader_header(r);
        if (!p) {
            h0 = *h;
            o->vocab_size = h->vocab_size;
            memcpy(o->vocab_sha256, h->vocab_sha256, 32);
            if (!(p = shard_packer_open(o, err, sizeof err))) { ts_reader_free(r); sio_close(in); die("%s", err); goto out; }
        } else if (h->vocab_size != h0.vocab_size || memcmp(h->vocab_sha256, h0.vocab_sha256, 32)) {
            ts_reader_free(r); sio_close(in);
            die("%s: made with another vocab than %s", files[f], files[0]); goto out;
        }
        const uint16_t *ids; uint32_t n; int k = 0;
        while (!interrupted && (k = ts_next(r, &ids, &n)) == 1)
            if (shard_packer_doc(p, ids, n) < 0) {
                die("%s: document %" PRIu64 ": %s", sio_name(in), ts_docs(r), shard_packer_error(p));
                ts_reader_free(r); sio_close(in); goto out;
            }
        if (!interrupted && k < 0) { die("%s", ts_error(r)); ts_reader_free(r); sio_close(in); goto out; }
        if (!interrupted && ts_untrailed(r) && !quiet)
            fprintf(stderr, "shard-pack: %s: no trailer after document %" PRIu64 ": packed as it is (--accept-partial)\n",
                    sio_name(in), ts_docs(r));
        ts_reader_free(r); sio_close(in);
    }
    if (interrupted) goto out;
    shard_manifest m;
    if (shard_packer_finish(p, &m) < 0) { die("%s", shard_packer_error(p)); goto out; }
    if (!quiet) summary(&m, o->dir, 0);
    shard_manifest_free(&m);
    rc = 0;
out:
    shard_packer_close(p);
    if (interrupted) {   /* a signal during the final renames comes after the folder is whole */
        if (rc == 0) die("interrupted: %s was already published whole", o->dir);
        else die("interrupted: no shard written to %s", o->dir);
        rc = 128 + interrupted;
    }
    return rc;
}

int main(int argc, char **argv) {
    shard_opts o; memset(&o, 0, sizeof o);
    const char *verify = NULL, *show = NULL, *show_n = NULL, *vocab = NULL;
    int split = SHARD_TRAIN, ids_only = 0, quiet = 0, merge = 0, partial = 0;
    char **files = argv;   /* file names are compacted into argv[0..nfiles), behind the parsing */
    int nfiles = 0;
    int i = 1;
    if (argc > 1 && !strcmp(argv[1], "merge")) { merge = 1; i = 2; }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (!val) return die("%s needs a value (see --help)", a); i++; } while (0)
#define U64(dst) do { uint64_t t_; NEED(); if (parse_u64(val, &t_) < 0) return die("%s: '%s' is not a non-negative integer", a, val); dst = t_; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) { NEED(); o.dir = val; }
        else if (!strcmp(a, "--seq-len")) {
            uint64_t t; U64(t);
            if (t == 0 || t > SHARD_MAX_SEQ_LEN) return die("--seq-len %s: must be 1..%u", val, SHARD_MAX_SEQ_LEN);
            o.seq_len = (uint32_t)t;
        }
        else if (!strcmp(a, "--shard-samples")) { U64(o.shard_samples); if (!o.shard_samples) return die("--shard-samples must be > 0"); }
        else if (!strcmp(a, "--val-samples")) U64(o.val_samples);
        else if (!strcmp(a, "--seed")) U64(o.seed);
        else if (!strcmp(a, "--force")) o.force = 1;
        else if (!strcmp(a, "--link") && merge) o.link = 1;
        else if (!strcmp(a, "--accept-partial") && !merge) partial = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--verify")) { NEED(); verify = val; }
        else if (!strcmp(a, "--show")) {
            NEED(); show = val;
            if (i + 1 >= argc) return die("--show needs a folder and a sample number: --show DIR N");
            show_n = argv[++i];
        }
        else if (!strcmp(a, "--split")) {
            NEED();
            if (!strcmp(val, "train")) split = SHARD_TRAIN;
            else if (!strcmp(val, "validation") || !strcmp(val, "val")) split = SHARD_VALIDATION;
            else return die("--split %s: expected train or validation", val);
        }
        else if (!strcmp(a, "--ids")) ids_only = 1;
        else if (!strcmp(a, "--vocab")) { NEED(); vocab = val; }
        else if (a[0] == '-' && a[1]) return die("unknown option %s (see --help)", a);
        else files[nfiles++] = argv[i];
    }
    int rc;
    if (verify || show) {
        if (nfiles || o.dir || merge) return die("--verify and --show take a folder, not files or -o");
        return verify ? do_verify(verify, vocab) : do_show(show, show_n, split, ids_only, vocab);
    }
    if (!o.dir) return die("no output folder: pass -o DIR (see --help)");
    struct sigaction sa; memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL); sigaction(SIGTERM, &sa, NULL);
    if (merge) {
        if (!nfiles) return die("merge: no input folders (shard-pack merge -o OUT DIR...)");
        char err[1024]; shard_manifest m;
        if (shard_merge(&o, (const char *const *)files, (size_t)nfiles, &m, err, sizeof err) < 0) rc = die("%s", err);
        else { if (!quiet) summary(&m, o.dir, 1); shard_manifest_free(&m); rc = 0; }
    } else rc = do_pack(&o, files, nfiles, quiet, partial);
    return rc;
}
