/* trainer_shards.h - writes a small shard folder for the trainer tests with
 * its own .npy and manifest writers (from the format in docs/shard-pack.md, "Output", not
 * from shard-pack's code, so the reader is checked against the contract).
 * Samples: [CLS], then one token of the sample's own (7 times in 8) or
 * noise, then [SEP]: a masked token is predictable from its context. */
#ifndef SYMBERT_TESTS_TRAINER_SHARDS_H
#define SYMBERT_TESTS_TRAINER_SHARDS_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "pipeline/sha256.h"
#include "trainer/model.h"

static void ts_sample(uint16_t *ids, int T, int vocab, uint64_t which) {
    uint64_t key = bt_key(1234, 77, which, 0, 0);
    int lo = 104, span = vocab - 104;
    int topic = lo + (int)(bt_rand32(key, 0) % (uint32_t)span);
    ids[0] = BT_CLS_ID;
    for (int t = 1; t < T - 1; t++)   /* the sample's topic token, one in 8 times noise */
        ids[t] = (uint16_t)(bt_rand32(key, (uint64_t)t) % 8 ? topic : lo + (int)(bt_rand32(key, 1000 + (uint64_t)t) % (uint32_t)span));
    ids[T - 1] = BT_SEP_ID;
}

/* Writes one .npy of n samples starting at sample number first; hex sha256 to sha. */
static int ts_npy(const char *path, int T, int vocab, uint64_t first, int n, char sha[65]) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char dict[256];
    int k = snprintf(dict, sizeof dict, "{'descr': '<u2', 'fortran_order': False, 'shape': (%d, %d), }", n, T);
    int total = 10 + k + 1, pad = (64 - total % 64) % 64;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0 };
    uint16_t hl = (uint16_t)(k + pad + 1);
    pre[8] = (unsigned char)(hl & 255); pre[9] = (unsigned char)(hl >> 8);
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)k, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    uint16_t ids[4096];
    for (int s = 0; s < n; s++) {
        ts_sample(ids, T, vocab, first + (uint64_t)s);
        fwrite(ids, 2, (size_t)T, f);
    }
    if (fclose(f)) return -1;
    return sha256_file(path, sha);
}

/* dir/train-00000.npy (ntrain), dir/validation-00000.npy (nval), dir/manifest.json */
static int ts_write(const char *dir, int T, int vocab, int ntrain, int nval) {
    mkdir(dir, 0755);
    char p[1024], sha_t[65], sha_v[65];
    snprintf(p, sizeof p, "%s/train-00000.npy", dir);
    if (ts_npy(p, T, vocab, 0, ntrain, sha_t)) return -1;
    snprintf(p, sizeof p, "%s/validation-00000.npy", dir);
    if (ts_npy(p, T, vocab, 1000000, nval, sha_v)) return -1;
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    long S = ntrain + nval;
    fprintf(f, "{\"format\": \"symbert-shards\", \"version\": 1, \"seq_len\": %d, \"vocab_size\": %d,\n"
               " \"vocab_sha256\": \"%064d\",\n"
               " \"shards\": [{\"name\": \"train-00000.npy\", \"split\": \"train\", \"samples\": %d, \"sha256\": \"%s\"},\n"
               "            {\"name\": \"validation-00000.npy\", \"split\": \"validation\", \"samples\": %d, \"sha256\": \"%s\"}],\n"
               " \"totals\": {\"documents\": %ld, \"tokens\": %ld, \"samples\": %ld, \"train_samples\": %d,\n"
               "            \"validation_samples\": %d, \"dropped_tail_tokens\": 0}}\n",
            T, vocab, 0, ntrain, sha_t, nval, sha_v, S, S * T, S, ntrain, nval);
    return fclose(f);
}
#endif
