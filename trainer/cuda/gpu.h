/* gpu.h - the MLM model on one CUDA GPU, behind a plain C interface (so
 * that the trainer's C code and the C tests use it like trainer/cpu.h).
 *
 * The model is the one of trainer/model.h, with the same flat parameter
 * layout (so checkpoints are interchangeable: the GPU holds the fp32
 * master copy of that very buffer), the same dropout streams and the same
 * loss convention as bt_cpu_forward_backward: the loss is the SUM of the
 * cross-entropies at labelled positions, and gradients are scale * d(sum),
 * accumulated over micro-batches until btc_zero_grads.
 *
 * Precision: BTC_BF16 computes in bf16 on tensor cores (fp32 accumulation,
 * fp32 master weights, fp32 gradients and AdamW state, LayerNorm statistics
 * and softmax in fp32); BTC_FP32 computes everything in fp32 (no TF32):
 * slow, for checking against the CPU reference.
 * Attention: BTC_ATTN_AUTO picks the fused flash kernels where they apply
 * (bf16, head size 64, sequence a multiple of 128), else the reference path
 * (cuBLAS batched products + softmax kernel). */
#ifndef SYMBERT_TRAINER_CUDA_GPU_H
#define SYMBERT_TRAINER_CUDA_GPU_H
#ifdef __cplusplus
extern "C" {
#endif
#include "trainer/model.h"
#include "trainer/batch.h"
#include "trainer/optim.h"

enum { BTC_BF16 = 0, BTC_FP32 = 1 };
/* The attention path: AUTO the flash kernels where they apply, else the
 * reference path; FLASH the flash kernels or an error; REF the reference
 * path.  The flash kernels run on wgmma where it runs (compute capability
 * 9.0), else on mma.sync; FLASH_MMA and FLASH_WGMMA ask for one of them
 * (comparisons and tests). */
enum { BTC_ATTN_AUTO = 0, BTC_ATTN_FLASH = 1, BTC_ATTN_REF = 2, BTC_ATTN_FLASH_MMA = 3, BTC_ATTN_FLASH_WGMMA = 4 };

/* Options of btc_new; {0} is the default (bf16, automatic attention path). */
typedef struct btc_opts {
    int precision;    /* BTC_BF16 or BTC_FP32 */
    int attn;         /* BTC_ATTN_* */
    int dense_last;   /* 1: the last layer after its attention over every row, as the others (for
                       * comparisons); 0: at the masked rows only, the ones the MLM head reads */
} btc_opts;

typedef struct btc_model btc_model;

/* 1 if a CUDA device is usable (message in err otherwise). */
int btc_available(char *err, size_t errlen);
/* A one-line description of the device ("NVIDIA H100 80GB HBM3, 132 SMs, 79.1 GiB"). */
void btc_device_name(char *buf, size_t cap);

/* Allocates everything for micro-batches of up to max_B samples of length
 * T (o NULL: the defaults).  Parameters start at zero: load them with
 * btc_set_params.  Fatal on CUDA errors (see common.cuh); NULL with a
 * message for unusable configs. */
btc_model *btc_new(const bt_layout *L, int max_B, int T, const btc_opts *o, char *err, size_t errlen);
void btc_free(btc_model *m);
/* Which attention path is in use: "flash" or "reference". */
const char *btc_attn_name(const btc_model *m);

/* Host <-> device copies of the flat buffers (L->total floats). */
void btc_set_params(btc_model *m, const float *params);
void btc_get_params(btc_model *m, float *params);
void btc_get_grads(btc_model *m, float *grads);
void btc_set_moments(btc_model *m, const float *mom1, const float *mom2);   /* NULL: zero */
void btc_get_moments(btc_model *m, float *mom1, float *mom2);
void btc_zero_grads(btc_model *m);

/* One micro-batch (b->B <= max_B, b->T == T): forward, and the backward
 * when `backward` is set.  Either b->inputs/labels (masked by the host) or
 * b->ids, counts and the mask key fields (see bt_batch), masked on the GPU
 * with bt_mask_batch's draws (btc_get_batch returns what it made).
 * Returns the summed loss and the number of labelled positions.  The loss
 * is read back, so this waits for the GPU; btc_forward_backward_async
 * queues the work and btc_loss_wait collects the loss later. */
double btc_forward_backward(btc_model *m, const bt_batch *b, int backward, int dropout, uint64_t seed, float scale,
                            int *n_labels);
void btc_forward_backward_async(btc_model *m, const bt_batch *b, int backward, int dropout, uint64_t seed, float scale,
                                int *n_labels);
double btc_loss_wait(btc_model *m);        /* sum of the losses queued since the last call */
/* The masked inputs and labels ([B*T] each, BT_IGNORE where unlabelled) of
 * the last pass, however they were masked: for tests. */
void btc_get_batch(btc_model *m, int32_t *inputs, int32_t *labels, int B);

/* Data parallelism: sums the gradient buffer over the ranks by
 * sum(ctx, buffer, floats, stream (a cudaStream_t), err, errlen), queued on
 * the model's stream after the backward passes (e.g. an ncclAllReduce,
 * trainer/cuda/dist_nccl.c).  sum NULL (one GPU): nothing.  0, or sum's -1. */
typedef int (*btc_sum_fn)(void *ctx, float *dev, size_t n, void *stream, char *err, size_t errlen);
int btc_allreduce_grads(btc_model *m, btc_sum_fn sum, void *ctx, char *err, size_t errlen);
/* Global gradient norm, clipping and one AdamW update (t: 1-based update
 * count, lr: this update's rate); refreshes the bf16 weights.  Returns the
 * gradient norm before clipping (waits for the GPU). */
double btc_adamw_step(btc_model *m, const bt_optim_cfg *o, long t, double lr);

/* Bytes of device memory the trainer holds (its named allocations);
 * btc_memory_device: bytes in use on the device as the driver sees it
 * (everything: context, cuBLAS, the trainer). */
size_t btc_memory_used(void);
size_t btc_memory_device(void);
void btc_sync(void);

/* Profiling: between begin and end, every stage of the passes and of the
 * optimiser step records an event; end waits, then returns up to cap
 * (stage name, milliseconds summed over layers and micro-batches) pairs. */
void btc_profile_begin(void);
int btc_profile_end(const char **names, double *ms, int cap);

#ifdef __cplusplus
}
#endif
#endif
