/* attention_flash.cu - fused attention forward and backward on tensor cores
 * (FlashAttention-2's scheme), bf16 in and out, fp32 accumulation, head
 * size 64, with the dropout of model.h.  See attention.cuh for the contract.
 *
 * mma.sync.m16n8k16 (bf16 -> fp32) with operands from shared memory through
 * ldmatrix (rows padded to 72 elements, so the eight 16-byte rows of one
 * 8x8 matrix fall in distinct banks).  Fragment layout of m16n8k16,
 * lane = 4 g + t:
 *   A (16x16): a0 (g, 2t..2t+1)  a1 (g+8, 2t..)  a2 (g, 2t+8..)  a3 (g+8, 2t+8..)
 *   B (16x8):  b0 (k 2t..2t+1, n g)  b1 (k 2t+8.., n g)
 *   C (16x8):  c0 c1 (g, 2t..2t+1)   c2 c3 (g+8, 2t..2t+1)
 * The C fragments of two adjacent 8-column tiles are exactly the A fragment
 * of one 16-wide k-step, which is how P goes from one product to the next
 * without leaving registers.
 *
 * The dropout of the probabilities is drawn once, in the forward pass, from
 * model.h's stream (the CPU trainer's masks exactly), and kept as bits for
 * the backward pass: B*NH*T*T/8 bytes per layer. */
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

/* ---------------------------------------------------------------- forward
 * Block: 128 query rows (4 warps x 32 rows, two 16-row m-tiles per warp so
 * that each K/V fragment read from shared memory feeds two MMAs), keys in
 * tiles of 64, K and V double-buffered.  Dropout: the kept bits of each
 * (row, 64-key tile) are gathered over the 4 lanes that share the row and
 * stored as one 64-bit word, bits[(b*NH + h)*T + i][kb], for the backward. */
#define FQ 128
#define FWD_SMEM ((FQ + 4 * FB) * FP * 2)

