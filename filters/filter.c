/* filter.c - the rules of filter.h: option strings, one document's verdict,
 * the stats as JSON.  The streaming loop is in run.c. */
#include "filters/filter.h"
#include "pipeline/json.h"
#include "pipeline/strbuf.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const flt_paper_categories[] = { "agressif", "adult", "cryptojacking", "dangerous_material",
    "phishing", "warez", "ddos", "hacking", "malware", "mixed_adult", "sect", NULL };

static void free_names(char **v, int *n) {
    for (int i = 0; i < *n; i++) free(v[i]);
    *n = 0;
}

/* Splits "a,b,c" into malloc'd names (spaces around names trimmed). */
static int split_names(const char *spec, char **v, int *n, const char *what, char *err, size_t errlen) {
    free_names(v, n);
    const char *p = spec;
    for (;;) {
        const char *c = strchr(p, ',');
        const char *e = c ? c : p + strlen(p);
        while (p < e && *p == ' ') p++;
        while (e > p && e[-1] == ' ') e--;
        if (e == p) { snprintf(err, errlen, "%s: empty name in '%s'", what, spec); free_names(v, n); return -1; }
        if (*n == FLT_MAXNAMES) { snprintf(err, errlen, "%s: more than %d names", what, FLT_MAXNAMES); free_names(v, n); return -1; }
        v[*n] = strndup(p, (size_t)(e - p));
        if (!v[*n]) { snprintf(err, errlen, "out of memory"); free_names(v, n); return -1; }
        (*n)++;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

void flt_rules_default(flt_rules *r) {
    memset(r, 0, sizeof *r);
    r->cat_on = 1;
    for (int i = 0; flt_paper_categories[i]; i++) r->cats[r->ncats++] = strdup(flt_paper_categories[i]);
    r->pp_on = 1; r->pp_min = 5.0; r->pp_max = 100000.0;
    r->warn_mode = FLT_WARN_ANY;
}

int flt_set_categories(flt_rules *r, const char *spec, char *err, size_t errlen) {
    if (!strcmp(spec, "off")) { free_names(r->cats, &r->ncats); r->cat_on = 0; return 0; }
    if (split_names(spec, r->cats, &r->ncats, "--categories", err, errlen) < 0) return -1;
    r->cat_on = 1;
    return 0;
}

int flt_set_harmful_pp(flt_rules *r, const char *spec, char *err, size_t errlen) {
    if (!strcmp(spec, "off")) { r->pp_on = 0; return 0; }
    char *e;
    double lo = strtod(spec, &e);
    if (e == spec || *e != ':') goto bad;
    const char *s2 = e + 1;
    double hi = strtod(s2, &e);
    if (e == s2 || *e || isnan(lo) || isnan(hi) || !(lo < hi)) goto bad;
    r->pp_on = 1; r->pp_min = lo; r->pp_max = hi;
    return 0;
bad:
    snprintf(err, errlen, "--harmful-pp: want MIN:MAX with MIN < MAX (e.g. 5:100000) or off, not '%s'", spec);
    return -1;
}

int flt_set_warnings(flt_rules *r, const char *spec, char *err, size_t errlen) {
    if (!strcmp(spec, "off")) { free_names(r->warn, &r->nwarn); r->warn_mode = FLT_WARN_OFF; return 0; }
    if (!strcmp(spec, "any")) { free_names(r->warn, &r->nwarn); r->warn_mode = FLT_WARN_ANY; return 0; }
    if (split_names(spec, r->warn, &r->nwarn, "--reject-warnings", err, errlen) < 0) return -1;
    r->warn_mode = FLT_WARN_LIST;
    return 0;
}

void flt_rules_free(flt_rules *r) {
    free_names(r->cats, &r->ncats);
    free_names(r->warn, &r->nwarn);
}

/* ---- one document ---- */

const js_path flt_paths[FLT_NPATHS] = {
    [P_META] = { { "metadata" }, 1 },
    [P_CATS] = { { "metadata", "categories" }, 2 },
    [P_PP]   = { { "metadata", "harmful_pp" }, 2 },
    [P_WARN] = { { "metadata", "quality_warnings" }, 2 },
    [P_URL]  = { { "warc_headers", "warc-target-uri" }, 2 },
};

static const char *type_name(js_type t) {
    static const char *n[] = { "absent", "null", "false", "true", "number", "string", "list", "object" };
    return n[t];
}

/* 1 when the element is a string equal (after unescaping) to one of names */
static int in_names(const js_val *el, char *const *names, int nn) {
    if (el->type != JS_STRING) return 0;
    const char *raw = el->p + 1;
    size_t rn = el->n - 2;
    if (!memchr(raw, '\\', rn)) {
        for (int i = 0; i < nn; i++)
            if (strlen(names[i]) == rn && !memcmp(names[i], raw, rn)) return 1;
        return 0;
    }
    char *buf = NULL; size_t cap = 0;
    long k = js_string(el, &buf, &cap);
    int hit = 0;
    for (int i = 0; k >= 0 && i < nn && !hit; i++)
        hit = strlen(names[i]) == (size_t)k && !memcmp(names[i], buf, (size_t)k);
    free(buf);
    return hit;
}

static int any_in_names(const js_val *arr, char *const *names, int nn) {
    size_t pos = 0; js_val el;
    while (js_array_next(arr, &pos, &el))
        if (in_names(&el, names, nn)) return 1;
    return 0;
}

static int array_empty(const js_val *a) {
    const char *p = a->p + 1;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return *p == ']';
}

static int schema(const char *line, const js_val *v, const char *field, const char *want, char *err, size_t errlen) {
    snprintf(err, errlen, "byte %zu: %s is a %s, not %s", (size_t)(v->p - line), field, type_name(v->type), want);
    return -1;
}

int flt_eval(const flt_rules *r, const char *line, size_t n, flt_verdict *v, char *err, size_t errlen) {
    js_val f[5];
    if (js_scan(line, n, flt_paths, r->ut1 ? FLT_NPATHS : P_URL, f, err, errlen) < 0) return -1;
    memset(v, 0, sizeof *v);
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (line[i] != '{') {
        snprintf(err, errlen, "byte %zu: the line is a JSON value but not an object", i);
        return -1;
    }
    if (f[P_META].type == JS_ABSENT) v->unannotated = 1;
    else if (f[P_META].type != JS_OBJECT) return schema(line, &f[P_META], "metadata", "an object", err, errlen);
    else {
        if (r->cat_on) {
            const js_val *c = &f[P_CATS];
            if (c->type == JS_ARRAY) { if (any_in_names(c, r->cats, r->ncats)) v->drop |= 1u << FLT_R_CATEGORIES; }
            else if (c->type != JS_ABSENT && c->type != JS_NULL)
                return schema(line, c, "metadata.categories", "a list or null", err, errlen);
        }
        if (r->pp_on) {
            const js_val *p = &f[P_PP];
            if (p->type == JS_NUMBER) {
                double x = js_number(p);
                if (!(x > r->pp_min && x < r->pp_max)) v->drop |= 1u << FLT_R_HARMFUL_PP;
            } else if (p->type == JS_ABSENT || p->type == JS_NULL) v->drop |= 1u << FLT_R_HARMFUL_PP;
            else return schema(line, p, "metadata.harmful_pp", "a number or null", err, errlen);
        }
        if (r->warn_mode != FLT_WARN_OFF) {
            const js_val *w = &f[P_WARN];
            if (w->type == JS_ARRAY) {
                if (r->warn_mode == FLT_WARN_ANY ? !array_empty(w) : any_in_names(w, r->warn, r->nwarn))
                    v->drop |= 1u << FLT_R_WARNINGS;
            } else if (w->type != JS_ABSENT && w->type != JS_NULL)
                return schema(line, w, "metadata.quality_warnings", "a list or null", err, errlen);
        }
    }
    if (r->ut1) {
        const js_val *u = &f[P_URL];
        if (u->type == JS_STRING) {
            const char *raw = u->p + 1;
            size_t rn = u->n - 2;
            int hit;
            if (!memchr(raw, '\\', rn)) hit = ut1_match_url(r->ut1, raw, rn, &v->ut1);
            else {
                char *buf = NULL; size_t cap = 0;
                long k = js_string(u, &buf, &cap);
                if (k < 0) { snprintf(err, errlen, "out of memory"); return -1; }
                hit = ut1_match_url(r->ut1, buf, (size_t)k, &v->ut1);
                free(buf);
            }
            if (hit) v->drop |= 1u << FLT_R_UT1;
        } else if (u->type == JS_ABSENT || u->type == JS_NULL) v->no_url = 1;
        else return schema(line, u, "warc_headers.warc-target-uri", "a string or null", err, errlen);
    }
    return 0;
}

/* ---- stats ---- */

static void put_names(strbuf *b, char *const *v, int n) {
    strbuf_printf(b, "[");
    for (int i = 0; i < n; i++) { if (i) strbuf_printf(b, ", "); strbuf_json_str(b, v[i]); }
    strbuf_printf(b, "]");
}

static void put_num(strbuf *b, double x) {
    if (isinf(x)) strbuf_printf(b, x > 0 ? "1e999" : "-1e999");
    else strbuf_printf(b, "%.17g", x);
}

char *flt_stats_json(const flt_stats *st, const flt_rules *r, double seconds) {
    strbuf b = { NULL, 0, 0, 0 };
    strbuf_printf(&b, "{\"documents\": %llu, \"kept\": %llu, \"dropped\": %llu,\n", (unsigned long long)st->documents,
        (unsigned long long)st->kept, (unsigned long long)st->dropped);
    strbuf_printf(&b, " \"dropped_by\": {\"categories\": %llu, \"harmful_pp\": %llu, \"quality_warnings\": %llu, \"ut1\": %llu},\n",
        (unsigned long long)st->by_reason[FLT_R_CATEGORIES], (unsigned long long)st->by_reason[FLT_R_HARMFUL_PP],
        (unsigned long long)st->by_reason[FLT_R_WARNINGS], (unsigned long long)st->by_reason[FLT_R_UT1]);
    strbuf_printf(&b, " \"ut1_matches\": {\"domains\": %llu, \"urls\": %llu, \"expressions\": %llu},\n",
        (unsigned long long)st->ut1_by_kind[UT1_DOMAIN], (unsigned long long)st->ut1_by_kind[UT1_URL],
        (unsigned long long)st->ut1_by_kind[UT1_EXPRESSION]);
    strbuf_printf(&b, " \"malformed\": %llu, \"unannotated\": %llu, \"no_url\": %llu,\n", (unsigned long long)st->malformed,
        (unsigned long long)st->unannotated, (unsigned long long)st->no_url);
    strbuf_printf(&b, " \"files\": %llu, \"bytes_in\": %llu, \"bytes_in_raw\": %llu, \"bytes_out\": %llu, \"seconds\": %.3f,\n",
        (unsigned long long)st->files, (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_in_raw,
        (unsigned long long)st->bytes_out, seconds);
    strbuf_printf(&b, " \"rules\": {\"categories\": ");
    if (r->cat_on) put_names(&b, r->cats, r->ncats); else strbuf_printf(&b, "null");
    strbuf_printf(&b, ", \"harmful_pp\": ");
    if (r->pp_on) { strbuf_printf(&b, "["); put_num(&b, r->pp_min); strbuf_printf(&b, ", "); put_num(&b, r->pp_max); strbuf_printf(&b, "]"); }
    else strbuf_printf(&b, "null");
    strbuf_printf(&b, ", \"quality_warnings\": ");
    if (r->warn_mode == FLT_WARN_ANY) strbuf_printf(&b, "\"any\"");
    else if (r->warn_mode == FLT_WARN_LIST) put_names(&b, r->warn, r->nwarn);
    else strbuf_printf(&b, "null");
    strbuf_printf(&b, ", \"ut1\": ");
    if (r->ut1) put_names(&b, r->ut1_names, r->nut1); else strbuf_printf(&b, "null");
    strbuf_printf(&b, "}}\n");
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}
