/* attention.cuh - scaled dot-product attention with dropout, forward and
 * backward, for all three variants of the paper through one code path:
 *     scores = q k^T / sqrt(d);  A = softmax(scores);  o = dropout(A) v
 * The caller chooses q and k: original passes (Q, K), symmetric (Q, Q),
 * pairwise (Q S_h, Q) where Q S_h is a batched product done by the model.
 * The gradients dq and dk come back separately; the model adds them where
 * q and k are one tensor.
 *
 * Layout: q, k, v, o and their gradients are [B*T rows, ld] row-major with
 * head h in columns h*d .. h*d+d-1, each with its own row stride (q, k, v
 * are column slices of the packed projection output; no transposition).
 * Gradients land in the same places with the same strides.  When k_is_q
 * (symmetric), dk is added into dq instead of being written.  Dropout of
 * the probabilities uses model.h's stream for site BT_DROP_ATTN_PROBS,
 * element e = (h*T + i)*T + j of sample b.
 *
 * Two implementations:
 *   flash  (bf16, d = 64, T a multiple of 128): one kernel each way, tensor
 *          cores through mma.sync, the T x T matrix never leaves the chip;
 *          saves the log-sum-exp per row and the dropout bits; backward in
 *          two kernels (dK dV, then dQ) so that nothing needs atomics, on
 *          Hopper with wgmma (warpgroup MMA, wgmma.cuh).
 *          attention_flash.cu.
 *   ref    (fp32 or bf16, any d): cuBLAS strided-batched products and a
 *          softmax kernel; saves the probabilities [B, NH, T, T].  This is
 *          the fp32 mode's path (compared with the CPU trainer) and the
 *          reference the flash kernels are tested against. */
#ifndef SYMBERT_CUDA_ATTENTION_CUH
#define SYMBERT_CUDA_ATTENTION_CUH
#include "trainer/cuda/rng.cuh"
#include "trainer/cuda/matmul.cuh"
#include <float.h>

/* Tq (0: T): query rows per sample when the queries are a gathered subset
 * (a multiple of 128; qrows[b*Tq + j]: the position in its sample of query
 * j, for its dropout draws, -1 for padding).  Keys and values: T rows. */
struct AttnShape { int B, T, NH, d, ldq, ldk, ldv, ldo, Tq; const int32_t *qrows; };

/* ------------------------------------------------------------ flash (attention_flash.cu) */

/* The dropout of layer `layer`'s probabilities as bits [B*NH*T*T/64] 64-bit
 * words (nothing when !dc.on), on any stream: it depends on no data, so the
 * model computes it on a side stream, overlapping memory-bound kernels. */
void flash_dropout_bits(uint64_t *bits, AttnShape s, DropCtx dc, int layer, cudaStream_t stream);
/* The flash kernels: FLASH_AUTO picks wgmma where it runs (compute
 * capability 9.0, built for sm_90a), else mma.sync.  Returns the choice,
 * FLASH_MMA or FLASH_WGMMA, for flash_forward and flash_backward's
 * `kernels`; -1 with a message when wgmma is asked for where it does not run. */
enum { FLASH_AUTO = -1, FLASH_MMA = 0, FLASH_WGMMA = 1 };
int flash_kernels(int want, char *err, size_t errlen);
/* o bf16, lse [B,NH,T] fp32 (log2 domain, for the backward); bits from
 * flash_dropout_bits (read when dc.on). */
void flash_forward(int kernels, bf16 *o, float *lse, const uint64_t *bits, const bf16 *q, const bf16 *k, const bf16 *v,
                   AttnShape s, DropCtx dc);
/* scratch: [B*T, NH*64] bf16 at least (dK when k_is_q); dsum: fp32 scratch [B,NH,T].
 * bits: as written by flash_forward (read when dc.on).  Two kernels (dK dV,
 * then dQ). */
/* Where the backward adds the column sums of dq, dk and dv (the gradients of
 * the biases of the projections that made q, k and v; fp32 [NH*64] each,
 * NULL: not wanted). */
struct AttnBiasGrad { float *q, *k, *v; };
void flash_backward(int kernels, bf16 *dq, bf16 *dk, bf16 *dv, float *scratch, float *dsum, const bf16 *dout,
                    const bf16 *o, const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, const uint64_t *bits,
                    AttnShape s, DropCtx dc, int k_is_q, AttnBiasGrad bg);
int flash_supported(AttnShape s);

/* ------------------------------------------------------------ reference path */

