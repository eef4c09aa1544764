/* wgmma.cuh - Hopper warpgroup MMA (wgmma.mma_async, sm_90a only) for the
 * attention kernels: a 64 x 64 fp32 accumulator per warpgroup (4 warps,
 * 128 threads) += A (64 x 16) . B (16 x 64) in bf16, B (and optionally A)
 * read from shared memory through a matrix descriptor.
 *
 * Shared-memory tiles are 64 rows x 64 bf16 (128 bytes a row), 1024-byte
 * aligned, in the 128-byte swizzle: the 16-byte chunk c of row r is stored at
 * chunk c ^ (r % 8) (swz_off).  One such tile serves as
 *   K-major   (rows = M or N, the 64 columns = K): the k-step s of 16 starts
 *             32 s bytes into the tile;
 *   MN-major  (rows = K, columns = M or N; the "transposed" operand): the
 *             k-step s starts 2048 s bytes (16 rows) in.
 * Descriptor: start address / 16, leading byte offset 16 (unused here),
 * stride byte offset 1024 (between 8-row groups), swizzle mode 128 B.
 * Measured on the H100 (a probe of all five operand forms against a host
 * product): exact for these encodings.
 *
 * Accumulators are float[8][4] in mma.sync's C layout per warp: warp w holds
 * rows 16 w + g and 16 w + g + 8 (lane = 4 g + t), n-tile i columns
 * 8 i + 2 t and + 1; so acc[i][0..1] is row 16 w + g, acc[i][2..3] row + 8.
 * An A operand from registers is m16n8k16's A fragment of the warp's 16 rows.
 *
 * Order of use: wg_fence() before the first wgmma that touches registers
 * written by ordinary code; wg_commit() after a batch; wg_wait0() before
 * reading the accumulators or reusing the A registers or the tiles.  Shared
 * memory written by threads (cp.async included) needs proxy_fence() and a
 * barrier before a wgmma reads it. */
#ifndef SYMBERT_CUDA_WGMMA_CUH
#define SYMBERT_CUDA_WGMMA_CUH
#include <stdint.h>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SYMBERT_WGMMA 1
#endif

__host__ __device__ __forceinline__ int swz_off(int r, int c) { return r * 128 + (((c >> 3) ^ (r & 7)) << 4) + (c & 7) * 2; }

#ifdef SYMBERT_WGMMA
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr) {
    return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}
#define WG_D8x4(a) "+f"(a[0][0]), "+f"(a[0][1]), "+f"(a[0][2]), "+f"(a[0][3]), "+f"(a[1][0]), "+f"(a[1][1]), "+f"(a[1][2]), \
    "+f"(a[1][3]), "+f"(a[2][0]), "+f"(a[2][1]), "+f"(a[2][2]), "+f"(a[2][3]), "+f"(a[3][0]), "+f"(a[3][1]), "+f"(a[3][2]), \
    "+f"(a[3][3]), "+f"(a[4][0]), "+f"(a[4][1]), "+f"(a[4][2]), "+f"(a[4][3]), "+f"(a[5][0]), "+f"(a[5][1]), "+f"(a[5][2]), \
    "+f"(a[5][3]), "+f"(a[6][0]), "+f"(a[6][1]), "+f"(a[6][2]), "+f"(a[6][3]), "+f"(a[7][0]), "+f"(a[7][1]), "+f"(a[7][2]), \
    "+f"(a[7][3])
#define WG_DREGS "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
/* acc = (accumulate ? acc : 0) + A B, A and B from shared memory; TA/TB: MN-major (transposed) operands */
template <int TA, int TB>
__device__ __forceinline__ void wg_ss(float (&acc)[8][4], uint64_t da, uint64_t db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_DREGS ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                 : WG_D8x4(acc) : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}
/* acc += A B, A from registers (the warp's m16n8k16 A fragment), B from shared memory */
template <int TB>
__device__ __forceinline__ void wg_rs(float (&acc)[8][4], const uint32_t (&a)[4], uint64_t db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_DREGS ", {%32,%33,%34,%35}, %36, 1, 1, 1, %37;\n"
                 : WG_D8x4(acc) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(TB));
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
#endif
#endif
