/* bench_kernels.cu - micro-benchmarks behind bench.h's btc_bench_*: the
 * ceilings (a large bf16 product through the same cuBLASLt wrapper the
 * model uses, a device-to-device copy) and the attention implementations
 * side by side at training shapes.  Inputs are random (never zeros), times
 * are medians of CUDA-event-timed repetitions after a warm-up. */
#include "trainer/cuda/dev/bench.h"
#include "trainer/cuda/attention.cuh"
#include "trainer/cuda/elementwise.cuh"
#include "trainer/cuda/layernorm.cuh"
#include <algorithm>
#include <vector>

__global__ static void fill_kernel(bf16 *x, size_t n, uint32_t seed, float amp) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        uint32_t h = (uint32_t)i * 0x9e3779b1u ^ seed;
        h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
        x[i] = __float2bfloat16((h * (1.0f / 4294967296.0f) * 2.0f - 1.0f) * amp);
    }
}
__global__ static void fill_f32_kernel(float *x, int n, float v) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = v;
}
static bf16 *rand_bf16(size_t n, uint32_t seed, float amp, const char *what) {
    bf16 *p = (bf16 *)cu_alloc(n * 2, what);
    fill_kernel<<<ceil_div(n, 256), 256, 0, g_stream>>>(p, n, seed, amp);
    LAUNCH_CHECK("fill_kernel");
    return p;
}

/* GELU by erff, the form the model's kernels replaced (elementwise.cuh), for comparison */
struct GeluErf {
    static __device__ __forceinline__ float f(float u) { return 0.5f * u * (1.0f + erff(u * 0.70710678118654752f)); }
    static __device__ __forceinline__ float grad(float u) {
        return 0.5f * (1.0f + erff(u * 0.70710678118654752f)) + u * 0.39894228040143268f * __expf(-0.5f * u * u);
    }
};

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/* Median milliseconds of fn over reps, after 3 warm-up calls. */
template <typename F> static double time_ms(F fn, int reps) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) fn();
    std::vector<double> t;
    for (int i = 0; i < reps; i++) {
        CUDA_CHECK(cudaEventRecord(a, g_stream));
        fn();
        CUDA_CHECK(cudaEventRecord(b, g_stream));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return median(t);
}

static void ensure_init(void) {
    static int done;
    if (!done) { gemm_init(); done = 1; }
}

extern "C" double btc_bench_gemm(int m, int n, int k, int bias, int reps) {
    ensure_init();
    bf16 *A = rand_bf16((size_t)m * k, 1, 1.0f, "bench A"), *B = rand_bf16((size_t)k * n, 2, 1.0f, "bench B");
    bf16 *bv = rand_bf16((size_t)m, 3, 1.0f, "bench bias");
    bf16 *D = (bf16 *)cu_alloc((size_t)m * n * 2, "bench D");
    double ms = time_ms([&] { gemm(D, CUDA_R_16BF, m, A, k, 1, B, k, 0, CUDA_R_16BF, m, n, k, 1.0f, 0.0f, bias ? bv : NULL, 1, 0, 0, 0); }, reps);
    cu_free(A); cu_free(B); cu_free(D); cu_free(bv);
    return 2.0 * m * n * k / (ms * 1e-3) / 1e12;
}

extern "C" double btc_bench_copy(size_t bytes, int reps) {
    ensure_init();
    bf16 *s = rand_bf16(bytes / 2, 3, 1.0f, "bench copy source");
    void *d = cu_alloc(bytes, "bench copy destination");
    double ms = time_ms([&] { CUDA_CHECK(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, g_stream)); }, reps);
    cu_free(s); cu_free(d);
    return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

/* FLASH_MMA or FLASH_WGMMA for impl (BTC_ATTN_FLASH*); fatal where it does not run */
static int kernels_of(int impl) {
    char err[160];
    int k = flash_kernels(impl == BTC_ATTN_FLASH_MMA ? FLASH_MMA : impl == BTC_ATTN_FLASH_WGMMA ? FLASH_WGMMA : FLASH_AUTO,
                          err, sizeof err);
    if (k < 0) cu_fail("bench", "flash_kernels", err, __FILE__, __LINE__);
    return k;
}
extern "C" const char *btc_flash_kernels(int impl) {
    ensure_init();
    return kernels_of(impl) == FLASH_WGMMA ? "flash (wgmma)" : "flash (mma.sync)";
}

