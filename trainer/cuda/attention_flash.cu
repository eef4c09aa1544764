/* attention_flash.cu - fused attention forward and backward on tensor cores
 * (FlashAttention-2's scheme), bf16 in and out, fp32 accumulation, head
 * size 64, with the dropout of model.h.  See attention.cuh for the contract.
 *
 * Tiles: 64 query rows x 64 keys, 4 warps of 16 rows; the head size is the
 * inner dimension of every product.  mma.sync.m16n8k16 (bf16 -> fp32), with
 * operands from shared memory through ldmatrix (rows padded to 72 elements,
 * so the eight 16-byte rows of one 8x8 matrix fall in distinct banks).
 * Fragment layout of m16n8k16, lane = 4 g + t:
 *   A (16x16): a0 (g, 2t..2t+1)  a1 (g+8, 2t..)  a2 (g, 2t+8..)  a3 (g+8, 2t+8..)
 *   B (16x8):  b0 (k 2t..2t+1, n g)  b1 (k 2t+8.., n g)
 *   C (16x8):  c0 c1 (g, 2t..2t+1)   c2 c3 (g+8, 2t..2t+1)
 * The C fragments of two adjacent 8-column tiles are exactly the A fragment
 * of one 16-wide k-step, which is how P goes from one product to the next.
 *
 * Forward (grid: query blocks x heads x batch): online softmax over the key
 * tiles, K and V double-buffered with cp.async; writes o and the
 * log-sum-exp (log2 domain) of each row.
 * Backward (grid: key blocks x heads x batch): for its 64 keys, loops over
 * all query tiles, recomputes P from the saved log-sum-exp, accumulates dK
 * and dV in registers, and adds each tile's dQ into an fp32 buffer with
 * vector atomics; a last kernel converts dQ to bf16.  D_i = dO_i . O_i is
 * computed first by its own kernel (which also zeroes the dQ buffer). */
#include "trainer/cuda/attention.cuh"

