/* elementwise.cuh - the small memory-bound kernels: GELU and its gradient,
 * column sums (bias gradients), the backward of the embedding sum, row
 * gathers and scatters, conversions.  All move 16 bytes per thread access where shapes allow. */
#ifndef SYMBERT_CUDA_ELEMENTWISE_CUH
#define SYMBERT_CUDA_ELEMENTWISE_CUH
#include "trainer/cuda/common.cuh"
#include "trainer/cuda/matmul.cuh"
#include <stdlib.h>

/* GELU, erf form (as BERT and PyTorch's default): gelu(u) = u Phi(u), Phi
 * the standard normal CDF, gelu'(u) = Phi(u) + u phi(u).
 *
 * Phi by one exponential instead of erff (whose two polynomial branches
 * made the GELU kernels ALU-bound, not memory-bound): for s = |u| (at most
 * 5.5, where Phi(-s) < 2e-8), Phi(-s) = 2^(s q(s) - 1) with q a degree-9
 * polynomial (a Chebyshev fit of (log2(erfc(s / sqrt 2) / 2) + 1) / s on
 * [0, 5.5]), and Phi(s) = 1 - Phi(-s).  Its absolute error is below 5e-8
 * in fp32 arithmetic (the fit's, checked against erff on the GPU by the
 * kernels test: below 3e-7 for gelu and gelu' with the hardware exp2); u
 * phi(u) likewise by one exponential.  The kernels take the form as a
 * type G with G::f and G::grad (GeluPoly: this one), so that the kernel
 * benchmark (dev/) times the erff form in the same kernels. */
__device__ __forceinline__ float gelu_phi_f(float u) {
    float s = fminf(fabsf(u), 5.5f);
    float q = -2.578515588e-08f;
    q = fmaf(q, s, 7.771873578e-07f);
    q = fmaf(q, s, -1.007083643e-05f);
    q = fmaf(q, s, 7.123930361e-05f);
    q = fmaf(q, s, -2.623095670e-04f);
    q = fmaf(q, s, -3.308443078e-05f);
    q = fmaf(q, s, 6.981195891e-03f);
    q = fmaf(q, s, -5.245833076e-02f);
    q = fmaf(q, s, -4.592177622e-01f);
    q = fmaf(q, s, -1.151104274e+00f);
    float e = fast_exp2(fmaf(s, q, -1.0f));   /* Phi(-s) */
    return u >= 0.0f ? 1.0f - e : e;
}
__device__ __forceinline__ float gelu_f(float u) { return u * gelu_phi_f(u); }
__device__ __forceinline__ float gelu_grad_f(float u) {
    /* phi(u) = 2^(-u^2 log2(e) / 2) / sqrt(2 pi) */
    return fmaf(u * 0.39894228040143268f, fast_exp2(u * u * -0.72134752044448170f), gelu_phi_f(u));
}
struct GeluPoly {
    static __device__ __forceinline__ float f(float u) { return gelu_f(u); }
    static __device__ __forceinline__ float grad(float u) { return gelu_grad_f(u); }
};

/* g = gelu(u + bias) over rows of N (u [rows, N], bias [N] fp32 or NULL);
 * rows * N a multiple of 16 / sizeof(T), N too.  The FFN's first product
 * leaves its bias to this kernel (and to the backward's): cuBLASLt's bias
 * epilogue slows that product more than these loads cost. */
template <typename T, typename G, int U>
__global__ void gelu_fwd_kernel(T *g, const T *u, const float *bias, size_t n, int N) {
    constexpr int V = Pack16<T>::N;   /* U packs a thread, blockDim apart: all loads first */
    size_t i0 = ((size_t)blockIdx.x * blockDim.x * U + threadIdx.x) * V;
    Pack16<T> a[U];
#pragma unroll
    for (int j = 0; j < U; j++) {
        size_t i = i0 + (size_t)j * blockDim.x * V;
        if (i < n) a[j] = ld16(u + i);
    }
#pragma unroll
    for (int j = 0; j < U; j++) {
        size_t i = i0 + (size_t)j * blockDim.x * V;
        if (i >= n) break;
        float b[V];
        ld_f32_pack<V>(b, bias, (int)(i % (size_t)N));
        Pack16<T> o;
#pragma unroll
        for (int k = 0; k < V; k++) {
            float x = to_f(a[j].v[k]) + b[k];
            o.v[k] = from_f<T>(G::f(x));
        }
        st16(g + i, o);
    }
}
template <typename T, typename G = GeluPoly> static void gelu_forward(T *g, const T *u, const float *bias, int rows, int N) {
    size_t n = (size_t)rows * N;
    if (N % Pack16<T>::N) cu_fail("GELU", "gelu_forward", "width not a multiple of 16 bytes", __FILE__, __LINE__);
    if (n == 0) return;
    constexpr int U = 2;   /* packs a thread (1, 2 and 4 measured: within 3% of each other, 2 best) */
    gelu_fwd_kernel<T, G, U><<<ceil_div(n / Pack16<T>::N, 256 * U), 256, 0, g_stream>>>(g, u, bias, n, N);
    LAUNCH_CHECK("gelu_fwd_kernel");
}

