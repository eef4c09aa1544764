/* vocab.c - see vocab.h. */
#include "tokenizer/vocab.h"
#include "pipeline/sha256.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wp_vocab {
    char *text;          /* all tokens, NUL-separated */
    uint32_t *off;       /* off[id]: start of token id in text */
    uint32_t *len;       /* len[id] */
    uint32_t n;
    int32_t *slot;       /* hash table of ids, -1 = empty; size mask+1 */
    uint32_t mask;
    unsigned char sha[32];
};

static uint64_t hash_bytes(const char *s, size_t n) {   /* FNV-1a 64 */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    return h ^ (h >> 29);
}

wp_vocab *wp_vocab_load(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "vocab %s: %s", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(f); snprintf(err, errlen, "vocab %s: out of memory", path); return NULL; }
    sha256_ctx sc; sha256_init(&sc);
    for (;;) {
        if (n + 65536 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); fclose(f); snprintf(err, errlen, "vocab %s: out of memory", path); return NULL; }
            buf = nb; cap *= 2;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        sha256_update(&sc, buf + n, got);
        n += got;
        if (got < 65536) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) { free(buf); snprintf(err, errlen, "vocab %s: read error", path); return NULL; }
    if (n == 0) { free(buf); snprintf(err, errlen, "vocab %s: empty file", path); return NULL; }

    wp_vocab *v = calloc(1, sizeof *v);
    if (!v) { free(buf); snprintf(err, errlen, "vocab %s: out of memory", path); return NULL; }
    sha256_final(&sc, v->sha);
    uint32_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
    if (buf[n - 1] != '\n') lines++;
    v->text = malloc(n + 1);
    v->off = malloc(sizeof *v->off * lines);
    v->len = malloc(sizeof *v->len * lines);
    uint32_t tsize = 1;
    while (tsize < 2 * lines) tsize <<= 1;
    v->slot = malloc(sizeof *v->slot * tsize);
    v->mask = tsize - 1;
    if (!v->text || !v->off || !v->len || !v->slot) {
        free(buf); wp_vocab_free(v); snprintf(err, errlen, "vocab %s: out of memory", path); return NULL;
    }
    memset(v->slot, 0xff, sizeof *v->slot * tsize);
    size_t pos = 0, out = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && buf[e] != '\n') e++;
        size_t t = e;   /* trim trailing white space, as Rust's str::trim_end */
        while (t > pos && (buf[t - 1] == ' ' || buf[t - 1] == '\t' || buf[t - 1] == '\r' ||
                           buf[t - 1] == '\v' || buf[t - 1] == '\f')) t--;
        memcpy(v->text + out, buf + pos, t - pos);
        v->off[v->n] = (uint32_t)out; v->len[v->n] = (uint32_t)(t - pos);
        out += t - pos; v->text[out++] = 0;
        /* insert; a duplicate token takes the later id */
        uint32_t id = v->n++, h = (uint32_t)hash_bytes(buf + pos, t - pos) & v->mask;
        for (;; h = (h + 1) & v->mask) {
            int32_t s = v->slot[h];
            if (s < 0) { v->slot[h] = (int32_t)id; break; }
            if (v->len[s] == t - pos && !memcmp(v->text + v->off[s], buf + pos, t - pos)) { v->slot[h] = (int32_t)id; break; }
        }
        pos = e + 1;
    }
    free(buf);
    return v;
}

uint32_t wp_vocab_size(const wp_vocab *v) { return v->n; }

const char *wp_vocab_token(const wp_vocab *v, uint32_t id) {
    return id < v->n ? v->text + v->off[id] : NULL;
}

int wp_vocab_id(const wp_vocab *v, const char *tok, size_t len) {
    uint32_t h = (uint32_t)hash_bytes(tok, len) & v->mask;
    for (;; h = (h + 1) & v->mask) {
        int32_t s = v->slot[h];
        if (s < 0) return -1;
        if (v->len[s] == len && !memcmp(v->text + v->off[s], tok, len)) return s;
    }
}

const unsigned char *wp_vocab_sha256(const wp_vocab *v) { return v->sha; }

void wp_vocab_free(wp_vocab *v) {
    if (!v) return;
    free(v->text); free(v->off); free(v->len); free(v->slot); free(v);
}