#define FD 64
#define FB 64
#define FP 72

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(smem_u32(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

/* Fragment loaders from a [rows][FP] tile.  A normal: X stored [m][k];
 * A transposed: X stored [k][m]; B from [n][k] (two n-tiles: r0 r1 for n0,
 * r2 r3 for n0+8); B from [k][n] likewise. */
__device__ __forceinline__ void load_a(uint32_t a[4], const bf16 *X, int m0, int k0, int lane) {
    ldsm_x4(a, X + (m0 + (lane & 7) + 8 * ((lane >> 3) & 1)) * FP + k0 + 8 * (lane >> 4));
}
__device__ __forceinline__ void load_a_t(uint32_t a[4], const bf16 *X, int m0, int k0, int lane) {
    int q = lane >> 3;
    ldsm_x4_t(a, X + (k0 + (lane & 7) + 8 * (q >> 1)) * FP + m0 + 8 * (q & 1));
}
__device__ __forceinline__ void load_b_nk(uint32_t b[4], const bf16 *X, int n0, int k0, int lane) {
    ldsm_x4(b, X + (n0 + (lane & 7) + 8 * (lane >> 4)) * FP + k0 + 8 * ((lane >> 3) & 1));
}
__device__ __forceinline__ void load_b_kn(uint32_t b[4], const bf16 *X, int k0, int n0, int lane) {
    ldsm_x4_t(b, X + (k0 + (lane & 7) + 8 * ((lane >> 3) & 1)) * FP + n0 + 8 * (lane >> 4));
}

/* 64 rows x 64 columns of a [.., ld] bf16 tensor into a [64][FP] tile. */
__device__ __forceinline__ void load_tile(bf16 *dst, const bf16 *src, int ld) {
    for (int c = threadIdx.x; c < FB * FD / 8; c += blockDim.x) {
        int r = c >> 3, col = (c & 7) * 8;
        cp_async16(dst + r * FP + col, src + (size_t)r * ld + col);
    }
}

/* acc[8][4] (+)= X[m0.., 0..63] * Y^T for Y stored [n][k] (64 x 64): the
 * 16 x 64 block of rows m0 of X Y^T. */
__device__ __forceinline__ void mm_abt(float acc[8][4], const bf16 *X, int m0, const bf16 *Y, int lane) {
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        uint32_t a[4];
        load_a(a, X, m0, ks * 16, lane);
#pragma unroll
        for (int np = 0; np < 4; np++) {
            uint32_t b[4];
            load_b_nk(b, Y, np * 16, ks * 16, lane);
            mma16816(acc[2 * np], a, b[0], b[1]);
            mma16816(acc[2 * np + 1], a, b[2], b[3]);
        }
    }
}

__device__ __forceinline__ bool keep_elem(uint64_t key, uint64_t e, uint32_t thr) { return d_keep(key, e, thr); }

__global__ void __launch_bounds__(128) flash_fwd_kernel(bf16 *o, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                                                        int T, int NH, int ld, float scale_log2, DropCtx dc, int layer) {
    __shared__ __align__(16) bf16 sQ[FB * FP];
    __shared__ __align__(16) bf16 sK[2][FB * FP];
    __shared__ __align__(16) bf16 sV[2][FB * FP];
    int qb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    size_t base = (size_t)b * T * ld + (size_t)h * FD;
    load_tile(sQ, q + base + (size_t)qb * FB * ld, ld);
    load_tile(sK[0], k + base, ld);
    load_tile(sV[0], v + base, ld);
    cp_commit();
    uint64_t key = dc.on ? d_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + b), layer, BT_DROP_ATTN_PROBS) : 0;
    int row0 = qb * FB + w * 16 + g;              /* this thread's rows: row0 and row0 + 8 */
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
    uint32_t qf[4][4];
    int nkb = T / FB;
    for (int kb = 0; kb < nkb; kb++) {
        int buf = kb & 1;
        cp_wait_all();
        __syncthreads();
        if (kb == 0)
#pragma unroll
            for (int ks = 0; ks < 4; ks++) load_a(qf[ks], sQ, w * 16, ks * 16, lane);
        if (kb + 1 < nkb) {
            load_tile(sK[buf ^ 1], k + base + (size_t)(kb + 1) * FB * ld, ld);
            load_tile(sV[buf ^ 1], v + base + (size_t)(kb + 1) * FB * ld, ld);
        }
        cp_commit();
        float s[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < 4; ks++)
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bb[4];
                load_b_nk(bb, sK[buf], np * 16, ks * 16, lane);
                mma16816(s[2 * np], qf[ks], bb[0], bb[1]);
                mma16816(s[2 * np + 1], qf[ks], bb[2], bb[3]);
            }
        /* online softmax, rows r = 0 (row0) and r = 1 (row0 + 8) */
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = -INFINITY;
#pragma unroll
            for (int i = 0; i < 8; i++) mx = fmaxf(mx, fmaxf(s[i][2 * r], s[i][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            float mnew = fmaxf(m[r], mx * scale_log2);
            float alpha = exp2f(m[r] - mnew);
            m[r] = mnew;
            l[r] *= alpha;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                acc[i][2 * r] *= alpha; acc[i][2 * r + 1] *= alpha;
                float p0 = exp2f(s[i][2 * r] * scale_log2 - mnew), p1 = exp2f(s[i][2 * r + 1] * scale_log2 - mnew);
                l[r] += p0 + p1;
                if (dc.on) {
                    int j = kb * FB + i * 8 + 2 * t4;
                    uint64_t e = ((uint64_t)h * T + row0 + 8 * r) * T + j;
                    if (!keep_elem(key, e, dc.thr)) p0 = 0.0f;
                    if (!keep_elem(key, e + 1, dc.thr)) p1 = 0.0f;
                }
                s[i][2 * r] = p0; s[i][2 * r + 1] = p1;
            }
        }
        /* acc += P V */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t a[4];
            a[0] = pack_bf16(s[2 * ks][0], s[2 * ks][1]);
            a[1] = pack_bf16(s[2 * ks][2], s[2 * ks][3]);
            a[2] = pack_bf16(s[2 * ks + 1][0], s[2 * ks + 1][1]);
            a[3] = pack_bf16(s[2 * ks + 1][2], s[2 * ks + 1][3]);
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bb[4];
                load_b_kn(bb, sV[buf], ks * 16, np * 16, lane);
                mma16816(acc[2 * np], a, bb[0], bb[1]);
                mma16816(acc[2 * np + 1], a, bb[2], bb[3]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float lt = l[r];
        lt += __shfl_xor_sync(0xffffffffu, lt, 1);
        lt += __shfl_xor_sync(0xffffffffu, lt, 2);
        float inv = (dc.on ? dc.scale : 1.0f) / lt;
        int row = row0 + 8 * r;
        bf16 *dst = o + base + (size_t)row * ld;
#pragma unroll
        for (int i = 0; i < 8; i++)
            *(__nv_bfloat162 *)(dst + i * 8 + 2 * t4) = __floats2bfloat162_rn(acc[i][2 * r] * inv, acc[i][2 * r + 1] * inv);
        if (t4 == 0) lse[((size_t)b * NH + h) * T + row] = m[r] + log2f(lt);
    }
}

/* D[b,h,i] = dO[b,i,h,:] . O[b,i,h,:]; zeroes dq_acc's 64 values too.
 * One thread per (b, i, h). */