__global__ void __launch_bounds__(128) flash_fwd_kernel(bf16 *o, float *lse, uint64_t *bits, const bf16 *q,
                                                        const bf16 *k, const bf16 *v, int T, int NH, int ldq, int ldk,
                                                        int ldv, int ldo, float scale_log2, DropCtx dc, int layer) {
    extern __shared__ __align__(16) unsigned char smraw[];
    bf16 *sQ = (bf16 *)smraw, *sK0 = sQ + FQ * FP, *sV0 = sK0 + 2 * FB * FP;
    int qb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    size_t rq = (size_t)b * T;                   /* row of token 0 of this sample */
    const bf16 *qh = q + rq * ldq + h * FD, *kh = k + rq * ldk + h * FD, *vh = v + rq * ldv + h * FD;
    load_tile(sQ, qh + (size_t)qb * FQ * ldq, ldq);
    load_tile(sQ + FB * FP, qh + ((size_t)qb * FQ + FB) * ldq, ldq);
    load_tile(sK0, kh, ldk);
    load_tile(sV0, vh, ldv);
    cp_commit();
    uint64_t key = dc.on ? d_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + b), layer, BT_DROP_ATTN_PROBS) : 0;
    int row0 = qb * FQ + w * 32 + g;             /* rows row0 + 16 mt + 8 r */
    float m[2][2], l[2][2];
    float acc[2][8][4];
    uint32_t qf[2][4][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        m[mt][0] = m[mt][1] = -INFINITY; l[mt][0] = l[mt][1] = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.0f;
    }
    int nkb = T / FB;
    for (int kb = 0; kb < nkb; kb++) {
        int buf = kb & 1;
        const bf16 *sK = sK0 + buf * FB * FP, *sV = sV0 + buf * FB * FP;
        cp_wait_all();
        __syncthreads();
        if (kb == 0)
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int ks = 0; ks < 4; ks++) load_a(qf[mt][ks], sQ, w * 32 + mt * 16, ks * 16, lane);
        if (kb + 1 < nkb) {
            load_tile(sK0 + (buf ^ 1) * FB * FP, kh + (size_t)(kb + 1) * FB * ldk, ldk);
            load_tile(sV0 + (buf ^ 1) * FB * FP, vh + (size_t)(kb + 1) * FB * ldv, ldv);
        }
        cp_commit();
        float s[2][8][4];
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
#pragma unroll
            for (int i = 0; i < 8; i++) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < 4; ks++)
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bb[4];
                load_b_nk(bb, sK, np * 16, ks * 16, lane);
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    mma16816(s[mt][2 * np], qf[mt][ks], bb[0], bb[1]);
                    mma16816(s[mt][2 * np + 1], qf[mt][ks], bb[2], bb[3]);
                }
            }
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float mx = -INFINITY;
#pragma unroll
                for (int i = 0; i < 8; i++) mx = fmaxf(mx, fmaxf(s[mt][i][2 * r], s[mt][i][2 * r + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                float mnew = fmaxf(m[mt][r], mx * scale_log2);
                float alpha = exp2f(m[mt][r] - mnew);
                m[mt][r] = mnew;
                l[mt][r] *= alpha;
                int row = row0 + 16 * mt + 8 * r;
                uint64_t word = 0;
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    acc[mt][i][2 * r] *= alpha; acc[mt][i][2 * r + 1] *= alpha;
                    float p0 = exp2f(s[mt][i][2 * r] * scale_log2 - mnew), p1 = exp2f(s[mt][i][2 * r + 1] * scale_log2 - mnew);
                    l[mt][r] += p0 + p1;
                    if (dc.on) {
                        int c = i * 8 + 2 * t4;
                        uint64_t e = ((uint64_t)h * T + row) * T + kb * FB + c;
                        bool k0 = keep_elem(key, e, dc.thr), k1 = keep_elem(key, e + 1, dc.thr);
                        if (!k0) p0 = 0.0f;
                        if (!k1) p1 = 0.0f;
                        word |= ((uint64_t)k0 << c) | ((uint64_t)k1 << (c + 1));
                    }
                    s[mt][i][2 * r] = p0; s[mt][i][2 * r + 1] = p1;
                }
                if (dc.on) {
                    word |= __shfl_xor_sync(0xffffffffu, word, 1);
                    word |= __shfl_xor_sync(0xffffffffu, word, 2);
                    if (t4 == 0) bits[(((size_t)b * NH + h) * T + row) * nkb + kb] = word;
                }
            }
        /* acc += P V */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t a[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                a[mt][0] = pack_bf16(s[mt][2 * ks][0], s[mt][2 * ks][1]);
                a[mt][1] = pack_bf16(s[mt][2 * ks][2], s[mt][2 * ks][3]);
                a[mt][2] = pack_bf16(s[mt][2 * ks + 1][0], s[mt][2 * ks + 1][1]);
                a[mt][3] = pack_bf16(s[mt][2 * ks + 1][2], s[mt][2 * ks + 1][3]);
            }
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bb[4];
                load_b_kn(bb, sV, ks * 16, np * 16, lane);
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    mma16816(acc[mt][2 * np], a[mt], bb[0], bb[1]);
                    mma16816(acc[mt][2 * np + 1], a[mt], bb[2], bb[3]);
                }
            }
        }
    }
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float lt = l[mt][r];
            lt += __shfl_xor_sync(0xffffffffu, lt, 1);
            lt += __shfl_xor_sync(0xffffffffu, lt, 2);
            float inv = (dc.on ? dc.scale : 1.0f) / lt;
            int row = row0 + 16 * mt + 8 * r;
            bf16 *dst = o + (rq + row) * ldo + h * FD;
#pragma unroll
            for (int i = 0; i < 8; i++)
                *(__nv_bfloat162 *)(dst + i * 8 + 2 * t4) =
                    __floats2bfloat162_rn(acc[mt][i][2 * r] * inv, acc[mt][i][2 * r + 1] * inv);
            if (t4 == 0) lse[((size_t)b * NH + h) * T + row] = m[mt][r] + log2f(lt);
        }
}

/* D[b,h,i] = dO[b,i,h,:] . O[b,i,h,:]; zeroes dq_acc's 64 values too.
 * One thread per (b, i, h). */
__global__ void flash_pre_kernel(float *dsum, float *dq_acc, const bf16 *dout, const bf16 *o, int B, int T, int NH,
                                 int ldo, int ldacc) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * T * NH) return;
    int h = idx % NH;
    size_t bi = idx / NH;                 /* b * T + i */
    int b = bi / T, i = bi % T;
    const bf16 *a = dout + bi * ldo + h * FD, *c = o + bi * ldo + h * FD;
    float s = 0.0f;
