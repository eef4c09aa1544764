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
 * On compute capability 9.0 the same scheme runs on wgmma (warpgroup MMA,
 * wgmma.cuh) with the accumulators in this same C layout per warp, so the
 * softmax and dropout code (online_softmax_tile, dkv_softmax_grad,
 * dq_softmax_grad) and the block ends (fwd_store, dkv_store, dq_store) are
 * shared; the caller chooses (flash_kernels).  Queries may be a gathered
 * subset (AttnShape.Tq rows a sample; the keys and values stay T rows).
 *
 * The dropout of the probabilities is drawn once per layer into bits (the
 * CPU trainer's masks exactly: model.h's stream), by flash_bits_kernel on a
 * side stream, and read by both directions: B*NH*Tq*T/8 bytes per layer. */
#include "trainer/cuda/attention.cuh"
#include "trainer/cuda/wgmma.cuh"

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
__device__ __forceinline__ void cp_async8(void *smem, const void *gmem) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" :: "r"(smem_u32(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

/* Fragment loaders from a [rows][FP] tile.  A: X stored [m][k]; B from
 * [n][k] (two n-tiles: r0 r1 for n0, r2 r3 for n0+8); B from [k][n]
 * likewise. */
__device__ __forceinline__ void load_a(uint32_t a[4], const bf16 *X, int m0, int k0, int lane) {
    ldsm_x4(a, X + (m0 + (lane & 7) + 8 * ((lane >> 3) & 1)) * FP + k0 + 8 * (lane >> 4));
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

/* The A fragments (16 x 16, k-slice ks) of a 16 x 64 block held as C
 * fragments x[8][4] (P or dS, straight from registers into the next product). */
__device__ __forceinline__ void pack_a(uint32_t a[4], const float (&x)[8][4], int ks) {
    a[0] = pack_bf16(x[2 * ks][0], x[2 * ks][1]);
    a[1] = pack_bf16(x[2 * ks][2], x[2 * ks][3]);
    a[2] = pack_bf16(x[2 * ks + 1][0], x[2 * ks + 1][1]);
    a[3] = pack_bf16(x[2 * ks + 1][2], x[2 * ks + 1][3]);
}
/* c1 = A1 Y1^T and c2 = A2 Y2^T (16 x 64 each; A fragments in registers, Y1, Y2
 * [64][FP] tiles stored [n][k]): the backward's recomputed S and dP. */
__device__ __forceinline__ void mm2_abt_reg(float (&c1)[8][4], float (&c2)[8][4], const uint32_t (&a1)[4][4],
                                            const uint32_t (&a2)[4][4], const bf16 *Y1, const bf16 *Y2, int lane) {
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) c1[i][j] = c2[i][j] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < 4; ks++)
#pragma unroll
        for (int np = 0; np < 4; np++) {
            uint32_t b1[4], b2[4];
            load_b_nk(b1, Y1, np * 16, ks * 16, lane);
            load_b_nk(b2, Y2, np * 16, ks * 16, lane);
            mma16816(c1[2 * np], a1[ks], b1[0], b1[1]);
            mma16816(c1[2 * np + 1], a1[ks], b1[2], b1[3]);
            mma16816(c2[2 * np], a2[ks], b2[0], b2[1]);
            mma16816(c2[2 * np + 1], a2[ks], b2[2], b2[3]);
        }
}

/* Position of key j (0..63 in its tile) in the 64-bit word of a (row, tile):
 * the forward lane t = (j & 7) / 2 owns bits 16 t .. 16 t + 15, in the order
 * of its fragment: n-tile j / 8, then column j & 1. */
__device__ __forceinline__ int bitpos(int j) { return ((j & 7) >> 1) * 16 + (j >> 3) * 2 + (j & 1); }

/* ---------------------------------------------------------------- dropout bits
 * One thread per (sample, head, row i, 64-key tile kb): the 64 draws (16 words) of
 * model.h's stream for elements (h*T + i)*T + kb*64 + j, as one 64-bit word
 * bits[((b*NH + h)*T + i)*(T/64) + kb].  A kernel of its own, at full
 * occupancy, because the hash is integer work that the register-heavy
 * attention kernels would do at a quarter of the rate. */
__global__ void flash_bits_kernel(uint64_t *bits, int B, int T, int Tq, const int32_t *rows, int NH, DropCtx dc, int layer) {
    /* two words (128 keys) per thread, so that the sample's key is derived once for both; T is a multiple of 128 */
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    int nkb = T / FB;
    if (idx >= (size_t)B * NH * Tq * nkb / 2) return;
    size_t wi = 2 * idx;
    int kb = wi % nkb;
    size_t bhi = wi / nkb;                       /* (b*NH + h)*Tq + j */
    int j = bhi % Tq, bh = bhi / Tq, h = bh % NH, b = bh / NH;
    int i = rows ? rows[(size_t)b * Tq + j] : j;   /* the query's position in its sample (rows: gathered queries) */
    if (i < 0) i = 0;                            /* (padding rows: any draws) */
    uint64_t key = bt_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + b), layer, BT_DROP_ATTN_PROBS);
    const uint32_t thr2 = dc.thr * 0x00010001u;  /* the threshold in both 16-bit halves (thr <= 0xffff) */
#pragma unroll
    for (int u = 0; u < 2; u++) {
        uint64_t w0 = (((uint64_t)h * T + i) * T + (uint64_t)(kb + u) * FB) >> 2;
        uint64_t word = 0, x = key + 0x9e3779b97f4a7c15ULL * (w0 + 1);   /* bt_dropout_word's argument, walked */
#pragma unroll
        for (int q = 0; q < FB / 4; q++, x += 0x9e3779b97f4a7c15ULL) {
            uint64_t r = bt_mix64(x);                 /* = bt_dropout_word(key, w0 + q) */
            if (dc.thr > 0xffffu) continue;      /* p rounds to 1: nothing kept */
            /* slots 0..3 are the four 16-bit quarters; slot s lands at bitpos(4 q) + 16 (s >> 1) + (s & 1) */
            uint32_t mlo = __vcmpgeu2((uint32_t)r, thr2), mhi = __vcmpgeu2((uint32_t)(r >> 32), thr2);
            uint32_t pr = (mlo & 1u) | ((mlo >> 15) & 2u) | ((mhi & 1u) << 16) | ((mhi >> 15) & 2u) << 16;
            word |= (uint64_t)pr << bitpos(4 * q);
        }
        bits[wi + u] = word;
    }
}

