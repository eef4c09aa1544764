/* fuzz_filter.c - the hand-written JSON scanner (pipeline/json.h) and the
 * document rules (filters/filter.h) checked against cJSON, a maintained
 * library, on every input.
 *
 * For each input (its first line, as oscar-filter sees lines) both parsers
 * give a verdict; when both accept, the values at the paths oscar-filter
 * reads (metadata, metadata.categories / harmful_pp / quality_warnings,
 * warc_headers.warc-target-uri; arrays element by element) must be equal, and
 * flt_eval's decision must equal the paper's rules computed on cJSON's tree.
 * Any other disagreement aborts, except these documented differences, where
 * the scanner follows Python's json.loads (the authors' parser) and RFC 8259:
 *
 *   cJSON rejects, we accept (the input is rewritten and both run again):
 *     NaN, Infinity, -Infinity      Python accepts them; rewritten as 0e0,
 *                                   1e999999, -1e999999 (same length);
 *     lone surrogate escapes        Python accepts them (we decode U+FFFD);
 *                                   rewritten as \ufffd;
 *   cJSON accepts, we reject:
 *     bytes < 0x20 outside strings  cJSON skips them as whitespace; inside
 *       or inside strings           strings it keeps them raw; RFC 8259 and
 *                                   Python reject both (rewritten as a space,
 *                                   both run again);
 *     a UTF-8 BOM at the start      cJSON skips it; Python's json.loads(str)
 *                                   rejects it (rewritten as spaces);
 *     \u with non-hex digits        cJSON reads them as 0 (stop);
 *     numbers like 01, 1., -.5, 1.e5  cJSON reads them with strtod; the JSON
 *                                   grammar and Python reject them (stop);
 *     nesting deeper than 512       our limit; cJSON's is 1000 (stop).
 *   Before both run, every "\u0000" escape becomes "\u0001": cJSON keeps
 *   strings NUL-terminated and would cut keys and values at U+0000.
 * Duplicate keys: cJSON keeps them all; the comparison takes the last, as
 * Python and json.h do. */
#include "filters/filter.h"
#include "pipeline/json.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { fprintf(stderr, "fuzz_filter: "); fprintf(stderr, __VA_ARGS__); \
    fprintf(stderr, "\ninput (%zu bytes): %.*s\n", g_n, (int)(g_n > 2000 ? 2000 : g_n), g_buf); abort(); } while (0)
static const char *g_buf; static size_t g_n;

/* Outcome counts, printed at exit when FUZZ_FILTER_STATS is set, to see that
 * the inputs reach the comparisons (not only the rejections). */
static unsigned long n_both_ok, n_both_bad, n_rewritten, n_allowed;
static void print_counts(void) {
    fprintf(stderr, "fuzz_filter: both accept %lu, both reject %lu, rewritten %lu, documented difference %lu\n",
            n_both_ok, n_both_bad, n_rewritten, n_allowed);
}

