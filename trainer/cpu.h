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
#include "trainer/batch.h"

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
