/* rng.cuh - the counter-based random streams of trainer/model.h, on the GPU.
 *
 * model.h defines every random draw of training as a pure function of
 * (seed, domain, counters); its functions (bt_key, bt_dropout_key,
 * bt_dropout_word, the mask draws) are compiled for the device as they are
 * (BT_INLINE), so masks and dropout on the GPU are exactly those of the CPU
 * trainer; tests/cuda_kernels_test.cu checks the device's draws bit for bit
 * against the host's.  This header adds the per-call dropout context.
 *
 * Dropout keeps element e iff 16-bit slot e % 4 of bt_dropout_word(key, e / 4)
 * is >= bt_dropout_threshold(p): a kernel handling four consecutive elements
 * (aligned) mixes once. */
#ifndef SYMBERT_CUDA_RNG_CUH
#define SYMBERT_CUDA_RNG_CUH
#include "trainer/cuda/common.cuh"
extern "C" {
#include "trainer/model.h"
}

/* Where a micro-batch's dropout streams start: sample b of the micro-batch
 * is sample sample0 + b of the batch of step `step`.  p == 0 disables. */
struct DropCtx {
    uint64_t seed, step;
    int sample0;
    uint32_t thr;    /* keep iff the element's 16 bits >= thr */
    float scale;     /* 1 / (1 - p) */
    int on;
};
static inline DropCtx drop_ctx(uint64_t seed, uint64_t step, int sample0, float p) {
    DropCtx d;
    d.seed = seed; d.step = step; d.sample0 = sample0;
    d.thr = bt_dropout_threshold(p); d.scale = 1.0f / (1.0f - p); d.on = p > 0.0f;
    return d;
}
/* The keep bits of the V (a multiple of 4) consecutive elements e0 .. e0 + V - 1 of a stream, e0 a
 * multiple of 4: bit i for element e0 + i. */
template <int V> __device__ __forceinline__ uint32_t d_keep_bits(uint64_t key, uint64_t e0, uint32_t thr) {
    uint32_t kb = 0;
#pragma unroll
    for (int w = 0; w < V / 4; w++) {
        uint64_t word = bt_dropout_word(key, (e0 >> 2) + w);
#pragma unroll
        for (int s = 0; s < 4; s++) kb |= (uint32_t)bt_dropout_slot(word, s, thr) << (4 * w + s);
    }
    return kb;
}
#endif