#define NP FLT_NPATHS

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int numchar(char c) { return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'; }

/* Strict JSON number grammar, written apart from json.c on purpose. */
static int valid_number(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return 0;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return 0;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    return i == n;
}

/* The last member named key (Python's and json.h's rule for duplicates). */
static cJSON *last_member(const cJSON *obj, const char *key) {
    cJSON *hit = NULL;
    if (!cJSON_IsObject(obj)) return NULL;
    for (cJSON *c = obj->child; c; c = c->next)
        if (c->string && !strcmp(c->string, key)) hit = c;
    return hit;
}

static void same_value(const js_val *v, const cJSON *c, const char *what, int depth) {
    if (v->type == JS_ABSENT) { if (c) FAIL("%s: absent for json.h, present for cJSON", what); return; }
    if (!c) FAIL("%s: present for json.h (type %d), absent for cJSON", what, v->type);
    switch (v->type) {
    case JS_NULL: if (!cJSON_IsNull(c)) FAIL("%s: null vs cJSON type %d", what, c->type); break;
    case JS_TRUE: if (!cJSON_IsTrue(c)) FAIL("%s: true vs cJSON type %d", what, c->type); break;
    case JS_FALSE: if (!cJSON_IsFalse(c)) FAIL("%s: false vs cJSON type %d", what, c->type); break;
    case JS_NUMBER: {
        if (!cJSON_IsNumber(c)) FAIL("%s: number vs cJSON type %d", what, c->type);
        double a = js_number(v), b = c->valuedouble;
        if (!(a == b || (isnan(a) && isnan(b)))) FAIL("%s: number %.17g vs cJSON %.17g", what, a, b);
        break;
    }
    case JS_STRING: {
        if (!cJSON_IsString(c)) FAIL("%s: string vs cJSON type %d", what, c->type);
        char *buf = NULL; size_t cap = 0;
        long k = js_string(v, &buf, &cap);
        if (k < 0) FAIL("out of memory");
        if ((size_t)k != strlen(c->valuestring) || memcmp(buf, c->valuestring, (size_t)k))
            FAIL("%s: string '%.*s' vs cJSON '%s'", what, (int)k, buf, c->valuestring);
        free(buf);
        break;
    }
    case JS_ARRAY: {
        if (!cJSON_IsArray(c)) FAIL("%s: array vs cJSON type %d", what, c->type);
        size_t pos = 0; js_val el; const cJSON *ce = c->child; int i = 0;
        while (js_array_next(v, &pos, &el)) {
            if (!ce) FAIL("%s: json.h has more elements than cJSON (%d)", what, i);
            if (depth < 8) same_value(&el, ce, what, depth + 1);
            ce = ce->next; i++;
        }
        if (ce) FAIL("%s: cJSON has more elements than json.h (%d)", what, i);
        break;
    }
    case JS_OBJECT: if (!cJSON_IsObject(c)) FAIL("%s: object vs cJSON type %d", what, c->type); break;
    default: FAIL("%s: bad type %d", what, v->type);
    }
}

/* The paper's rules on cJSON's tree: -1 malformed, else the drop mask. */
static int reference_rules(const cJSON *root) {
    static const char *cats[] = { "agressif", "adult", "cryptojacking", "dangerous_material", "phishing",
                                  "warez", "ddos", "hacking", "malware", "mixed_adult", "sect" };
    if (!cJSON_IsObject(root)) return -1;
    const cJSON *md = last_member(root, "metadata");
    if (!md) return 0;
    if (!cJSON_IsObject(md)) return -1;
    int drop = 0;
    const cJSON *c = last_member(md, "categories");
    if (c && cJSON_IsArray(c)) {
        for (const cJSON *e = c->child; e; e = e->next)
            if (cJSON_IsString(e)) for (int i = 0; i < 11; i++) if (!strcmp(e->valuestring, cats[i])) drop |= 1 << FLT_R_CATEGORIES;
    } else if (c && !cJSON_IsNull(c)) return -1;
    const cJSON *p = last_member(md, "harmful_pp");
    if (!p || cJSON_IsNull(p)) drop |= 1 << FLT_R_HARMFUL_PP;
    else if (cJSON_IsNumber(p)) { if (!(p->valuedouble > 5.0 && p->valuedouble < 100000.0)) drop |= 1 << FLT_R_HARMFUL_PP; }
    else return -1;
    const cJSON *w = last_member(md, "quality_warnings");
    if (w && cJSON_IsArray(w)) { if (w->child) drop |= 1 << FLT_R_WARNINGS; }
    else if (w && !cJSON_IsNull(w)) return -1;
    return drop;
}

static void compare_trees(const char *buf, size_t n, const js_val *f, const cJSON *root, const flt_rules *rules) {
    const cJSON *md = last_member(root, "metadata");
    const cJSON *wh = last_member(root, "warc_headers");
    same_value(&f[P_META], md, "metadata", 0);
    same_value(&f[P_CATS], last_member(md, "categories"), "metadata.categories", 0);
    same_value(&f[P_PP], last_member(md, "harmful_pp"), "metadata.harmful_pp", 0);
    same_value(&f[P_WARN], last_member(md, "quality_warnings"), "metadata.quality_warnings", 0);
    same_value(&f[P_URL], last_member(wh, "warc-target-uri"), "warc_headers.warc-target-uri", 0);
    flt_verdict v; char err[256];
    int ours = flt_eval(rules, buf, n, &v, err, sizeof err) < 0 ? -1 : (int)v.drop;
    int ref = reference_rules(root);
    if (ours != ref) FAIL("flt_eval says %d (%s), the rules on cJSON's tree say %d", ours, ours < 0 ? err : "", ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    char *buf = malloc(n + 1);
    memcpy(buf, data, n); buf[n] = 0;
    g_buf = buf; g_n = n;
    for (size_t i = 0; i + 6 <= n; i++)
        if (!memcmp(buf + i, "\\u0000", 6)) buf[i + 5] = '1';
    static flt_rules rules; static int init;
    if (!init) {
        flt_rules_default(&rules); init = 1;
        if (getenv("FUZZ_FILTER_STATS")) atexit(print_counts);
    }
    js_val f[NP]; char err[256];
    for (int round = 0; round < 4096; round++) {
        int js = js_scan(buf, n, flt_paths, NP, f, err, sizeof err);
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(buf, n + 1, &end, 1);
        if (round) n_rewritten++;
        if (js == 0 && root) { compare_trees(buf, n, f, root, &rules); cJSON_Delete(root); n_both_ok++; break; }
        if (js < 0 && !root) {
            /* both reject; flt_eval must reject too */
            flt_verdict v;
            if (flt_eval(&rules, buf, n, &v, err, sizeof err) == 0) FAIL("flt_eval accepts what js_scan rejects");
            n_both_bad++;
            break;
        }
        if (js == 0) {                     /* cJSON rejects at end - buf */
            size_t p = end ? (size_t)(end - buf) : n;
            if (p + 3 <= n && !memcmp(buf + p, "NaN", 3)) { memcpy(buf + p, "0e0", 3); continue; }
            if (p + 8 <= n && !memcmp(buf + p, "Infinity", 8)) { memcpy(buf + p, "1e999999", 8); continue; }
            if (p + 9 <= n && !memcmp(buf + p, "-Infinity", 9)) { memcpy(buf + p, "-1e999999", 9); continue; }
            if (p + 6 <= n && buf[p] == '\\' && buf[p + 1] == 'u' && is_hex(buf[p + 2]) && is_hex(buf[p + 3]) &&
                is_hex(buf[p + 4]) && is_hex(buf[p + 5]) && (buf[p + 2] == 'd' || buf[p + 2] == 'D') &&
                strchr("89abAB", buf[p + 3]) == NULL && strchr("cdefCDEF", buf[p + 3]) != NULL) {
                memcpy(buf + p, "\\ufffd", 6); continue;             /* lone low surrogate */
            }
            if (p + 6 <= n && buf[p] == '\\' && buf[p + 1] == 'u' && (buf[p + 2] == 'd' || buf[p + 2] == 'D') &&
                strchr("89abAB", buf[p + 3]) != NULL && is_hex(buf[p + 4]) && is_hex(buf[p + 5])) {
                memcpy(buf + p, "\\ufffd", 6); continue;             /* high surrogate without its low half */
            }
            FAIL("json.h accepts, cJSON rejects at byte %zu", p);
        }
        /* json.h rejects, cJSON accepts */
        cJSON_Delete(root);
        size_t p;
        if (sscanf(err, "byte %zu", &p) != 1 || p > n) FAIL("json.h error without a byte offset: %s", err);
        if (p < n && (unsigned char)buf[p] < 0x20) { buf[p] = ' '; continue; }
        if (p == 0 && n >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) { memset(buf, ' ', 3); continue; }
        if (strstr(err, "nesting too deep")) { n_allowed++; break; }
        if (strstr(err, "bad \\u escape")) {
            if (p + 2 <= n && !(p + 6 <= n && is_hex(buf[p + 2]) && is_hex(buf[p + 3]) && is_hex(buf[p + 4]) && is_hex(buf[p + 5])))
                { n_allowed++; break; }
            FAIL("json.h calls a valid \\u escape bad: %s", err);
        }
        size_t s = p, e = p;
        while (s > 0 && numchar(buf[s - 1])) s--;
        while (e < n && numchar(buf[e])) e++;
        if (e > s && !valid_number(buf + s, e - s)) { n_allowed++; break; }
        FAIL("json.h rejects (%s), cJSON accepts", err);
    }
    free(buf);
    return 0;
}
