/* fetch_util.c - the small pure pieces of the fetch library: part lists,
 * checksum files, back-off, Retry-After, Content-Range, the Range decision,
 * origins, the Hugging Face token lookup and archive path safety.  They are
 * apart from the engine so that tests can pin each one down without a
 * network. */
#include "pipeline/fetch.h"
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- part lists ---------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* One decimal number in [1, FETCH_MAX_PART] at *p; advances *p. */
static int part_number(const char **p, int *v) {
    const char *s = *p;
    long x = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    while (isdigit((unsigned char)*s)) {
        x = x * 10 + (*s++ - '0');
        if (x > FETCH_MAX_PART) return -1;
    }
    if (x < 1) return -1;
    *v = (int)x; *p = s;
    return 0;
}

int fetch_parse_parts(const char *spec, int **out, size_t *n, char *err, size_t errlen) {
    *out = NULL; *n = 0;
    if (!spec || !*spec) { snprintf(err, errlen, "empty part list (want e.g. 1-300 or 1,5,7-9)"); return -1; }
    size_t cap = 0, cnt = 0;
    int *v = NULL;
    const char *p = spec;
    for (;;) {
        const char *piece = p;
        int a, b;
        if (part_number(&p, &a) < 0) goto bad;
        b = a;
        if (*p == '-') { p++; if (part_number(&p, &b) < 0) goto bad; }
        if (*p != ',' && *p) goto bad;
        if (b < a) {
            snprintf(err, errlen, "part range '%.*s' goes backwards", (int)(p - piece), piece);
            free(v); return -1;
        }
        if (cnt + (size_t)(b - a) + 1 > FETCH_MAX_PART) {
            snprintf(err, errlen, "part list '%s' names more than %d parts", spec, FETCH_MAX_PART);
            free(v); return -1;
        }
        if (cnt + (size_t)(b - a) + 1 > cap) {
            size_t nc = cap ? cap * 2 : 64;
            while (nc < cnt + (size_t)(b - a) + 1) nc *= 2;
            int *nv = realloc(v, nc * sizeof *v);
            if (!nv) { snprintf(err, errlen, "out of memory"); free(v); return -1; }
            v = nv; cap = nc;
        }
        for (int k = a; k <= b; k++) v[cnt++] = k;
        if (!*p) break;
        p++;
        continue;
    bad:;
        const char *end = strchr(piece, ',');
        int len = end ? (int)(end - piece) : (int)strlen(piece);
        snprintf(err, errlen, "bad part list '%s' at '%.*s': want numbers from 1 to %d, ranges A-B, separated by commas",
                 spec, len, piece, FETCH_MAX_PART);
        free(v); return -1;
    }
    qsort(v, cnt, sizeof *v, cmp_int);
    size_t u = 0;
    for (size_t i = 0; i < cnt; i++) if (u == 0 || v[u - 1] != v[i]) v[u++] = v[i];
    *out = v; *n = u;
    return 0;
}

/* ---- checksum files ------------------------------------------------------ */

void fetch_sums_free(fetch_sums *s) {
    for (size_t i = 0; i < s->n; i++) free(s->name[i]);
    free(s->hex); free(s->name);
    memset(s, 0, sizeof *s);
}

