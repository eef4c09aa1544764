/* data.h - training data for both trainers: a shard-pack folder (see
 * pipeline/shard.h), the order in which samples are seen, and masked
 * micro-batches.
 *
 * Order: the global sample position g = step * batch + i (i-th sample of
 * update `step`) maps to epoch g / N and to train sample
 * bt_perm(seed, epoch, N, g % N): a seeded permutation per epoch computed
 * on demand (a Feistel network with cycle walking), so the data position
 * of a run is just its step and needs no stored state.
 * Masks: bt_mask_batch keyed by (seed, step, i) for training and by
 * (eval_seed, BT_EVAL_STEP, validation index) for evaluation, so every
 * evaluation of every run sees the same masked positions. */
#ifndef SYMBERT_TRAINER_DATA_H
#define SYMBERT_TRAINER_DATA_H
#include <stddef.h>
#include <stdint.h>

typedef struct bt_data bt_data;

/* Opens DIR (manifest.json + .npy shards, mmapped).  Checks each shard's
 * shape against the manifest, that vocab_size of the manifest equals the
 * model's, and (verify != 0) every shard's sha256 and ids (slow: reads
 * everything).  Ids are range-checked anyway when a sample is used.
 * NULL with a one-line message naming the file on failure. */
bt_data *bt_data_open(const char *dir, int vocab_size, int verify, char *err, size_t errlen);
void bt_data_close(bt_data *d);
int bt_data_seq_len(const bt_data *d);
uint64_t bt_data_val_count(const bt_data *d);

/* A permutation of [0, n) chosen by (seed, epoch); i < n. */
uint64_t bt_perm(uint64_t seed, uint64_t epoch, uint64_t n, uint64_t i);
/* The train sample seen at global position g. */
uint64_t bt_data_train_index(const bt_data *d, uint64_t seed, uint64_t g);

/* Masked training samples first .. first+n-1 of update `step` (batch
 * samples per update): inputs/labels get n * seq_len entries (see
 * bt_mask_batch).  *n_masked (optional) receives the labelled positions.
 * 0, or -1 with "train-00003.npy row 17: token id 40000 >= vocab size" etc. */
int bt_data_train_batch(const bt_data *d, uint64_t seed, uint64_t step, int batch, int first, int n,
                        int32_t *inputs, int32_t *labels, long *n_masked, char *err, size_t errlen);
/* Validation samples first .. first+n-1 with the fixed evaluation masks. */
int bt_data_val_batch(const bt_data *d, uint64_t eval_seed, uint64_t first, int n,
                      int32_t *inputs, int32_t *labels, long *n_masked, char *err, size_t errlen);
/* The same samples unmasked, for engines that mask on the device: ids get
 * n * seq_len raw token ids (range-checked), counts[i] the positions
 * bt_mask_batch would choose in sample i (its mask key is (seed, step,
 * first + i) for training, (eval_seed, BT_EVAL_STEP, first + i) for
 * validation).  0, or -1 with a message as above. */
int bt_data_train_ids(const bt_data *d, uint64_t seed, uint64_t step, int batch, int first, int n,
                      uint16_t *ids, int *counts, char *err, size_t errlen);
int bt_data_val_ids(const bt_data *d, uint64_t eval_seed, uint64_t first, int n,
                    uint16_t *ids, int *counts, char *err, size_t errlen);
/* Labelled positions of the whole update (all `batch` samples): the
 * normaliser of the batch-mean loss, known before any micro-batch runs. */
long bt_data_train_masked(const bt_data *d, uint64_t seed, uint64_t step, int batch);
#endif
