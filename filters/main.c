/* main.c - oscar-filter: flags in, filters/ library, one summary line out. */
#include "filters/filter.h"
#include "filters/ut1.h"
#include "pipeline/atomic.h"
#include "pipeline/frame.h"
#include "pipeline/sio.h"
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char USAGE[] =
"usage: oscar-filter [OPTIONS] [FILE...]\n"
"Keeps the OSCAR-2301 documents (JSON Lines, plain or zstd, files or stdin)\n"
"that pass the three rules of Courtois et al. and writes them byte-for-byte,\n"
"in order.  A document is dropped when\n"
"  - an entry of metadata.categories is one of the UT1 categories\n"
"    agressif adult cryptojacking dangerous_material phishing warez ddos\n"
"    hacking malware mixed_adult sect (exact, case-sensitive names);\n"
"  - metadata.harmful_pp is not strictly between 5 and 100000 (missing or\n"
"    null drops);\n"
"  - metadata.quality_warnings is a non-empty list.\n"
"A document without a metadata key is kept by these rules (only --ut1 can\n"
"drop it).\n"
"\n"
"  -o, --output FILE       write to FILE, which appears only when all went well\n"
"                          (default: standard output)\n"
"  -z, --zstd              compress the output with zstd\n"
"  -l, --level N           zstd level 1-22 (default 3, as python-zstandard; implies -z)\n"
"  -T, --threads N         zstd worker threads (default: the number of CPUs, at\n"
"                          most 8; 0: compress in the filter's own thread)\n"
"      --categories LIST   comma-separated category names that drop, or 'off'\n"
"      --harmful-pp MIN:MAX  kept iff MIN < harmful_pp < MAX (default 5:100000), or 'off'\n"
"      --reject-warnings W 'any' (default: any non-empty list drops), 'off', or\n"
"                          comma-separated warnings that drop\n"
"      --ut1 DIR           also drop documents whose warc-target-uri matches the UT1\n"
"                          lists DIR/<category>/{domains,urls,expressions}\n"
"      --ut1-categories LIST  the UT1 categories to load (default: the --categories\n"
"                          list, or the eleven above when --categories is off)\n"
"      --stats FILE        write counts as JSON to FILE\n"
"      --frame             begin and end the output with a stream record (one JSON\n"
"                          line each, docs/oscar-filter.md), so that wordpiece can\n"
"                          tell a complete output from one cut by a failure or a kill\n"
"      --skip-malformed    count, report and skip malformed lines instead of stopping\n"
"  -q, --quiet             no summary line on stderr\n"
"  -h, --help              this help\n"
"\n"
"Errors (exit 1): a malformed line (file, line number, byte), a truncated or\n"
"corrupt zstd stream (file, byte offset), a bad UT1 list, an input whose stream\n"
"begin record has no end record.  Usage errors exit 2.  After an error neither\n"
"FILE nor the --stats file exists.\n"
"Details: docs/oscar-filter.md\n";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void on_skip(void *ud, const char *msg) {
    (void)ud;
    fprintf(stderr, "oscar-filter: skipped %s\n", msg);
}

/* Starts write-back of what is already written to the output file, without
 * waiting for it, so that afile_commit's fsync at the end has only the tail
 * left to wait for (otherwise it waits for the whole file's write-out). */
