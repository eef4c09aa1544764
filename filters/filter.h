/* filter.h - the paper's document rules for OSCAR-2301 JSON Lines (flt_).
 *
 * Courtois et al. keep an OSCAR document iff
 *   1. no entry of metadata.categories is one of eleven UT1 category names,
 *   2. 5.0 < metadata.harmful_pp < 100000.0 (missing or null drops),
 *   3. metadata.quality_warnings is missing, null or empty.
 * flt_eval decides one line with those rules (each adjustable or off, see
 * flt_rules) and, when given UT1 lists, the document's warc-target-uri.
 * It reads the line with the validating scanner of pipeline/json.h and never
 * builds a tree or copies the document: oscar-filter writes kept lines
 * byte-for-byte as read.
 *
 * Comparisons follow the authors' Python: category names compare exactly
 * (case-sensitive, after JSON unescaping); harmful_pp is read as Python's
 * float() reads it (NaN and infinities fail the bounds); duplicate keys take
 * the last value.  Types outside OSCAR's schema (harmful_pp not a number or
 * null, categories or quality_warnings not a list or null, metadata not an
 * object, the document not an object) make the line malformed, as would
 * invalid JSON.  A document without a `metadata` key is "unannotated": the
 * three rules have nothing to judge and keep it (the authors' script would
 * stop with KeyError); only the UT1 lists can drop it.
 *
 * flt_run streams files (plain or zstd) through flt_eval into an sout, with
 * decompression in a second thread, in memory bounded by a few blocks of
 * 4 MiB plus the longest line. */
#ifndef SYMBERT_FILTER_H
#define SYMBERT_FILTER_H
#include "filters/ut1.h"
#include "pipeline/json.h"
#include "pipeline/sio.h"
#include <stddef.h>
#include <stdint.h>

#define FLT_MAXNAMES 64

/* Drop reasons (bits of flt_verdict.drop, indexes of flt_stats.by_reason) */
enum { FLT_R_CATEGORIES = 0, FLT_R_HARMFUL_PP = 1, FLT_R_WARNINGS = 2, FLT_R_UT1 = 3, FLT_NREASONS = 4 };
enum { FLT_WARN_OFF = 0, FLT_WARN_ANY = 1, FLT_WARN_LIST = 2 };

typedef struct flt_rules {
    int cat_on;                        /* rule 1 */
    int ncats; char *cats[FLT_MAXNAMES];
    int pp_on; double pp_min, pp_max;  /* rule 2: kept iff pp_min < x < pp_max */
    int warn_mode;                     /* rule 3: FLT_WARN_* */
    int nwarn; char *warn[FLT_MAXNAMES];
    ut1_lists *ut1;                    /* NULL: no URL lists (not owned) */
    int nut1; char *const *ut1_names;  /* the categories ut1 was loaded with, for the stats */
} flt_rules;

/* The paper's rules: the eleven categories, 5:100000, any warning. */
void flt_rules_default(flt_rules *r);
/* Comma-separated names, or "off".  Names are kept as given (exact match). */
int flt_set_categories(flt_rules *r, const char *spec, char *err, size_t errlen);
/* "MIN:MAX" (numbers as strtod reads them, MIN < MAX), or "off". */
int flt_set_harmful_pp(flt_rules *r, const char *spec, char *err, size_t errlen);
/* "any" (a non-empty list drops), "off", or comma-separated warning names
 * (a list holding one of them drops). */
int flt_set_warnings(flt_rules *r, const char *spec, char *err, size_t errlen);
void flt_rules_free(flt_rules *r);
/* The paper's eleven UT1 categories, NULL-terminated. */
extern const char *const flt_paper_categories[];

typedef struct {
    unsigned drop;     /* bit (1 << FLT_R_*) per failed rule; 0 = kept */
    int unannotated;   /* no metadata key */
    int no_url;        /* UT1 lists given but no warc-target-uri */
    ut1_match ut1;     /* when drop has FLT_R_UT1 */
} flt_verdict;

/* Decides one line (n bytes, no '\n').  Returns 0, or -1 for a malformed
 * line with "byte N: what" in err. */
int flt_eval(const flt_rules *r, const char *line, size_t n, flt_verdict *v, char *err, size_t errlen);

typedef struct flt_stats {
    uint64_t files, documents, kept, dropped, malformed, unannotated, no_url;
    uint64_t by_reason[FLT_NREASONS];  /* a document can count under several */
    uint64_t ut1_by_kind[4];           /* indexed by UT1_DOMAIN, UT1_URL, UT1_EXPRESSION */
    uint64_t bytes_in;                 /* decompressed input, newlines included */
    uint64_t bytes_in_raw;             /* as read from the files (compressed for zstd) */
    uint64_t bytes_out;                /* kept lines, newlines included, before compression */
} flt_stats;

typedef struct {
    int skip_malformed;   /* count and report malformed lines instead of failing */
    /* called for each skipped line with "file: line N: byte M: what" */
    void (*on_skip)(void *ud, const char *msg);
    /* called after the kept lines of each input block (about 4 MiB) went to
     * out; oscar-filter starts the output file's write-back there */
    void (*on_block)(void *ud);
    void *ud;
} flt_run_opts;

/* Reads each path in turn ("-" is stdin; npaths 0 reads stdin), writes kept
 * lines to out (each followed by '\n', also after a last line that had
 * none), adds to *st.  Returns 0, or -1 with a message naming the file and
 * the line (malformed JSON) or byte offset (corrupt or truncated zstd, read
 * or write errors). */
int flt_run(const flt_rules *r, const char *const *paths, int npaths, sout *out,
            const flt_run_opts *o, flt_stats *st, char *err, size_t errlen);

/* The stats as one JSON object (with the rules used and the elapsed time),
 * newline-terminated, in a malloc'd string; NULL when out of memory. */
char *flt_stats_json(const flt_stats *st, const flt_rules *r, double seconds);
/* The key paths a document is judged by, in js_scan's order (P_URL only
 * with UT1 lists); shared with the differential fuzz test. */
enum { P_META, P_CATS, P_PP, P_WARN, P_URL, FLT_NPATHS };
extern const js_path flt_paths[FLT_NPATHS];
#endif