/* ---------------------------------------------------------------- forward
 * The online softmax of one key tile and the end of a block, shared by the
 * mma.sync and wgmma kernels (both hold a warp's 16 query rows x 64 keys in
 * m16n8k16's C layout: this lane's rows g and g + 8, r = 0, 1).
 *
 * online_softmax_tile: s holds the tile's scores S (in) and leaves as
 * dropout(P) unnormalised, the A operand of O += P V; m, l the running max
 * (log2 domain, scaled) and sum of exponentials of the two rows, updated;
 * acc (O so far) rescaled to the new max; keep(r): this lane's 16 keep bits
 * of row r in this tile (see bitpos; 0xffff without dropout), asked for
 * where each kernel has always read them. */
template <typename Keep>
__device__ __forceinline__ void online_softmax_tile(float (&s)[8][4], float (&acc)[8][4], float (&m)[2], float (&l)[2],
                                                    Keep keep, float scale_log2) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float mx = -INFINITY;
#pragma unroll
        for (int i = 0; i < 8; i++) mx = fmaxf(mx, fmaxf(s[i][2 * r], s[i][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float mnew = fmaxf(m[r], mx * scale_log2);
        float alpha = fast_exp2(m[r] - mnew);
        m[r] = mnew;
        l[r] *= alpha;
        const uint32_t b16 = keep(r);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            acc[i][2 * r] *= alpha; acc[i][2 * r + 1] *= alpha;
            float p0 = fast_exp2(s[i][2 * r] * scale_log2 - mnew), p1 = fast_exp2(s[i][2 * r + 1] * scale_log2 - mnew);
            l[r] += p0 + p1;
            if (!((b16 >> (2 * i)) & 1)) p0 = 0.0f;
            if (!((b16 >> (2 * i + 1)) & 1)) p1 = 0.0f;
            s[i][2 * r] = p0; s[i][2 * r + 1] = p1;
        }
    }
}
/* The end of a forward block for this lane's query rows row0 and row0 + 8
 * (in the sample): O = acc / l, times the dropout's 1 / (1 - p) (dsc), to
 * o_rows (the sample's first query row of o, head h's columns) as bf16, and
 * the log-sum-exp (log2 domain) to lse_bh (the head's [Tq]). */
__device__ __forceinline__ void fwd_store(const float (&acc)[8][4], const float (&m)[2], const float (&l)[2], bf16 *o_rows,
                                          int ldo, float *lse_bh, int row0, int t4, float dsc) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float lt = l[r];
        lt += __shfl_xor_sync(0xffffffffu, lt, 1);
        lt += __shfl_xor_sync(0xffffffffu, lt, 2);
        float inv = dsc / lt;
        int row = row0 + 8 * r;
        bf16 *dst = o_rows + (size_t)row * ldo;
#pragma unroll
        for (int i = 0; i < 8; i++)
            *(__nv_bfloat162 *)(dst + i * 8 + 2 * t4) = __floats2bfloat162_rn(acc[i][2 * r] * inv, acc[i][2 * r + 1] * inv);
        if (t4 == 0) lse_bh[row] = m[r] + log2f(lt);
    }
}

/* Block: 128 query rows (4 warps x 32 rows, two 16-row m-tiles per warp so
 * that each K/V fragment read from shared memory feeds two MMAs), keys in
 * tiles of 64, K and V double-buffered; dropout from the bits above. */
#define FQ 128
#define FWD_SMEM ((FQ + 4 * FB) * FP * 2)

__global__ void __launch_bounds__(128) flash_fwd_kernel(bf16 *o, float *lse, const uint64_t *bits, const bf16 *q,
                                                        const bf16 *k, const bf16 *v, int T, int Tq, int NH, int ldq, int ldk,
                                                        int ldv, int ldo, float scale_log2, DropCtx dc) {
    extern __shared__ __align__(16) unsigned char smraw[];
    bf16 *sQ = (bf16 *)smraw, *sK0 = sQ + FQ * FP, *sV0 = sK0 + 2 * FB * FP;
    int qb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    size_t rq = (size_t)b * T, rqq = (size_t)b * Tq;   /* key rows, query rows of this sample */
    const bf16 *qh = q + rqq * ldq + h * FD, *kh = k + rq * ldk + h * FD, *vh = v + rq * ldv + h * FD;
    load_tile(sQ, qh + (size_t)qb * FQ * ldq, ldq);
    load_tile(sQ + FB * FP, qh + ((size_t)qb * FQ + FB) * ldq, ldq);
    load_tile(sK0, kh, ldk);
    load_tile(sV0, vh, ldv);
    cp_commit();
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
        for (int mt = 0; mt < 2; mt++) {
            auto keep = [&](int r) {   /* this lane's 16 keep bits of row row0 + 16 mt + 8 r in this tile */
                int row = row0 + 16 * mt + 8 * r;
                return dc.on ? (uint32_t)(bits[(((size_t)b * NH + h) * Tq + row) * nkb + kb] >> (16 * t4)) : 0xffffu;
            };
            online_softmax_tile(s[mt], acc[mt], m[mt], l[mt], keep, scale_log2);
        }
        /* acc += P V */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t a[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                pack_a(a[mt], s[mt], ks);
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
        fwd_store(acc[mt], m[mt], l[mt], o + rqq * ldo + h * FD, ldo, lse + ((size_t)b * NH + h) * Tq, row0 + 16 * mt, t4,
                  dc.on ? dc.scale : 1.0f);
}

/* D[b,h,i] = dO[b,i,h,:] . O[b,i,h,:].  One thread per (b, i, h). */
__global__ void flash_pre_kernel(float *dsum, const bf16 *dout, const bf16 *o, int B, int T, int NH, int ldo) {
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
}

/* ---------------------------------------------------------------- backward
 * Two kernels, so that no partial dQ crosses blocks (no atomics):
 *   dkv: a block owns 64 keys (4 warps x 16) and loops over the query
 *        tiles (Q, dO, log-sum-exp, D, dropout words double-buffered).  In
 *        FA2's transposed form each warp computes S^T = K_w Q^T and
 *        dP^T = V_w dO^T with its K and V rows as A fragments held in
 *        registers, so P^T and dS^T come out in registers as the A operands
 *        of dV += P^T dO and dK += dS^T Q.
 *   dq:  a block owns 64 queries (4 warps x 16) and loops over the key
 *        tiles (K, V double-buffered): S = Q K^T and dP = dO V^T again,
 *        dS in registers, dQ += dS K; written once, plus `add` (the
 *        symmetric variant's dK, which is also a gradient of Q).
 * D_i = dO_i . O_i comes from flash_pre_kernel first. */
/* Column sums of a 64 x 64 block held in the C layout by 4 warps (warp w
 * rows 16 w + g and + 8, lane 4 g + t: columns 8 i + 2 t, + 1), added into
 * dst[0..63] (fp32 atomics, one per column per block).  red: 256 free shared
 * floats; every thread of the block calls it. */
__device__ __forceinline__ void tile_colsum_add(const float (&acc)[8][4], float *dst, float *red) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    float cs[8][2];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int c = 0; c < 2; c++) {
            float x = acc[i][c] + acc[i][2 + c];
            x += __shfl_xor_sync(0xffffffffu, x, 4);
            x += __shfl_xor_sync(0xffffffffu, x, 8);
            x += __shfl_xor_sync(0xffffffffu, x, 16);
            cs[i][c] = x;
        }
    __syncthreads();   /* red may alias tiles other warps were still reading */
    if (lane < 4)
