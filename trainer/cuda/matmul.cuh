/* matmul.cuh - every matrix product of the trainer, through cuBLASLt.
 *
 * One entry point, gemm(), in cuBLAS's column-major convention
 *     D[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta * D   (+ bias[m] broadcast over n)
 * with A and B of one type (bf16 or fp32), D of that type or fp32 (weight
 * gradients accumulate in fp32), fp32 accumulation always (CUBLAS_COMPUTE_32F:
 * no TF32, so that the fp32 mode is true fp32), optional strided batches.
 * The descriptors and the algorithm (the fastest of the heuristic's top
 * candidates, timed once) are cached per shape, so a training step costs
 * no heuristic queries after the first.
 *
 * The linear_* helpers state the three products of a linear layer in the
 * row-major terms of the model (PyTorch layout, W is [out, in]):
 *     forward   y[M,N] = x[M,K] W[N,K]^T + b
 *     input     dx[M,K] = dy[M,N] W[N,K]      (+ beta * dx)
 *     weight    dW[N,K] += dy[M,N]^T x[M,K]   (fp32)
 * and the pairwise_* helpers the per-head products of the pairwise
 * variant, for heads h of d columns (q_h: columns h d .. h d + d - 1 of q;
 * S_h row-major [d, d], the heads' matrices one after the other), one
 * strided-batched product over the heads:
 *     forward   qs_h[M,d] = q_h[M,d] S_h
 *     weight    dS_h[d,d] += q_h^T dqs_h       (fp32)
 *     input     dq_h[M,d] += dqs_h S_h^T */
#ifndef SYMBERT_CUDA_MATMUL_CUH
#define SYMBERT_CUDA_MATMUL_CUH
#include "trainer/cuda/common.cuh"

void gemm_init(void);
void gemm_set_autotune(int on);   /* on by default: time the top candidates of each new shape */
void gemm_forget(void);           /* drop every cached shape (benchmarks: choose again) */
extern cudaStream_t g_stream;       /* the trainer's one stream */

void gemm(void *D, cudaDataType_t dtype, int ldd,
          const void *A, int lda, int ta, const void *B, int ldb, int tb,
          cudaDataType_t abtype, int m, int n, int k, float alpha, float beta, const void *bias,
          int batch, long long strideA, long long strideB, long long strideD);

template <typename T> static inline void linear_fwd(T *y, const T *x, const T *w, const T *b, int M, int N, int K) {
    gemm(y, CuType<T>::id, N, w, K, 1, x, K, 0, CuType<T>::id, N, M, K, 1.0f, 0.0f, b, 1, 0, 0, 0);
}
template <typename T> static inline void linear_bwd_x(T *dx, const T *dy, const T *w, int M, int N, int K, float beta) {
    gemm(dx, CuType<T>::id, K, w, K, 0, dy, N, 0, CuType<T>::id, K, M, N, 1.0f, beta, NULL, 1, 0, 0, 0);
}
template <typename T> static inline void linear_bwd_w(float *dw, const T *dy, const T *x, int M, int N, int K) {
    gemm(dw, CUDA_R_32F, K, x, K, 0, dy, N, 1, CuType<T>::id, K, N, M, 1.0f, 1.0f, NULL, 1, 0, 0, 0);
}
template <typename T>
static inline void pairwise_fwd(T *qs, int ldqs, const T *q, int ldq, const T *S, int M, int NH, int d) {
    gemm(qs, CuType<T>::id, ldqs, S, d, 0, q, ldq, 0, CuType<T>::id, d, M, d, 1.0f, 0.0f, NULL, NH, (long long)d * d, d, d);
}
template <typename T>
static inline void pairwise_bwd_s(float *dS, const T *dqs, int lddqs, const T *q, int ldq, int M, int NH, int d) {
    gemm(dS, CUDA_R_32F, d, dqs, lddqs, 0, q, ldq, 1, CuType<T>::id, d, d, M, 1.0f, 1.0f, NULL, NH, d, d, (long long)d * d);
}
template <typename T>
static inline void pairwise_bwd_q(T *dq, int lddq, const T *dqs, int lddqs, const T *S, int M, int NH, int d) {
    gemm(dq, CuType<T>::id, lddq, S, d, 1, dqs, lddqs, 0, CuType<T>::id, d, M, d, 1.0f, 1.0f, NULL, NH, (long long)d * d, d, d);
}
#endif
