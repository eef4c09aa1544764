/* strbuf.h - a growable string for the JSON the tools write (manifests,
 * stats, checkpoint headers).  Appending never fails loudly: on out of
 * memory `oom` is set and later appends do nothing; check it once at the
 * end.  Free with free(b.p). */
#ifndef SYMBERT_STRBUF_H
#define SYMBERT_STRBUF_H
#include <stddef.h>
typedef struct { char *p; size_t n, cap; int oom; } strbuf;
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal (quotes, \" \\ and \u00XX for control bytes;
 * other bytes as they are). */
void strbuf_json_str(strbuf *b, const char *s);
#endif
