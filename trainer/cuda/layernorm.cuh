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
 * accumulated in fp32: a row kernel and a column kernel, below.
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
#pragma unroll
            for (int i = 0; i < V; i += 4) {
                float4 f = ybias ? *(const float4 *)(ybias + c0 + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                yb[i] = f.x; yb[i + 1] = f.y; yb[i + 2] = f.z; yb[i + 3] = f.w;
            }
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
#pragma unroll
        for (int i = 0; i < V; i += 4) {
            float4 f = *(const float4 *)(gamma + c0 + i), e = *(const float4 *)(beta + c0 + i);
            gm[i] = f.x; gm[i + 1] = f.y; gm[i + 2] = f.z; gm[i + 3] = f.w;
            bt[i] = e.x; bt[i + 1] = e.y; bt[i + 2] = e.z; bt[i + 3] = e.w;
        }
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

/* Backward, in two kernels so that each runs at full occupancy:
 *   row kernel (one warp per row): dr = rstd (g - mean(g) - xhat mean(g xhat))
 *     with g = dout * gamma (dout first through the output dropout in
 *     embedding mode), and dy = dr through the dropout of y when dy is
 *     not NULL;
 *   column kernel (colsum tiling): dgamma += sum g xhat, dbeta += sum g over
 *     the rows (g here without gamma), and dbias += sum dy when dbias is
 *     not NULL (the gradient of the sublayer's output bias). */
template <typename T, int LN_MAXP>
__global__ void ln_bwd_row_kernel(T *dr, T *dy, const T *dout, const T *r, const float *mean, const float *rstd,
                                  const float *gamma, int M, int C, int seq, LnDrop drop, int out_dropout) {
    constexpr int V = Pack16<T>::N;
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    int row = blockIdx.x * warps + threadIdx.x / 32;
    if (row >= M) return;
    int npk = C / V, t, b;
    ln_row_pos(drop, row, seq, b, t);
    const bool dk = drop.site >= 0 && drop.dc.on;
    uint64_t key = dk ? bt_dropout_key(drop.dc.seed, drop.dc.step, (uint64_t)(drop.dc.sample0 + b), drop.layer, drop.site) : 0;
    float m = mean[row], rs = rstd[row];
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
        float gm[V];
#pragma unroll
        for (int i = 0; i < V; i += 4) {
            float4 f = *(const float4 *)(gamma + c0 + i);
            gm[i] = f.x; gm[i + 1] = f.y; gm[i + 2] = f.z; gm[i + 3] = f.w;
        }
#pragma unroll
        for (int i = 0; i < V; i++) {
            float gg = to_f(a.v[i]);
            if (out_dropout && dk) gg = ((kbits[p] >> i) & 1) ? gg * drop.dc.scale : 0.0f;
            float xx = (to_f(rr.v[i]) - m) * rs;
            gg *= gm[i];
            g[p][i] = gg; xh[p][i] = xx;
            s1 += gg; s2 += gg * xx;
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
#pragma unroll
        for (int i = 0; i < V; i++) {
            float d = rs * (g[p][i] - s1 - xh[p][i] * s2);
            o.v[i] = from_f<T>(d);
            if (dy) oy.v[i] = from_f<T>(!out_dropout && dk ? (((kbits[p] >> i) & 1) ? d * drop.dc.scale : 0.0f) : d);
        }
        st16(dr + (size_t)row * C + c0, o);
        if (dy) st16(dy + (size_t)row * C + c0, oy);
    }
}

template <typename T>
__global__ void ln_bwd_col_kernel(float *dgamma, float *dbeta, float *dbias, const T *dout, const T *r, const T *dy,
                                  const float *mean, const float *rstd, int M, int C, int seq, LnDrop drop,
                                  int out_dropout, int rows_per_block) {
    constexpr int V = Pack16<T>::N;
    __shared__ float part[3][8][32 * V];
    int c0 = (blockIdx.x * 32 + threadIdx.x) * V;
    int r0 = blockIdx.y * rows_per_block, r1 = min(M, r0 + rows_per_block);
    const bool dk = out_dropout && drop.site >= 0 && drop.dc.on;
    float ag[V], ab[V], ay[V];
#pragma unroll
    for (int k = 0; k < V; k++) ag[k] = ab[k] = ay[k] = 0.0f;
    if (c0 < C)
#pragma unroll 2
        for (int row = r0 + threadIdx.y; row < r1; row += 8) {
            size_t o = (size_t)row * C + c0;
            float m = mean[row], rs = rstd[row];
            Pack16<T> a = ld16(dout + o), rr = ld16(r + o);
            uint32_t kb = 0;
            if (dk) {
                int t, b;
                ln_row_pos(drop, row, seq, b, t);
                uint64_t key = bt_dropout_key(drop.dc.seed, drop.dc.step, (uint64_t)(drop.dc.sample0 + b), drop.layer, drop.site);
                kb = d_keep_bits<V>(key, (uint64_t)t * C + c0, drop.dc.thr);
            }
#pragma unroll
            for (int k = 0; k < V; k++) {
                float gg = to_f(a.v[k]);
                if (dk) gg = ((kb >> k) & 1) ? gg * drop.dc.scale : 0.0f;
                ag[k] += gg * (to_f(rr.v[k]) - m) * rs;
                ab[k] += gg;
            }
            if (dbias) {
                Pack16<T> yy = ld16(dy + o);
#pragma unroll
                for (int k = 0; k < V; k++) ay[k] += to_f(yy.v[k]);
            }
        }
#pragma unroll
    for (int k = 0; k < V; k++) {
        part[0][threadIdx.y][threadIdx.x * V + k] = ag[k];
        part[1][threadIdx.y][threadIdx.x * V + k] = ab[k];
        part[2][threadIdx.y][threadIdx.x * V + k] = ay[k];
    }
    __syncthreads();
    for (int j = threadIdx.y * 32 + threadIdx.x; j < 32 * V; j += 256) {
        int c = blockIdx.x * 32 * V + j;
        if (c >= C) continue;
        float sg = 0.0f, sb = 0.0f, sy = 0.0f;
#pragma unroll
        for (int y = 0; y < 8; y++) { sg += part[0][y][j]; sb += part[1][y][j]; sy += part[2][y][j]; }
        atomicAdd(&dgamma[c], sg);
        atomicAdd(&dbeta[c], sb);
        if (dbias) atomicAdd(&dbias[c], sy);
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
template <typename T>
static void layernorm_backward(T *dr, T *dy, float *dgamma, float *dbeta, float *dbias, const T *dout, const T *r,
                               const float *mean, const float *rstd, const float *gamma, int M, int C, int seq,
                               LnDrop drop, int out_dropout, int nsm) {
    switch (ln_packs<T>(C)) {
#define L_(P) case P: ln_bwd_row_kernel<T, P><<<ceil_div(M, 4), 128, 0, g_stream>>>(dr, dy, dout, r, mean, rstd, gamma, \
        M, C, seq, drop, out_dropout); break;
    L_(1) L_(2) L_(3) L_(4) L_(8)
#undef L_
    }
    LAUNCH_CHECK("ln_bwd_row_kernel");
    constexpr int V = Pack16<T>::N;
    unsigned gx = ceil_div(C, 32 * V);
    int target = colsum_waves() * nsm / (int)gx + 1;
    int rpb = (M + target - 1) / target;
    if (rpb < 32) rpb = 32;
    dim3 grid(gx, ceil_div(M, rpb)), block(32, 8);
    ln_bwd_col_kernel<T><<<grid, block, 0, g_stream>>>(dgamma, dbeta, dy ? dbias : NULL, dout, r, dy, mean, rstd, M, C,
                                                       seq, drop, out_dropout, rpb);
    LAUNCH_CHECK("ln_bwd_col_kernel");
}
#endif