#pragma unroll
    for (int x = 0; x < FD; x += 8) {
        Pack16<bf16> pa = ld16(a + x), pc = ld16(c + x);
#pragma unroll
        for (int y = 0; y < 8; y++) s += to_f(pa.v[y]) * to_f(pc.v[y]);
    }
    dsum[((size_t)b * NH + h) * T + i] = s;
    float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
    float4 *dq = (float4 *)(dq_acc + bi * ldacc + h * FD);
#pragma unroll
    for (int x = 0; x < FD / 4; x++) dq[x] = z;
}

/* ---------------------------------------------------------------- backward
 * Block: 64 keys (4 warps x 16), looping over query tiles of 64 (Q, dO,
 * log-sum-exp, D and the dropout words double-buffered).  In FA2's
 * transposed form: each warp computes S^T = K_w Q^T and dP^T = V_w dO^T
 * with its K and V rows held as A fragments in registers, so P^T and dS^T
 * come out in registers as the A operands of dV += P^T dO and
 * dK += dS^T Q.  dS^T goes through shared memory once, for dQ = dS K,
 * which each warp computes for 16 queries and adds into the fp32 dQ
 * buffer.  When k_is_q (symmetric), dK is added into that buffer as well. */
#define BWD_TILE (FB * FP)
#define BWD_SMEM ((2 * BWD_TILE + 4 * BWD_TILE + BWD_TILE) * 2 + 2 * (2 * FB * 4) + 2 * FB * 8)