/* out[n] = (T) in[n] (fp32 to T), n any. */
template <typename T> __global__ void convert_kernel(T *out, const float *in, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = from_f<T>(in[i]);
}
template <typename T> static void convert_from_f32(T *out, const float *in, size_t n) {
    convert_kernel<T><<<ceil_div(n, 256), 256, 0, g_stream>>>(out, in, n);
    LAUNCH_CHECK("convert_kernel");
}

/* The column-sum tiling shared by colsum_kernel and gelu_bwd_colsum_kernel:
 * blocks of 32 x 8 threads, x over 16-byte column packs (V values), y over
 * rows; each block takes rows_per_block rows.  colsum_grid sizes the grid
 * (about COLSUM_WAVES blocks per SM, at least 64 rows a block) for M rows
 * and `width` columns; colsum_block_add ends a block: the 8 row-partials of
 * each column meet in shared memory and leave with one atomicAdd per
 * column (columns >= N are not added). */
#define COLSUM_WAVES 8   /* measured: 8 beat the first version's 4 (about one partial wave of 256-thread blocks) */
static dim3 colsum_grid(int M, int width, int V, int nsm, int *rows_per_block) {
    unsigned gx = ceil_div(width, 32 * V);
    int target = COLSUM_WAVES * nsm / (int)gx + 1;
    int rpb = (M + target - 1) / target;
    if (rpb < 64) rpb = 64;
    *rows_per_block = rpb;
    return dim3(gx, ceil_div(M, rpb));
}
template <int V> __device__ __forceinline__ void colsum_block_add(float (*part)[32 * V], const float *acc, float *sum, int N) {
#pragma unroll
    for (int k = 0; k < V; k++) part[threadIdx.y][threadIdx.x * V + k] = acc[k];
    __syncthreads();
    for (int j = threadIdx.y * 32 + threadIdx.x; j < 32 * V; j += 256) {
        float s = 0.0f;
#pragma unroll
        for (int y = 0; y < 8; y++) s += part[y][j];
        int c = blockIdx.x * 32 * V + j;
        if (c < N) atomicAdd(&sum[c], s);
    }
}

/* Column sums: sum[c] += sum over rows r < M of x[r * ld + c], c < N.
 * ld is a multiple of 16 / sizeof(T); columns in [N, ld) are read (they
 * must hold finite numbers) but not summed into sum.  Block 32 x 8 threads:
 * x walks 16-byte column packs, y walks rows; partials meet in shared memory
 * and leave with one atomicAdd per column per block. */
template <typename T> __global__ void colsum_kernel(float *sum, const T *__restrict__ x, int M, int N, int ld, int rows_per_block) {
    constexpr int V = Pack16<T>::N;
    __shared__ float part[8][32 * V];
    int c0 = (blockIdx.x * 32 + threadIdx.x) * V;
    int r0 = blockIdx.y * rows_per_block, r1 = min(M, r0 + rows_per_block);
    float acc[V];
#pragma unroll
    for (int k = 0; k < V; k++) acc[k] = 0.0f;
    if (c0 < ld)
#pragma unroll 4
        for (int r = r0 + threadIdx.y; r < r1; r += 8) {
            Pack16<T> a = ld16(x + (size_t)r * ld + c0);
#pragma unroll
            for (int k = 0; k < V; k++) acc[k] += to_f(a.v[k]);
        }
    colsum_block_add<V>(part, acc, sum, N);
}
template <typename T> static void colsum(float *sum, const T *x, int M, int N, int ld, int nsm) {
    constexpr int V = Pack16<T>::N;
    if (ld % V) cu_fail("colsum", "colsum", "leading dimension not a multiple of 16 bytes", __FILE__, __LINE__);
    int rpb;
    dim3 grid = colsum_grid(M, ld, V, nsm, &rpb);
    colsum_kernel<T><<<grid, dim3(32, 8), 0, g_stream>>>(sum, x, M, N, ld, rpb);
    LAUNCH_CHECK("colsum_kernel");
}

