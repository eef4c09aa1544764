/* common.cuh - what every CUDA file of the trainer needs: the error checks
 * that name the failing call with its file and line, the activation type
 * (bf16 for training, fp32 for the correctness mode), 16-byte packed vectors,
 * and named device allocations whose failure says which buffer and what to do.
 *
 * Errors inside the CUDA trainer are fatal (as in llm.c): a CUDA or cuBLAS
 * failure means the device state is unknown, so the process prints one line
 * and exits with status 1.  A failure before training starts (no GPU, not
 * enough memory) is reported the same way, so the message always names the
 * call, file and line. */
#ifndef SYMBERT_CUDA_COMMON_CUH
#define SYMBERT_CUDA_COMMON_CUH
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef __nv_bfloat16 bf16;

void cu_fail(const char *what, const char *call, const char *msg, const char *file, int line);
#define CUDA_CHECK(call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) cu_fail("CUDA", #call, cudaGetErrorString(e_), __FILE__, __LINE__); } while (0)
#define CUBLAS_CHECK(call) do { cublasStatus_t s_ = (call); \
    if (s_ != CUBLAS_STATUS_SUCCESS) cu_fail("cuBLAS", #call, cublasGetStatusString(s_), __FILE__, __LINE__); } while (0)
/* After a kernel launch: launch errors (bad configuration) surface here;
 * faults inside the kernel surface at the next synchronising call. */
#define LAUNCH_CHECK(name) do { cudaError_t e_ = cudaGetLastError(); \
    if (e_ != cudaSuccess) cu_fail("CUDA", name, cudaGetErrorString(e_), __FILE__, __LINE__); } while (0)

/* Device memory that says what it is for.  On failure: "out of GPU memory
 * allocating <what> (<MiB> MiB, <free> MiB free of <total>): try a smaller
 * --micro-batch", and exit 1.  The running total is kept for reports. */
void *cu_alloc_named(size_t bytes, const char *what, const char *file, int line);
#define cu_alloc(bytes, what) cu_alloc_named((bytes), (what), __FILE__, __LINE__)
size_t cu_allocated_bytes(void);
void cu_free(void *p);

static inline unsigned ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

/* Conversions between the activation type and float. */
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

/* 16 bytes of T: 8 bf16 or 4 float, loaded and stored in one access. */
template <typename T> struct alignas(16) Pack16 {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
};
template <typename T> __device__ __forceinline__ Pack16<T> ld16(const T *p) { return *(const Pack16<T> *)p; }
template <typename T> __device__ __forceinline__ void st16(T *p, const Pack16<T> &x) { *(Pack16<T> *)p = x; }

/* cuBLAS data type of T. */
template <typename T> struct CuType;
template <> struct CuType<float> { static constexpr cudaDataType_t id = CUDA_R_32F; };
template <> struct CuType<bf16> { static constexpr cudaDataType_t id = CUDA_R_16BF; };

/* Warp and block reductions (blockDim.x a multiple of 32, at most 1024). */
/* Sum of x[0..n) over one block, in double and in a fixed order (the same
 * result on every run); valid in thread 0.  blockDim.x a multiple of 32. */
__device__ static double block_sum_fixed(const float *x, int n) {
    __shared__ double part[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
    __syncthreads();
    double t = 0.0;
    if (threadIdx.x == 0) for (int i = 0; i < (int)blockDim.x / 32; i++) t += part[i];
    return t;
}

/* 2^x by the hardware's approximation (MUFU.EX2, relative error ~2^-22, flushing denormals): what
 * exp2f compiles to plus the range handling it does not need where used (attention: arguments
 * <= 0 or the running max's small corrections; GELU: bounded arguments).  Fewer instructions in
 * the ALU-bound parts. */
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* dst[0..V) = src[c0..c0+V) of an fp32 vector (a bias, gamma, beta) in 16-byte loads, or zeros
 * when src is NULL; c0 and V multiples of 4. */
template <int V> __device__ __forceinline__ void ld_f32_pack(float *dst, const float *src, int c0) {
#pragma unroll
    for (int k = 0; k < V; k += 4) {
        float4 f = src ? *(const float4 *)(src + c0 + k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        dst[k] = f.x; dst[k + 1] = f.y; dst[k + 2] = f.z; dst[k + 3] = f.w;
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
#endif