#pragma unroll
        for (int i = 0; i < 8; i++) { red[w * 64 + 8 * i + 2 * lane] = cs[i][0]; red[w * 64 + 8 * i + 2 * lane + 1] = cs[i][1]; }
    __syncthreads();
    if (threadIdx.x < 64) atomicAdd(&dst[threadIdx.x], red[threadIdx.x] + red[64 + threadIdx.x] + red[128 + threadIdx.x] + red[192 + threadIdx.x]);
    __syncthreads();
}
/* The end of a dK/dV block (64 keys from token row row0, this thread's rows
 * row0 + 8 r): dK and dV to global as bf16, their column sums into the bias
 * gradients bg.k, bg.v (head h's 64 columns) where given. */
__device__ __forceinline__ void dkv_store(float (&dK)[8][4], float (&dV)[8][4], bf16 *dk, bf16 *dv, size_t row0, int lddk,
                                          int ldv, int h, int t4, AttnBiasGrad bg, float *red) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        bf16 *dkr = dk + (row0 + 8 * r) * lddk + h * FD, *dvr = dv + (row0 + 8 * r) * ldv + h * FD;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            *(__nv_bfloat162 *)(dkr + i * 8 + 2 * t4) = __floats2bfloat162_rn(dK[i][2 * r], dK[i][2 * r + 1]);
            *(__nv_bfloat162 *)(dvr + i * 8 + 2 * t4) = __floats2bfloat162_rn(dV[i][2 * r], dV[i][2 * r + 1]);
        }
    }
    if (bg.k) tile_colsum_add(dK, bg.k + h * FD, red);
    if (bg.v) tile_colsum_add(dV, bg.v + h * FD, red);
}
/* The end of a dQ block: dQ (+ add, the symmetric variant's dK) to global
 * as bf16, its column sums into bg.q where given. */
__device__ __forceinline__ void dq_store(float (&acc)[8][4], bf16 *dq, const bf16 *add, int ldadd, size_t row0, int ldq,
                                         int h, int t4, AttnBiasGrad bg, float *red) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        size_t row = row0 + 8 * r;
        bf16 *dst = dq + row * ldq + h * FD;
        const bf16 *ad = add ? add + row * ldadd + h * FD : NULL;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            if (ad) {
                __nv_bfloat162 e = *(const __nv_bfloat162 *)(ad + i * 8 + 2 * t4);
                acc[i][2 * r] += __bfloat162float(e.x); acc[i][2 * r + 1] += __bfloat162float(e.y);
            }
            *(__nv_bfloat162 *)(dst + i * 8 + 2 * t4) = __floats2bfloat162_rn(acc[i][2 * r], acc[i][2 * r + 1]);
        }
    }
    if (bg.q) tile_colsum_add(acc, bg.q + h * FD, red);
}

/* The per-query values a dK/dV block needs for queries i0 .. i0 + 63: the
 * log-sum-exp, D and the dropout word of key tile kb, into shared memory by
 * cp.async (part of the caller's next commit group: plain loads here would
 * stall the warps that issue them until the data arrive). */
__device__ __forceinline__ void load_qstats(float *sL, float *sD, uint64_t *sB, const float *lse_bh, const float *d_bh,
                                            const uint64_t *bits_bh, int i0, int nkb, int kb) {
    int t = threadIdx.x;
    if (t < 16) cp_async16(sL + 4 * t, lse_bh + i0 + 4 * t);
    else if (t < 32) cp_async16(sD + 4 * (t - 16), d_bh + i0 + 4 * (t - 16));
    else if (t < 32 + FB) {
        int j = t - 32;
        if (bits_bh) cp_async8(sB + j, bits_bh + (size_t)(i0 + j) * nkb + kb);
        else sB[j] = ~0ull;
    }
}

/* The elementwise middle of the dK/dV blocks, in the C layout of S^T and dP^T
 * (rows: keys kr0 + 8 r; columns: queries 8 i + 2 t4 + c of the tile):
 * P^T = exp2(S^T scale_log2 - lse), dP^T through the dropout, then
 * dpt = dS^T = P^T (dP^T - D) / sqrt(d) and st = dropout(P^T).  sL, sD, sB:
 * the tile's log-sum-exps, D and dropout words by query; bp0, bp1: the bits
 * of keys kr0, kr0 + 8 in those words. */
__device__ __forceinline__ void dkv_softmax_grad(float (&st)[8][4], float (&dpt)[8][4], const float *sL, const float *sD,
                                                 const uint64_t *sB, int bp0, int bp1, int t4, float dsc, float scale,
                                                 float scale_log2) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int q0 = i * 8 + 2 * t4;        /* two adjacent queries: 8- and 16-byte shared loads */
        const float2 L2 = *(const float2 *)(sL + q0), D2 = *(const float2 *)(sD + q0);
        const ulonglong2 W2 = *(const ulonglong2 *)(sB + q0);