/* GELU backward fused with the column sums of its result (the gradient of
 * the bias that produced u): du = dg * gelu'(u + ubias) written in place of
 * dg (ubias as in gelu_forward, NULL: none), dbias[c] += sum over rows of
 * du.  Same tiling as colsum_kernel. */
template <typename T, typename G> __global__ void gelu_bwd_colsum_kernel(T *__restrict__ du, const T *__restrict__ u, const float *ubias,
                                                             float *dbias, int M, int N, int rows_per_block) {
    constexpr int V = Pack16<T>::N;
    __shared__ float part[8][32 * V];
    int c0 = (blockIdx.x * 32 + threadIdx.x) * V;
    int r0 = blockIdx.y * rows_per_block, r1 = min(M, r0 + rows_per_block);
    float acc[V], ub[V];
#pragma unroll
    for (int k = 0; k < V; k++) acc[k] = 0.0f;
    if (c0 < N) {
        ld_f32_pack<V>(ub, ubias, c0);
#pragma unroll 4
        for (int r = r0 + threadIdx.y; r < r1; r += 8) {
            size_t o = (size_t)r * N + c0;
            Pack16<T> a = ld16(u + o), d = ld16(du + o), out;
#pragma unroll
            for (int k = 0; k < V; k++) {
                float x = to_f(a.v[k]) + ub[k];
                out.v[k] = from_f<T>(to_f(d.v[k]) * G::grad(x));
                acc[k] += to_f(out.v[k]);
            }
            st16(du + o, out);
        }
    }
    colsum_block_add<V>(part, acc, dbias, N);
}
template <typename T, typename G = GeluPoly> static void gelu_backward_bias(T *du, const T *u, const float *ubias, float *dbias, int M, int N, int nsm) {
    constexpr int V = Pack16<T>::N;
    if (M <= 0) return;
    int rpb;
    dim3 grid = colsum_grid(M, N, V, nsm, &rpb);
    gelu_bwd_colsum_kernel<T, G><<<grid, dim3(32, 8), 0, g_stream>>>(du, u, ubias, dbias, M, N, rpb);
    LAUNCH_CHECK("gelu_bwd_colsum_kernel");
}

/* Embedding backward, word part: dwte[id] += dx[row] for every row whose id
 * is not the pad id (as in HF, the pad row gets no gradient from the input
 * side; it still gets one through the tied decoder).  One warp per row. */
template <typename T> __global__ void embed_word_bwd_kernel(float *dwte, const T *dx, const int32_t *ids, int M, int C, int pad) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= M) return;
    int id = ids[row];
    if (id == pad) return;
    for (int c = lane; c < C; c += 32) atomicAdd(&dwte[(size_t)id * C + c], to_f(dx[(size_t)row * C + c]));
}
/* Position part: dwpe[t][c] += sum over b of dx[b, t, c]; also sum_t into
 * tmp (fp32 [seq][C]) for the token-type row (summed by colsum after). */
template <typename T> __global__ void embed_pos_bwd_kernel(float *dwpe, float *tmp, const T *dx, int B, int seq, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)seq * C) return;
    float s = 0.0f;
    for (int b = 0; b < B; b++) s += to_f(dx[(size_t)b * seq * C + i]);
    dwpe[i] += s;
    tmp[i] = s;
}
template <typename T> static void embed_backward(float *dwte, float *dwpe, float *dwtt, float *tmp, const T *dx,
                                                 const int32_t *ids, int B, int seq, int C, int pad, int nsm) {
    int M = B * seq;
    embed_word_bwd_kernel<T><<<ceil_div(M, 8), 256, 0, g_stream>>>(dwte, dx, ids, M, C, pad);
    LAUNCH_CHECK("embed_word_bwd_kernel");
    embed_pos_bwd_kernel<T><<<ceil_div((size_t)seq * C, 256), 256, 0, g_stream>>>(dwpe, tmp, dx, B, seq, C);
    LAUNCH_CHECK("embed_pos_bwd_kernel");
    colsum<float>(dwtt, tmp, seq, C, C, nsm);
}

/* Row gather / scatter: out[i] = x[idx[i]] (rows of C), for the masked
 * positions that the MLM head works on. */
