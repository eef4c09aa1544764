/* train_cuda.h - bt_train_cuda: the training loop of trainer/train.h on one
 * CUDA GPU.  Takes the same bt_run as bt_train_cpu and returns the same
 * codes (0 done, 1 interrupted with a checkpoint saved, -1 error), so a
 * front end can dispatch `--device cuda` here with one call. */
#ifndef SYMBERT_TRAINER_CUDA_TRAIN_CUDA_H
#define SYMBERT_TRAINER_CUDA_TRAIN_CUDA_H
#include "trainer/train.h"
#include "trainer/cuda/gpu.h"

typedef struct btc_options {
    int precision;     /* BTC_BF16 (default) or BTC_FP32 */
    int attn_impl;     /* BTC_ATTN_AUTO, _FLASH or _REF */
    /* optional: told the device, attention path, micro-batch and bytes of GPU memory taken */
    void (*describe)(void *ctx, const char *device, const char *attention, int micro_batch, size_t bytes);
} btc_options;

/* co may be NULL (bf16, automatic attention path). */
int bt_train_cuda(const bt_run *r, const btc_options *co, char *err, size_t errlen);
#endif