#pragma unroll
        for (int c = 0; c < 2; c++) {
            float L = c ? L2.y : L2.x, Dd = c ? D2.y : D2.x;
            uint64_t word = c ? W2.y : W2.x;
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float p = fast_exp2(st[i][2 * r + c] * scale_log2 - L);
                float mk = ((word >> (r ? bp1 : bp0)) & 1) ? dsc : 0.0f;
                dpt[i][2 * r + c] = p * (dpt[i][2 * r + c] * mk - Dd) * scale;   /* dS^T */
                st[i][2 * r + c] = p * mk;                                        /* dropout(P)^T */
            }
        }
    }
}
/* The same for the dQ blocks (rows: queries row0 + 8 r with lse L0/L1, D
 * D0/D1 and keep bits m0/m1 of this lane's 16 keys; columns: keys 8 i +
 * 2 t4 + c): s = dS = P (dP dropout - D) / sqrt(d). */
__device__ __forceinline__ void dq_softmax_grad(float (&s)[8][4], const float (&dp)[8][4], uint32_t m0, uint32_t m1,
                                                float L0, float L1, float D0, float D1, float dsc, float scale,
                                                float scale_log2) {
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int r = 0; r < 2; r++)
#pragma unroll
            for (int c = 0; c < 2; c++) {
                uint32_t mw = r ? m1 : m0;
                float L = r ? L1 : L0, Dd = r ? D1 : D0;
                float p = fast_exp2(s[i][2 * r + c] * scale_log2 - L);
                float mk = ((mw >> (2 * i + c)) & 1) ? dsc : 0.0f;
                s[i][2 * r + c] = p * (dp[i][2 * r + c] * mk - Dd) * scale;
            }
}

/* What a backward block of head blockIdx.y of sample blockIdx.z reads: the
 * first key row and query row of the sample, the head's columns of q, k, v
 * and dO there, the head's log-sum-exps, D and dropout words ([Tq][nkb], or
 * NULL), and the numbers of query and key tiles.  Shared by the dK/dV and dQ
 * kernels of both implementations. */
struct BwdHead {
    size_t rq, rqq;
    const bf16 *qh, *kh, *vh, *oh;
    const float *lse_bh, *d_bh;
    const uint64_t *bits_bh;
    int nqb, nkb;
};
__device__ __forceinline__ BwdHead bwd_head(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dout,
                                            const float *lse, const float *dsum, const uint64_t *bits, int T, int Tq,
                                            int NH, int ldq, int ldk, int ldv, int ldo) {
    const int h = blockIdx.y, b = blockIdx.z;
    BwdHead r;
    r.rq = (size_t)b * T;
    r.rqq = (size_t)b * Tq;
    r.qh = q + r.rqq * ldq + h * FD;
    r.kh = k + r.rq * ldk + h * FD;
    r.vh = v + r.rq * ldv + h * FD;
    r.oh = dout + r.rqq * ldo + h * FD;
    r.nqb = Tq / FB;
    r.nkb = T / FB;
    const size_t bh = (size_t)b * NH + h;
    r.lse_bh = lse + bh * Tq;
    r.d_bh = dsum + bh * Tq;
    r.bits_bh = bits ? bits + bh * Tq * r.nkb : NULL;
    return r;
}

#define BWD_TILE (FB * FP)
#define DKV_SMEM (6 * BWD_TILE * 2 + 2 * FB * 4 * 2 + 2 * FB * 8)
#define DQ_SMEM (6 * BWD_TILE * 2)

__global__ void __launch_bounds__(128, 2) flash_bwd_dkv_kernel(bf16 *dk, bf16 *dv,
                                                            const bf16 *q, const bf16 *k,
                                                            const bf16 *v, const bf16 *dout, const float *lse,
                                                            const float *dsum, const uint64_t *bits, int T, int Tq, int NH,
                                                            int ldq, int ldk, int ldv, int ldo, int lddk, float scale,
                                                            float scale_log2, DropCtx dc, AttnBiasGrad bg) {
    extern __shared__ __align__(16) unsigned char smraw[];
    bf16 *sK = (bf16 *)smraw, *sV = sK + BWD_TILE, *sQ0 = sV + BWD_TILE, *sO0 = sQ0 + 2 * BWD_TILE;
    float *sL0 = (float *)(sO0 + 2 * BWD_TILE), *sD0 = sL0 + 2 * FB;
    uint64_t *sB0 = (uint64_t *)(sD0 + 2 * FB);
    int kb = blockIdx.x, h = blockIdx.y;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const auto [rq, rqq, qh, kh, vh, oh, lse_bh, d_bh, bits_bh, nqb, nkb] =
        bwd_head(q, k, v, dout, lse, dsum, bits, T, Tq, NH, ldq, ldk, ldv, ldo);
    load_tile(sK, kh + (size_t)kb * FB * ldk, ldk);
    load_tile(sV, vh + (size_t)kb * FB * ldv, ldv);
    load_tile(sQ0, qh, ldq);
    load_tile(sO0, oh, ldo);
    load_qstats(sL0, sD0, sB0, lse_bh, d_bh, bits_bh, 0, nkb, kb);
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
    const int bp0 = bitpos(kr0), bp1 = bitpos(kr0 + 8);
    for (int qb = 0; qb < nqb; qb++) {
        int buf = qb & 1;
        const bf16 *sQ = sQ0 + buf * BWD_TILE, *sO = sO0 + buf * BWD_TILE;
        const float *sL = sL0 + buf * FB, *sD = sD0 + buf * FB;
        const uint64_t *sB = sB0 + buf * FB;
        if (qb + 1 < nqb) {   /* prefetch the next query tile into the other buffer */
            int nb = buf ^ 1;
            load_tile(sQ0 + nb * BWD_TILE, qh + (size_t)(qb + 1) * FB * ldq, ldq);
            load_tile(sO0 + nb * BWD_TILE, oh + (size_t)(qb + 1) * FB * ldo, ldo);
            load_qstats(sL0 + nb * FB, sD0 + nb * FB, sB0 + nb * FB, lse_bh, d_bh, bits_bh, (qb + 1) * FB, nkb, kb);
            cp_commit();
        }
        float st[8][4], dpt[8][4];
        mm2_abt_reg(st, dpt, kf, vf, sQ, sO, lane);   /* S^T = K Q^T, dP^T = V dO^T */
        dkv_softmax_grad(st, dpt, sL, sD, sB, bp0, bp1, t4, dsc, scale, scale_log2);
        /* dV += P^T dO;  dK += dS^T Q  (A operands straight from registers) */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t ap[4], as[4];
            pack_a(ap, st, ks);
            pack_a(as, dpt, ks);
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
        cp_wait_all();
        __syncthreads();   /* next tile landed; this tile's buffers free */
    }
    dkv_store(dK, dV, dk, dv, rq + kb * FB + kr0, lddk, ldv, h, t4, bg, (float *)smraw);
}

