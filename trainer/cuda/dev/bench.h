/* bench.h - the kernel micro-benchmarks of bert-train-cuda-bench
 * (bench_kernels.cu), outside the trainer's library: only the benchmark
 * links them. */
#ifndef SYMBERT_TRAINER_CUDA_DEV_BENCH_H
#define SYMBERT_TRAINER_CUDA_DEV_BENCH_H
#ifdef __cplusplus
extern "C" {
#endif
#include "trainer/cuda/gpu.h"

/* TFLOP/s of an m x n x k bf16 product through the model's cuBLASLt
 * wrapper; GB/s (read + write) of a device-to-device copy; forward and
 * backward milliseconds of attention (impl BTC_ATTN_FLASH, _FLASH_MMA,
 * _FLASH_WGMMA or _REF, bf16, head size 64, dropout p_drop). */
double btc_bench_gemm(int m, int n, int k, int bias, int reps);   /* bias: with the bias epilogue */
double btc_bench_copy(size_t bytes, int reps);
void btc_bench_attention(int B, int T, int heads, int impl, float p_drop, int reps, double *fwd_ms, double *bwd_ms);
/* Which flash kernels impl (BTC_ATTN_FLASH*) runs here: "flash (wgmma)" or "flash (mma.sync)". */
const char *btc_flash_kernels(int impl);
/* The MLM head's products (forward, word gradient, input gradient) in ms,
 * vocab V computed as Vr rows (Vr > V: padded), n masked rows, hidden C;
 * tune 0: the heuristic's first pick, 1: the fastest of its candidates. */
void btc_bench_head(int V, int Vr, int n, int C, int tune, int reps, double ms[3]);
/* GELU forward/backward, LayerNorm forward/backward at M x C (F for GELU), bf16, and variants:
 * name, milliseconds and bytes moved of each, *count of them (at most 16). */
void btc_bench_pointwise(int M, int C, int F, int reps, const char *names[16], double ms[16], double bytes[16], int *count);
#ifdef __cplusplus
}
#endif
#endif