int fetch_sums_parse(fetch_sums *s, const char *buf, size_t len, const char *what, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    size_t cap = 0, lineno = 0, i = 0;
    while (i < len) {
        size_t b = i;
        while (i < len && buf[i] != '\n') i++;
        size_t e = i;
        if (i < len) i++;
        lineno++;
        if (e > b && buf[e - 1] == '\r') e--;
        size_t k = b;
        while (k < e && (buf[k] == ' ' || buf[k] == '\t')) k++;
        if (k == e) continue;                       /* blank line */
        if (memchr(buf + b, 0, e - b)) goto bad;
        size_t h = k;
        while (k < e && isxdigit((unsigned char)buf[k])) k++;
        if (k - h != 64 || k >= e || (buf[k] != ' ' && buf[k] != '\t')) goto bad;
        size_t hexat = h;
        k++;
        if (k < e && (buf[k] == ' ' || buf[k] == '*')) k++;  /* text or binary mode marker */
        size_t ne = e;
        while (ne > k && (buf[ne - 1] == ' ' || buf[ne - 1] == '\t')) ne--;
        if (ne == k) goto bad;
        if (s->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char (*nh)[65] = realloc(s->hex, nc * sizeof *nh);
            if (!nh) goto oom;
            s->hex = nh;
            char **nn = realloc(s->name, nc * sizeof *nn);
            if (!nn) goto oom;
            s->name = nn; cap = nc;
        }
        for (int d = 0; d < 64; d++) s->hex[s->n][d] = (char)tolower((unsigned char)buf[hexat + d]);
        s->hex[s->n][64] = 0;
        s->name[s->n] = strndup(buf + k, ne - k);
        if (!s->name[s->n]) goto oom;
        s->n++;
        continue;
    bad:
        snprintf(err, errlen, "%s line %zu: not a checksum line (want '<64 hex digits>  <file name>')", what, lineno);
        fetch_sums_free(s);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", what);
    fetch_sums_free(s);
    return -1;
}

const char *fetch_sums_find(const fetch_sums *s, const char *name) {
    if (!strncmp(name, "./", 2)) name += 2;
    for (size_t i = 0; i < s->n; i++) {
        const char *m = s->name[i];
        if (!strncmp(m, "./", 2)) m += 2;
        if (!strcmp(m, name)) return s->hex[i];
    }
    return NULL;
}

/* ---- retries ------------------------------------------------------------- */

long fetch_backoff_ms(int attempt, long base_ms, long cap_ms, uint32_t r) {
    if (base_ms <= 0) return 0;
    if (attempt < 1) attempt = 1;
    double d = (double)base_ms;
    for (int i = 1; i < attempt && d < (double)cap_ms; i++) d *= 2;
    if (d > (double)cap_ms) d = (double)cap_ms;
    double half = d / 2;
    long v = (long)(half + half * ((double)r / 4294967296.0));
    return v < 1 ? 1 : v;
}

long fetch_retry_after_ms(const char *value, time_t now, long cap_ms) {
    if (!value) return -1;
    while (*value == ' ' || *value == '\t') value++;
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' || value[n - 1] == '\n')) n--;
    if (!n || n >= 128) return -1;
    char v[128];
    memcpy(v, value, n); v[n] = 0;
    if (isdigit((unsigned char)v[0])) {
        unsigned long long s = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)v[i])) return -1;
            if (s < 1000000000ULL) s = s * 10 + (unsigned)(v[i] - '0');
        }
        return s * 1000ULL > (unsigned long long)cap_ms ? cap_ms : (long)(s * 1000);
    }
    /* An HTTP date: must name a weekday or month and a time, so that
     * curl_getdate's leniency doesn't turn junk into a date. */
    if (!strchr(v, ':')) return -1;
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1) return -1;
    if (t <= now) return 0;
    double ms = difftime(t, now) * 1000.0;
    return ms > (double)cap_ms ? cap_ms : (long)ms;
}

static int read_u64(const char **p, uint64_t *v) {
    const char *s = *p;
    uint64_t x = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    while (isdigit((unsigned char)*s)) {
        if (x > (UINT64_MAX - 9) / 10) return -1;
        x = x * 10 + (uint64_t)(*s++ - '0');
    }
    *v = x; *p = s;
    return 0;
}

int fetch_parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total) {
    while (*v == ' ' || *v == '\t') v++;
    if (strncasecmp(v, "bytes", 5)) return -1;
    v += 5;
    if (*v != ' ' && *v != '\t') return -1;
    while (*v == ' ' || *v == '\t') v++;
    if (read_u64(&v, first) < 0 || *v++ != '-' || read_u64(&v, last) < 0 || *v++ != '/') return -1;
    if (*last < *first) return -1;
    if (*v == '*') { *total = UINT64_MAX; v++; }
    else {
        if (read_u64(&v, total) < 0) return -1;
        if (*total <= *last) return -1;
    }
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') v++;
    return *v ? -1 : 0;
}

enum fetch_range_action fetch_range_plan(uint64_t have, long code, int has_cr, uint64_t cr_first,
                                         int can_truncate, uint64_t *skip) {
    *skip = 0;
    if (code == 206) {
        if (!has_cr || cr_first != have) return FETCH_BAD_RANGE;
        return FETCH_APPEND;
    }
    /* a 200 (or another 2xx) is the whole file */
    if (have == 0) return FETCH_APPEND;
    if (can_truncate) return FETCH_RESTART;
    *skip = have;
    return FETCH_SKIP;
}

/* ---- origins and tokens -------------------------------------------------- */

/* scheme://host:port of an absolute URL, lower-cased, into out. */
static int origin_of(const char *url, char *out, size_t outlen) {
    CURLU *u = curl_url();
    if (!u) return -1;
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        int k = snprintf(out, outlen, "%s://%s:%s", scheme, host, port);
        if (k > 0 && (size_t)k < outlen) {
            for (char *c = out; *c; c++) *c = (char)tolower((unsigned char)*c);
            rc = 0;
        }
    }
    curl_free(scheme); curl_free(host); curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int fetch_same_origin(const char *a, const char *b) {
    char oa[1024], ob[1024];
    if (!a || !b || origin_of(a, oa, sizeof oa) < 0 || origin_of(b, ob, sizeof ob) < 0) return 0;
    return strcmp(oa, ob) == 0;
}

/* A token is sent in a header: printable ASCII without spaces, so that it
 * can't split the header. */