static void on_block(void *ud) {
    const int *fd = ud;
    if (*fd >= 0) sync_file_range(*fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static flt_rules rules;   /* global only so that every exit path can free it */

static int usage_error(const char *msg) {
    fprintf(stderr, "oscar-filter: %s (see --help)\n", msg);
    flt_rules_free(&rules);
    return 2;
}

static long parse_int(const char *s, long lo, long hi, int *ok) {
    char *e;
    long v = strtol(s, &e, 10);
    *ok = e != s && !*e && v >= lo && v <= hi;
    return v;
}

int main(int argc, char **argv) {
    enum { O_CATS = 256, O_PP, O_WARN, O_UT1, O_UT1CATS, O_STATS, O_SKIP, O_FRAME };
    static const struct option opts[] = {
        { "output", required_argument, 0, 'o' }, { "zstd", no_argument, 0, 'z' },
        { "level", required_argument, 0, 'l' }, { "threads", required_argument, 0, 'T' },
        { "categories", required_argument, 0, O_CATS }, { "harmful-pp", required_argument, 0, O_PP },
        { "reject-warnings", required_argument, 0, O_WARN }, { "ut1", required_argument, 0, O_UT1 },
        { "ut1-categories", required_argument, 0, O_UT1CATS }, { "stats", required_argument, 0, O_STATS },
        { "skip-malformed", no_argument, 0, O_SKIP }, { "frame", no_argument, 0, O_FRAME }, { "quiet", no_argument, 0, 'q' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    flt_rules_default(&rules);
    const char *outpath = NULL, *statspath = NULL, *ut1dir = NULL, *ut1cats = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int level = 0, threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu, quiet = 0, framed = 0, ok, c;
    int syncfd = -1;      /* the output file that afile_commit will fsync */
    flt_run_opts ro = { .on_skip = on_skip, .on_block = on_block, .ud = &syncfd };
    char err[2048];
    while ((c = getopt_long(argc, argv, "o:zl:T:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': outpath = optarg; break;
        case 'z': if (!level) level = 3; break;
        case 'l': level = (int)parse_int(optarg, 1, 22, &ok); if (!ok) return usage_error("--level wants 1 to 22"); break;
        case 'T': threads = (int)parse_int(optarg, 0, 256, &ok); if (!ok) return usage_error("--threads wants 0 to 256"); break;
        case O_CATS: if (flt_set_categories(&rules, optarg, err, sizeof err) < 0) return usage_error(err); break;
        case O_PP: if (flt_set_harmful_pp(&rules, optarg, err, sizeof err) < 0) return usage_error(err); break;
        case O_WARN: if (flt_set_warnings(&rules, optarg, err, sizeof err) < 0) return usage_error(err); break;
        case O_UT1: ut1dir = optarg; break;
        case O_UT1CATS: ut1cats = optarg; break;
        case O_STATS: statspath = optarg; break;
        case O_SKIP: ro.skip_malformed = 1; break;
        case O_FRAME: framed = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(USAGE, stdout); flt_rules_free(&rules); return 0;
        default: return usage_error("unknown option");
        }
    }
    if (ut1cats && !ut1dir) return usage_error("--ut1-categories needs --ut1 DIR");
    if (outpath && !strcmp(outpath, "-")) outpath = NULL;
    if (optind == argc && isatty(0)) return usage_error("no input: give FILE arguments or pipe documents in");
    if (level && !outpath && isatty(1)) {
        return usage_error("refusing to write compressed data to a terminal (use -o FILE or a pipe)");
    }

    int rc = 1;
    double t0 = now();
    ut1_lists *ut1 = NULL;
    flt_rules ut1names; memset(&ut1names, 0, sizeof ut1names);   /* only its name list is used */
    afile af, sf; int af_open = 0, sf_open = 0;
    sout *out = NULL;
    flt_stats st; memset(&st, 0, sizeof st);

    /* every output is opened before any work, and published only when all went well */
    int fd = 1;
    if (outpath) {
        if (afile_open(&af, outpath, err, sizeof err) < 0) { fprintf(stderr, "oscar-filter: %s\n", err); goto done; }
        af_open = 1; fd = af.fd;
        if (!af.direct) syncfd = af.fd;
        afile_remove_on_signal(&af);
    }
    if (statspath) {
        if (afile_open(&sf, statspath, err, sizeof err) < 0) { fprintf(stderr, "oscar-filter: %s\n", err); goto done; }
        sf_open = 1;
        afile_remove_on_signal(&sf);
    }
    out = sout_fd(fd, outpath ? outpath : "<stdout>", level, level ? threads : 0, err, sizeof err);
    if (!out) { fprintf(stderr, "oscar-filter: %s\n", err); goto done; }
    char rec[128];
    if (framed && sout_write(out, rec, frame_begin(rec, sizeof rec, "oscar-filter")) < 0) {
        fprintf(stderr, "oscar-filter: %s\n", sout_error(out)); goto done;
    }

    if (ut1dir) {
        const char *spec = ut1cats;
        if (!spec && rules.cat_on) {
            ut1names.ncats = rules.ncats;
            for (int i = 0; i < rules.ncats; i++) ut1names.cats[i] = strdup(rules.cats[i]);
        } else if (!spec) {
            for (int i = 0; flt_paper_categories[i]; i++) ut1names.cats[ut1names.ncats++] = strdup(flt_paper_categories[i]);
        } else if (!strcmp(spec, "off") || flt_set_categories(&ut1names, spec, err, sizeof err) < 0) {
            fprintf(stderr, "oscar-filter: --ut1-categories wants comma-separated category names (see --help)\n");
            rc = 2;
            goto done;
        }
        double tl = now();
        ut1 = ut1_load(ut1dir, (const char *const *)ut1names.cats, ut1names.ncats, err, sizeof err);
        if (!ut1) { fprintf(stderr, "oscar-filter: %s\n", err); goto done; }
        rules.ut1 = ut1; rules.nut1 = ut1names.ncats; rules.ut1_names = ut1names.cats;
        if (!quiet) {
            ut1_info in; ut1_get_info(ut1, &in);
            fprintf(stderr, "oscar-filter: UT1 %s: %zu domains, %zu urls, %zu expressions (%d categories) in %.2f s, %.1f MB\n",
                    ut1dir, in.domains, in.urls, in.expressions, ut1names.ncats, now() - tl, (double)in.bytes / 1e6);
        }
    }

    if (flt_run(&rules, (const char *const *)(argv + optind), argc - optind, out, &ro, &st, err, sizeof err) < 0) {
        fprintf(stderr, "oscar-filter: %s\n", err);
        goto done;
    }
    if (framed && sout_write(out, rec, frame_end(rec, sizeof rec, "oscar-filter", (int64_t)st.kept)) < 0) {
        fprintf(stderr, "oscar-filter: %s\n", sout_error(out)); goto done;
    }
    if (sout_finish(out) < 0) { fprintf(stderr, "oscar-filter: %s\n", sout_error(out)); goto done; }
    double secs = now() - t0;
    if (sf_open) {
        char *js = flt_stats_json(&st, &rules, secs);
        if (!js || afile_write(&sf, js, strlen(js), err, sizeof err) < 0) {
            fprintf(stderr, "oscar-filter: %s\n", js ? err : "out of memory");
            free(js);
            goto done;
        }
        free(js);
    }
    if (af_open) {
        if (afile_commit(&af, err, sizeof err) < 0) { af_open = 0; fprintf(stderr, "oscar-filter: %s\n", err); goto done; }
        af_open = 0;
    }
    if (sf_open) {
        sf_open = 0;
        if (afile_commit(&sf, err, sizeof err) < 0) {
            fprintf(stderr, "oscar-filter: %s\n", err);
            if (outpath && !af.direct) unlink(outpath);    /* an error means no FILE */
            goto done;
        }
    }
    if (!quiet) {
        fprintf(stderr, "oscar-filter: %llu documents, %llu kept (%.1f%%); dropped by categories %llu, harmful_pp %llu, "
                "quality_warnings %llu", (unsigned long long)st.documents, (unsigned long long)st.kept,
                st.documents ? 100.0 * (double)st.kept / (double)st.documents : 0.0,
                (unsigned long long)st.by_reason[FLT_R_CATEGORIES], (unsigned long long)st.by_reason[FLT_R_HARMFUL_PP],
                (unsigned long long)st.by_reason[FLT_R_WARNINGS]);
        if (ut1) fprintf(stderr, ", ut1 %llu", (unsigned long long)st.by_reason[FLT_R_UT1]);
        if (st.malformed) fprintf(stderr, "; %llu malformed skipped", (unsigned long long)st.malformed);
        if (st.unannotated) fprintf(stderr, "; %llu without metadata", (unsigned long long)st.unannotated);
        fprintf(stderr, "; %.1f MB in, %.1f MB out, %.2f s, %.0f MB/s\n", (double)st.bytes_in / 1e6,
                (double)st.bytes_out / 1e6, secs, secs > 0 ? (double)st.bytes_in / 1e6 / secs : 0.0);
    }
    rc = 0;
done:
    if (af_open) afile_abort(&af);
    if (sf_open) afile_abort(&sf);
    sout_free(out);
    ut1_free(ut1);
    flt_rules_free(&ut1names);
    flt_rules_free(&rules);
    return rc;
}
