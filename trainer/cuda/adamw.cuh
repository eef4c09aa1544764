/* adamw.cuh - the optimiser step on the flat fp32 parameter buffer:
 * global gradient norm, clipping, AdamW (the arithmetic of trainer/optim.c,
 * which is PyTorch's), and the bf16 copy of the weights that the next forward
 * pass reads.
 *
 * The buffer is cut into chunks of at most ADAM_CHUNK floats that never
 * straddle two tensors, so each chunk carries its tensor's weight-decay flag
 * (built once on the host from model.h's table).  One block per chunk.
 * The norm is reduced in two deterministic stages (block partials, then one
 * block in double) and stays on the device: the clip factor is read by the
 * AdamW kernel, no host round trip inside a step. */
#ifndef SYMBERT_CUDA_ADAMW_CUH
#define SYMBERT_CUDA_ADAMW_CUH
#include "trainer/cuda/matmul.cuh"

#define ADAM_CHUNK 8192
struct AdamChunk { uint64_t off; int len; int decay; };

__global__ static void sumsq_kernel(float *partial, const float *g, const AdamChunk *ch) {
    __shared__ float part[32];
    AdamChunk c = ch[blockIdx.x];
    float s = 0.0f;
    for (int i = threadIdx.x; i < c.len; i += blockDim.x) { float v = g[c.off + i]; s += v * v; }
    s = warp_sum(s);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int i = 0; i < (int)blockDim.x / 32; i++) t += part[i];
        partial[blockIdx.x] = t;
    }
}
/* out[0] = global norm, out[1] = clip factor min(1, max_norm / (norm + 1e-6)). */
__global__ static void norm_kernel(float *out, const float *partial, int n, float max_norm) {
    double t = block_sum_fixed(partial, n);
    if (threadIdx.x == 0) {
        float norm = (float)sqrt(t);
        float clip = max_norm > 0.0f ? max_norm / (norm + 1e-6f) : 1.0f;
        out[0] = norm;
        out[1] = clip < 1.0f ? clip : 1.0f;
    }
}

/* As bt_adamw_update: step = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t),
 * decay = 1 - lr * weight_decay (computed in double on the host). */
struct AdamHyper { float b1, b2, eps, step, bc2_sqrt, decay; };

template <typename T>
__global__ void adamw_kernel(float *p, T *pc, float *m, float *v, const float *g, const AdamChunk *ch,
                             const float *normclip, AdamHyper h) {
    AdamChunk c = ch[blockIdx.x];
    float clip = normclip[1];
    float decay = c.decay ? h.decay : 1.0f;
    for (int i = threadIdx.x; i < c.len; i += blockDim.x) {
        size_t k = c.off + i;
        float gi = g[k] * clip;
        float pp = p[k] * decay;
        float mm = h.b1 * m[k] + (1.0f - h.b1) * gi;
        float vv = h.b2 * v[k] + (1.0f - h.b2) * gi * gi;
        pp -= h.step * mm / (sqrtf(vv) / h.bc2_sqrt + h.eps);
        m[k] = mm; v[k] = vv; p[k] = pp;
        if (pc) pc[k] = from_f<T>(pp);
    }
}
/* normclip[1] = the clip factor exactly as bt_clip_coef: min(1, clip /
 * (norm + 1e-6)) in double from the norm in normclip[0], 1 when clip <= 0. */
__global__ static void clip_kernel(float *normclip, float clip) {
    double norm = normclip[0];
    double cf = clip > 0.0f ? (double)clip / (norm + 1e-6) : 1.0;
    normclip[1] = cf < 1.0 ? (float)cf : 1.0f;
}
static void clip_factor(float *normclip, float clip) {
    clip_kernel<<<1, 1, 0, g_stream>>>(normclip, clip);
    LAUNCH_CHECK("clip_kernel");
}
#endif