__global__ void __launch_bounds__(128, 3) flash_bwd_dq_kernel(bf16 *dq, const bf16 *add, int ldadd, const bf16 *q,
                                                           const bf16 *k, const bf16 *v, const bf16 *dout,
                                                           const float *lse, const float *dsum, const uint64_t *bits,
                                                           int T, int Tq, int NH, int ldq, int ldk, int ldv, int ldo,
                                                           float scale, float scale_log2, DropCtx dc, AttnBiasGrad bg) {
    extern __shared__ __align__(16) unsigned char smraw[];
    bf16 *sQ = (bf16 *)smraw, *sO = sQ + BWD_TILE, *sK0 = sO + BWD_TILE, *sV0 = sK0 + 2 * BWD_TILE;
    int qb = blockIdx.x, h = blockIdx.y;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const auto [rq, rqq, qh, kh, vh, oh, lse_bh, d_bh, bits_bh, nqb, nkb] =
        bwd_head(q, k, v, dout, lse, dsum, bits, T, Tq, NH, ldq, ldk, ldv, ldo);
    load_tile(sQ, qh + (size_t)qb * FB * ldq, ldq);
    load_tile(sO, oh + (size_t)qb * FB * ldo, ldo);
    load_tile(sK0, kh, ldk);
    load_tile(sV0, vh, ldv);
    cp_commit();
    const int row0 = qb * FB + w * 16 + g;       /* rows row0, row0 + 8 */
    const float L0 = lse_bh[row0], L1 = lse_bh[row0 + 8], D0 = d_bh[row0], D1 = d_bh[row0 + 8];
    const uint64_t *bw0 = bits_bh ? bits_bh + (size_t)row0 * nkb : NULL, *bw1 = bw0 ? bw0 + 8 * nkb : NULL;
    const float dsc = dc.on ? dc.scale : 1.0f;
    uint32_t qf[4][4], of[4][4];
    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
    for (int kb = 0; kb < nkb; kb++) {
        int buf = kb & 1;
        const bf16 *sK = sK0 + buf * BWD_TILE, *sV = sV0 + buf * BWD_TILE;
        uint32_t m0 = bw0 ? (uint32_t)(bw0[kb] >> (16 * t4)) : 0xffffu, m1 = bw1 ? (uint32_t)(bw1[kb] >> (16 * t4)) : 0xffffu;
        cp_wait_all();
        __syncthreads();
        if (kb == 0)
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                load_a(qf[ks], sQ, w * 16, ks * 16, lane);
                load_a(of[ks], sO, w * 16, ks * 16, lane);
            }
        if (kb + 1 < nkb) {
            load_tile(sK0 + (buf ^ 1) * BWD_TILE, kh + (size_t)(kb + 1) * FB * ldk, ldk);
            load_tile(sV0 + (buf ^ 1) * BWD_TILE, vh + (size_t)(kb + 1) * FB * ldv, ldv);
        }
        cp_commit();
        float s[8][4], dp[8][4];
        mm2_abt_reg(s, dp, qf, of, sK, sV, lane);   /* S = Q K^T, dP = dO V^T */
        dq_softmax_grad(s, dp, m0, m1, L0, L1, D0, D1, dsc, scale, scale_log2);
        /* dQ += dS K */
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            uint32_t a[4];
            pack_a(a, s, ks);
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bk[4];
                load_b_kn(bk, sK, ks * 16, np * 16, lane);
                mma16816(acc[2 * np], a, bk[0], bk[1]);
                mma16816(acc[2 * np + 1], a, bk[2], bk[3]);
            }
        }
    }
    dq_store(acc, dq, add, ldadd, rqq + row0, ldq, h, t4, bg, (float *)smraw);
}

/* ---------------------------------------------------------------- backward on wgmma (sm_90a)
 * The same two kernels with Hopper's warpgroup MMA (wgmma.cuh): one
 * warpgroup per block, 64 keys (dkv) or 64 queries (dq), every tile in
 * shared memory in the 128-byte swizzle.  The products:
 *   dkv:  S^T = K Q^T and dP^T = V dO^T (both operands K-major in shared
 *         memory); then, with P^T and dS^T as register A operands,
 *         dV += P^T dO and dK += dS^T Q (dO and Q read MN-major, i.e. the
 *         same tiles transposed by the descriptor);
 *   dq:   S = Q K^T and dP = dO V^T; dQ += dS K (K read MN-major).
 * The elementwise part is the mma.sync kernels' exactly: wgmma's
 * accumulator is m16n8k16's C layout per warp.  Built for sm_90a only (the
 * generic PTX gets an empty body; the host never launches it elsewhere). */
#define WG_TILE 8192                 /* 64 x 64 bf16 */
#define DKVW_SMEM (6 * WG_TILE + 2 * FB * 4 * 2 + 2 * FB * 8 + 1024)
#define DQW_SMEM (6 * WG_TILE + 1024)