/* One warp per row of scores [B*NH*T rows, T]: A = softmax(row), saved;
 * the row is overwritten with dropout(A). */
template <typename T>
__global__ void softmax_fwd_kernel(T *probs, T *scores, int nrows, int seq, int NH, DropCtx dc, int layer) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= nrows) return;
    int b = row / (NH * seq), hi = row % (NH * seq);
    uint64_t key = dc.on ? bt_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + b), layer, BT_DROP_ATTN_PROBS) : 0;
    T *s = scores + (size_t)row * seq;
    T *p = probs + (size_t)row * seq;
    float mx = -FLT_MAX;
    for (int j = lane; j < seq; j += 32) mx = fmaxf(mx, to_f(s[j]));
    mx = warp_max(mx);
    float sm = 0.0f;
    for (int j = lane; j < seq; j += 32) sm += expf(to_f(s[j]) - mx);
    sm = warp_sum(sm);
    float inv = 1.0f / sm;
    for (int j = lane; j < seq; j += 32) {
        float a = expf(to_f(s[j]) - mx) * inv;
        p[j] = from_f<T>(a);
        float ad = a;
        if (dc.on) ad = bt_dropout_keep(key, (uint64_t)hi * seq + j, dc.thr) ? a * dc.scale : 0.0f;
        s[j] = from_f<T>(ad);
    }
}
/* dpd: gradient of dropout(A) (in), overwritten with the gradient of the
 * scores (without the 1/sqrt(d), which the products apply); ad receives
 * dropout(A) again for the dv product. */
template <typename T>
__global__ void softmax_bwd_kernel(T *dpd, T *ad, const T *probs, int nrows, int seq, int NH, DropCtx dc, int layer) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= nrows) return;
    int b = row / (NH * seq), hi = row % (NH * seq);
    uint64_t key = dc.on ? bt_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + b), layer, BT_DROP_ATTN_PROBS) : 0;
    T *g = dpd + (size_t)row * seq;
    T *o = ad + (size_t)row * seq;
    const T *p = probs + (size_t)row * seq;
    float dsum = 0.0f;
    for (int j = lane; j < seq; j += 32) {
        float a = to_f(p[j]), ga = to_f(g[j]);
        if (dc.on) ga = bt_dropout_keep(key, (uint64_t)hi * seq + j, dc.thr) ? ga * dc.scale : 0.0f;
        dsum += ga * a;
    }
    dsum = warp_sum(dsum);
    for (int j = lane; j < seq; j += 32) {
        float a = to_f(p[j]), ga = to_f(g[j]);
        bool kept = dc.on ? bt_dropout_keep(key, (uint64_t)hi * seq + j, dc.thr) : true;
        float sc = dc.on ? (kept ? dc.scale : 0.0f) : 1.0f;
        g[j] = from_f<T>(a * (ga * sc - dsum));
        o[j] = from_f<T>(a * sc);
    }
}

/* The reference path's products for one sample, all heads in one
 * strided-batched product (head h: columns h d .. h d + d - 1 of the [T, ld]
 * operands, block h of the [NH, T, T] ones):
 *   heads_abt  S_h[T,T] = alpha a_h b_h^T               (scores = q k^T / sqrt(d); dP = dO v^T)
 *   heads_pb   c_h[T,d] = alpha P_h b_h                 (o = dropout(A) v; dq = dS k / sqrt(d))
 *   heads_ptb  c_h[T,d] = alpha P_h^T b_h + beta c_h    (dv = dropout(A)^T dO; dk = dS^T q / sqrt(d)) */
template <typename T>
static void heads_abt(T *S, const T *a, int lda, const T *b, int ldb, int seq, int NH, int d, float alpha) {
    gemm(S, CuType<T>::id, seq, b, ldb, 1, a, lda, 0, CuType<T>::id, seq, seq, d, alpha, 0.0f, NULL, NH, d, d,
         (long long)seq * seq);
}
template <typename T>
static void heads_pb(T *c, int ldc, const T *P, const T *b, int ldb, int seq, int NH, int d, float alpha) {
    gemm(c, CuType<T>::id, ldc, b, ldb, 0, P, seq, 0, CuType<T>::id, d, seq, seq, alpha, 0.0f, NULL, NH, d,
         (long long)seq * seq, d);
}
template <typename T>
static void heads_ptb(T *c, int ldc, const T *P, const T *b, int ldb, int seq, int NH, int d, float alpha, float beta) {
    gemm(c, CuType<T>::id, ldc, b, ldb, 0, P, seq, 1, CuType<T>::id, d, seq, seq, alpha, beta, NULL, NH, d,
         (long long)seq * seq, d);
}

