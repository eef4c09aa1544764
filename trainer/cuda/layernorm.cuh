/* layernorm.cuh - LayerNorm with what surrounds it in a post-LN BERT.
 *
 * Forward, one warp per row of C values (the row lives in registers):
 *   residual mode   r = x + dropout(y + ybias)   (attention / FFN output before
 *                   its bias: the product's bias is added here, not in cuBLASLt's
 *                   epilogue, which slows the product more; r = x when y is NULL)
 *   embedding mode  r = word[id] + pos[t] + type[0]
 *   out = LN(r) * gamma + beta, then dropout(out) in embedding mode.
 * r is stored for the backward pass together with the row's mean and
 * 1/std (fp32).  Dropout draws come from model.h's streams: element
 * e = t*C + c of sample b, key (seed, step, sample0 + b, layer, site), where
 * (b, t) is the row's token (LnDrop.rows maps gathered rows to tokens).
 *
 * Backward: from dout (the gradient of the output), the gradient of r
 * (dr), optionally dr after the dropout of y (dy, the gradient of the
 * sublayer output), and dgamma/dbeta (and the sublayer's bias gradient)
 * accumulated in fp32, in one pass (below).
 *
 * A row is held in P packs of 16 bytes per lane (P a template parameter
 * chosen from C at launch), so C is at most 8 * 32 * (16 / sizeof(T))
 * (2048 in bf16, 1024 in fp32) and a multiple of 16 / sizeof(T). */
#ifndef SYMBERT_CUDA_LAYERNORM_CUH
#define SYMBERT_CUDA_LAYERNORM_CUH
#include "trainer/cuda/rng.cuh"
#include <stdlib.h>
#include <string.h>


struct LnDrop {       /* which dropout applies where in a LayerNorm call */
    DropCtx dc;
    int layer;        /* model.h layer of the stream (-1: embeddings) */
    int site;         /* BT_DROP_*, or -1 for none */
    const int32_t *rows;  /* rows gathered from [B*seq]: row i is token row rows[i] of the
                           * micro-batch (its dropout draws are that row's); NULL: row i is row i */
};
/* (sample, position) of row `row` of a LayerNorm call. */
__device__ __forceinline__ void ln_row_pos(const LnDrop &drop, int row, int seq, int &b, int &t) {
    int g = drop.rows ? drop.rows[row] : row;
    t = g % seq; b = g / seq;
}

