/* fetch_main.c - oscar-fetch: the command line over the fetch library.
 *
 *   oscar-fetch LANG PARTS [-o DIR] [--stdout]   OSCAR-2301 parts
 *   oscar-fetch ut1 [--categories a,b] [-o DIR]  the UT1 blocklist, unpacked
 *   oscar-fetch vocab [-o DIR]                   bert-base-uncased vocab.txt
 *
 * This file parses flags, finds the token, builds the job list, draws the
 * progress display and turns library failures into one-line messages that
 * say what to do.  Everything that touches the network is in fetch.c. */
#include "pipeline/fetch.h"
#include "pipeline/atomic.h"
#include "pipeline/frame.h"
#include "tokenizer/vocab.h"
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define OSCAR_BASE "https://huggingface.co/datasets/oscar-corpus/OSCAR-2301/resolve/main"
#define OSCAR_PAGE "https://huggingface.co/datasets/oscar-corpus/OSCAR-2301"
#define UT1_BASE "https://dsi.ut-capitole.fr/blacklists/download"
#define VOCAB_BASE "https://huggingface.co/google-bert/bert-base-uncased/resolve/main"
#define VOCAB_SHA256 "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

static const char *usage =
"usage: oscar-fetch LANG PARTS [options]   OSCAR-2301 parts LANG_meta_part_N.jsonl.zst\n"
"       oscar-fetch ut1 [options]          the UT1 blocklist, unpacked into DIR/<category>/\n"
"       oscar-fetch vocab [options]        vocab.txt of google-bert/bert-base-uncased\n"
"\n"
"PARTS is a list of part numbers and ranges: 1-300, 1,5,7-9.  Each part is\n"
"downloaded to DIR/LANG_meta_part_N.jsonl.zst.part and renamed only once its\n"
"sha256 matches LANG_meta/checksum.sha256.  A re-run skips finished files and\n"
"resumes .part files with HTTP Range requests.\n"
"\n"
"OSCAR-2301 is gated: accept its terms at " OSCAR_PAGE "\n"
"while logged in, then give a token through HF_TOKEN or the hub's token file\n"
"($HF_TOKEN_PATH, $HF_HOME/token, ~/.cache/huggingface/token: what\n"
"`huggingface-cli login` writes).  The token is sent only to the host of the\n"
"base URL, never to the CDN it redirects to, and never printed.\n"
"\n"
"options:\n"
"  -o, --output DIR       where files go (LANG: '.', ut1: 'ut1', vocab:\n"
"                         ${XDG_DATA_HOME:-~/.local/share}/symbert)\n"
"  -P, --parallel N       transfers at once (default 4, at most 64)\n"
"      --stdout           LANG: write the parts, in order, to standard output\n"
"                         (verifying each sha256; nothing is stored)\n"
"      --frame            with --stdout: a begin record first and, once every part\n"
"                         was verified, an end record last (docs/oscar-fetch.md), so\n"
"                         that oscar-filter can tell a cut stream\n"
"      --base-url URL     replaces " OSCAR_BASE "\n"
"                         (ut1: " UT1_BASE ";\n"
"                         vocab: " VOCAB_BASE ")\n"
"      --categories A,B   ut1: only these categories (one archive each)\n"
"      --verify           hash files already there instead of trusting them\n"
"      --retries N        retries in a row without progress (default 8)\n"
"      --retry-base-ms MS first retry delay, doubled each time (default 1000)\n"
"      --stall-secs S     restart a transfer below 1 KiB/s for S seconds (default 60)\n"
"      --connect-timeout S  (default 30)\n"
"      --progress         force the progress display (default: when stderr is a terminal)\n"
"      --no-progress      one line per file instead\n"
"  -q, --quiet            only errors\n"
"  -h, --help\n"
"\n"
"exit status: 0 all files verified, 1 a download or check failed, 2 bad usage.\n";

static volatile int g_cancel;
static void on_signal(int s) { (void)s; g_cancel = 1; }

static void die_usage(const char *fmt, const char *a) {
    fprintf(stderr, "oscar-fetch: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n(oscar-fetch --help for usage)\n");
    exit(2);
}

/* ---- progress --------------------------------------------------------------- */

