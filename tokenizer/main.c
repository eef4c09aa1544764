/* main.c - bin/wordpiece: flags, the vocab, the output file; the threaded
 * engine is wp_run (tokenizer/run.h). */
#include "tokenizer/run.h"
#include "tokenizer/vocab.h"
#include "pipeline/atomic.h"
#include "pipeline/sha256.h"
#include "pipeline/sio.h"
#include "pipeline/tokstream.h"
#include <errno.h>
#include <signal.h>
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
"Errors (bad JSON, missing field, unreadable input, an input whose stream begin\n"
"record from oscar-filter --frame has no end record) name the file and line and\n"
"exit with status 1; with -o nothing is written then, on standard output the\n"
"token stream's trailer is missing, so shard-pack refuses it.\n";

static void die(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fputs("wordpiece: ", stderr); vfprintf(stderr, fmt, ap); fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- output ---- */
typedef struct {
    int to_file; afile af;
    double t0, tlast;       /* progress */
} sink;

static int sink_write(void *ud, const void *buf, size_t n, char *err, size_t errlen) {
    sink *s = ud;
    if (s->to_file) return afile_write(&s->af, buf, n, err, errlen);
    if (fd_write_all(1, buf, n) < 0) { snprintf(err, errlen, "standard output: write error: %s", strerror(errno)); return -1; }
    return 0;
}

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

static void show_progress(void *ud, const wp_run_stats *st) {
    sink *s = ud;
    double t = now();
    if (t - s->tlast <= 1.0) return;
    s->tlast = t;
    fprintf(stderr, "\rwordpiece: %llu docs, %llu tokens, %.1f MB, %.1f MB/s   ", (unsigned long long)st->docs,
            (unsigned long long)st->tokens, st->bytes_in / 1e6, st->bytes_in / 1e6 / (t - s->t0));
}

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

    wp_run_opts ro; memset(&ro, 0, sizeof ro);
    ro.jsonl = jsonl; ro.bin = bin; ro.threads = threads;
    char *fieldcopy = strdup(field);
    for (char *s = fieldcopy, *tok; (tok = strsep(&s, ".")); ) {
        if (!*tok || ro.path.depth == JS_MAXDEPTH) die("--field '%s': empty part or deeper than %d", field, JS_MAXDEPTH);
        ro.path.key[ro.path.depth++] = tok;
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
    ro.header.vocab_size = wp_vocab_size(v); memcpy(ro.header.vocab_sha256, wp_vocab_sha256(v), 32);

    sink out; memset(&out, 0, sizeof out);
    if (out_path) {
        if (afile_open(&out.af, out_path, err, sizeof err) < 0) die("%s", err);
        out.to_file = 1;
        afile_remove_on_signal(&out.af);
    }
    out.t0 = out.tlast = now();
    ro.write = sink_write; ro.ud = &out;
    if (verbose && isatty(2)) ro.progress = show_progress;
    wp_run_stats st;
    int failed = wp_run(tok, files, nfiles, &ro, &st, err, sizeof err) < 0;
    if (failed) fprintf(stderr, "wordpiece: %s\n", err);
    if (!failed && out.to_file && afile_commit(&out.af, err, sizeof err) < 0) {
        fprintf(stderr, "wordpiece: %s\n", err); failed = 1;
    } else if (failed && out.to_file) afile_abort(&out.af);
    if (verbose) {
        double dt = now() - out.t0;
        fprintf(stderr, "%swordpiece: %llu docs, %llu tokens, %.1f MB in %.2f s, %.1f MB/s, %d thread%s%s\n",
                isatty(2) ? "\r" : "", (unsigned long long)st.docs, (unsigned long long)st.tokens, st.bytes_in / 1e6, dt,
                dt > 0 ? st.bytes_in / 1e6 / dt : 0.0, threads, threads > 1 ? "s" : "", failed ? " (stopped by an error)" : "");
    }
    wp_free(tok); wp_vocab_free(v); free(fieldcopy); free(files);
    return failed ? 1 : 0;
}
