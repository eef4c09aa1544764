/* json.c - see json.h.  Recursive descent over the raw bytes; each nesting
 * level carries the set of requested paths whose keys still match, so the
 * cost of extraction is one key comparison per key at the matching depth. */
#include "pipeline/json.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    const char *s, *end, *base;
    const js_path *paths; js_val *out;
    char *err; size_t errlen;
    int depth;
} scan;

#define MAXNEST 512

static int bad(scan *c, const char *at, const char *what) {
    snprintf(c->err, c->errlen, "byte %zu: %s", (size_t)(at - c->base), what);
    return -1;
}

static const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* 1 for bytes that end the fast part of a string: '"', '\\', and controls.
 * Constant, so that threads may scan at once. */
static const unsigned char stop_tab[256] = { [0 ... 0x1F] = 1, ['"'] = 1, ['\\'] = 1 };

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* p at the opening quote; returns pointer after the closing quote or NULL */
static const char *string(scan *c, const char *p) {
    const char *e = c->end;
    p++;
    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at a time: stop at '"', '\\' or a byte < 0x20 */
        const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), lim = _mm_set1_epi8(0x1F);
        while (e - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, lim), lim);   /* v <= 0x1F unsigned */
            int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b)), ctl));
            if (m) { p += __builtin_ctz((unsigned)m); break; }
            p += 16;
        }
#endif
        while (p < e && !stop_tab[(unsigned char)*p]) p++;
        if (p >= e) { bad(c, p, "unterminated string"); return NULL; }
        if (*p == '"') return p + 1;
        if (*p == '\\') {
            if (p + 1 >= e) { bad(c, p, "unterminated string"); return NULL; }
            char x = p[1];
            if (x == 'u') {
                if (p + 6 > e || hex4(p + 2) < 0) { bad(c, p, "bad \\u escape"); return NULL; }
                p += 6;
            } else if (strchr("\"\\/bfnrt", x) && x) p += 2;
            else { bad(c, p, "bad escape"); return NULL; }
            continue;
        }
        bad(c, p, "control character in string");
        return NULL;
    }
}

static const char *number(scan *c, const char *p) {
    const char *e = c->end, *q = p;
    if (q < e && *q == '-') {
        q++;
        if (e - q >= 8 && !memcmp(q, "Infinity", 8)) return q + 8;
    }
    if (q >= e) { bad(c, p, "bad number"); return NULL; }
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < e && *q >= '0' && *q <= '9') q++;
    else { bad(c, p, "bad number"); return NULL; }
    if (q < e && *q == '.') {
        q++;
        if (q >= e || *q < '0' || *q > '9') { bad(c, q, "bad number: digit expected after '.'"); return NULL; }
        while (q < e && *q >= '0' && *q <= '9') q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) q++;
        if (q >= e || *q < '0' || *q > '9') { bad(c, q, "bad number: digit expected in exponent"); return NULL; }
        while (q < e && *q >= '0' && *q <= '9') q++;
    }
    return q;
}

static int keyeq(const char *k, size_t kn, const char *want) {
    /* k: raw key text without quotes; keys we look for are plain ASCII, but an
     * escaped key ("\u0063ontent") must match too. */
    size_t wn = strlen(want);
    if (kn == wn && !memchr(k, '\\', kn)) return !memcmp(k, want, wn);
    if (!memchr(k, '\\', kn)) return 0;
    js_val v = { JS_STRING, k - 1, kn + 2 };
    return js_string_eq(&v, want, 0);
}

static const char *value(scan *c, const char *p, uint32_t mask, int level);

static void set_out(scan *c, uint32_t done, js_type t, const char *p, const char *q) {
    for (int i = 0; done; i++, done >>= 1)
        if (done & 1) { c->out[i].type = t; c->out[i].p = p; c->out[i].n = (size_t)(q - p); }
}

