/* fuzz_json.c - js_scan on arbitrary bytes: no crash, and every value it
 * reports lies inside the input and decodes. */
#include "pipeline/json.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    js_path paths[] = { {{"content"}, 1}, {{"metadata", "harmful_pp"}, 2}, {{"metadata", "categories"}, 2} };
    js_val v[3]; char err[128];
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (js_scan(copy, size, paths, 3, v, err, sizeof err) == 0) {
        for (int i = 0; i < 3; i++) {
            if (v[i].type == JS_ABSENT) continue;
            if (v[i].p < copy || v[i].p + v[i].n > copy + size) abort();
            if (v[i].type == JS_STRING) { char *b = NULL; size_t cap = 0; if (js_string(&v[i], &b, &cap) < 0) abort(); free(b); }
            if (v[i].type == JS_NUMBER) (void)js_number(&v[i]);
            if (v[i].type == JS_ARRAY) { size_t pos = 0; js_val el; int guard = 0; while (js_array_next(&v[i], &pos, &el) && guard++ < 100000) (void)js_string_eq(&el, "adult", 1); }
        }
    }
    free(copy);
    return 0;
}