extern "C" void btc_bench_attention(int B, int T, int NH, int impl, float p_drop, int reps, double *fwd_ms, double *bwd_ms) {
    ensure_init();
    int C = NH * 64;
    AttnShape s = {B, T, NH, 64, 3 * C, 3 * C, 3 * C, C};   /* q, k, v packed as in the model */
    size_t n = (size_t)B * T * C, tt = (size_t)B * NH * T * T;
    bf16 *qkv = rand_bf16(3 * n, 11, 2.0f, "bench qkv"), *dout = rand_bf16(n, 14, 1.0f, "bench dout");
    bf16 *o = (bf16 *)cu_alloc(n * 2, "bench o"), *dqkv = (bf16 *)cu_alloc(3 * n * 2, "bench dqkv");
    const bf16 *q = qkv, *k = qkv + C, *v = qkv + 2 * C;
    bf16 *dq = dqkv, *dk = dqkv + C, *dv = dqkv + 2 * C;
    DropCtx dc = drop_ctx(1, 2, 0, p_drop);
    if (impl != BTC_ATTN_REF) {
        const int kern = kernels_of(impl);
        float *lse = (float *)cu_alloc((size_t)B * NH * T * 4, "bench lse");
        float *dsum = (float *)cu_alloc((size_t)B * NH * T * 4, "bench dsum");
        float *acc = (float *)cu_alloc(n * 4, "bench dq acc");
        uint64_t *bits = (uint64_t *)cu_alloc(tt / 8, "bench dropout bits");
        *fwd_ms = time_ms([&] { flash_dropout_bits(bits, s, dc, 0, g_stream); flash_forward(kern, o, lse, bits, q, k, v, s, dc); }, reps);
        *bwd_ms = time_ms([&] { flash_backward(kern, dq, dk, dv, acc, dsum, dout, o, q, k, v, lse, bits, s, dc, 0, AttnBiasGrad{NULL, NULL, NULL}); }, reps);
        cu_free(lse); cu_free(dsum); cu_free(acc); cu_free(bits);
    } else {
        bf16 *probs = (bf16 *)cu_alloc(tt * 2, "bench probs"), *s1 = (bf16 *)cu_alloc(tt * 2, "bench scratch");
        bf16 *s2 = (bf16 *)cu_alloc(tt * 2, "bench scratch");
        *fwd_ms = time_ms([&] { attn_ref_forward<bf16>(o, probs, s1, q, k, v, s, dc, 0); }, reps);
        *bwd_ms = time_ms([&] { attn_ref_backward<bf16>(dq, dk, dv, s1, s2, dout, q, k, v, probs, s, dc, 0, 0); }, reps);
        cu_free(probs); cu_free(s1); cu_free(s2);
    }
    cu_free(qkv); cu_free(dout); cu_free(o); cu_free(dqkv);
}

/* The MLM head's three products as the model issues them (n masked rows,
 * vocab V, hidden C): logits = word . hn^T + bias, dword += hn^T-view .
 * dlogits (fp32), dhn = dlogits . word; with the vocab as is (Vr = V) or
 * padded (Vr > V, as if the word matrix had zero rows); tune: time the
 * candidates (else the heuristic's first pick, as the model does).  ms[0..2]. */
extern "C" void btc_bench_head(int V, int Vr, int n, int C, int tune, int reps, double ms[3]) {
    ensure_init();
    (void)V;
    gemm_forget();
    gemm_set_autotune(tune);
    int Vp = (Vr + 7) / 8 * 8;
    bf16 *wte = rand_bf16((size_t)Vr * C, 21, 0.05f, "bench word"), *hn = rand_bf16((size_t)n * C, 22, 1.0f, "bench hn");
    bf16 *bias = rand_bf16((size_t)Vr, 23, 0.1f, "bench bias"), *lg = rand_bf16((size_t)n * Vp, 24, 0.01f, "bench logits");
    bf16 *dh = (bf16 *)cu_alloc((size_t)n * C * 2, "bench dh");
    float *gw = (float *)cu_alloc((size_t)Vr * C * 4, "bench dword");
    CUDA_CHECK(cudaMemsetAsync(gw, 0, (size_t)Vr * C * 4, g_stream));
    ms[0] = time_ms([&] { gemm(lg, CUDA_R_16BF, Vp, wte, C, 1, hn, C, 0, CUDA_R_16BF, Vr, n, C, 1.0f, 0.0f, bias, 1, 0, 0, 0); }, reps);
    ms[1] = time_ms([&] { gemm(gw, CUDA_R_32F, C, hn, C, 0, lg, Vp, 1, CUDA_R_16BF, C, Vr, n, 1.0f, 1.0f, NULL, 1, 0, 0, 0); }, reps);
    ms[2] = time_ms([&] { gemm(dh, CUDA_R_16BF, C, wte, C, 0, lg, Vp, 0, CUDA_R_16BF, C, n, Vr, 1.0f, 0.0f, NULL, 1, 0, 0, 0); }, reps);
    cu_free(wte); cu_free(hn); cu_free(bias); cu_free(lg); cu_free(dh); cu_free(gw);
    gemm_set_autotune(1);
}