static const char *object(scan *c, const char *p, uint32_t mask, int level) {
    const char *e = c->end;
    p = ws(p + 1, e);
    if (p < e && *p == '}') return p + 1;
    for (;;) {
        if (p >= e || *p != '"') { bad(c, p, "object key expected"); return NULL; }
        const char *k = p;
        const char *q = string(c, p);
        if (!q) return NULL;
        uint32_t sub = 0, done = 0;
        for (uint32_t m = mask; m; m &= m - 1) {
            int i = __builtin_ctz(m);
            if (keyeq(k + 1, (size_t)(q - k - 2), c->paths[i].key[level])) {
                if (c->paths[i].depth == level + 1) done |= 1u << i;
                else sub |= 1u << i;
            }
        }
        /* a repeated key replaces what an earlier one gave (last wins) */
        for (uint32_t m = sub; m; m &= m - 1) c->out[__builtin_ctz(m)].type = JS_ABSENT;
        p = ws(q, e);
        if (p >= e || *p != ':') { bad(c, p, "':' expected"); return NULL; }
        p = ws(p + 1, e);
        const char *v0 = p;
        q = value(c, p, sub, level + 1);
        if (!q) return NULL;
        if (done) {
            js_type t = *v0 == '"' ? JS_STRING : *v0 == '{' ? JS_OBJECT : *v0 == '[' ? JS_ARRAY :
                        *v0 == 'n' ? JS_NULL : *v0 == 't' ? JS_TRUE : *v0 == 'f' ? JS_FALSE : JS_NUMBER;
            set_out(c, done, t, v0, q);
        }
        p = ws(q, e);
        if (p < e && *p == ',') { p = ws(p + 1, e); continue; }
        if (p < e && *p == '}') return p + 1;
        bad(c, p, "',' or '}' expected");
        return NULL;
    }
}

static const char *array(scan *c, const char *p, int level) {
    const char *e = c->end;
    p = ws(p + 1, e);
    if (p < e && *p == ']') return p + 1;
    for (;;) {
        p = value(c, p, 0, level + 1);
        if (!p) return NULL;
        p = ws(p, e);
        if (p < e && *p == ',') { p = ws(p + 1, e); continue; }
        if (p < e && *p == ']') return p + 1;
        bad(c, p, "',' or ']' expected");
        return NULL;
    }
}

static const char *lit(scan *c, const char *p, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->end - p) >= n && !memcmp(p, w, n)) return p + n;
    bad(c, p, "unexpected character");
    return NULL;
}

static const char *value(scan *c, const char *p, uint32_t mask, int level) {
    if (p >= c->end) { bad(c, p, "value expected, line ends"); return NULL; }
    switch (*p) {
    case '"': return string(c, p);
    case '{': case '[': {
        if (++c->depth > MAXNEST) { bad(c, p, "nesting too deep"); return NULL; }
        const char *q = *p == '{' ? object(c, p, level < JS_MAXDEPTH ? mask : 0, level) : array(c, p, level);
        c->depth--;
        return q;
    }
    case 't': return lit(c, p, "true");
    case 'f': return lit(c, p, "false");
    case 'n': return lit(c, p, "null");
    case 'N': return lit(c, p, "NaN");
    case 'I': return lit(c, p, "Infinity");
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) return number(c, p);
        bad(c, p, "unexpected character");
        return NULL;
    }
}