static int token_ok(const char *t) {
    if (!*t) return 0;
    for (; *t; t++) if (*t <= ' ' || *t > '~') return 0;
    return 1;
}

static int token_from_file(const char *path, char *tok, size_t toklen, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        snprintf(err, errlen, "%s: cannot read the token file: %s", path, strerror(errno));
        return -1;
    }
    char buf[4096];
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { snprintf(err, errlen, "%s: read error: %s", path, strerror(errno)); close(fd); return -1; }
        if (k == 0) break;
        n += (size_t)k;
        if (n == sizeof buf - 1) { snprintf(err, errlen, "%s: too long for a token file", path); close(fd); return -1; }
    }
    close(fd);
    buf[n] = 0;
    char *s = buf, *e = buf + n;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    *e = 0;
    if (!*s) return 0;
    if (!token_ok(s) || (size_t)(e - s) >= toklen) {
        snprintf(err, errlen, "%s: does not hold a single token (one line of printable characters)", path);
        return -1;
    }
    memcpy(tok, s, (size_t)(e - s) + 1);
    return 1;
}

int fetch_token_find(char *tok, size_t toklen, char *from, size_t fromlen, char *err, size_t errlen) {
    const char *env = getenv("HF_TOKEN");
    tok[0] = 0;
    if (from && fromlen) from[0] = 0;
    if (env && *env) {
        const char *s = env, *e = env + strlen(env);
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        char t[1024];
        if ((size_t)(e - s) >= sizeof t || (size_t)(e - s) >= toklen) {
            snprintf(err, errlen, "HF_TOKEN is too long to be a token");
            return -1;
        }
        memcpy(t, s, (size_t)(e - s)); t[e - s] = 0;
        if (!token_ok(t)) {
            snprintf(err, errlen, "HF_TOKEN holds characters a token can't have (spaces or control characters inside)");
            return -1;
        }
        memcpy(tok, t, (size_t)(e - s) + 1);
        if (from) snprintf(from, fromlen, "$HF_TOKEN");
        return 1;
    }
    char path[4096];
    const char *p = getenv("HF_TOKEN_PATH");
    if (p && *p) snprintf(path, sizeof path, "%s", p);
    else if ((p = getenv("HF_HOME")) && *p) snprintf(path, sizeof path, "%s/token", p);
    else if ((p = getenv("XDG_CACHE_HOME")) && *p) snprintf(path, sizeof path, "%s/huggingface/token", p);
    else if ((p = getenv("HOME")) && *p) snprintf(path, sizeof path, "%s/.cache/huggingface/token", p);
    else return 0;
    int r = token_from_file(path, tok, toklen, err, errlen);
    if (r == 1 && from) snprintf(from, fromlen, "%s", path);
    return r;
}

/* ---- archive path safety ------------------------------------------------- */

/* The next '/'-separated component of *p into *s, *len, skipping empty and
 * "." components; 0 at the end. */
static int next_component(const char **p, const char **s, size_t *len) {
    while (**p) {
        const char *b = *p;
        while (**p && **p != '/') (*p)++;
        size_t n = (size_t)(*p - b);
        if (**p == '/') (*p)++;
        if (n == 0 || (n == 1 && b[0] == '.')) continue;
        *s = b; *len = n;
        return 1;
    }
    return 0;
}

int fetch_entry_path(const char *name, const char *strip_top, char *out, size_t outlen,
                     char *err, size_t errlen) {
    if (!name || !*name) { snprintf(err, errlen, "entry with an empty name"); return -1; }
    if (name[0] == '/') { snprintf(err, errlen, "entry '%s' has an absolute path", name); return -1; }
    size_t o = 0;
    int first = 1, stripped = 0;
    const char *p = name, *s;
    size_t len;
    while (next_component(&p, &s, &len)) {
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            snprintf(err, errlen, "entry '%s' has a '..' component", name);
            return -1;
        }
        if (first && strip_top && strlen(strip_top) == len && !memcmp(s, strip_top, len)) {
            first = 0; stripped = 1;
            continue;
        }
        first = 0;
        if (o + len + 2 > outlen) { snprintf(err, errlen, "entry '%.200s...' has a name too long", name); return -1; }
        if (o) out[o++] = '/';
        memcpy(out + o, s, len); o += len;
    }
    out[o] = 0;
    if (!o) {
        if (stripped) return 1;
        snprintf(err, errlen, "entry '%s' names no file", name);
        return -1;
    }
    return 0;
}

int fetch_link_inside(const char *at, const char *target) {
    if (!target || !*target || target[0] == '/') return 0;
    long depth = 0;                       /* components of dirname(at) */
    for (const char *c = at; *c; c++) if (*c == '/') depth++;
    const char *p = target, *s;
    size_t len;
    while (next_component(&p, &s, &len)) {
        if (len == 2 && s[0] == '.' && s[1] == '.') { if (--depth < 0) return 0; }
        else depth++;
    }
    return 1;
}