/* 64 rows x 64 columns of a [.., ld] bf16 tensor into a swizzled tile. */
__device__ __forceinline__ void load_tile_sw(unsigned char *dst, const bf16 *src, int ld) {
    for (int c = threadIdx.x; c < FB * FD / 8; c += blockDim.x) {
        int r = c >> 3, ch = c & 7;
        cp_async16(dst + r * 128 + ((ch ^ (r & 7)) << 4), src + (size_t)r * ld + ch * 8);
    }
}
/* dynamic shared memory rounded up to 1024 bytes (the swizzle's alignment) */
__device__ __forceinline__ unsigned char *smem_align1k(unsigned char *p) {
    return p + ((1024 - (smem_u32(p) & 1023)) & 1023);
}

__global__ void __launch_bounds__(128, 3) flash_bwd_dkv_wg_kernel(bf16 *dk, bf16 *dv, const bf16 *q, const bf16 *k,
                                                                 const bf16 *v, const bf16 *dout, const float *lse,
                                                                 const float *dsum, const uint64_t *bits, int T, int Tq, int NH,
                                                                 int ldq, int ldk, int ldv, int ldo, int lddk, float scale,
                                                                 float scale_log2, DropCtx dc, AttnBiasGrad bg) {
#ifdef SYMBERT_WGMMA
    extern __shared__ __align__(16) unsigned char smraw[];
    unsigned char *sm = smem_align1k(smraw);
    unsigned char *sK = sm, *sV = sm + WG_TILE, *sQ0 = sm + 2 * WG_TILE, *sO0 = sm + 4 * WG_TILE;
    float *sL0 = (float *)(sm + 6 * WG_TILE), *sD0 = sL0 + 2 * FB;
    uint64_t *sB0 = (uint64_t *)(sD0 + 2 * FB);
    int kb = blockIdx.x, h = blockIdx.y;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const auto [rq, rqq, qh, kh, vh, oh, lse_bh, d_bh, bits_bh, nqb, nkb] =
        bwd_head(q, k, v, dout, lse, dsum, bits, T, Tq, NH, ldq, ldk, ldv, ldo);
    load_tile_sw(sK, kh + (size_t)kb * FB * ldk, ldk);
    load_tile_sw(sV, vh + (size_t)kb * FB * ldv, ldv);
    load_tile_sw(sQ0, qh, ldq);
    load_tile_sw(sO0, oh, ldo);
    load_qstats(sL0, sD0, sB0, lse_bh, d_bh, bits_bh, 0, nkb, kb);
    cp_commit();
    const uint32_t aK = smem_u32(sK), aV = smem_u32(sV), aQ0 = smem_u32(sQ0), aO0 = smem_u32(sO0);
    const float dsc = dc.on ? dc.scale : 1.0f;
    float dK[8][4], dV[8][4], st[8][4], dpt[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) dK[i][j] = dV[i][j] = st[i][j] = dpt[i][j] = 0.0f;
    const int kr0 = w * 16 + g;                  /* this thread's key rows (in the tile): kr0, kr0 + 8 */
    const int bp0 = bitpos(kr0), bp1 = bitpos(kr0 + 8);
    for (int qb = 0; qb < nqb; qb++) {
        int buf = qb & 1;
        cp_wait_all();
        proxy_fence();
        __syncthreads();   /* tile qb landed; every wgmma of tile qb - 1 is done (waited), so its buffers are free */
        const float *sL = sL0 + buf * FB, *sD = sD0 + buf * FB;
        const uint64_t *sB = sB0 + buf * FB;
        if (qb + 1 < nqb) {   /* prefetch the next query tile into the other buffer */
            int nb = buf ^ 1;
            load_tile_sw(sQ0 + nb * WG_TILE, qh + (size_t)(qb + 1) * FB * ldq, ldq);
            load_tile_sw(sO0 + nb * WG_TILE, oh + (size_t)(qb + 1) * FB * ldo, ldo);
            load_qstats(sL0 + nb * FB, sD0 + nb * FB, sB0 + nb * FB, lse_bh, d_bh, bits_bh, (qb + 1) * FB, nkb, kb);
        }
        cp_commit();
        const uint32_t aQ = aQ0 + buf * WG_TILE, aO = aO0 + buf * WG_TILE;
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_ss<0, 0>(st, wg_desc(aK + 32 * ks), wg_desc(aQ + 32 * ks), ks);
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_ss<0, 0>(dpt, wg_desc(aV + 32 * ks), wg_desc(aO + 32 * ks), ks);
        wg_commit();
        wg_wait0();
        dkv_softmax_grad(st, dpt, sL, sD, sB, bp0, bp1, t4, dsc, scale, scale_log2);
        uint32_t ap[4][4], as[4][4];
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            pack_a(ap[ks], st, ks);
            pack_a(as[ks], dpt, ks);
        }
        /* dV += P^T dO;  dK += dS^T Q */
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            wg_rs<1>(dV, ap[ks], wg_desc(aO + 2048 * ks));
            wg_rs<1>(dK, as[ks], wg_desc(aQ + 2048 * ks));
        }
        wg_commit();
        wg_wait0();
    }
    dkv_store(dK, dV, dk, dv, rq + kb * FB + kr0, lddk, ldv, h, t4, bg, (float *)smraw);
#endif
}

