/* strbuf.c - see strbuf.h. */
#include "pipeline/strbuf.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void strbuf_printf(strbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap; va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if (b->p && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->n + (size_t)k + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) { b->oom = 1; return; }
        b->p = q; b->cap = c;
    }
}

void strbuf_json_str(strbuf *b, const char *s) {
    strbuf_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') strbuf_printf(b, "\\%c", ch);
        else if (ch < 0x20) strbuf_printf(b, "\\u%04x", ch);
        else strbuf_printf(b, "%c", ch);
    }
    strbuf_printf(b, "\"");
}
