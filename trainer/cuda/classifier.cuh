/* classifier.cuh - cross-entropy of the MLM head, fused with its gradient.
 *
 * The head runs only on the masked positions (about 15% of the tokens), so
 * logits is [n, ld] with n the number of masked positions of the
 * micro-batch and ld the vocabulary rounded up to 16 bytes.  One block per
 * row: max and sum of exponentials in one pass, then the row is overwritten
 * with the gradient (softmax - onehot(label)) * grad_scale (llm.c's fused
 * classifier), the padding columns with 0 (unless write_grad is 0: loss
 * only, logits kept).  loss[i] = logsumexp - logit[label]. */
#ifndef SYMBERT_CUDA_CLASSIFIER_CUH
#define SYMBERT_CUDA_CLASSIFIER_CUH
#include "trainer/cuda/matmul.cuh"
#include <float.h>

template <typename T>
__global__ void ce_kernel(T *logits, float *loss, const int32_t *labels, int V, int ld, float grad_scale, int write_grad) {
    constexpr int P = Pack16<T>::N;
    __shared__ float smax[32], ssum[32];
    int row = blockIdx.x, lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    T *x = logits + (size_t)row * ld;
    float mx = -FLT_MAX, sm = 0.0f;
    for (int c0 = threadIdx.x * P; c0 < ld; c0 += blockDim.x * P) {
        Pack16<T> a = ld16(x + c0);
#pragma unroll
        for (int i = 0; i < P; i++) {
            if (c0 + i >= V) break;
            float v = to_f(a.v[i]);
            if (v > mx) { sm *= __expf(mx - v); mx = v; }
            sm += __expf(v - mx);
        }
    }
    /* combine (max, sum) pairs: warp, then block */
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, mx, o), s2 = __shfl_xor_sync(0xffffffffu, sm, o);
        float m = fmaxf(mx, m2);
        sm = sm * __expf(mx - m) + s2 * __expf(m2 - m);
        mx = m;
    }
    if (lane == 0) { smax[w] = mx; ssum[w] = sm; }
    __syncthreads();
    mx = -FLT_MAX; sm = 0.0f;
    for (int i = 0; i < nw; i++) {
        float m = fmaxf(mx, smax[i]);
        sm = sm * __expf(mx - m) + ssum[i] * __expf(smax[i] - m);
        mx = m;
    }
    float lse = mx + logf(sm);
    int label = labels[row];
    if (threadIdx.x == 0) loss[row] = lse - to_f(x[label]);
    if (!write_grad) return;
    __syncthreads();   /* x[label] read before it is overwritten */
    for (int c0 = threadIdx.x * P; c0 < ld; c0 += blockDim.x * P) {
        Pack16<T> a = ld16(x + c0), o;
#pragma unroll
        for (int i = 0; i < P; i++) {
            int c = c0 + i;
            float g = 0.0f;
            if (c < V) g = (__expf(to_f(a.v[i]) - lse) - (c == label ? 1.0f : 0.0f)) * grad_scale;
            o.v[i] = from_f<T>(g);
        }
        st16(x + c0, o);
    }
}
template <typename T>
static void cross_entropy(T *logits, float *loss, const int32_t *labels, int n, int V, int ld, float grad_scale,
                          int write_grad) {
    if (n <= 0) return;
    ce_kernel<T><<<n, 512, 0, g_stream>>>(logits, loss, labels, V, ld, grad_scale, write_grad);
    LAUNCH_CHECK("ce_kernel");
}

/* acc[0] += the sum of the n per-position losses, in double and in a fixed
 * order (the same on every run). */
__global__ static void loss_accum_kernel(double *acc, const float *x, int n) {
    double t = block_sum_fixed(x, n);
    if (threadIdx.x == 0) acc[0] += t;
}
static void loss_accumulate(double *acc, const float *loss, int n) {
    loss_accum_kernel<<<1, 256, 0, g_stream>>>(acc, loss, n);
    LAUNCH_CHECK("loss_accum_kernel");
}
#endif
