/* batch.h - bt_batch: one micro-batch as the training loop (trainer/train.c)
 * hands it to an engine, the CPU model (trainer/cpu.h) or the GPU one
 * (trainer/cuda/gpu.h). */
#ifndef SYMBERT_TRAINER_BATCH_H
#define SYMBERT_TRAINER_BATCH_H
#include <stdint.h>

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
#endif