__global__ void flash_pre_kernel(float *dsum, float *dq_acc, const bf16 *dout, const bf16 *o, int B, int T, int NH, int ld) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * T * NH) return;
    int h = idx % NH;
    size_t bi = idx / NH;                 /* b * T + i */
    int b = bi / T, i = bi % T;
    const bf16 *a = dout + bi * ld + h * FD, *c = o + bi * ld + h * FD;
    float s = 0.0f;
#pragma unroll
    for (int x = 0; x < FD; x += 8) {
        Pack16<bf16> pa = ld16(a + x), pc = ld16(c + x);
#pragma unroll
        for (int y = 0; y < 8; y++) s += to_f(pa.v[y]) * to_f(pc.v[y]);
    }
    dsum[((size_t)b * NH + h) * T + i] = s;
    float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
    float4 *dq = (float4 *)(dq_acc + bi * ld + h * FD);
#pragma unroll
    for (int x = 0; x < FD / 4; x++) dq[x] = z;
}

#define BWD_SMEM (6 * FB * FP * 2 + 2 * FB * 4)

__global__ void __launch_bounds__(128) flash_bwd_kernel(float *dq_acc, bf16 *dk, bf16 *dv, const bf16 *q, const bf16 *k,
                                                        const bf16 *v, const bf16 *dout, const float *lse,
                                                        const float *dsum, int T, int NH, int ld, float scale,
                                                        float scale_log2, DropCtx dc, int layer) {
    extern __shared__ __align__(16) unsigned char smraw[];
    bf16 *sK = (bf16 *)smraw, *sV = sK + FB * FP, *sQ = sV + FB * FP, *sO = sQ + FB * FP, *sP = sO + FB * FP,
         *sS = sP + FB * FP;
    float *sL = (float *)(sS + FB * FP), *sD = sL + FB;
    int kb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    size_t base = (size_t)b * T * ld + (size_t)h * FD;
    load_tile(sK, k + base + (size_t)kb * FB * ld, ld);
    load_tile(sV, v + base + (size_t)kb * FB * ld, ld);
    cp_commit();
    uint64_t key = dc.on ? d_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + b), layer, BT_DROP_ATTN_PROBS) : 0;
    float dsc = dc.on ? dc.scale : 1.0f;
    float dK[8][4], dV[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) dK[i][j] = dV[i][j] = 0.0f;
    const float *lse_bh = lse + ((size_t)b * NH + h) * T, *d_bh = dsum + ((size_t)b * NH + h) * T;
    int nqb = T / FB;
    for (int qb = 0; qb < nqb; qb++) {
        load_tile(sQ, q + base + (size_t)qb * FB * ld, ld);
        load_tile(sO, dout + base + (size_t)qb * FB * ld, ld);
        cp_commit();
        if (threadIdx.x < FB) { sL[threadIdx.x] = lse_bh[qb * FB + threadIdx.x]; sD[threadIdx.x] = d_bh[qb * FB + threadIdx.x]; }
        cp_wait_all();
        __syncthreads();
        float s[8][4], dp[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) s[i][j] = dp[i][j] = 0.0f;
        mm_abt(s, sQ, w * 16, sK, lane);     /* S = Q K^T   (rows: this warp's 16 queries) */
        mm_abt(dp, sO, w * 16, sV, lane);    /* dP = dO V^T */
#pragma unroll
        for (int r = 0; r < 2; r++) {
            int lr = w * 16 + g + 8 * r;
            float L = sL[lr], Dd = sD[lr];
            int row = qb * FB + lr;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                int col = i * 8 + 2 * t4;
                float p0 = exp2f(s[i][2 * r] * scale_log2 - L), p1 = exp2f(s[i][2 * r + 1] * scale_log2 - L);
                float m0 = dsc, m1 = dsc;
                if (dc.on) {
                    uint64_t e = ((uint64_t)h * T + row) * T + kb * FB + col;
                    if (!keep_elem(key, e, dc.thr)) m0 = 0.0f;
                    if (!keep_elem(key, e + 1, dc.thr)) m1 = 0.0f;
                }
                float ds0 = p0 * (dp[i][2 * r] * m0 - Dd) * scale, ds1 = p1 * (dp[i][2 * r + 1] * m1 - Dd) * scale;
                *(uint32_t *)(sP + lr * FP + col) = pack_bf16(p0 * m0, p1 * m1);
                *(uint32_t *)(sS + lr * FP + col) = pack_bf16(ds0, ds1);
            }
        }
        __syncthreads();
        /* dV += Pd^T dO and dK += dS^T Q: rows are this warp's 16 keys, the
         * sum runs over the 64 queries of the tile. */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t ap[4], as[4];
            load_a_t(ap, sP, w * 16, ks * 16, lane);
            load_a_t(as, sS, w * 16, ks * 16, lane);
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bo[4], bq[4];
                load_b_kn(bo, sO, ks * 16, np * 16, lane);
                load_b_kn(bq, sQ, ks * 16, np * 16, lane);
                mma16816(dV[2 * np], ap, bo[0], bo[1]);
                mma16816(dV[2 * np + 1], ap, bo[2], bo[3]);
                mma16816(dK[2 * np], as, bq[0], bq[1]);
                mma16816(dK[2 * np + 1], as, bq[2], bq[3]);
            }
        }
        /* dQ (this tile's share) = dS K: rows are this warp's 16 queries */
        {
            float dq[8][4];
#pragma unroll
            for (int i = 0; i < 8; i++) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                uint32_t a[4];
                load_a(a, sS, w * 16, ks * 16, lane);
#pragma unroll
                for (int np = 0; np < 4; np++) {
                    uint32_t bk[4];
                    load_b_kn(bk, sK, ks * 16, np * 16, lane);
                    mma16816(dq[2 * np], a, bk[0], bk[1]);
                    mma16816(dq[2 * np + 1], a, bk[2], bk[3]);
                }
            }
