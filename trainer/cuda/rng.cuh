/* rng.cuh - the counter-based random streams of trainer/model.h, on the GPU.
 *
 * model.h defines every random draw of training as a pure function of
 * (seed, domain, counters); its functions (bt_key, bt_rand32, bt_uniform,
 * bt_dropout_key, the mask draws) are compiled for the device as they are
 * (BT_INLINE).  This header adds what only the hot kernels need: the same draw
 * in 32-bit halves, walking a stream by + G.  tests/cuda_kernels_test.cu
 * checks the device's draws bit for bit against the host's, so that masks
 * and dropout on the GPU are exactly those of the CPU trainer.
 *
 * Dropout keeps element e iff bt_uniform(key, e) >= p.  bt_uniform is
 * (rand32 >> 8) * 2^-24, exact in float, so the test is the integer
 * comparison (rand32 >> 8) >= ceil(p * 2^24): dropout_threshold(p). */
#ifndef SYMBERT_CUDA_RNG_CUH
#define SYMBERT_CUDA_RNG_CUH
#include "trainer/cuda/common.cuh"
#include <math.h>
extern "C" {
#include "trainer/model.h"
}

/* The same draw from x = key + G (i + 1) directly, in 32-bit halves (only the
 * high word of the last product is needed).  A thread walking consecutive
 * elements adds G (or a constant multiple) to x instead of recomputing it:
 * this is what the hot kernels use.  cuda_kernels_test checks it against
 * the host's bt_rand32. */
#define RNG_G 0x9e3779b97f4a7c15ULL
__device__ __forceinline__ uint32_t d_rand32_x(uint64_t x) {
    uint32_t lo = (uint32_t)x, hi = (uint32_t)(x >> 32);
    lo ^= __funnelshift_r(lo, hi, 30); hi ^= hi >> 30;
    uint64_t p = (uint64_t)lo * 0x1ce4e5b9u;
    uint32_t nhi = (uint32_t)(p >> 32) + lo * 0xbf58476du + hi * 0x1ce4e5b9u;
    lo = (uint32_t)p; hi = nhi;
    lo ^= __funnelshift_r(lo, hi, 27); hi ^= hi >> 27;
    uint32_t h = __umulhi(lo, 0x133111ebu) + lo * 0x94d049bbu + hi * 0x133111ebu;
    return h ^ (h >> 31);
}
/* x of element e of a stream. */
__device__ __forceinline__ uint64_t d_stream_x(uint64_t key, uint64_t e) { return key + RNG_G * (e + 1); }

/* Where a micro-batch's dropout streams start: sample b of the micro-batch
 * is sample sample0 + b of the batch of step `step`.  p == 0 disables. */
struct DropCtx {
    uint64_t seed, step;
    int sample0;
    uint32_t thr;    /* keep iff (rand32 >> 8) >= thr */
    float scale;     /* 1 / (1 - p) */
    int on;
};
static inline uint32_t dropout_threshold(float p) { return (uint32_t)ceil((double)p * 16777216.0); }
static inline DropCtx drop_ctx(uint64_t seed, uint64_t step, int sample0, float p) {
    DropCtx d;
    d.seed = seed; d.step = step; d.sample0 = sample0;
    d.thr = dropout_threshold(p); d.scale = 1.0f / (1.0f - p); d.on = p > 0.0f;
    return d;
}
__device__ __forceinline__ bool d_keep(uint64_t key, uint64_t e, uint32_t thr) {
    return (bt_rand32(key, e) >> 8) >= thr;
}
#endif