int js_scan(const char *s, size_t n, const js_path *paths, int npaths, js_val *out, char *err, size_t errlen) {
    scan c = { s, s + n, s, paths, out, err, errlen, 0 };
    uint32_t mask = npaths >= 32 ? 0xFFFFFFFFu : ((1u << npaths) - 1);
    for (int i = 0; i < npaths; i++) out[i].type = JS_ABSENT, out[i].p = NULL, out[i].n = 0;
    const char *p = ws(s, s + n);
    if (p >= c.end) return bad(&c, p, "empty line");
    if (*p != '{') mask = 0;
    const char *q = value(&c, p, mask, 0);
    if (!q) return -1;
    q = ws(q, c.end);
    if (q != c.end) return bad(&c, q, "extra data after the JSON value");
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) { o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63)); return 3; }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63)); o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Decode into o (which has room for v->n bytes: output never exceeds input). */
static size_t decode(const js_val *v, char *o) {
    const char *p = v->p + 1, *e = v->p + v->n - 1;
    size_t k = 0;
    while (p < e) {
        const char *bs = memchr(p, '\\', (size_t)(e - p));
        size_t run = bs ? (size_t)(bs - p) : (size_t)(e - p);
        memcpy(o + k, p, run); k += run; p += run;
        if (!bs) break;
        char x = p[1];
        if (x != 'u') {
            o[k++] = x == 'b' ? '\b' : x == 'f' ? '\f' : x == 'n' ? '\n' : x == 'r' ? '\r' : x == 't' ? '\t' : x;
            p += 2; continue;
        }
        uint32_t cp = (uint32_t)hex4(p + 2); p += 6;
        if (cp >= 0xD800 && cp < 0xDC00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            int lo = hex4(p + 2);
            if (lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00); p += 6; }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
        k += put_utf8(o + k, cp);
    }
    return k;
}

long js_string(const js_val *v, char **buf, size_t *cap) {
    if (*cap < v->n + 1) {
        size_t c = *cap ? *cap : 256;
        while (c < v->n + 1) c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb) return -1;
        *buf = nb; *cap = c;
    }
    size_t k = decode(v, *buf);
    (*buf)[k] = 0;
    return (long)k;
}

int js_string_eq(const js_val *v, const char *s, int icase) {
    char small[256];
    if (v->type != JS_STRING || v->n > sizeof small) return 0;
    size_t k = decode(v, small), n = strlen(s);
    if (k != n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)small[i], b = (unsigned char)s[i];
        if (icase) { if (a >= 'A' && a <= 'Z') a += 32; if (b >= 'A' && b <= 'Z') b += 32; }
        if (a != b) return 0;
    }
    return 1;
}

double js_number(const js_val *v) {
    char tmp[128];
    size_t n = v->n < sizeof tmp - 1 ? v->n : sizeof tmp - 1;
    if (v->n >= sizeof tmp) {   /* very long literals: let strtod see it all */
        char *big = malloc(v->n + 1);
        if (!big) return NAN;
        memcpy(big, v->p, v->n); big[v->n] = 0;
        double d = strtod(big, NULL); free(big); return d;
    }
    memcpy(tmp, v->p, n); tmp[n] = 0;
    if (!strcmp(tmp, "NaN")) return NAN;
    if (!strcmp(tmp, "Infinity")) return INFINITY;
    if (!strcmp(tmp, "-Infinity")) return -INFINITY;
    return strtod(tmp, NULL);
}

int js_array_next(const js_val *arr, size_t *pos, js_val *elem) {
    /* The array was validated: re-scan one element with a private scanner. */
    char err[8];
    scan c = { arr->p, arr->p + arr->n, arr->p, NULL, NULL, err, sizeof err, 0 };
    const char *p = *pos ? arr->p + *pos : ws(arr->p + 1, c.end);
    p = ws(p, c.end);
    if (p >= c.end || *p == ']') return 0;
    const char *q = value(&c, p, 0, JS_MAXDEPTH);
    if (!q) return 0;
    elem->p = p; elem->n = (size_t)(q - p);
    elem->type = *p == '"' ? JS_STRING : *p == '{' ? JS_OBJECT : *p == '[' ? JS_ARRAY :
                 *p == 'n' ? JS_NULL : *p == 't' ? JS_TRUE : *p == 'f' ? JS_FALSE : JS_NUMBER;
    q = ws(q, c.end);
    if (q < c.end && *q == ',') q++;
    *pos = (size_t)(q - arr->p);
    return 1;
}
