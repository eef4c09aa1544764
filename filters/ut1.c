/* ut1.c - see ut1.h.
 *
 * Memory layout: one arena of entries, each "[uint32 value][key bytes]\0";
 * the domain table maps a host to a category mask, the url table maps a host
 * to the head of a chain of (path, mask) records.  A slot is 64 bits: the
 * high 32 bits of the key's hash (to skip most string compares) and the
 * entry's arena offset + 1 (0 = empty).  Linear probing, load <= 3/4,
 * capacity a power of two.  Arena offsets are 32-bit, so the lists may hold
 * up to 4 GiB of text, far above UT1's size (~100 MB). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "filters/ut1.h"
#include "pipeline/sio.h"
#include <errno.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct { uint64_t *slot; size_t cap, count; } htab;
typedef struct { uint32_t path, plen, mask, next; } urlrec;   /* path: arena offset */
typedef struct { pcre2_code *re; int cat; } expr;

struct ut1_lists {
    char *arena; size_t alen, acap;
    htab dom, url;
    urlrec *urls; size_t nurls, urlcap;
    expr *ex; size_t nex, excap;
    pcre2_match_data *md;
    int jit_all;
};

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 0x243F6A8885A308D3ull ^ n;
    while (n >= 8) {
        uint64_t w; memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull; h ^= h >> 31;
        s += 8; n -= 8;
    }
    uint64_t w = 0; memcpy(&w, s, n);
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 32;
    return h;
}

/* ---- arena and tables ---- */

static int arena_reserve(ut1_lists *l, size_t more) {
    if (l->alen + more <= l->acap) return 0;
    size_t cap = l->acap ? l->acap * 2 : 1 << 20;
    if (cap < l->alen + more) cap = l->alen + more;
    if (cap > (size_t)UINT32_MAX) return -1;
    char *a = realloc(l->arena, cap);
    if (!a) return -1;
    l->arena = a; l->acap = cap;
    return 0;
}

static const char *entry_key(const ut1_lists *l, uint64_t s) { return l->arena + (uint32_t)(s - 1) + 4; }
static char *entry_val(const ut1_lists *l, uint64_t s) { return l->arena + (uint32_t)(s - 1); }

/* The slot index comes from the high half of the hash, the half the slot
 * keeps as its tag, scaled to any capacity (multiply-shift), so that the
 * table can be sized exactly and resized without access to the keys. */
static size_t slot_of(uint32_t tag, size_t cap) { return (size_t)(((uint64_t)tag * cap) >> 32); }

static const uint64_t *tab_find(const ut1_lists *l, const htab *t, const char *k, size_t n, uint64_t h) {
    if (!t->cap) return NULL;
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = slot_of(tag, t->cap);
    for (;;) {
        uint64_t s = t->slot[i];
        if (!s) return NULL;
        if ((uint32_t)(s >> 32) == tag) {
            const char *e = entry_key(l, s & 0xFFFFFFFFu);
            if (!memcmp(e, k, n) && e[n] == 0) return &t->slot[i];
        }
        if (++i == t->cap) i = 0;
    }
}

/* Makes room for `more` further keys at a load of at most 3/4. */
static int tab_reserve(htab *t, size_t more) {
    size_t need = (t->count + more) / 3 * 4 + 4;
    if (need <= t->cap) return 0;
    if (need < 1024) need = 1024;
    uint64_t *ns = calloc(need, sizeof *ns);
    if (!ns) return -1;
    for (size_t j = 0; j < t->cap; j++) {
        uint64_t s = t->slot[j];
        if (!s) continue;
        size_t i = slot_of((uint32_t)(s >> 32), need);
        while (ns[i]) if (++i == need) i = 0;
        ns[i] = s;
    }
    free(t->slot); t->slot = ns; t->cap = need;
    return 0;
}

/* Inserts key (if absent) and returns where its 32-bit value lies (unaligned,
 * read it with memcpy), which starts at `init`; NULL when out of memory. */
static char *tab_put(ut1_lists *l, htab *t, const char *k, size_t n, uint32_t init) {
    uint64_t h = hash(k, n);
    const uint64_t *f = tab_find(l, t, k, n, h);
    if (f) return entry_val(l, *f & 0xFFFFFFFFu);
    if ((t->count + 1) * 4 > t->cap * 3 && tab_reserve(t, t->count + 1) < 0) return NULL;   /* doubles */
    if (arena_reserve(l, n + 5) < 0) return NULL;
    uint32_t off = (uint32_t)l->alen;
    memcpy(l->arena + off, &init, 4);
    memcpy(l->arena + off + 4, k, n);
    l->arena[off + 4 + n] = 0;
    l->alen += n + 5;
    size_t i = slot_of((uint32_t)(h >> 32), t->cap);
    while (t->slot[i]) if (++i == t->cap) i = 0;
    t->slot[i] = (h >> 32 << 32) | ((uint64_t)off + 1);
    t->count++;
    return l->arena + off;
}