__global__ void __launch_bounds__(128) flash_bwd_kernel(float *dq_acc, bf16 *dk, bf16 *dv, const bf16 *q, const bf16 *k,
                                                        const bf16 *v, const bf16 *dout, const float *lse,
                                                        const float *dsum, const uint64_t *bits, int T, int NH, int ldq,
                                                        int ldk, int ldv, int ldo, int ldacc, float scale,
                                                        float scale_log2, DropCtx dc, int k_is_q) {
    extern __shared__ __align__(16) unsigned char smraw[];
    bf16 *sK = (bf16 *)smraw, *sV = sK + BWD_TILE, *sQ0 = sV + BWD_TILE, *sO0 = sQ0 + 2 * BWD_TILE,
         *sS = sO0 + 2 * BWD_TILE;
    float *sL0 = (float *)(sS + BWD_TILE), *sD0 = sL0 + 2 * FB;
    uint64_t *sB0 = (uint64_t *)(sD0 + 2 * FB);
    int kb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    size_t rq = (size_t)b * T;
    const bf16 *qh = q + rq * ldq + h * FD, *kh = k + rq * ldk + h * FD, *vh = v + rq * ldv + h * FD,
               *oh = dout + rq * ldo + h * FD;
    const float *lse_bh = lse + ((size_t)b * NH + h) * T, *d_bh = dsum + ((size_t)b * NH + h) * T;
    const int nqb = T / FB, nkb = T / FB;
    const uint64_t *bits_bh = bits ? bits + ((size_t)b * NH + h) * T * nkb : NULL;
    load_tile(sK, kh + (size_t)kb * FB * ldk, ldk);
    load_tile(sV, vh + (size_t)kb * FB * ldv, ldv);
    /* query tile 0 into buffer 0 */
    load_tile(sQ0, qh, ldq);
    load_tile(sO0, oh, ldo);
    if (threadIdx.x < FB) {
        sL0[threadIdx.x] = lse_bh[threadIdx.x];
        sD0[threadIdx.x] = d_bh[threadIdx.x];
        if (bits_bh) sB0[threadIdx.x] = bits_bh[(size_t)threadIdx.x * nkb + kb];
    }
    cp_commit();
    cp_wait_all();
    __syncthreads();
    uint32_t kf[4][4], vf[4][4];
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        load_a(kf[ks], sK, w * 16, ks * 16, lane);
        load_a(vf[ks], sV, w * 16, ks * 16, lane);
    }
    const float dsc = dc.on ? dc.scale : 1.0f;
    float dK[8][4], dV[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) dK[i][j] = dV[i][j] = 0.0f;
    const int kr0 = w * 16 + g;                  /* this thread's key rows (in the tile): kr0, kr0 + 8 */
    for (int qb = 0; qb < nqb; qb++) {
        int buf = qb & 1;
        const bf16 *sQ = sQ0 + buf * BWD_TILE, *sO = sO0 + buf * BWD_TILE;
        const float *sL = sL0 + buf * FB, *sD = sD0 + buf * FB;
        const uint64_t *sB = sB0 + buf * FB;
        if (qb + 1 < nqb) {   /* prefetch the next query tile into the other buffer */
            int nb = buf ^ 1;
            load_tile(sQ0 + nb * BWD_TILE, qh + (size_t)(qb + 1) * FB * ldq, ldq);
            load_tile(sO0 + nb * BWD_TILE, oh + (size_t)(qb + 1) * FB * ldo, ldo);
            cp_commit();
            if (threadIdx.x < FB) {
                int i = (qb + 1) * FB + threadIdx.x;
                sL0[nb * FB + threadIdx.x] = lse_bh[i];
                sD0[nb * FB + threadIdx.x] = d_bh[i];
                if (bits_bh) sB0[nb * FB + threadIdx.x] = bits_bh[(size_t)i * nkb + kb];
            }
        }
        float st[8][4], dpt[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) st[i][j] = dpt[i][j] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < 4; ks++)
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bq[4], bo[4];
                load_b_nk(bq, sQ, np * 16, ks * 16, lane);
                load_b_nk(bo, sO, np * 16, ks * 16, lane);
                mma16816(st[2 * np], kf[ks], bq[0], bq[1]);
                mma16816(st[2 * np + 1], kf[ks], bq[2], bq[3]);
                mma16816(dpt[2 * np], vf[ks], bo[0], bo[1]);
                mma16816(dpt[2 * np + 1], vf[ks], bo[2], bo[3]);
            }
        /* elementwise: rows are keys (kr0 + 8 r), columns queries (8 i + 2 t4 + c) */
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int c = 0; c < 2; c++) {
                int qc = i * 8 + 2 * t4 + c;
                float L = sL[qc], Dd = sD[qc];
                uint64_t word = bits ? sB[qc] : ~0ull;
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    float p = exp2f(st[i][2 * r + c] * scale_log2 - L);
                    float mk = ((word >> (kr0 + 8 * r)) & 1) ? dsc : 0.0f;
                    float ds = p * (dpt[i][2 * r + c] * mk - Dd) * scale;
                    st[i][2 * r + c] = p * mk;     /* dropout(P)^T */
                    dpt[i][2 * r + c] = ds;        /* dS^T */
                }
            }
        /* dS^T into shared memory as [key][query], for dQ */
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int r = 0; r < 2; r++)
                *(uint32_t *)(sS + (kr0 + 8 * r) * FP + i * 8 + 2 * t4) = pack_bf16(dpt[i][2 * r], dpt[i][2 * r + 1]);
        /* dV += P^T dO;  dK += dS^T Q  (A operands straight from registers) */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t ap[4], as[4];
            ap[0] = pack_bf16(st[2 * ks][0], st[2 * ks][1]);
            ap[1] = pack_bf16(st[2 * ks][2], st[2 * ks][3]);
            ap[2] = pack_bf16(st[2 * ks + 1][0], st[2 * ks + 1][1]);
            ap[3] = pack_bf16(st[2 * ks + 1][2], st[2 * ks + 1][3]);
            as[0] = pack_bf16(dpt[2 * ks][0], dpt[2 * ks][1]);
            as[1] = pack_bf16(dpt[2 * ks][2], dpt[2 * ks][3]);
            as[2] = pack_bf16(dpt[2 * ks + 1][0], dpt[2 * ks + 1][1]);
            as[3] = pack_bf16(dpt[2 * ks + 1][2], dpt[2 * ks + 1][3]);
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
        __syncthreads();   /* dS^T complete */
        {   /* dQ rows 16w.. of this query tile: A = dS (stored [key][query]), B = K ([key][d]) */
            float dq[8][4];
#pragma unroll
            for (int i = 0; i < 8; i++) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                uint32_t a[4];
                load_a_t(a, sS, w * 16, ks * 16, lane);
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
                float *dst = dq_acc + (rq + row) * ldacc + h * FD;
#pragma unroll
                for (int i = 0; i < 8; i++)
                    atomicAdd((float2 *)(dst + i * 8 + 2 * t4), make_float2(dq[i][2 * r], dq[i][2 * r + 1]));
            }
        }
        cp_wait_all();
        __syncthreads();   /* next tile landed; this tile's buffers and sS free */
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int row = kb * FB + kr0 + 8 * r;
        if (k_is_q) {
            float *dst = dq_acc + (rq + row) * ldacc + h * FD;
#pragma unroll
            for (int i = 0; i < 8; i++) atomicAdd((float2 *)(dst + i * 8 + 2 * t4), make_float2(dK[i][2 * r], dK[i][2 * r + 1]));
        } else {
            bf16 *dkr = dk + (rq + row) * ldk + h * FD;
#pragma unroll
            for (int i = 0; i < 8; i++)
                *(__nv_bfloat162 *)(dkr + i * 8 + 2 * t4) = __floats2bfloat162_rn(dK[i][2 * r], dK[i][2 * r + 1]);
        }
        bf16 *dvr = dv + (rq + row) * ldv + h * FD;
