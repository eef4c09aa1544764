/* fuzz_npy.c - the shard readers on arbitrary bytes: the .npy header parser
 * (an input not starting with '{') and the manifest.json parser (an input
 * starting with '{').  No crash, no read past the input, and whatever is
 * accepted is self-consistent. */
#include "pipeline/shard.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    if (size && data[0] == '{') {
        char *t = malloc(size + 1);            /* exact-size copy: ASan sees any over-read */
        if (!t) return 0;
        memcpy(t, data, size); t[size] = 0;
        shard_manifest m;
        if (shard_manifest_parse(t, size, &m, err, sizeof err) == 0) {
            if (m.seq_len == 0 || m.vocab_size == 0 || m.vocab_size > 65536 || strlen(m.vocab_sha256) != 64) abort();
            for (size_t i = 0; i < m.nshards; i++)
                if (strlen(m.shards[i].sha256) != 64 || (m.shards[i].split != SHARD_TRAIN && m.shards[i].split != SHARD_VALIDATION)) abort();
            shard_manifest_free(&m);
        } else if (!err[0]) abort();
        free(t);
        return 0;
    }
    unsigned char *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    uint64_t rows; uint32_t cols; size_t off;
    err[0] = 0;
    if (shard_npy_parse(b, size, &rows, &cols, &off, err, sizeof err) == 0) {
        if (off > size || cols == 0 || cols > SHARD_MAX_SEQ_LEN) abort();
        /* a header we write for the same shape parses to the same shape */
        unsigned char h[SHARD_NPY_HEADER];
        shard_npy_header(h, rows, cols);
        uint64_t r2; uint32_t c2; size_t o2;
        if (shard_npy_parse(h, sizeof h, &r2, &c2, &o2, err, sizeof err) != 0 || r2 != rows || c2 != cols || o2 != SHARD_NPY_HEADER) abort();
    } else if (!err[0]) abort();
    free(b);
    return 0;
}