template <typename T, int LN_MAXP>
__global__ void ln_fwd_kernel(T *out, T *r_out, float *mean_out, float *rstd_out,
                              const T *x, const T *y, const float *ybias,
                              const int32_t *ids, const T *wte, const T *wpe, const T *wtt,
                              const float *gamma, const float *beta, int M, int C, int seq, float eps, LnDrop drop) {
    constexpr int V = Pack16<T>::N;
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    int row = blockIdx.x * warps + threadIdx.x / 32;
    if (row >= M) return;
    int t, b, npk = C / V;
    ln_row_pos(drop, row, seq, b, t);
    const bool emb = ids != NULL;
    const bool dk = drop.site >= 0 && drop.dc.on;
    uint64_t key = 0;
    if (dk)
        key = bt_dropout_key(drop.dc.seed, drop.dc.step, (uint64_t)(drop.dc.sample0 + b), drop.layer, drop.site);
    float v[LN_MAXP][V];
    float sum = 0.0f;
    int id = emb ? ids[row] : 0;
#pragma unroll
    for (int p = 0; p < LN_MAXP; p++) {
        int pk = lane + 32 * p;
        if (pk >= npk) break;
        int c0 = pk * V;
        if (emb) {
            Pack16<T> a = ld16(wte + (size_t)id * C + c0), bb = ld16(wpe + (size_t)t * C + c0), cc = ld16(wtt + c0);
#pragma unroll
            for (int i = 0; i < V; i++) v[p][i] = to_f(a.v[i]) + to_f(bb.v[i]) + to_f(cc.v[i]);
        } else {
            Pack16<T> a = ld16(x + (size_t)row * C + c0), bb;
            if (y) bb = ld16(y + (size_t)row * C + c0);
            uint32_t kb = dk ? d_keep_bits<V>(key, (uint64_t)t * C + c0, drop.dc.thr) : 0u;
            float yb[V];
            ld_f32_pack<V>(yb, ybias, c0);
#pragma unroll
            for (int i = 0; i < V; i++) {
                float yy = y ? to_f(bb.v[i]) + yb[i] : 0.0f;
                if (dk) yy = ((kb >> i) & 1) ? yy * drop.dc.scale : 0.0f;
                v[p][i] = to_f(a.v[i]) + yy;
            }
        }
#pragma unroll
        for (int i = 0; i < V; i++) sum += v[p][i];
    }
    float mean = warp_sum(sum) / C;
    float var = 0.0f;
#pragma unroll
    for (int p = 0; p < LN_MAXP; p++) {
        if (lane + 32 * p >= npk) break;
#pragma unroll
        for (int i = 0; i < V; i++) { float d = v[p][i] - mean; var += d * d; }
    }
    var = warp_sum(var) / C;
    float rstd = 1.0f / sqrtf(var + eps);
    if (lane == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
#pragma unroll
    for (int p = 0; p < LN_MAXP; p++) {
        int pk = lane + 32 * p;
        if (pk >= npk) break;
        int c0 = pk * V;
        Pack16<T> ro, o;
        uint32_t kb = emb && dk ? d_keep_bits<V>(key, (uint64_t)t * C + c0, drop.dc.thr) : 0u;
        float gm[V], bt[V];
        ld_f32_pack<V>(gm, gamma, c0);
        ld_f32_pack<V>(bt, beta, c0);
#pragma unroll
        for (int i = 0; i < V; i++) {
            ro.v[i] = from_f<T>(v[p][i]);
            float n = (v[p][i] - mean) * rstd * gm[i] + bt[i];
            if (emb && dk) n = ((kb >> i) & 1) ? n * drop.dc.scale : 0.0f;
            o.v[i] = from_f<T>(n);
        }
        st16(r_out + (size_t)row * C + c0, ro);
        st16(out + (size_t)row * C + c0, o);
    }
}

/* Backward, one pass: each warp walks rows (one at a time, the row in
 * registers as in the forward) and computes
 *   dr = rstd (g - mean(g) - xhat mean(g xhat)) with g = dout * gamma
 *     (dout first through the output dropout in embedding mode),
 *   dy = dr through the dropout of y (when dy is not NULL),
 * while each lane sums, over the rows it walks, its columns' shares of
 * dgamma (g xhat, g without gamma), dbeta (g) and the sublayer's bias
 * gradient (dy, when dbias is not NULL).  A lane owns the same columns in
 * every row, so those sums live in the warp's own slice of shared memory
 * (no atomics; registers would spill); at the end the block adds its warps'
 * slices and then its sums into the fp32 gradients (one atomicAdd per
 * column per block).  The grid is as many blocks as fit on the GPU at
 * once, so there are few such adds, and dout, r and dy are read once. */
constexpr int LN_BWD_WARPS = 8;
/* acc[0..V) += a[0..V) in shared memory (16-byte aligned, V a multiple of 4). */
template <int V> __device__ __forceinline__ void ln_acc_pack(float *acc, const float *a) {
#pragma unroll
    for (int i = 0; i < V; i += 4) {
        float4 f = *(float4 *)(acc + i);
        f.x += a[i]; f.y += a[i + 1]; f.z += a[i + 2]; f.w += a[i + 3];
        *(float4 *)(acc + i) = f;
    }
}
template <typename T, int LN_MAXP>
__global__ void __launch_bounds__(LN_BWD_WARPS * 32, 2)   /* 2 blocks an SM (3, at 80 registers, spill and were slower) */
ln_bwd_kernel(T *dr, T *dy, float *dgamma, float *dbeta, float *dbias, const T *dout, const T *r, const float *mean,
              const float *rstd, const float *gamma, int M, int C, int seq, LnDrop drop, int out_dropout) {
    constexpr int V = Pack16<T>::N;
    extern __shared__ __align__(16) float red[];   /* [warps][3][C]: each warp's dgamma, dbeta, dbias sums */
    const int warps = blockDim.x / 32, lane = threadIdx.x % 32, w = threadIdx.x / 32;
    const int npk = C / V;
    const bool dk = drop.site >= 0 && drop.dc.on, odk = out_dropout && dk;
    const bool sum_y = dbias != NULL && dy != NULL;
    for (int i = threadIdx.x; i < warps * 3 * C; i += blockDim.x) red[i] = 0.0f;
    __syncthreads();
    float *acc = red + (size_t)w * 3 * C;
    for (int row = blockIdx.x * warps + w; row < M; row += gridDim.x * warps) {
        int t, b;
        ln_row_pos(drop, row, seq, b, t);
        uint64_t key = dk ? bt_dropout_key(drop.dc.seed, drop.dc.step, (uint64_t)(drop.dc.sample0 + b), drop.layer, drop.site) : 0;
        const float m = mean[row], rs = rstd[row];
        float g[LN_MAXP][V], xh[LN_MAXP][V];
        uint32_t kbits[LN_MAXP];
        float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
        for (int p = 0; p < LN_MAXP; p++) {
            int pk = lane + 32 * p;
            kbits[p] = 0xffffffffu;
            if (pk >= npk) break;
            int c0 = pk * V;
            if (dk) kbits[p] = d_keep_bits<V>(key, (uint64_t)t * C + c0, drop.dc.thr);
            Pack16<T> a = ld16(dout + (size_t)row * C + c0), rr = ld16(r + (size_t)row * C + c0);
            float gm[V], gx[V];
            ld_f32_pack<V>(gm, gamma, c0);
#pragma unroll
            for (int i = 0; i < V; i++) {
                float gg = to_f(a.v[i]);
                if (odk) gg = ((kbits[p] >> i) & 1) ? gg * drop.dc.scale : 0.0f;
                float xx = (to_f(rr.v[i]) - m) * rs;
                gx[i] = gg * xx;
                g[p][i] = gg;
                xh[p][i] = xx;
            }
            ln_acc_pack<V>(acc + c0, gx);          /* dgamma */
            ln_acc_pack<V>(acc + C + c0, g[p]);    /* dbeta */
#pragma unroll
            for (int i = 0; i < V; i++) {
                g[p][i] *= gm[i];
                s1 += g[p][i]; s2 += g[p][i] * xh[p][i];
            }
        }
        s1 = warp_sum(s1) / C;
        s2 = warp_sum(s2) / C;
#pragma unroll
        for (int p = 0; p < LN_MAXP; p++) {
            int pk = lane + 32 * p;
            if (pk >= npk) break;
            int c0 = pk * V;
            Pack16<T> o, oy;
            float yv[V];
#pragma unroll
            for (int i = 0; i < V; i++) {
                float d = rs * (g[p][i] - s1 - xh[p][i] * s2);
                o.v[i] = from_f<T>(d);
                if (dy) {
                    oy.v[i] = from_f<T>(!out_dropout && dk ? (((kbits[p] >> i) & 1) ? d * drop.dc.scale : 0.0f) : d);
                    yv[i] = to_f(oy.v[i]);
                }
            }
            st16(dr + (size_t)row * C + c0, o);
            if (dy) st16(dy + (size_t)row * C + c0, oy);
            if (sum_y) ln_acc_pack<V>(acc + 2 * C + c0, yv);   /* the sublayer's bias */
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sg = 0.0f, sb = 0.0f, sy = 0.0f;
        for (int k = 0; k < warps; k++) {
            const float *a = red + (size_t)k * 3 * C;
            sg += a[c]; sb += a[C + c]; sy += a[2 * C + c];
        }
        atomicAdd(&dgamma[c], sg);
        atomicAdd(&dbeta[c], sb);
        if (sum_y) atomicAdd(&dbias[c], sy);
    }
}

/* The number of 16-byte packs per lane for a row of C values. */
template <typename T> static int ln_packs(int C) {
    int v = 16 / sizeof(T), need = (C / v + 31) / 32;
    if (C % v) cu_fail("LayerNorm", "ln_packs", "hidden size is not a multiple of 16 bytes", __FILE__, __LINE__);
    if (need > 8) cu_fail("LayerNorm", "ln_packs", "hidden size too large for the LayerNorm kernels", __FILE__, __LINE__);
    return need <= 3 ? need : need <= 4 ? 4 : 8;
}
template <typename T>
static void layernorm_forward(T *out, T *r_out, float *mean, float *rstd, const T *x, const T *y, const float *ybias,
                              const float *gamma, const float *beta, int M, int C, int seq, float eps, LnDrop drop) {
    switch (ln_packs<T>(C)) {
#define L_(P) case P: ln_fwd_kernel<T, P><<<ceil_div(M, 4), 128, 0, g_stream>>>(out, r_out, mean, rstd, x, y, ybias, NULL, NULL, \
        NULL, NULL, gamma, beta, M, C, seq, eps, drop); break;
    L_(1) L_(2) L_(3) L_(4) L_(8)
#undef L_
    }
    LAUNCH_CHECK("ln_fwd_kernel");
}
template <typename T>
static void embed_forward(T *out, T *r_out, float *mean, float *rstd, const int32_t *ids, const T *wte, const T *wpe,
                          const T *wtt, const float *gamma, const float *beta, int M, int C, int seq, float eps, LnDrop drop) {
    switch (ln_packs<T>(C)) {
#define L_(P) case P: ln_fwd_kernel<T, P><<<ceil_div(M, 4), 128, 0, g_stream>>>(out, r_out, mean, rstd, NULL, NULL, NULL, ids, \
        wte, wpe, wtt, gamma, beta, M, C, seq, eps, drop); break;
    L_(1) L_(2) L_(3) L_(4) L_(8)
#undef L_
    }
    LAUNCH_CHECK("ln_fwd_kernel(embeddings)");
}