static const uint64_t *tab_get(const ut1_lists *l, const htab *t, const char *k, size_t n) {
    return tab_find(l, t, k, n, hash(k, n));
}

/* ---- URL and host normalisation ---- */

static int is_ip_literal(const char *h, size_t n) {
    if (n && h[0] == '[') return 1;
    for (size_t i = 0; i < n; i++) if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.')) return 0;
    return n > 0;
}

long ut1_split_url(const char *u, size_t n, char *host, size_t hostcap, const char **path, size_t *pathlen) {
    const char *p = u, *e = u + n;
    /* scheme "://" (letters, digits, + - .), or a bare "//" */
    const char *q = p;
    while (q < e && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.')) q++;
    if (q > p && e - q >= 3 && !memcmp(q, "://", 3)) p = q + 3;
    else if (e - p >= 2 && p[0] == '/' && p[1] == '/') p += 2;
    const char *ae = p;
    while (ae < e && *ae != '/' && *ae != '?' && *ae != '#') ae++;
    const char *hs = p;
    for (const char *a = p; a < ae; a++) if (*a == '@') hs = a + 1;      /* userinfo */
    const char *he;
    if (hs < ae && *hs == '[') {                                          /* IPv6 literal */
        he = memchr(hs, ']', (size_t)(ae - hs));
        he = he ? he + 1 : ae;
    } else {
        he = hs;
        while (he < ae && *he != ':') he++;                               /* port */
    }
    while (he > hs && he[-1] == '.') he--;                                /* trailing dots */
    size_t hn = (size_t)(he - hs);
    if (hn == 0 || hn + 1 > hostcap) return -1;
    for (size_t i = 0; i < hn; i++) {
        char c = hs[i];
        host[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    host[hn] = 0;
    const char *pe = ae;
    while (pe < e && *pe != '#') pe++;
    *path = ae; *pathlen = (size_t)(pe - ae);
    return (long)hn;
}

/* Trims a list line in place: spaces, CR, comments.  Returns its length. */
static size_t clean_line(char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i < n && s[i] == '#') return 0;
    size_t k = i;
    /* a comment after a space ends the entry */
    for (size_t j = i; j < n; j++) {
        if (s[j] == '#' && j > i && (s[j - 1] == ' ' || s[j - 1] == '\t')) break;
        k = j + 1;
    }
    while (k > i && (s[k - 1] == ' ' || s[k - 1] == '\t' || s[k - 1] == '\r')) k--;
    memmove(s, s + i, k - i);
    return k - i;
}

/* Normalises a domain entry in place: lower case, leading "*." or '.',
 * anything from '/' or ':' on, trailing dots. */
static size_t norm_domain(char *s, size_t n) {
    size_t i = 0;
    if (n >= 2 && s[0] == '*' && s[1] == '.') i = 2;
    while (i < n && s[i] == '.') i++;
    size_t k = i;
    while (k < n && s[k] != '/' && s[k] != ':' && s[k] != ' ' && s[k] != '\t') k++;
    while (k > i && s[k - 1] == '.') k--;
    for (size_t j = i; j < k; j++) if (s[j] >= 'A' && s[j] <= 'Z') s[j] += 32;
    memmove(s, s + i, k - i);
    return k - i;
}

/* ---- loading ---- */

typedef int (*line_fn)(ut1_lists *l, int cat, char *s, size_t n, const char *file, uint64_t lineno, char *err, size_t errlen);

static int add_domain(ut1_lists *l, int cat, char *s, size_t n, const char *file, uint64_t lineno, char *err, size_t errlen) {
    n = norm_domain(s, n);
    if (!n) return 0;
    char *v = tab_put(l, &l->dom, s, n, 0);
    if (!v) { snprintf(err, errlen, "%s: out of memory at line %llu", file, (unsigned long long)lineno); return -1; }
    uint32_t m; memcpy(&m, v, 4); m |= 1u << cat; memcpy(v, &m, 4);
    return 0;
}

static int add_url(ut1_lists *l, int cat, char *s, size_t n, const char *file, uint64_t lineno, char *err, size_t errlen) {
    /* tolerate a scheme, which UT1 does not write */
    if (n > 8 && !memcmp(s, "https://", 8)) { memmove(s, s + 8, n - 8); n -= 8; }
    else if (n > 7 && !memcmp(s, "http://", 7)) { memmove(s, s + 7, n - 7); n -= 7; }
    char *slash = memchr(s, '/', n);
    size_t hn = slash ? (size_t)(slash - s) : n;
    size_t pn = n - hn;
    /* copy the path out before the host is normalised in place */
    if (arena_reserve(l, pn + 1) < 0) goto oom;
    uint32_t poff = (uint32_t)l->alen;
    memcpy(l->arena + poff, s + hn, pn); l->arena[poff + pn] = 0; l->alen += pn + 1;
    hn = norm_domain(s, hn);
    if (!hn) return 0;
    if (l->nurls == l->urlcap) {
        size_t c = l->urlcap ? l->urlcap * 2 : 256;
        urlrec *nu = realloc(l->urls, c * sizeof *nu);
        if (!nu) goto oom;
        l->urls = nu; l->urlcap = c;
    }
    char *head = tab_put(l, &l->url, s, hn, UINT32_MAX);
    if (!head) goto oom;
    uint32_t h; memcpy(&h, head, 4);
    l->urls[l->nurls] = (urlrec){ poff, (uint32_t)pn, 1u << cat, h };
    h = (uint32_t)l->nurls++;
    memcpy(head, &h, 4);
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory at line %llu", file, (unsigned long long)lineno);
    return -1;
}

static int add_expr(ut1_lists *l, int cat, char *s, size_t n, const char *file, uint64_t lineno, char *err, size_t errlen) {
    int ec; PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)s, n, PCRE2_CASELESS, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(err, errlen, "%s: line %llu: bad expression at offset %zu: %s", file, (unsigned long long)lineno, (size_t)eo, (char *)msg);
        return -1;
    }
    if (pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0) l->jit_all = 0;
    if (l->nex == l->excap) {
        size_t c = l->excap ? l->excap * 2 : 16;
        expr *ne = realloc(l->ex, c * sizeof *ne);
        if (!ne) { pcre2_code_free(re); snprintf(err, errlen, "out of memory"); return -1; }
        l->ex = ne; l->excap = c;
    }
    l->ex[l->nex++] = (expr){ re, cat };
    return 0;
}