#pragma unroll
            for (int r = 0; r < 2; r++) {
                int row = qb * FB + w * 16 + g + 8 * r;
                float *dst = dq_acc + base + (size_t)row * ld;
#pragma unroll
                for (int i = 0; i < 8; i++)
                    atomicAdd((float2 *)(dst + i * 8 + 2 * t4), make_float2(dq[i][2 * r], dq[i][2 * r + 1]));
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int row = kb * FB + w * 16 + g + 8 * r;
        bf16 *dkr = dk + base + (size_t)row * ld, *dvr = dv + base + (size_t)row * ld;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            *(__nv_bfloat162 *)(dkr + i * 8 + 2 * t4) = __floats2bfloat162_rn(dK[i][2 * r], dK[i][2 * r + 1]);
            *(__nv_bfloat162 *)(dvr + i * 8 + 2 * t4) = __floats2bfloat162_rn(dV[i][2 * r], dV[i][2 * r + 1]);
        }
    }
}

/* dq[b, i, h*64 + c] = dq_acc[...], for the heads' columns only (ld may be
 * wider than NH*64 when q lives inside a larger buffer). */
__global__ void flash_dq_kernel(bf16 *dq, const float *dq_acc, size_t rows, int C, int ld) {
    size_t idx = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    size_t row = idx / C, c = idx % C;
    if (row >= rows) return;
    float4 a = *(const float4 *)(dq_acc + row * ld + c);
    __nv_bfloat162 *d = (__nv_bfloat162 *)(dq + row * ld + c);
    d[0] = __floats2bfloat162_rn(a.x, a.y);
    d[1] = __floats2bfloat162_rn(a.z, a.w);
}

int flash_supported(AttnShape s) { return s.d == FD && s.T % FB == 0 && s.ld % 8 == 0; }

void flash_forward(bf16 *o, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, AttnShape s, DropCtx dc, int layer) {
    dim3 grid(s.T / FB, s.NH, s.B);
    float scale_log2 = 1.4426950408889634f / sqrtf((float)s.d);
    flash_fwd_kernel<<<grid, 128, 0, g_stream>>>(o, lse, q, k, v, s.T, s.NH, s.ld, scale_log2, dc, layer);
    LAUNCH_CHECK("flash_fwd_kernel");
}

void flash_backward(bf16 *dq, bf16 *dk, bf16 *dv, float *dq_acc, float *dsum, const bf16 *dout, const bf16 *o,
                    const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, AttnShape s, DropCtx dc, int layer) {
    static int attr_set = 0;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, BWD_SMEM));
        attr_set = 1;
    }
    size_t n = (size_t)s.B * s.T * s.NH;
    flash_pre_kernel<<<ceil_div(n, 256), 256, 0, g_stream>>>(dsum, dq_acc, dout, o, s.B, s.T, s.NH, s.ld);
    LAUNCH_CHECK("flash_pre_kernel");
    dim3 grid(s.T / FB, s.NH, s.B);
    float scale = 1.0f / sqrtf((float)s.d), scale_log2 = 1.4426950408889634f * scale;
    flash_bwd_kernel<<<grid, 128, BWD_SMEM, g_stream>>>(dq_acc, dk, dv, q, k, v, dout, lse, dsum, s.T, s.NH, s.ld, scale,
                                                        scale_log2, dc, layer);
    LAUNCH_CHECK("flash_bwd_kernel");
    int C = s.NH * FD;
    flash_dq_kernel<<<ceil_div((size_t)s.B * s.T * C / 4, 256), 256, 0, g_stream>>>(dq, dq_acc, (size_t)s.B * s.T, C, s.ld);
    LAUNCH_CHECK("flash_dq_kernel");
}
