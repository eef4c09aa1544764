/* cpu.h - forward and backward pass of the MLM model on the CPU, in fp32.
 *
 * This is the reference the CUDA trainer is tested against: plain loops,
 * one code path for the three attention variants (they differ only in
 * which projection feeds the key and whether Q is multiplied by S_h).
 * With OpenMP every output element is still computed by one thread in a
 * fixed order, so results do not depend on the number of threads.
 *
 * Loss and gradients: the MLM head runs only at labelled (masked)
 * positions; the loss is the sum of cross-entropies there.  The caller
 * passes `scale` (1 / masked positions of the whole batch) so that
 * gradients accumulated over micro-batches are those of the batch mean. */
#ifndef SYMBERT_TRAINER_CPU_H
#define SYMBERT_TRAINER_CPU_H
#include "trainer/model.h"

typedef struct bt_batch {
    int B, T;                 /* samples in this micro-batch, sequence length */
    const int32_t *inputs;    /* [B*T] input ids after masking */
    const int32_t *labels;    /* [B*T] original id at masked positions, BT_IGNORE elsewhere */
    uint64_t step;            /* optimizer step (keys the dropout streams) */
    uint64_t sample0;         /* index within the whole batch of sample 0 (keys dropout) */
    /* Instead of inputs/labels (NULL), an engine that masks on its device
     * (trainer/train.h, device_masks) gets the raw ids, the chosen count of
     * each sample (bt_mask_count) and the mask key of sample b:
     * bt_mask_key(mask_seed, mask_step, mask_sample0 + b). */
    const uint16_t *ids;      /* [B*T] raw token ids */
    const int *counts;        /* [B] */
    uint64_t mask_seed, mask_step, mask_sample0;
} bt_batch;

typedef struct bt_cpu bt_cpu;

/* Activations for micro-batches of up to max_B samples of length T
 * (T <= max_pos).  NULL with a message on failure. */
bt_cpu *bt_cpu_new(const bt_layout *L, int max_B, int T, char *err, size_t errlen);
void bt_cpu_free(bt_cpu *m);

/* Runs the model on a micro-batch.  Returns the sum of the cross-entropy
 * over labelled positions (their count in *n_labels).  When grads is not
 * NULL, adds scale * d(sum)/d(params) to grads (L->total floats).
 * dropout != 0 applies the config's dropout with streams keyed by seed
 * (see bt_dropout_key); 0 turns every dropout off.  logits, when not NULL,
 * receives [n_labels, vocab] logits at the labelled positions in order
 * (room for B*T rows must be there).  On failure (out of memory, a batch
 * larger than bt_cpu_new was told) returns NAN with *n_labels = -1. */
double bt_cpu_forward_backward(bt_cpu *m, const float *params, float *grads, const bt_batch *b,
                               int dropout, uint64_t seed, float scale, int *n_labels, float *logits);

#endif