/* Counts the lines and bytes of a list, so that the table and the arena are
 * sized once (no doubling: loading stays near the final memory). */
static int count_lines(const char *path, size_t *lines, size_t *bytes, char *err, size_t errlen) {
    sio *r = sio_open(path, err, errlen);
    if (!r) return -1;
    char *buf = malloc(1 << 16);
    if (!buf) { sio_close(r); snprintf(err, errlen, "out of memory"); return -1; }
    long k;
    *lines = 0; *bytes = 0;
    while ((k = sio_read(r, buf, 1 << 16)) > 0) {
        for (const char *p = buf, *e = buf + k; (p = memchr(p, '\n', (size_t)(e - p))); p++) (*lines)++;
        *bytes += (size_t)k;
    }
    if (k < 0) snprintf(err, errlen, "%s", sio_error(r));
    sio_close(r);
    free(buf);
    (*lines)++;        /* a last line without '\n' */
    return k < 0 ? -1 : 0;
}

/* Feeds every entry of one list file to fn.  Returns 1 when the file was
 * read, 0 when it does not exist, -1 on error. */
static int load_list(ut1_lists *l, const char *path, int cat, line_fn fn, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    sio *r = sio_open(path, err, errlen);
    if (!r) return -1;
    const char *line; size_t n; int rc;
    char *buf = NULL; size_t cap = 0;
    while ((rc = sio_getline(r, &line, &n)) == 1) {
        if (n + 1 > cap) {
            size_t c = cap ? cap : 256;
            while (c < n + 1) c *= 2;
            char *nb = realloc(buf, c);
            if (!nb) { snprintf(err, errlen, "%s: out of memory", path); rc = -2; break; }
            buf = nb; cap = c;
        }
        memcpy(buf, line, n);
        size_t k = clean_line(buf, n);
        if (!k) continue;
        buf[k] = 0;
        if (fn(l, cat, buf, k, path, sio_lineno(r), err, errlen) < 0) { rc = -2; break; }
    }
    if (rc == -1) snprintf(err, errlen, "%s", sio_error(r));
    free(buf);
    sio_close(r);
    return rc < 0 ? -1 : 1;
}