template <typename T> __global__ void gather_rows_kernel(T *out, const T *x, const int32_t *idx, int n, int C) {
    constexpr int V = Pack16<T>::N;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= n) return;
    const T *src = x + (size_t)idx[row] * C;
    for (int c = lane * V; c < C; c += 32 * V) st16(out + (size_t)row * C + c, ld16(src + c));
}
/* dx[idx[i]] = dout[i]; the other rows of dx must be zero beforehand. */
template <typename T> __global__ void scatter_rows_kernel(T *dx, const T *dout, const int32_t *idx, int n, int C) {
    constexpr int V = Pack16<T>::N;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= n) return;
    T *dst = dx + (size_t)idx[row] * C;
    for (int c = lane * V; c < C; c += 32 * V) st16(dst + c, ld16(dout + (size_t)row * C + c));
}
template <typename T> static void gather_rows(T *out, const T *x, const int32_t *idx, int n, int C) {
    if (n <= 0) return;
    gather_rows_kernel<T><<<ceil_div(n, 8), 256, 0, g_stream>>>(out, x, idx, n, C);
    LAUNCH_CHECK("gather_rows_kernel");
}
template <typename T> static void scatter_rows(T *dx, const T *dout, const int32_t *idx, int n, int C) {
    if (n <= 0) return;
    scatter_rows_kernel<T><<<ceil_div(n, 8), 256, 0, g_stream>>>(dx, dout, idx, n, C);
    LAUNCH_CHECK("scatter_rows_kernel");
}

/* Rows through a map (the last layer's gathered queries, model.cu):
 * gather_map: dst[r] = src[sidx(r)] for rows r < nrows (16-byte packs),
 * zero where the index is -1; sidx(r) = via ? via[map[r]] : map[r]
 * (map[r] >= 0).  add: dst[r] += src[sidx(r)] instead, rows with index -1
 * untouched.  scatter_map: dst[map[r]] (+)= src[r] for rows r < nrows with
 * map[r] >= 0 (add 0 writes, 1 adds).  A block takes 256 / (C / V) rows. */
template <typename T>
__global__ void gather_map_kernel(T *dst, int ldd, const T *src, int lds, const int32_t *map, const int32_t *via,
                                  int nrows, int C, int add) {
    constexpr int V = Pack16<T>::N;
    int r = blockIdx.x * (blockDim.x / (C / V)) + threadIdx.x / (C / V), c = (threadIdx.x % (C / V)) * V;
    if (r >= nrows) return;
    int k = map[r];
    Pack16<T> x;
    if (k >= 0) x = ld16(src + (size_t)(via ? via[k] : k) * lds + c);
    else if (add) return;
    else
#pragma unroll
        for (int i = 0; i < V; i++) x.v[i] = from_f<T>(0.0f);
    if (add && k >= 0) {
        Pack16<T> y = ld16(dst + (size_t)r * ldd + c);
#pragma unroll
        for (int i = 0; i < V; i++) x.v[i] = from_f<T>(to_f(x.v[i]) + to_f(y.v[i]));
    }
    st16(dst + (size_t)r * ldd + c, x);
}
template <typename T>
__global__ void scatter_map_kernel(T *dst, int ldd, const T *src, int lds, const int32_t *map, int nrows, int C, int add) {
    constexpr int V = Pack16<T>::N;
    int r = blockIdx.x * (blockDim.x / (C / V)) + threadIdx.x / (C / V), c = (threadIdx.x % (C / V)) * V;
    if (r >= nrows) return;
    int k = map[r];
    if (k < 0) return;
    Pack16<T> x = ld16(src + (size_t)r * lds + c);
    if (add) {
        Pack16<T> y = ld16(dst + (size_t)k * ldd + c);
#pragma unroll
        for (int i = 0; i < V; i++) x.v[i] = from_f<T>(to_f(x.v[i]) + to_f(y.v[i]));
    }
    st16(dst + (size_t)k * ldd + c, x);
}
template <typename T> static void map_rows_grid(int nrows, int C, dim3 &grid, int &threads) {
    int per = C / Pack16<T>::N, rows = 256 / per > 0 ? 256 / per : 1;
    threads = rows * per;
    grid = dim3(ceil_div(nrows, rows));
}
template <typename T>
static void gather_map(T *dst, int ldd, const T *src, int lds, const int32_t *map, const int32_t *via, int nrows, int C,
                       int add = 0) {
    dim3 g; int th;
    map_rows_grid<T>(nrows, C, g, th);
    gather_map_kernel<T><<<g, th, 0, g_stream>>>(dst, ldd, src, lds, map, via, nrows, C, add);
    LAUNCH_CHECK("gather_map_kernel");
}
template <typename T>
static void scatter_map(T *dst, int ldd, const T *src, int lds, const int32_t *map, int nrows, int C, int add) {
    dim3 g; int th;
    map_rows_grid<T>(nrows, C, g, th);
    scatter_map_kernel<T><<<g, th, 0, g_stream>>>(dst, ldd, src, lds, map, nrows, C, add);
    LAUNCH_CHECK("scatter_map_kernel");
}
#endif
