/* mask.cuh - the MLM masking of trainer/model.h (bt_mask_batch) on the GPU.
 *
 * In: the raw ids of a micro-batch [B, T] and, per sample, where its
 * labelled positions start in the batch's list (off[b], from the host's
 * bt_mask_count: the host needs the counts anyway, for the loss normaliser
 * and the shapes of the head's products).  Out: the masked input ids [B*T],
 * the list of labelled positions in order and their labels, exactly those of
 * bt_mask_batch (the same draws: model.h's bt_mask_chosen and bt_mask_input,
 * compiled for the device).  A sample whose count disagrees with off[] sets *err to
 * its index + 1 (checked when the loss is read).
 *
 * One block per sample walks the positions in chunks of blockDim; a chunk's
 * chosen positions get their rank from a warp ballot and a per-warp prefix. */
#ifndef SYMBERT_CUDA_MASK_CUH
#define SYMBERT_CUDA_MASK_CUH
#include "trainer/cuda/rng.cuh"

#define MASK_THREADS 512

__global__ static void mlm_mask_kernel(int32_t *inputs, int32_t *pos, int32_t *labels, int *err,
                                       const uint16_t *ids, const int32_t *off, int T, int vocab,
                                       uint64_t seed, uint64_t step, uint64_t sample0) {
    __shared__ int warp_n[MASK_THREADS / 32];
    __shared__ int base;
    const int b = blockIdx.x, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const uint64_t key = bt_mask_key(seed, step, sample0 + (uint64_t)b);
    if (threadIdx.x == 0) base = off[b];
    __syncthreads();
    for (int t0 = 0; t0 < T; t0 += blockDim.x) {
        const int t = t0 + threadIdx.x;
        int id = 0, chosen = 0;
        if (t < T) {
            id = ids[(size_t)b * T + t];
            chosen = bt_mask_chosen(key, t, id);
        }
        unsigned bal = __ballot_sync(0xffffffffu, chosen);
        if (lane == 0) warp_n[w] = __popc(bal);
        __syncthreads();
        int before = base;
        for (int i = 0; i < w; i++) before += warp_n[i];
        before += __popc(bal & ((1u << lane) - 1u));
        if (t < T) {
            if (chosen) {
                pos[before] = b * T + t;
                labels[before] = id;
            }
            inputs[(size_t)b * T + t] = chosen ? bt_mask_input(key, t, id, vocab) : id;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int n = 0;
            for (int i = 0; i < (int)(blockDim.x >> 5); i++) n += warp_n[i];
            base += n;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0 && base != off[b + 1]) atomicCAS(err, 0, b + 1);
}
#endif