ut1_lists *ut1_load(const char *dir, const char *const *cats, int ncats, char *err, size_t errlen) {
    if (ncats < 1 || ncats > UT1_MAXCATS) {
        snprintf(err, errlen, "ut1: between 1 and %d categories, not %d", UT1_MAXCATS, ncats);
        return NULL;
    }
    ut1_lists *l = calloc(1, sizeof *l);
    if (!l) { snprintf(err, errlen, "out of memory"); return NULL; }
    l->jit_all = 1;
    static const char *names[3] = { "domains", "urls", "expressions" };
    line_fn fns[3] = { add_domain, add_url, add_expr };
    /* first pass: check the folders, count lines, size the tables once */
    size_t nlines[2] = { 0, 0 }, nbytes = 0;
    for (int c = 0; c < ncats; c++) {
        char cd[4096];
        snprintf(cd, sizeof cd, "%s/%s", dir, cats[c]);
        struct stat st;
        if (stat(cd, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: no such UT1 category folder (is %s a UT1 folder? choose categories with --ut1-categories)", cd, dir);
            ut1_free(l); return NULL;
        }
        int found = 0;
        for (int k = 0; k < 3; k++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", cd, names[k]);
            if (stat(path, &st) != 0) continue;
            found++;
            if (k == 2) continue;
            size_t lines, bytes;
            if (count_lines(path, &lines, &bytes, err, errlen) < 0) { ut1_free(l); return NULL; }
            nlines[k] += lines; nbytes += bytes + 6 * lines;
        }
        if (!found) {
            snprintf(err, errlen, "%s: holds none of domains, urls, expressions", cd);
            ut1_free(l); return NULL;
        }
    }
    if (arena_reserve(l, nbytes) < 0 || tab_reserve(&l->dom, nlines[0]) < 0 || tab_reserve(&l->url, nlines[1]) < 0) {
        snprintf(err, errlen, "%s: out of memory for %zu list lines", dir, nlines[0] + nlines[1]);
        ut1_free(l); return NULL;
    }
    for (int c = 0; c < ncats; c++)
        for (int k = 0; k < 3; k++) {
            char path[8200];
            snprintf(path, sizeof path, "%s/%s/%s", dir, cats[c], names[k]);
            if (load_list(l, path, c, fns[k], err, errlen) < 0) { ut1_free(l); return NULL; }
        }
    /* give back the arena's unused reserve */
    if (l->alen && l->alen < l->acap) {
        char *a = realloc(l->arena, l->alen);
        if (a) { l->arena = a; l->acap = l->alen; }
    }
    l->md = pcre2_match_data_create(1, NULL);
    if (!l->md) { snprintf(err, errlen, "out of memory"); ut1_free(l); return NULL; }
    return l;
}

/* ---- matching ---- */

static int lowest_bit(uint32_t m) { return m ? __builtin_ctz(m) : 0; }

/* Path prefix: entry paths start with '/' (or are empty); a URL path that
 * does not (nothing, or only "?query") is read as if it had one. */
static int path_prefix(const char *ep, size_t en, const char *up, size_t un) {
    if (en == 0) return 1;
    if (un == 0 || up[0] != '/') {
        if (ep[0] != '/') return 0;
        ep++; en--;
    }
    return en <= un && !memcmp(ep, up, en);
}

int ut1_match_url(ut1_lists *l, const char *url, size_t n, ut1_match *m) {
    char host[1024];
    const char *path; size_t pn;
    long hn = ut1_split_url(url, n, host, sizeof host, &path, &pn);
    if (hn > 0) {
        int walk = !is_ip_literal(host, (size_t)hn);
        /* each suffix that starts the host or follows a dot */
        for (const char *s = host; s; ) {
            size_t sn = (size_t)hn - (size_t)(s - host);
            const uint64_t *f = tab_get(l, &l->dom, s, sn);
            if (f) {
                uint32_t mask; memcpy(&mask, entry_val(l, *f & 0xFFFFFFFFu), 4);
                m->kind = UT1_DOMAIN; m->category = lowest_bit(mask);
                return 1;
            }
            f = tab_get(l, &l->url, s, sn);
            if (f) {
                uint32_t i; memcpy(&i, entry_val(l, *f & 0xFFFFFFFFu), 4);
                for (; i != UINT32_MAX; i = l->urls[i].next)
                    if (path_prefix(l->arena + l->urls[i].path, l->urls[i].plen, path, pn)) {
                        m->kind = UT1_URL; m->category = lowest_bit(l->urls[i].mask);
                        return 1;
                    }
            }
            if (!walk) break;
            s = strchr(s, '.');
            if (s) s++;
        }
    }
    for (size_t i = 0; i < l->nex; i++) {
        int rc = pcre2_match(l->ex[i].re, (PCRE2_SPTR)url, n, 0, 0, l->md, NULL);
        if (rc >= 0) { m->kind = UT1_EXPRESSION; m->category = l->ex[i].cat; return 1; }
    }
    return 0;
}

void ut1_get_info(const ut1_lists *l, ut1_info *info) {
    info->domains = l->dom.count;
    info->urls = l->nurls;
    info->expressions = l->nex;
    info->bytes = l->acap + (l->dom.cap + l->url.cap) * sizeof(uint64_t) + l->urlcap * sizeof(urlrec);
    info->jit = l->jit_all;
}

void ut1_free(ut1_lists *l) {
    if (!l) return;
    for (size_t i = 0; i < l->nex; i++) pcre2_code_free(l->ex[i].re);
    pcre2_match_data_free(l->md);
    free(l->ex); free(l->urls); free(l->dom.slot); free(l->url.slot); free(l->arena); free(l);
}
