/* data.c - shard folders for training: order, masks, checks.  The folder
 * itself (manifest, .npy mapping) is read with the shard library. */
#include "trainer/data.h"
#include "trainer/model.h"
#include "pipeline/shard.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bt_data {
    shard_set *set;
    int seq_len, vocab_size;
    uint64_t ntrain, nval;
    char dir[2048];     /* for messages */
};

struct vctx { char *err; size_t errlen; long n; };
static void report(void *ctx, const char *line) {
    struct vctx *v = ctx;
    if (v->n++ == 0) snprintf(v->err, v->errlen, "%s", line);
}

bt_data *bt_data_open(const char *dir, int vocab_size, int verify, char *err, size_t errlen) {
    if (verify) {
        struct vctx v = { err, errlen, 0 };
        long bad = shard_verify(dir, NULL, SHARD_CLS_ID, report, &v);
        if (bad) {
            if (bad > 1) {
                size_t k = strlen(err);
                snprintf(err + k, errlen > k ? errlen - k : 0, " (and %ld more problems)", bad - 1);
            }
            return NULL;
        }
    }
    char e[512];
    shard_set *s = shard_set_open(dir, e, sizeof e);
    if (!s) { snprintf(err, errlen, "%s", e); return NULL; }
    const shard_manifest *m = shard_set_manifest(s);
    if ((int)m->vocab_size != vocab_size) {
        snprintf(err, errlen, "%s/manifest.json: vocab_size %u, but the model's is %d", dir, m->vocab_size, vocab_size);
        shard_set_close(s); return NULL;
    }
    bt_data *d = calloc(1, sizeof *d);
    if (!d) { shard_set_close(s); snprintf(err, errlen, "out of memory"); return NULL; }
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    d->set = s; d->seq_len = (int)m->seq_len; d->vocab_size = vocab_size;
    d->ntrain = shard_set_count(s, SHARD_TRAIN); d->nval = shard_set_count(s, SHARD_VALIDATION);
    if (d->ntrain == 0) { snprintf(err, errlen, "%s: no training samples", dir); bt_data_close(d); return NULL; }
    return d;
}

void bt_data_close(bt_data *d) {
    if (!d) return;
    shard_set_close(d->set); free(d);
}

int bt_data_seq_len(const bt_data *d) { return d->seq_len; }
uint64_t bt_data_val_count(const bt_data *d) { return d->nval; }

const char *bt_data_vocab_sha256(const bt_data *d) { return shard_set_manifest(d->set)->vocab_sha256; }

/* Feistel network on 2*half bits (4 rounds), cycle-walking into [0, n). */
uint64_t bt_perm(uint64_t seed, uint64_t epoch, uint64_t n, uint64_t i) {
    if (n <= 1) return 0;
    int bits = 0;
    while (bits < 64 && ((n - 1) >> bits)) bits++;
    int half = (bits + 1) / 2;
    if (half < 1) half = 1;
    uint64_t mask = (half >= 32) ? 0xFFFFFFFFULL : ((1ULL << half) - 1);
    uint64_t key = bt_key(seed, BT_RNG_PERM, epoch, 0, 0);
    uint64_t x = i;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 4; round++) {
            uint64_t f = bt_mix64(key ^ (r * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)round) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << half) | r;
    } while (x >= n);
    return x;
}

uint64_t bt_data_train_index(const bt_data *d, uint64_t seed, uint64_t g) {
    return bt_perm(seed, g / d->ntrain, d->ntrain, g % d->ntrain);
}

/* Sample `index` of a split (mapped, not copied), every id checked against the vocab. */
static const uint16_t *get(const bt_data *d, int split, uint64_t index, char *err, size_t errlen) {
    char where[96];
    const uint16_t *ids = shard_set_sample(d->set, split, index, where, sizeof where);
    if (!ids) { snprintf(err, errlen, "%s: %s sample %llu out of range", d->dir, shard_split_name(split), (unsigned long long)index); return NULL; }
    for (int t = 0; t < d->seq_len; t++)
        if (ids[t] >= d->vocab_size) {
            snprintf(err, errlen, "%s/%s, position %d: token id %u >= vocab size %d", d->dir, where, t, ids[t], d->vocab_size);
            return NULL;
        }
    return ids;
}

int bt_data_train_batch(const bt_data *d, uint64_t seed, uint64_t step, int batch, int first, int n,
                        int32_t *inputs, int32_t *labels, long *n_masked, char *err, size_t errlen) {
    long total = 0;
    for (int i = 0; i < n; i++) {
        uint64_t g = step * (uint64_t)batch + (uint64_t)(first + i);
        const uint16_t *ids = get(d, SHARD_TRAIN, bt_data_train_index(d, seed, g), err, errlen);
        if (!ids) return -1;
        total += bt_mask_batch(seed, step, (uint64_t)(first + i), ids, d->seq_len, d->vocab_size,
                               inputs + (size_t)i * d->seq_len, labels + (size_t)i * d->seq_len);
    }
    if (n_masked) *n_masked = total;
    return 0;
}

int bt_data_val_batch(const bt_data *d, uint64_t eval_seed, uint64_t first, int n,
                      int32_t *inputs, int32_t *labels, long *n_masked, char *err, size_t errlen) {
    long total = 0;
    for (int i = 0; i < n; i++) {
        const uint16_t *ids = get(d, SHARD_VALIDATION, first + (uint64_t)i, err, errlen);
        if (!ids) return -1;
        total += bt_mask_batch(eval_seed, BT_EVAL_STEP, first + (uint64_t)i, ids, d->seq_len, d->vocab_size,
                               inputs + (size_t)i * d->seq_len, labels + (size_t)i * d->seq_len);
    }
    if (n_masked) *n_masked = total;
    return 0;
}

int bt_data_train_ids(const bt_data *d, uint64_t seed, uint64_t step, int batch, int first, int n,
                      uint16_t *ids, int *counts, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        uint64_t g = step * (uint64_t)batch + (uint64_t)(first + i);
        const uint16_t *s = get(d, SHARD_TRAIN, bt_data_train_index(d, seed, g), err, errlen);
        if (!s) return -1;
        memcpy(ids + (size_t)i * d->seq_len, s, (size_t)d->seq_len * sizeof *s);
        counts[i] = bt_mask_count(seed, step, (uint64_t)(first + i), s, d->seq_len);
    }
    return 0;
}

int bt_data_val_ids(const bt_data *d, uint64_t eval_seed, uint64_t first, int n,
                    uint16_t *ids, int *counts, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        const uint16_t *s = get(d, SHARD_VALIDATION, first + (uint64_t)i, err, errlen);
        if (!s) return -1;
        memcpy(ids + (size_t)i * d->seq_len, s, (size_t)d->seq_len * sizeof *s);
        counts[i] = bt_mask_count(eval_seed, BT_EVAL_STEP, first + (uint64_t)i, s, d->seq_len);
    }
    return 0;
}

long bt_data_train_masked(const bt_data *d, uint64_t seed, uint64_t step, int batch) {
    /* only the first draw of each position decides whether it is labelled */
    long total = 0;
    for (int i = 0; i < batch; i++) {
        uint64_t g = step * (uint64_t)batch + (uint64_t)i;
        const uint16_t *ids = shard_set_sample(d->set, SHARD_TRAIN, bt_data_train_index(d, seed, g), NULL, 0);
        if (!ids) return -1;
        total += bt_mask_count(seed, step, (uint64_t)i, ids, d->seq_len);
    }
    return total;
}