/* Blocks of ln_bwd_kernel<T, P> that fit on one SM with C columns (its shared memory
 * allowed first; asked once per C). */
template <typename T, int P> static int ln_bwd_blocks_per_sm(int C, size_t smem) {
    static int cached_c = -1, cached = 1;
    if (cached_c != C) {
        int nb = 0;
        CUDA_CHECK(cudaFuncSetAttribute(ln_bwd_kernel<T, P>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, ln_bwd_kernel<T, P>, LN_BWD_WARPS * 32, smem));
        cached = nb > 0 ? nb : 1;
        cached_c = C;
    }
    return cached;
}
template <typename T>
static void layernorm_backward(T *dr, T *dy, float *dgamma, float *dbeta, float *dbias, const T *dout, const T *r,
                               const float *mean, const float *rstd, const float *gamma, int M, int C, int seq,
                               LnDrop drop, int out_dropout, int nsm) {
    if (M <= 0) return;
    const size_t smem = (size_t)LN_BWD_WARPS * 3 * C * sizeof(float);
    switch (ln_packs<T>(C)) {
#define L_(P) case P: { \
        int grid = (int)ceil_div(M, LN_BWD_WARPS), full = nsm * ln_bwd_blocks_per_sm<T, P>(C, smem); \
        if (grid > full) grid = full; \
        ln_bwd_kernel<T, P><<<grid, LN_BWD_WARPS * 32, smem, g_stream>>>(dr, dy, dgamma, dbeta, dbias, dout, r, mean, \
            rstd, gamma, M, C, seq, drop, out_dropout); } break;
    L_(1) L_(2) L_(3) L_(4) L_(8)
#undef L_
    }
    LAUNCH_CHECK("ln_bwd_kernel");
}
#endif