__global__ void __launch_bounds__(128, 3) flash_bwd_dq_wg_kernel(bf16 *dq, const bf16 *add, int ldadd, const bf16 *q,
                                                                const bf16 *k, const bf16 *v, const bf16 *dout,
                                                                const float *lse, const float *dsum, const uint64_t *bits,
                                                                int T, int Tq, int NH, int ldq, int ldk, int ldv, int ldo,
                                                                float scale, float scale_log2, DropCtx dc, AttnBiasGrad bg) {
#ifdef SYMBERT_WGMMA
    extern __shared__ __align__(16) unsigned char smraw[];
    unsigned char *sm = smem_align1k(smraw);
    unsigned char *sQ = sm, *sO = sm + WG_TILE, *sK0 = sm + 2 * WG_TILE, *sV0 = sm + 4 * WG_TILE;
    int qb = blockIdx.x, h = blockIdx.y;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const auto [rq, rqq, qh, kh, vh, oh, lse_bh, d_bh, bits_bh, nqb, nkb] =
        bwd_head(q, k, v, dout, lse, dsum, bits, T, Tq, NH, ldq, ldk, ldv, ldo);
    load_tile_sw(sQ, qh + (size_t)qb * FB * ldq, ldq);
    load_tile_sw(sO, oh + (size_t)qb * FB * ldo, ldo);
    load_tile_sw(sK0, kh, ldk);
    load_tile_sw(sV0, vh, ldv);
    cp_commit();
    const int row0 = qb * FB + w * 16 + g;       /* rows row0, row0 + 8 */
    const float L0 = lse_bh[row0], L1 = lse_bh[row0 + 8], D0 = d_bh[row0], D1 = d_bh[row0 + 8];
    const uint64_t *bw0 = bits_bh ? bits_bh + (size_t)row0 * nkb : NULL, *bw1 = bw0 ? bw0 + 8 * nkb : NULL;
    const float dsc = dc.on ? dc.scale : 1.0f;
    const uint32_t aQ = smem_u32(sQ), aO = smem_u32(sO), aK0 = smem_u32(sK0), aV0 = smem_u32(sV0);
    float acc[8][4], s[8][4], dp[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = s[i][j] = dp[i][j] = 0.0f;
    for (int kb = 0; kb < nkb; kb++) {
        int buf = kb & 1;
        uint32_t m0 = bw0 ? (uint32_t)(bw0[kb] >> (16 * t4)) : 0xffffu, m1 = bw1 ? (uint32_t)(bw1[kb] >> (16 * t4)) : 0xffffu;
        cp_wait_all();
        proxy_fence();
        __syncthreads();
        if (kb + 1 < nkb) {
            load_tile_sw(sK0 + (buf ^ 1) * WG_TILE, kh + (size_t)(kb + 1) * FB * ldk, ldk);
            load_tile_sw(sV0 + (buf ^ 1) * WG_TILE, vh + (size_t)(kb + 1) * FB * ldv, ldv);
        }
        cp_commit();
        const uint32_t aK = aK0 + buf * WG_TILE, aV = aV0 + buf * WG_TILE;
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_ss<0, 0>(s, wg_desc(aQ + 32 * ks), wg_desc(aK + 32 * ks), ks);
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_ss<0, 0>(dp, wg_desc(aO + 32 * ks), wg_desc(aV + 32 * ks), ks);
        wg_commit();
        wg_wait0();
        dq_softmax_grad(s, dp, m0, m1, L0, L1, D0, D1, dsc, scale, scale_log2);
        uint32_t a[4][4];
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            pack_a(a[ks], s, ks);
        }
        /* dQ += dS K */
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_rs<1>(acc, a[ks], wg_desc(aK + 2048 * ks));
        wg_commit();
        wg_wait0();
    }
    dq_store(acc, dq, add, ldadd, rqq + row0, ldq, h, t4, bg, (float *)smraw);
#endif
}

/* Forward on wgmma: one warpgroup per block of 64 queries (warp w: rows
 * 16 w .. 16 w + 15), keys in tiles of 64 (K and V double-buffered):
 * S = Q K^T from shared memory, the online softmax and dropout of the
 * mma.sync kernel above (online_softmax_tile, fwd_store), then O += P V
 * with P from registers and V read MN-major. */
#define FWDW_SMEM (5 * WG_TILE + 1024)
__global__ void __launch_bounds__(128, 4) flash_fwd_wg_kernel(bf16 *o, float *lse, const uint64_t *bits, const bf16 *q,
                                                             const bf16 *k, const bf16 *v, int T, int Tq, int NH, int ldq, int ldk,
                                                             int ldv, int ldo, float scale_log2, DropCtx dc) {
#ifdef SYMBERT_WGMMA
    extern __shared__ __align__(16) unsigned char smraw[];
    unsigned char *sm = smem_align1k(smraw);
    unsigned char *sQ = sm, *sK0 = sm + WG_TILE, *sV0 = sm + 3 * WG_TILE;
    int qb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    size_t rq = (size_t)b * T, rqq = (size_t)b * Tq;   /* key rows, query rows of this sample */
    const bf16 *qh = q + rqq * ldq + h * FD, *kh = k + rq * ldk + h * FD, *vh = v + rq * ldv + h * FD;
    load_tile_sw(sQ, qh + (size_t)qb * FB * ldq, ldq);
    load_tile_sw(sK0, kh, ldk);
    load_tile_sw(sV0, vh, ldv);
    cp_commit();
    const int row0 = qb * FB + w * 16 + g;       /* rows row0 + 8 r */
    const uint32_t aQ = smem_u32(sQ), aK0 = smem_u32(sK0), aV0 = smem_u32(sV0);
    const int nkb = T / FB;
    const uint64_t *bw = dc.on ? bits + (((size_t)b * NH + h) * Tq + row0) * nkb : NULL;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    float acc[8][4], s[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = s[i][j] = 0.0f;
    for (int kb = 0; kb < nkb; kb++) {
        int buf = kb & 1;
        uint32_t keep[2];
        keep[0] = bw ? (uint32_t)(bw[kb] >> (16 * t4)) : 0xffffu;
        keep[1] = bw ? (uint32_t)(bw[8 * nkb + kb] >> (16 * t4)) : 0xffffu;
        cp_wait_all();
        proxy_fence();
        __syncthreads();   /* tile kb landed; tile kb - 1's products are done (waited) */
        if (kb + 1 < nkb) {
            load_tile_sw(sK0 + (buf ^ 1) * WG_TILE, kh + (size_t)(kb + 1) * FB * ldk, ldk);
            load_tile_sw(sV0 + (buf ^ 1) * WG_TILE, vh + (size_t)(kb + 1) * FB * ldv, ldv);
        }
        cp_commit();
        const uint32_t aK = aK0 + buf * WG_TILE, aV = aV0 + buf * WG_TILE;
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_ss<0, 0>(s, wg_desc(aQ + 32 * ks), wg_desc(aK + 32 * ks), ks);
        wg_commit();
        wg_wait0();
        online_softmax_tile(s, acc, m, l, [&](int r) { return keep[r]; }, scale_log2);
        uint32_t a[4][4];
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            pack_a(a[ks], s, ks);
        }
        /* O += P V */
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) wg_rs<1>(acc, a[ks], wg_desc(aV + 2048 * ks));
        wg_commit();
        wg_wait0();
    }
    fwd_store(acc, m, l, o + rqq * ldo + h * FD, ldo, lse + ((size_t)b * NH + h) * Tq, row0, t4, dc.on ? dc.scale : 1.0f);
