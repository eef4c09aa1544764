/* frame.c - see frame.h. */
#include "pipeline/frame.h"
#include "pipeline/json.h"
#include <math.h>
#include <stdio.h>

int frame_record(frame_state *f, const char *line, size_t n, const char *name, uint64_t lineno, char *err, size_t errlen) {
    static const js_path paths[2] = { { { "symbert_stream" }, 1 }, { { "lines" }, 1 } };
    js_val v[2]; char why[256];
    if (js_scan(line, n, paths, 2, v, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s:%llu: malformed stream record: %s", name, (unsigned long long)lineno, why);
        return -1;
    }
    int begin = js_string_eq(&v[0], "begin", 0), end = js_string_eq(&v[0], "end", 0);
    if (!begin && !end) {
        snprintf(err, errlen, "%s:%llu: \"symbert_stream\" must be \"begin\" or \"end\"", name, (unsigned long long)lineno);
        return -1;
    }
    if (begin) {
        if (f->open) {
            snprintf(err, errlen, "%s:%llu: a begin record while the stream begun at line %llu has not ended: "
                     "its writer stopped early", name, (unsigned long long)lineno, (unsigned long long)f->begin_line);
            return -1;
        }
        f->open = 1; f->lines = 0; f->begin_line = lineno;
        return 0;
    }
    if (!f->open) {
        snprintf(err, errlen, "%s:%llu: an end record without a begin record", name, (unsigned long long)lineno);
        return -1;
    }
    if (v[1].type != JS_ABSENT) {
        double want = v[1].type == JS_NUMBER ? js_number(&v[1]) : -1;
        if (!(want >= 0) || want != floor(want) || want != (double)f->lines) {
            snprintf(err, errlen, "%s:%llu: the end record says %.*s lines, the stream begun at line %llu holds %llu",
                     name, (unsigned long long)lineno, (int)(v[1].n > 40 ? 40 : v[1].n), v[1].p,
                     (unsigned long long)f->begin_line, (unsigned long long)f->lines);
            return -1;
        }
    }
    f->open = 0;
    return 0;
}

int frame_finish(frame_state *f, const char *name, char *err, size_t errlen) {
    if (!f->open) return 0;
    snprintf(err, errlen, "%s: ends without the end record of the stream begun at line %llu (after %llu lines): "
             "its writer stopped before the end", name, (unsigned long long)f->begin_line, (unsigned long long)f->lines);
    f->open = 0;
    return -1;
}

size_t frame_begin(char *buf, size_t cap, const char *writer) {
    int k = snprintf(buf, cap, FRAME_KEY "\"begin\",\"writer\":\"%s\"}\n", writer);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

size_t frame_end(char *buf, size_t cap, const char *writer, int64_t lines) {
    int k = lines < 0 ? snprintf(buf, cap, FRAME_KEY "\"end\",\"writer\":\"%s\"}\n", writer)
                      : snprintf(buf, cap, FRAME_KEY "\"end\",\"writer\":\"%s\",\"lines\":%lld}\n", writer, (long long)lines);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}
