/* ut1.h - the UT1 blocklists (Université Toulouse 1 Capitole) applied to URLs.
 *
 * OSCAR assigned its `categories` from these lists; a corpus without OSCAR's
 * annotations can be filtered the same way by matching each document's URL.
 * A UT1 folder holds one sub-folder per category with plain-text lists, one
 * entry a line ('#' starts a comment, spaces are trimmed):
 *   domains      host names; an entry matches that host and every subdomain;
 *   urls         host + path prefixes (no scheme); the host part matches like
 *                a domain entry, the rest is a byte prefix of path?query;
 *   expressions  regular expressions (PCRE2 syntax, caseless) searched in the
 *                whole URL.
 * The host of a URL is lower-cased (ASCII), its userinfo, port and trailing
 * dots are removed; an IP literal matches only itself (no suffix walk).
 *
 * Millions of domains load in seconds into one open-addressing hash table of
 * 8-byte slots over a single arena of NUL-terminated strings (each with a
 * 32-bit category mask or a url-list head in front): memory is about the
 * size of the lists plus 8-16 bytes per entry, whatever the input.  A lookup
 * hashes each suffix of the host that starts after a dot.
 *
 * One thread at a time may call ut1_match_url on a given ut1_lists (the PCRE2
 * match data lives in it).  Errors: NULL/-1 and a message naming file and line. */
#ifndef SYMBERT_UT1_H
#define SYMBERT_UT1_H
#include <stddef.h>

typedef struct ut1_lists ut1_lists;

enum { UT1_NONE = 0, UT1_DOMAIN = 1, UT1_URL = 2, UT1_EXPRESSION = 3 };
#define UT1_MAXCATS 32

typedef struct {
    int kind;       /* UT1_DOMAIN, UT1_URL, UT1_EXPRESSION */
    int category;   /* index into the list given to ut1_load */
} ut1_match;

typedef struct {
    size_t domains;      /* distinct domain entries (all categories) */
    size_t urls;         /* url entries */
    size_t expressions;  /* expression lines */
    size_t bytes;        /* memory held by the tables */
    int jit;             /* 1 if every expression set is JIT-compiled */
} ut1_info;

/* Loads dir/<cat>/{domains,urls,expressions} for each of the ncats names
 * (at most UT1_MAXCATS).  A category folder that is missing, or holds none of
 * the three lists, is an error; so is an expression PCRE2 cannot compile. */
ut1_lists *ut1_load(const char *dir, const char *const *cats, int ncats, char *err, size_t errlen);
/* 1 and *m filled when the URL (n bytes, no NUL needed) matches a list,
 * else 0.  Domains are tried first, then urls, then expressions. */
int ut1_match_url(ut1_lists *l, const char *url, size_t n, ut1_match *m);
void ut1_get_info(const ut1_lists *l, ut1_info *info);
void ut1_free(ut1_lists *l);

/* The URL split ut1_match_url uses, exposed for tests: writes the normalised
 * host (at most hostcap-1 bytes, NUL-terminated) and points *path at the
 * path and query (fragment removed; "" when absent).  Returns the host
 * length, or -1 when there is no host or it is longer than hostcap-1. */
long ut1_split_url(const char *url, size_t n, char *host, size_t hostcap, const char **path, size_t *pathlen);
#endif