#endif
}

static int wgmma_runs(void) {
    int dev = 0, major = 0, minor = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    return major == 9 && minor == 0;
}
int flash_kernels(int want, char *err, size_t errlen) {
    if (want == FLASH_AUTO) return wgmma_runs() ? FLASH_WGMMA : FLASH_MMA;
    if (want == FLASH_WGMMA && !wgmma_runs()) {
        snprintf(err, errlen, "the wgmma attention kernels need a GPU of compute capability 9.0 (H100/H200)");
        return -1;
    }
    return want;
}

int flash_supported(AttnShape s) {
    return s.d == FD && s.T % FQ == 0 && (s.Tq == 0 || s.Tq % FQ == 0) && s.ldq % 8 == 0 && s.ldk % 8 == 0 && s.ldv % 8 == 0 && s.ldo % 8 == 0;
}

void flash_dropout_bits(uint64_t *bits, AttnShape s, DropCtx dc, int layer, cudaStream_t stream) {
    if (!dc.on) return;
    int Tq = s.Tq ? s.Tq : s.T;
    size_t n = (size_t)s.B * s.NH * Tq * (s.T / FB) / 2;
    flash_bits_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(bits, s.B, s.T, Tq, s.qrows, s.NH, dc, layer);
    LAUNCH_CHECK("flash_bits_kernel");
}

void flash_forward(int kernels, bf16 *o, float *lse, const uint64_t *bits, const bf16 *q, const bf16 *k, const bf16 *v,
                   AttnShape s, DropCtx dc) {
    static int attr_set = 0;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, FWD_SMEM));
        CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_wg_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, FWDW_SMEM));
        attr_set = 1;
    }
    float scale_log2 = 1.4426950408889634f / sqrtf((float)s.d);
    const int Tq = s.Tq ? s.Tq : s.T;
    if (kernels == FLASH_WGMMA) {
        dim3 grid(Tq / FB, s.NH, s.B);
        flash_fwd_wg_kernel<<<grid, 128, FWDW_SMEM, g_stream>>>(o, lse, dc.on ? bits : NULL, q, k, v, s.T, Tq, s.NH, s.ldq,
                                                                s.ldk, s.ldv, s.ldo, scale_log2, dc);
        LAUNCH_CHECK("flash_fwd_wg_kernel");
        return;
    }
    dim3 grid(Tq / FQ, s.NH, s.B);
    flash_fwd_kernel<<<grid, 128, FWD_SMEM, g_stream>>>(o, lse, dc.on ? bits : NULL, q, k, v, s.T, Tq, s.NH, s.ldq, s.ldk,
                                                        s.ldv, s.ldo, scale_log2, dc);
    LAUNCH_CHECK("flash_fwd_kernel");
}

void flash_backward(int kernels, bf16 *dq, bf16 *dk, bf16 *dv, float *scratch, float *dsum, const bf16 *dout,
                    const bf16 *o, const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, const uint64_t *bits,
                    AttnShape s, DropCtx dc, int k_is_q, AttnBiasGrad bg) {
    static int attr_set = 0;
    if (!attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_dkv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, DKV_SMEM));
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_dq_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, DQ_SMEM));
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_dkv_wg_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, DKVW_SMEM));
        CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_dq_wg_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, DQW_SMEM));
        attr_set = 1;
    }
    const int wg = kernels == FLASH_WGMMA;
    int C = s.NH * FD;
    const int Tq = s.Tq ? s.Tq : s.T;
    if (Tq != s.T && k_is_q)
        cu_fail("flash_backward", "flash_backward", "gathered queries with k == q: pass k_is_q 0 and add dq yourself",
                __FILE__, __LINE__);
    size_t n = (size_t)s.B * Tq * s.NH;
    flash_pre_kernel<<<ceil_div(n, 256), 256, 0, g_stream>>>(dsum, dout, o, s.B, Tq, s.NH, s.ldo);
    LAUNCH_CHECK("flash_pre_kernel");
    dim3 grid(s.T / FB, s.NH, s.B), gridq(Tq / FB, s.NH, s.B);   /* key blocks, query blocks */
    float scale = 1.0f / sqrtf((float)s.d), scale_log2 = 1.4426950408889634f * scale;
    const uint64_t *bb = dc.on ? bits : NULL;
    /* when k is q, dK goes to the scratch (as bf16 [rows, C]) and is added into dQ */
    bf16 *dkk = k_is_q ? (bf16 *)scratch : dk;
    int lddk = k_is_q ? C : s.ldk;
    if (wg)
        flash_bwd_dkv_wg_kernel<<<grid, 128, DKVW_SMEM, g_stream>>>(dkk, dv, q, k, v, dout, lse, dsum, bb, s.T, Tq, s.NH,
            s.ldq, s.ldk, s.ldv, s.ldo, lddk, scale, scale_log2, dc, bg);
    else
        flash_bwd_dkv_kernel<<<grid, 128, DKV_SMEM, g_stream>>>(dkk, dv, q, k, v, dout, lse, dsum, bb, s.T, Tq, s.NH,
            s.ldq, s.ldk, s.ldv, s.ldo, lddk, scale, scale_log2, dc, bg);
    LAUNCH_CHECK(wg ? "flash_bwd_dkv_wg_kernel" : "flash_bwd_dkv_kernel");
    if (wg)
        flash_bwd_dq_wg_kernel<<<gridq, 128, DQW_SMEM, g_stream>>>(dq, k_is_q ? dkk : NULL, C, q, k, v, dout, lse, dsum,
            bb, s.T, Tq, s.NH, s.ldq, s.ldk, s.ldv, s.ldo, scale, scale_log2, dc, bg);
    else
        flash_bwd_dq_kernel<<<gridq, 128, DQ_SMEM, g_stream>>>(dq, k_is_q ? dkk : NULL, C, q, k, v, dout, lse, dsum, bb,
            s.T, Tq, s.NH, s.ldq, s.ldk, s.ldv, s.ldo, scale, scale_log2, dc, bg);
    LAUNCH_CHECK(wg ? "flash_bwd_dq_wg_kernel" : "flash_bwd_dq_kernel");
}