/* The memory-bound kernels of one BERT layer at M token rows, hidden C,
 * FFN width F, bf16, dropout 0.1 where the model has it: GELU forward and
 * backward (the polynomial-exponential form the model uses, and the erff
 * form), LayerNorm forward (residual, bias, dropout) and backward (dy and
 * the bias gradient).  The name, milliseconds and bytes moved of each
 * (GB/s = bytes / ms), *count of them. */
extern "C" void btc_bench_pointwise(int M, int C, int F, int reps, const char *names[16], double ms[16], double bytes[16], int *count) {
    ensure_init();
    int nsm = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, 0));
    size_t mf = (size_t)M * F, mc = (size_t)M * C;
    bf16 *u = rand_bf16(mf, 31, 3.0f, "bench u"), *g = rand_bf16(mf, 32, 1.0f, "bench g");
    bf16 *x = rand_bf16(mc, 33, 1.0f, "bench x"), *y = rand_bf16(mc, 34, 1.0f, "bench y");
    bf16 *h = (bf16 *)cu_alloc(mc * 2, "bench h"), *r = (bf16 *)cu_alloc(mc * 2, "bench r");
    bf16 *dr = (bf16 *)cu_alloc(mc * 2, "bench dr"), *dy = (bf16 *)cu_alloc(mc * 2, "bench dy");
    float *vec = (float *)cu_alloc((size_t)(F + 8 * C) * 4, "bench vectors"), *mean = (float *)cu_alloc((size_t)M * 4, "bench mean");
    float *rstd = (float *)cu_alloc((size_t)M * 4, "bench rstd");
    CUDA_CHECK(cudaMemsetAsync(vec, 0, (size_t)(F + 8 * C) * 4, g_stream));
    float *fb = vec, *gamma = vec + F, *beta = gamma + C, *dgam = beta + C, *dbet = dgam + C, *dbias = dbet + C;
    fill_f32_kernel<<<ceil_div(C, 256), 256, 0, g_stream>>>(gamma, C, 1.0f);
    LAUNCH_CHECK("fill_f32_kernel");
    DropCtx dc = drop_ctx(1, 2, 0, 0.1f);
    LnDrop ld = {dc, 0, BT_DROP_ATTN_OUT, NULL};
    int k = 0;
    auto put = [&](const char *name, double t, double by) { if (k < 16) { names[k] = name; ms[k] = t; bytes[k] = by; k++; } };
    time_ms([&] { gelu_forward<bf16>(g, u, fb, M, F); }, reps);   /* (the first timing here runs ~10% slow: not kept) */
    put("gelu fwd", time_ms([&] { gelu_forward<bf16>(g, u, fb, M, F); }, reps), 4.0 * mf);
    put("gelu fwd (erff)", time_ms([&] { gelu_forward<bf16, GeluErf>(g, u, fb, M, F); }, reps), 4.0 * mf);
    /* (du is updated in place: the repetitions see growing values, as fine for timing) */
    put("gelu bwd+bias grad", time_ms([&] { gelu_backward_bias<bf16>(g, u, fb, dbias, M, F, nsm); }, reps), 6.0 * mf);
    put("gelu bwd+bias grad (erff)", time_ms([&] { gelu_backward_bias<bf16, GeluErf>(g, u, fb, dbias, M, F, nsm); }, reps), 6.0 * mf);
    put("layernorm fwd (residual, bias, dropout)", time_ms([&] { layernorm_forward<bf16>(h, r, mean, rstd, x, y, fb, gamma, beta, M, C, 512, 1e-12f, ld); }, reps), 8.0 * mc);
    put("layernorm bwd (dy, bias grad)", time_ms([&] { layernorm_backward<bf16>(dr, dy, dgam, dbet, dbias, x, r, mean, rstd, gamma, M, C, 512, ld, 0, nsm); }, reps), 8.0 * mc);
    *count = k;
    cu_free(u); cu_free(g); cu_free(x); cu_free(y); cu_free(h); cu_free(r); cu_free(dr); cu_free(dy);
    cu_free(vec); cu_free(mean); cu_free(rstd);
}