#pragma unroll
        for (int i = 0; i < 8; i++)
            *(__nv_bfloat162 *)(dvr + i * 8 + 2 * t4) = __floats2bfloat162_rn(dV[i][2 * r], dV[i][2 * r + 1]);
    }
}

/* dq[row, h*64 + c] = dq_acc[row, h*64 + c] for the C = NH*64 head columns. */
__global__ void flash_dq_kernel(bf16 *dq, const float *dq_acc, size_t rows, int C, int ldq, int ldacc) {
    size_t idx = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    size_t row = idx / C, c = idx % C;
    if (row >= rows) return;
    float4 a = *(const float4 *)(dq_acc + row * ldacc + c);
    __nv_bfloat162 *d = (__nv_bfloat162 *)(dq + row * ldq + c);
    d[0] = __floats2bfloat162_rn(a.x, a.y);
    d[1] = __floats2bfloat162_rn(a.z, a.w);
}

int flash_supported(AttnShape s) {
    return s.d == FD && s.T % FQ == 0 && s.ldq % 8 == 0 && s.ldk % 8 == 0 && s.ldv % 8 == 0 && s.ldo % 8 == 0;
}

void flash_forward(bf16 *o, float *lse, uint64_t *bits, const bf16 *q, const bf16 *k, const bf16 *v, AttnShape s,
                   DropCtx dc, int layer) {
    static int attr_set = 0;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, FWD_SMEM));
        attr_set = 1;
    }
    dim3 grid(s.T / FQ, s.NH, s.B);
    float scale_log2 = 1.4426950408889634f / sqrtf((float)s.d);
    flash_fwd_kernel<<<grid, 128, FWD_SMEM, g_stream>>>(o, lse, dc.on ? bits : NULL, q, k, v, s.T, s.NH, s.ldq, s.ldk,
                                                        s.ldv, s.ldo, scale_log2, dc, layer);
    LAUNCH_CHECK("flash_fwd_kernel");
}

void flash_backward(bf16 *dq, bf16 *dk, bf16 *dv, float *dq_acc, float *dsum, const bf16 *dout, const bf16 *o,
                    const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, const uint64_t *bits, AttnShape s,
                    DropCtx dc, int k_is_q) {
    static int attr_set = 0;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, BWD_SMEM));
        attr_set = 1;
    }
    int C = s.NH * FD;
    size_t n = (size_t)s.B * s.T * s.NH;
    flash_pre_kernel<<<ceil_div(n, 256), 256, 0, g_stream>>>(dsum, dq_acc, dout, o, s.B, s.T, s.NH, s.ldo, C);
    LAUNCH_CHECK("flash_pre_kernel");
    dim3 grid(s.T / FB, s.NH, s.B);
    float scale = 1.0f / sqrtf((float)s.d), scale_log2 = 1.4426950408889634f * scale;
    flash_bwd_kernel<<<grid, 128, BWD_SMEM, g_stream>>>(dq_acc, dk, dv, q, k, v, dout, lse, dsum, dc.on ? bits : NULL, s.T,
                                                        s.NH, s.ldq, s.ldk, s.ldv, s.ldo, C, scale, scale_log2, dc, k_is_q);
    LAUNCH_CHECK("flash_bwd_kernel");
    flash_dq_kernel<<<ceil_div((size_t)s.B * s.T * C / 4, 256), 256, 0, g_stream>>>(dq, dq_acc, (size_t)s.B * s.T, C, s.ldq, C);
    LAUNCH_CHECK("flash_dq_kernel");
}
