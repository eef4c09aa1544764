/* rng.cuh - the counter-based random streams of trainer/model.h, on the GPU.
 *
 * model.h defines every random draw of training as a pure function of
 * (seed, domain, counters); these are the same functions compiled for the
 * device (model.h's are plain C and host-only).  tests/cuda_kernels_test.cu
 * checks them bit for bit against the host versions, so that masks and
 * dropout on the GPU are exactly those of the CPU trainer.
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

__device__ __forceinline__ uint64_t d_mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
__device__ __forceinline__ uint64_t d_key(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t k = d_mix64(seed + 0x9e3779b97f4a7c15ULL * (tag + 1));
    k = d_mix64(k ^ (a + 0x632be59bd9b4e019ULL));
    k = d_mix64(k ^ (b + 0x8cb92ba72f3d8dd7ULL));
    k = d_mix64(k ^ (c + 0xd1b54a32d192ed03ULL));
    return k;
}
__device__ __forceinline__ uint32_t d_rand32(uint64_t key, uint64_t i) {
    return (uint32_t)(d_mix64(key + 0x9e3779b97f4a7c15ULL * (i + 1)) >> 32);
}
__device__ __forceinline__ uint64_t d_dropout_key(uint64_t seed, uint64_t step, uint64_t sample, int layer, int site) {
    return d_key(seed, BT_RNG_DROPOUT, step, sample, (uint64_t)(layer + 1) * 8 + (uint64_t)site);
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
    return (d_rand32(key, e) >> 8) >= thr;
}
#endif