/* probs: saved [B,NH,T,T]; scratch: [B,NH,T,T]. */
template <typename T>
static void attn_ref_forward(T *o, T *probs, T *scratch, const T *q, const T *k, const T *v, AttnShape s, DropCtx dc, int layer) {
    long long tt = (long long)s.T * s.T;
    float scale = 1.0f / sqrtf((float)s.d);
    for (int b = 0; b < s.B; b++) {
        size_t r = (size_t)b * s.T;
        heads_abt(scratch + b * s.NH * tt, q + r * s.ldq, s.ldq, k + r * s.ldk, s.ldk, s.T, s.NH, s.d, scale);
    }
    int nrows = s.B * s.NH * s.T;
    softmax_fwd_kernel<T><<<ceil_div(nrows, 8), 256, 0, g_stream>>>(probs, scratch, nrows, s.T, s.NH, dc, layer);
    LAUNCH_CHECK("softmax_fwd_kernel");
    for (int b = 0; b < s.B; b++) {
        size_t r = (size_t)b * s.T;
        heads_pb(o + r * s.ldo, s.ldo, scratch + b * s.NH * tt, v + r * s.ldv, s.ldv, s.T, s.NH, s.d, 1.0f);
    }
}

template <typename T>
static void attn_ref_backward(T *dq, T *dk, T *dv, T *scr1, T *scr2, const T *dout, const T *q, const T *k, const T *v,
                              const T *probs, AttnShape s, DropCtx dc, int layer, int k_is_q) {
    long long tt = (long long)s.T * s.T;
    float scale = 1.0f / sqrtf((float)s.d);
    for (int b = 0; b < s.B; b++) {   /* d(dropout(A)) = dout v^T */
        size_t r = (size_t)b * s.T;
        heads_abt(scr1 + b * s.NH * tt, dout + r * s.ldo, s.ldo, v + r * s.ldv, s.ldv, s.T, s.NH, s.d, 1.0f);
    }
    int nrows = s.B * s.NH * s.T;
    softmax_bwd_kernel<T><<<ceil_div(nrows, 8), 256, 0, g_stream>>>(scr1, scr2, probs, nrows, s.T, s.NH, dc, layer);
    LAUNCH_CHECK("softmax_bwd_kernel");
    for (int b = 0; b < s.B; b++) {
        size_t r = (size_t)b * s.T;
        const T *pd = scr2 + b * s.NH * tt, *ds = scr1 + b * s.NH * tt;
        /* dv = dropout(A)^T dout;  dq = ds k / sqrt(d);  dk = ds^T q / sqrt(d) (added into dq when k is q) */
        heads_ptb(dv + r * s.ldv, s.ldv, pd, dout + r * s.ldo, s.ldo, s.T, s.NH, s.d, 1.0f, 0.0f);
        heads_pb(dq + r * s.ldq, s.ldq, ds, k + r * s.ldk, s.ldk, s.T, s.NH, s.d, scale);
        T *dkk = k_is_q ? dq : dk;
        int lk = k_is_q ? s.ldq : s.ldk;
        heads_ptb(dkk + r * lk, lk, ds, q + r * s.ldq, s.ldq, s.T, s.NH, s.d, scale, k_is_q ? 1.0f : 0.0f);
    }
}

/* ------------------------------------------------------------ pairwise */

/* The pairwise variant's query-bias gradient from the flash backward's
 * column sums t of d(Q S_h): gq[h d + j] += sum_k S_h[j][k] t[h d + k]
 * (S_h row-major [d, d] in fp32), then t = 0 for the next layer.  Block h,
 * thread j. */
__global__ static void pair_bias_kernel(float *gq, float *t, const float *S, int d) {
    int h = blockIdx.x, j = threadIdx.x;
    const float *Sj = S + ((size_t)h * d + j) * d, *th = t + (size_t)h * d;
    float a = 0.0f;
    for (int k = 0; k < d; k++) a += Sj[k] * th[k];
    gq[h * d + j] += a;
    __syncthreads();
    t[h * d + j] = 0.0f;
}
static void pair_bias_grad(float *gq, float *t, const float *S, int NH, int d) {
    pair_bias_kernel<<<NH, d, 0, g_stream>>>(gq, t, S, d);
    LAUNCH_CHECK("pair_bias_kernel");
}
#endif