typedef struct ui {
    int tty, quiet;
    int no_done_line;         /* the checksum list: no line when it arrives */
    int drawn;                /* lines of the live block on screen */
    double t0;
    double *start;            /* per job: when it started */
    uint64_t *have0;          /* per job: bytes it had when it started */
    double *rate;             /* per job: smoothed bytes/s */
    uint64_t *last;           /* per job: bytes at the last tick */
    double last_t, trate;
    uint64_t tlast;
    const fetch_job *base;
    size_t n;
} ui;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static const char *human(double b, char *buf, size_t len) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) { b /= 1024; i++; }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
    return buf;
}

static const char *hms(double s, char *buf, size_t len) {
    if (s < 0 || s > 1e7) { snprintf(buf, len, "--:--"); return buf; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

static void ui_clear(ui *u) {
    if (!u->drawn) return;
    fprintf(stderr, "\r\033[%dA\033[J", u->drawn);
    u->drawn = 0;
}

static void ui_draw(ui *u, const fetch_job *jobs, size_t n) {
    char a[32], b[32], c[32], d[32];
    double t = now_s();
    uint64_t tot_have = 0, tot_known = 0, unknown = 0, done = 0, failed = 0, got_now = 0;
    for (size_t i = 0; i < n; i++) {
        const fetch_job *j = &jobs[i];
        tot_have += j->have;
        if (j->phase != FETCH_PH_QUEUED && j->have > u->have0[i]) got_now += j->have - u->have0[i];
        if (j->total) tot_known += j->total; else unknown++;
        if (j->status == FETCH_OK || j->status == FETCH_SKIPPED) done++;
        else if (j->status != FETCH_PENDING) failed++;
    }
    double dt = t - u->last_t;
    if (dt >= 0.2) {
        double r = (double)(got_now - u->tlast) / dt;
        u->trate = u->trate ? 0.7 * u->trate + 0.3 * r : r;
        u->tlast = got_now; u->last_t = t;
        for (size_t i = 0; i < n; i++) {
            if (jobs[i].phase != FETCH_PH_TRANSFER) continue;
            double ri = (double)(jobs[i].have - u->last[i]) / dt;
            if (jobs[i].have < u->last[i]) ri = 0;
            u->rate[i] = u->rate[i] ? 0.7 * u->rate[i] + 0.3 * ri : ri;
            u->last[i] = jobs[i].have;
        }
    }
    if (!u->tty || u->quiet) return;
    ui_clear(u);
    int lines = 0;
    for (size_t i = 0; i < n && lines < 16; i++) {
        const fetch_job *j = &jobs[i];
        if (j->phase == FETCH_PH_QUEUED || j->phase == FETCH_PH_END) continue;
        const char *what = j->phase == FETCH_PH_VERIFY ? "verifying" : j->phase == FETCH_PH_WAIT ? "waiting to retry" : "";
        double eta = j->total && u->rate[i] > 0 ? (double)(j->total - (j->have < j->total ? j->have : j->total)) / u->rate[i] : -1;
        fprintf(stderr, "  %-28s %10s / %-10s %10s/s  ETA %s %s\n", j->name, human((double)j->have, a, sizeof a),
                j->total ? human((double)j->total, b, sizeof b) : "?", human(u->rate[i], c, sizeof c), hms(eta, d, sizeof d), what);
        lines++;
    }
    /* Total: sizes not known yet are guessed from the mean of the known ones. */
    double known_files = (double)(n - unknown);
    double est = (double)tot_known + (known_files > 0 ? (double)unknown * (double)tot_known / known_files : 0);
    double eta = u->trate > 0 && known_files > 0 ? (est - (double)tot_have) / u->trate : -1;
    fprintf(stderr, "  total: %zu/%zu files%s%s, %s / %s%s, %s/s, ETA %s\n", (size_t)done, n,
            failed ? ", failed: " : "", failed ? (snprintf(d, sizeof d, "%zu", (size_t)failed), d) : "",
            human((double)tot_have, a, sizeof a), unknown ? "~" : "", known_files > 0 ? human(est, b, sizeof b) : "?",
            human(u->trate, c, sizeof c), hms(eta, d, sizeof d));
    lines++;
    u->drawn = lines;
    fflush(stderr);
}

/* A line that stays (above the live block). */
static void ui_line(ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ui_line(ui *u, const char *fmt, ...) {
    ui_clear(u);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_event(const fetch_event *ev, void *ctx) {
    ui *u = ctx;
    char a[32], b[32];
    if (ev->kind == FETCH_EV_TICK) { ui_draw(u, ev->jobs, ev->njobs); return; }
    fetch_job *j = ev->job;
    size_t i = (size_t)(j - ev->jobs);
    switch (ev->kind) {
    case FETCH_EV_START:
        u->start[i] = now_s(); u->have0[i] = j->have; u->last[i] = j->have;
        break;
    case FETCH_EV_RETRY:
        if (!u->quiet) ui_line(u, "%s: %s; retry %d in %.1f s", j->name, ev->msg, ev->attempt, ev->delay_ms / 1000.0);
        break;
    case FETCH_EV_NOTE:
        if (!u->quiet) ui_line(u, "%s: %s", j->name, ev->msg);
        if (i < u->n) u->have0[i] = u->last[i] = j->have;   /* resumed or restarted: count from here */
        break;
    case FETCH_EV_DONE:
        if (j->status == FETCH_OK && !u->quiet && !u->no_done_line) {
            double dt = now_s() - u->start[i];
            uint64_t got = j->have - (j->have >= u->have0[i] ? u->have0[i] : 0);
            ui_line(u, "%s: %s in %.1f s (%s/s)%s%s", j->name, human((double)j->have, a, sizeof a), dt,
                    human(dt > 0 ? (double)got / dt : 0, b, sizeof b), j->sha256[0] ? ", sha256 ok" : "",
                    j->resumed ? ", resumed" : "");
        } else if (j->status == FETCH_SKIPPED && !u->quiet) {
            ui_line(u, "%s: already there%s, skipped", j->name, j->got_sha256[0] ? " and verified" : "");
        }
        break;
    default: break;
    }
}

static void ui_init(ui *u, size_t n, int progress, int quiet) {
    memset(u, 0, sizeof *u);
    u->quiet = quiet;
    const char *term = getenv("TERM");
    u->tty = progress > 0 || (progress < 0 && isatty(2) && !(term && !strcmp(term, "dumb")));
    u->n = n;
    u->start = calloc(n ? n : 1, sizeof *u->start);
    u->have0 = calloc(n ? n : 1, sizeof *u->have0);
    u->rate = calloc(n ? n : 1, sizeof *u->rate);
    u->last = calloc(n ? n : 1, sizeof *u->last);
    if (!u->start || !u->have0 || !u->rate || !u->last) { fprintf(stderr, "oscar-fetch: out of memory\n"); exit(1); }
    u->t0 = u->last_t = now_s();
}

static void ui_free(ui *u) {
    ui_clear(u);
    free(u->start); free(u->have0); free(u->rate); free(u->last);
}

/* ---- messages ------------------------------------------------------------ */

/* One line for a job that failed, with advice where there is some. */
static void report_failure(const fetch_job *j, const char *token_from, int gated) {
    if (j->status == FETCH_E_AUTH && gated) {
        if (token_from && *token_from)
            fprintf(stderr, "oscar-fetch: %s: the token from %s was refused: OSCAR-2301 is a gated dataset; "
                    "accept its terms at %s with the account that owns the token, or use another token (HF_TOKEN=...)\n",
                    j->err, token_from, OSCAR_PAGE);
        else
            fprintf(stderr, "oscar-fetch: %s: OSCAR-2301 is a gated dataset: accept its terms at %s, then pass a token: "
                    "export HF_TOKEN=hf_... or run `huggingface-cli login` (token file ~/.cache/huggingface/token); "
                    "no token was found\n", j->err, OSCAR_PAGE);
    } else if (j->status == FETCH_E_NOTFOUND) {
        fprintf(stderr, "oscar-fetch: %s: no such file on the server\n", j->err);
    } else if (j->status == FETCH_E_CANCELLED) {
        /* the cause is reported on its own line */
    } else {
        fprintf(stderr, "oscar-fetch: %s\n", j->err[0] ? j->err : j->name);
    }
}

/* streamed: --stdout, where nothing is kept on disk */
static int report_all(const fetch_job *jobs, size_t n, const char *token_from, int gated, int quiet, int streamed) {
    size_t ok = 0, skipped = 0, failed = 0, cancelled = 0, auth = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const fetch_job *j = &jobs[i];
        if (j->status == FETCH_OK) { ok++; bytes += j->have; }
        else if (j->status == FETCH_SKIPPED) skipped++;
        else {
            if (j->status == FETCH_E_CANCELLED) cancelled++; else failed++;
            if (j->status == FETCH_E_AUTH && auth++) continue;   /* one gated message is enough */
            report_failure(j, token_from, gated);
        }
    }
    if (!quiet || failed || cancelled) {
        char b[32];
        char nf[96] = "";
        if (cancelled)
            snprintf(nf, sizeof nf, ", %zu not finished%s", cancelled, streamed ? "" : " (.part files are kept for the next run)");
        fprintf(stderr, "oscar-fetch: %zu file%s: %zu %s (%s), %zu already there, %zu failed%s\n",
                n, n == 1 ? "" : "s", ok, streamed ? "streamed" : "downloaded", human((double)bytes, b, sizeof b), skipped, failed, nf);
    }
    return failed || cancelled ? 1 : 0;
}

/* ---- commands ------------------------------------------------------------- */

typedef struct cli {
    const char *out, *base, *categories;
    int to_stdout, frame, progress, quiet;
    fetch_opts o;
} cli;

/* A stream record (pipeline/frame.h) as a zstd frame of its own, so that
 * the output stays a valid concatenation of zstd frames. */
static int put_record(const char *rec, size_t n) {
    char z[256];
    size_t k = ZSTD_compress(z, sizeof z, rec, n, 1);
    if (ZSTD_isError(k)) { errno = EINVAL; return -1; }
    return fd_write_all(1, z, k);
}

static int valid_word(const char *s, size_t maxlen) {
    size_t n = strlen(s);
    if (!n || n > maxlen || s[0] == '-' || s[0] == '.') return 0;
    for (; *s; s++) if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return 0;
    return 1;
}

/* base URL without trailing slashes, malloc'ed */
static char *trim_base(const char *b) {
    char *s = strdup(b);
    if (!s) { fprintf(stderr, "oscar-fetch: out of memory\n"); exit(1); }
    size_t n = strlen(s);
    while (n && s[n - 1] == '/') s[--n] = 0;
    return s;
}

static int cmd_oscar(cli *c, const char *lang, const char *parts_spec) {
    char err[1024], tok[1024], from[4200];
    if (!valid_word(lang, 32)) die_usage("'%s' is not a language code (e.g. en, fr, ut1, vocab)", lang);
    int *parts; size_t np;
    if (fetch_parse_parts(parts_spec, &parts, &np, err, sizeof err) < 0) die_usage("%s", err);
    int t = fetch_token_find(tok, sizeof tok, from, sizeof from, err, sizeof err);
    if (t < 0) { fprintf(stderr, "oscar-fetch: %s\n", err); free(parts); return 1; }
    c->o.token = t ? tok : NULL;
    char *base = trim_base(c->base ? c->base : OSCAR_BASE);
    char url[8192], sums_name[128];
    snprintf(sums_name, sizeof sums_name, "%s_meta/checksum.sha256", lang);
    snprintf(url, sizeof url, "%s/%s", base, sums_name);
    ui u;
    ui_init(&u, 1, c->progress, c->quiet);
    u.no_done_line = 1;
    fetch_opts so = c->o;
    so.on_event = on_event; so.ctx = &u;
    char *sums_txt; size_t sums_len;
    fetch_job sj;
    int rc = 1;
    fetch_sums sums = {0};
    fetch_job *jobs = NULL;
    char (*names)[96] = NULL;
    char **paths = NULL, **urls = NULL;
    if (fetch_memory(&so, url, sums_name, 16u << 20, &sums_txt, &sums_len, &sj, err, sizeof err) < 0) {
        ui_clear(&u);
        if (sj.status == FETCH_E_NOTFOUND)
            fprintf(stderr, "oscar-fetch: %s: no checksum list: is '%s' a language of OSCAR-2301?\n", sj.err, lang);
        else report_failure(&sj, from, 1);
        ui_free(&u);
        goto out;
    }
    ui_free(&u);
    int pr = fetch_sums_parse(&sums, sums_txt, sums_len, sums_name, err, sizeof err);
    free(sums_txt);
    if (pr < 0) { fprintf(stderr, "oscar-fetch: %s\n", err); goto out; }
    jobs = calloc(np, sizeof *jobs);
    names = calloc(np, sizeof *names);
    paths = calloc(np, sizeof *paths);
    urls = calloc(np, sizeof *urls);
    if (!jobs || !names || !paths || !urls) { fprintf(stderr, "oscar-fetch: out of memory\n"); goto out; }
    size_t missing = 0;
    const char *dir = c->out ? c->out : ".";
    for (size_t i = 0; i < np; i++) {
        snprintf(names[i], sizeof names[i], "%s_meta_part_%d.jsonl.zst", lang, parts[i]);
        const char *hex = fetch_sums_find(&sums, names[i]);
        if (!hex) {
            if (missing++ < 3)
                fprintf(stderr, "oscar-fetch: %s is not listed in %s (no such part?)\n", names[i], sums_name);
            continue;
        }
        if (asprintf(&urls[i], "%s/%s_meta/%s", base, lang, names[i]) < 0 ||
            asprintf(&paths[i], "%s/%s", dir, names[i]) < 0) { fprintf(stderr, "oscar-fetch: out of memory\n"); goto out; }
        jobs[i].url = urls[i]; jobs[i].path = paths[i]; jobs[i].name = names[i];
        memcpy(jobs[i].sha256, hex, 65);
    }
    if (missing) {
        fprintf(stderr, "oscar-fetch: %zu of the %zu parts asked for are not in %s (it lists %zu files); nothing downloaded\n",
                missing, np, sums_name, sums.n);
        goto out;
    }
    ui_init(&u, np, c->progress, c->quiet);
    so = c->o;
    so.on_event = on_event; so.ctx = &u;
    so.cancel = &g_cancel;
    int r;
    if (c->to_stdout) {
        char rec[128];
        if (c->frame && put_record(rec, frame_begin(rec, sizeof rec, "oscar-fetch")) < 0) {
            ui_free(&u); fprintf(stderr, "oscar-fetch: standard output: write error: %s\n", strerror(errno)); goto out;
        }
        r = fetch_stream(&so, jobs, np, 1, err, sizeof err);
        if (r == 0 && !g_cancel && c->frame && put_record(rec, frame_end(rec, sizeof rec, "oscar-fetch", -1)) < 0) {
            snprintf(err, sizeof err, "standard output: write error: %s", strerror(errno)); r = -1;
        }
    } else {
        if (mkdir_p(dir, err, sizeof err) < 0) { ui_free(&u); fprintf(stderr, "oscar-fetch: %s\n", err); goto out; }
        r = fetch_files(&so, jobs, np, err, sizeof err);
    }
    ui_free(&u);
    rc = report_all(jobs, np, from, 1, c->quiet, c->to_stdout);
    if (r < 0 && !rc) { fprintf(stderr, "oscar-fetch: %s\n", err); rc = 1; }
    if (g_cancel) { fprintf(stderr, "oscar-fetch: interrupted\n"); rc = 130; }
out:
    for (size_t i = 0; paths && urls && i < np; i++) { free(paths[i]); free(urls[i]); }
    free(paths); free(urls); free(names); free(jobs);
    fetch_sums_free(&sums);
    free(parts); free(base);
    memset(tok, 0, sizeof tok);
    return rc;
}

static int cmd_vocab(cli *c) {
    char err[1024], dir[4096];
    if (c->to_stdout) die_usage("%s", "--stdout is for OSCAR parts only");
    if (c->out) snprintf(dir, sizeof dir, "%s", c->out);
    else if (wp_vocab_default_path(dir, sizeof dir) == 0) *strrchr(dir, '/') = 0;   /* where the tools look */
    else { fprintf(stderr, "oscar-fetch: neither XDG_DATA_HOME nor HOME is set: pass -o DIR\n"); return 2; }
    if (mkdir_p(dir, err, sizeof err) < 0) { fprintf(stderr, "oscar-fetch: %s\n", err); return 1; }
    char *base = trim_base(c->base ? c->base : VOCAB_BASE);
    char *url = NULL, *path = NULL;
    if (asprintf(&url, "%s/vocab.txt", base) < 0 || asprintf(&path, "%s/vocab.txt", dir) < 0) {
        fprintf(stderr, "oscar-fetch: out of memory\n"); return 1;
    }
    fetch_job j;
    memset(&j, 0, sizeof j);
    j.url = url; j.path = path; j.name = "vocab.txt";
    memcpy(j.sha256, VOCAB_SHA256, 65);
    ui u;
    ui_init(&u, 1, c->progress, c->quiet);
    fetch_opts o = c->o;
    o.token = NULL;               /* a public model: an old token would only get a 401 */
    o.verify_existing = 1;        /* 230 KB: always worth checking */
    o.on_event = on_event; o.ctx = &u; o.cancel = &g_cancel;
    fetch_files(&o, &j, 1, err, sizeof err);
    ui_free(&u);
    int rc = report_all(&j, 1, NULL, 0, 1, 0);
    if (!rc && !c->quiet) printf("%s\n", path);
    free(url); free(path); free(base);
    return rc;
}

static int cmd_ut1(cli *c) {
    char err[1024];
    if (c->to_stdout) die_usage("%s", "--stdout is for OSCAR parts only");
    const char *dir = c->out ? c->out : "ut1";
    /* The categories asked for. */
    char *cats = c->categories ? strdup(c->categories) : NULL;
    char *list[512];
    size_t nc = 0;
    if (c->categories) {
        if (!cats) { fprintf(stderr, "oscar-fetch: out of memory\n"); return 1; }
        for (char *s = strtok(cats, ","); s; s = strtok(NULL, ",")) {
            if (!valid_word(s, 64)) die_usage("'%s' is not a UT1 category name", s);
            if (nc == 512) die_usage("%s", "more than 512 categories");
            list[nc++] = s;
        }
        if (!nc) die_usage("%s", "--categories wants a list like adult,gambling");
    }
    if (mkdir_p(dir, err, sizeof err) < 0) { fprintf(stderr, "oscar-fetch: %s\n", err); free(cats); return 1; }
    /* Downloads and the unpacked tree live in a scratch folder inside dir
     * (same file system), moved into place only when everything unpacked. */
    char tmp[4200], dl[4300], tree[4300];
    snprintf(tmp, sizeof tmp, "%s/.ut1-tmp.%ld", dir, (long)getpid());
    snprintf(dl, sizeof dl, "%s/dl", tmp);
    snprintf(tree, sizeof tree, "%s/tree", tmp);
    if (mkdir_p(dl, err, sizeof err) < 0 || mkdir_p(tree, err, sizeof err) < 0) {
        fprintf(stderr, "oscar-fetch: %s\n", err); fetch_remove_tree(tmp); free(cats); return 1;
    }
    size_t nj = nc ? nc : 1;
    fetch_job *jobs = calloc(nj, sizeof *jobs);
    char **urls = calloc(nj, sizeof *urls), **paths = calloc(nj, sizeof *paths), **names = calloc(nj, sizeof *names);
    char *base = trim_base(c->base ? c->base : UT1_BASE);
    int rc = 1;
    if (!jobs || !urls || !paths || !names) { fprintf(stderr, "oscar-fetch: out of memory\n"); goto out; }
    for (size_t i = 0; i < nj; i++) {
        const char *stem = nc ? list[i] : "blacklists";
        if (asprintf(&names[i], "%s.tar.gz", stem) < 0 || asprintf(&urls[i], "%s/%s", base, names[i]) < 0 ||
            asprintf(&paths[i], "%s/%s", dl, names[i]) < 0) { fprintf(stderr, "oscar-fetch: out of memory\n"); goto out; }
        jobs[i].url = urls[i]; jobs[i].path = paths[i]; jobs[i].name = names[i];
    }
    ui u;
    ui_init(&u, nj, c->progress, c->quiet);
    fetch_opts o = c->o;
    o.token = NULL;
    o.on_event = on_event; o.ctx = &u; o.cancel = &g_cancel;
    fetch_files(&o, jobs, nj, err, sizeof err);
    ui_free(&u);
    if (report_all(jobs, nj, NULL, 0, 1, 0)) goto out;
    size_t files = 0;
    for (size_t i = 0; i < nj; i++) {
        size_t f;
        if (fetch_unpack(paths[i], tree, "blacklists", &f, err, sizeof err) < 0) {
            fprintf(stderr, "oscar-fetch: %s; nothing was installed\n", err);
            goto out;
        }
        files += f;
        if (nc) {
            char cat[4400];
            struct stat st;
            snprintf(cat, sizeof cat, "%s/%s", tree, list[i]);
            if (lstat(cat, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "oscar-fetch: %s has no folder '%s'; nothing was installed\n", names[i], list[i]);
                goto out;
            }
        }
    }
    if (!files) { fprintf(stderr, "oscar-fetch: %s held no files; nothing was installed\n", names[0]); goto out; }
    if (fetch_install_tree(tree, dir, err, sizeof err) < 0) { fprintf(stderr, "oscar-fetch: %s\n", err); goto out; }
    if (!c->quiet) fprintf(stderr, "oscar-fetch: ut1: %zu files unpacked into %s\n", files, dir);
    rc = 0;
out:
    fetch_remove_tree(tmp);
    for (size_t i = 0; i < nj; i++) {
        if (urls) free(urls[i]);
        if (paths) free(paths[i]);
        if (names) free(names[i]);
    }
    free(urls); free(paths); free(names); free(jobs); free(base); free(cats);
    if (g_cancel) { fprintf(stderr, "oscar-fetch: interrupted\n"); rc = 130; }
    return rc;
}

static long num_arg(const char *opt, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "oscar-fetch: %s wants a number from %ld to %ld, not '%s'\n(oscar-fetch --help for usage)\n", opt, lo, hi, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv) {
    cli c;
    memset(&c, 0, sizeof c);
    c.progress = -1;
    fetch_opts_init(&c.o);
    enum { O_STDOUT = 256, O_FRAME, O_BASE, O_CATS, O_VERIFY, O_RETRIES, O_RBASE, O_STALL, O_CONN, O_PROG, O_NOPROG };
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"parallel", required_argument, 0, 'P'},
        {"stdout", no_argument, 0, O_STDOUT}, {"frame", no_argument, 0, O_FRAME}, {"base-url", required_argument, 0, O_BASE},
        {"categories", required_argument, 0, O_CATS}, {"verify", no_argument, 0, O_VERIFY},
        {"retries", required_argument, 0, O_RETRIES}, {"retry-base-ms", required_argument, 0, O_RBASE},
        {"stall-secs", required_argument, 0, O_STALL}, {"connect-timeout", required_argument, 0, O_CONN},
        {"progress", no_argument, 0, O_PROG}, {"no-progress", no_argument, 0, O_NOPROG},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:P:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 'o': c.out = optarg; break;
        case 'P': c.o.parallel = (int)num_arg("-P", optarg, 1, 64); break;
        case O_STDOUT: c.to_stdout = 1; break;
        case O_FRAME: c.frame = 1; break;
        case O_BASE: c.base = optarg; break;
        case O_CATS: c.categories = optarg; break;
        case O_VERIFY: c.o.verify_existing = 1; break;
        case O_RETRIES: c.o.retries = (int)num_arg("--retries", optarg, 0, 1000); break;
        case O_RBASE: c.o.retry_base_ms = num_arg("--retry-base-ms", optarg, 1, 3600000); break;
        case O_STALL: c.o.stall_secs = num_arg("--stall-secs", optarg, 1, 86400); break;
        case O_CONN: c.o.connect_timeout_s = num_arg("--connect-timeout", optarg, 1, 86400); break;
        case O_PROG: c.progress = 1; break;
        case O_NOPROG: c.progress = 0; break;
        case 'q': c.quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (optopt && optopt < 256) { char o2[2] = {(char)optopt, 0}; die_usage("bad or incomplete option -%s", o2); }
            die_usage("bad or incomplete option %s", argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1) die_usage("%s", "what to fetch? (LANG PARTS, ut1 or vocab)");
    const char *what = argv[optind];
    if (c.base && strncmp(c.base, "http://", 7) && strncmp(c.base, "https://", 8))
        die_usage("--base-url '%s' is not an http:// or https:// URL", c.base);
    if (c.categories && strcmp(what, "ut1")) die_usage("%s", "--categories is for ut1 only");
    if (c.frame && !c.to_stdout) die_usage("%s", "--frame goes with --stdout");
    if (strcmp(what, "ut1") && strcmp(what, "vocab") && nargs != 2)
        die_usage("%s", nargs < 2 ? "which parts? e.g. oscar-fetch en 1-300 -o oscar/" : "too many arguments");
    if ((!strcmp(what, "ut1") || !strcmp(what, "vocab")) && nargs != 1) die_usage("unexpected argument '%s'", argv[optind + 1]);

    char err[256];
    if (fetch_global_init(err, sizeof err) < 0) { fprintf(stderr, "oscar-fetch: %s\n", err); return 1; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc;
    if (!strcmp(what, "ut1")) rc = cmd_ut1(&c);
    else if (!strcmp(what, "vocab")) rc = cmd_vocab(&c);
    else rc = cmd_oscar(&c, what, argv[optind + 1]);
    fetch_global_cleanup();
    return rc;
}
