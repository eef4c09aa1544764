/* json.h - a validating one-pass JSON scanner for JSON Lines.
 *
 * OSCAR documents are large (content, sentence_identifications) and the tools
 * need a handful of fields.  js_scan checks that a line is exactly one JSON
 * value (RFC 8259, plus the NaN/Infinity/-Infinity literals that Python's
 * json.loads accepts, so that we reject what the authors' script rejects and
 * nothing more) and records where the values at a few key paths lie, without
 * building a tree.  Duplicate keys: the last one wins, as in Python.
 * Strings are not checked for valid UTF-8 (bytes pass through); raw control
 * characters inside strings are an error, as in Python's strict mode.
 * Errors: -1 and "byte N: what" in err. */
#ifndef SYMBERT_JSON_H
#define SYMBERT_JSON_H
#include <stddef.h>

typedef enum { JS_ABSENT = 0, JS_NULL, JS_FALSE, JS_TRUE, JS_NUMBER, JS_STRING, JS_ARRAY, JS_OBJECT } js_type;

/* A value: its type and its raw text (strings with their quotes). */
typedef struct { js_type type; const char *p; size_t n; } js_val;

/* A key path from the top-level object, e.g. {"metadata", "harmful_pp"}. */
#define JS_MAXDEPTH 4
typedef struct { const char *key[JS_MAXDEPTH]; int depth; } js_path;

#define JS_MAXPATHS 32
int js_scan(const char *s, size_t n, const js_path *paths, int npaths, js_val *out, char *err, size_t errlen);

/* Decodes a JSON string value into UTF-8 (escapes resolved; a lone surrogate
 * escape becomes U+FFFD).  *buf grows as needed (realloc); returns the length
 * or -1 on out of memory. */
long js_string(const js_val *v, char **buf, size_t *cap);
/* Compares a string value with a plain C string after unescaping, without
 * allocating.  Returns 1 when equal.  Meant for short names (categories,
 * keys): a value whose raw text is longer than 256 bytes never compares
 * equal; use js_string for longer values. */
int js_string_eq(const js_val *v, const char *s, int ignore_ascii_case);
/* Numbers: the value as Python's float() would read it (NaN and infinities too). */
double js_number(const js_val *v);
/* Walks the elements of an array value that js_scan validated: *pos starts at
 * 0; returns 1 and fills *elem, or 0 after the last element. */
int js_array_next(const js_val *arr, size_t *pos, js_val *elem);
#endif
