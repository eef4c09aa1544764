/* matmul.cu - the cuBLASLt wrapper of matmul.cuh, and the error and
 * allocation helpers of common.cuh.
 *
 * Algorithm choice: the first time a shape is seen, the heuristic's top 8
 * candidates are timed on a scratch output and the fastest is kept (the
 * heuristic's first pick is not always the fastest for these skinny
 * training shapes).  Results do not depend on it beyond rounding. */
#include "trainer/cuda/matmul.cuh"
#include <string.h>

cudaStream_t g_stream;

void cu_fail(const char *what, const char *call, const char *msg, const char *file, int line) {
    fprintf(stderr, "bert-train: %s error in %s at %s:%d: %s\n", what, call, file, line, msg);
    fflush(stderr);
    exit(1);
}

/* Live allocations (pointer -> size) so that the running total goes down on free. */
static size_t g_allocated;
#define ATAB 8192
static struct { void *p; size_t n; } g_atab[ATAB];
static void atab_put(void *p, size_t n) {
    size_t h = ((uintptr_t)p >> 8) % ATAB;
    for (int i = 0; i < ATAB; i++, h = (h + 1) % ATAB)
        if (!g_atab[h].p) { g_atab[h].p = p; g_atab[h].n = n; return; }
}
static size_t atab_take(void *p) {
    size_t h = ((uintptr_t)p >> 8) % ATAB;
    for (int i = 0; i < ATAB; i++, h = (h + 1) % ATAB)
        if (g_atab[h].p == p) {
            size_t n = g_atab[h].n;
            /* re-insert the rest of the probe run so that lookups stay correct */
            g_atab[h].p = NULL;
            for (size_t j = (h + 1) % ATAB; g_atab[j].p; j = (j + 1) % ATAB) {
                void *q = g_atab[j].p; size_t m = g_atab[j].n;
                g_atab[j].p = NULL;
                atab_put(q, m);
            }
            return n;
        }
    return 0;
}

void *cu_alloc_named(size_t bytes, const char *what, const char *file, int line) {
    void *p = NULL;
    if (bytes == 0) bytes = 16;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        size_t fr = 0, tot = 0;
        cudaGetLastError();
        cudaMemGetInfo(&fr, &tot);
        fprintf(stderr, "bert-train: out of GPU memory allocating %s (%.1f MiB; %.1f MiB free of %.1f, "
                "%.1f MiB already taken by the trainer) at %s:%d: try a smaller --micro-batch\n",
                what, bytes / 1048576.0, fr / 1048576.0, tot / 1048576.0, g_allocated / 1048576.0, file, line);
        exit(1);
    }
    if (e != cudaSuccess) cu_fail("CUDA", "cudaMalloc", cudaGetErrorString(e), file, line);
    g_allocated += bytes;
    atab_put(p, bytes);
    return p;
}
size_t cu_allocated_bytes(void) { return g_allocated; }
void cu_free(void *p) {
    if (!p) return;
    g_allocated -= atab_take(p);
    CUDA_CHECK(cudaFree(p));
}

/* ------------------------------------------------------------ cuBLASLt */

static cublasLtHandle_t g_lt;
static void *g_ws;
static const size_t WS_BYTES = 32u << 20;
static int g_autotune = 1;
void gemm_set_autotune(int on) { g_autotune = on; }

typedef struct {
    int m, n, k, lda, ldb, ldd, ta, tb, batch, has_bias, beta0;
    long long sa, sb, sd;
    cudaDataType_t dt, abt;
    int align;
} gkey;

typedef struct {
    gkey key;
    int used;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
} gentry;

#define GCACHE 512
static gentry g_cache[GCACHE];

void gemm_init(void) {
    CUBLAS_CHECK(cublasLtCreate(&g_lt));
    /* the work stream at the highest priority: side streams (the attention dropout bits)
     * fill what it leaves free (measured +0.4-0.8% tokens/s at BERT-base) */
    int lo, hi;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
    CUDA_CHECK(cudaStreamCreateWithPriority(&g_stream, cudaStreamDefault, hi));
    g_ws = cu_alloc(WS_BYTES, "cuBLASLt workspace");
}

static void cache_flush(void);
void gemm_forget(void) { cache_flush(); }

static uint64_t key_hash(const gkey *k) {
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 1 && (a % al)) al >>= 1;
    return al;
}

static cublasLtMatrixLayout_t make_layout(cudaDataType_t t, int rows, int cols, int ld, int batch, long long stride) {
    cublasLtMatrixLayout_t l;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, rows, cols, ld));
    if (batch > 1) {
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
    return l;
}

static void cache_flush(void) {
    for (int i = 0; i < GCACHE; i++) {
        if (!g_cache[i].used) continue;
        cublasLtMatmulDescDestroy(g_cache[i].op);
        cublasLtMatrixLayoutDestroy(g_cache[i].la);
        cublasLtMatrixLayoutDestroy(g_cache[i].lb);
        cublasLtMatrixLayoutDestroy(g_cache[i].ld);
        g_cache[i].used = 0;
    }
}

static gentry *lookup(const gkey *k) {
    uint64_t h = key_hash(k);
    for (int pass = 0; pass < 2; pass++) {
        for (int probe = 0; probe < GCACHE / 2; probe++) {
            gentry *e = &g_cache[(h + probe) % GCACHE];
            if (!e->used) {
                memset(e, 0, sizeof *e);
                e->key = *k;
                return e;
            }
            if (!memcmp(&e->key, k, sizeof *k)) return e;
        }
        cache_flush();   /* too many shapes (should not happen: callers bucket their sizes): start over */
    }
    cu_fail("cuBLASLt", "gemm cache", "no free entry after a flush", __FILE__, __LINE__);
    return NULL;
}

void gemm(void *D, cudaDataType_t dtype, int ldd,
          const void *A, int lda, int ta, const void *B, int ldb, int tb,
          cudaDataType_t abtype, int m, int n, int k, float alpha, float beta, const void *bias,
          int batch, long long strideA, long long strideB, long long strideD) {
    if (m <= 0 || n <= 0) return;
    gkey key;
    memset(&key, 0, sizeof key);
    key.m = m; key.n = n; key.k = k; key.lda = lda; key.ldb = ldb; key.ldd = ldd;
    key.ta = ta; key.tb = tb; key.batch = batch < 1 ? 1 : batch;
    key.has_bias = bias != NULL; key.beta0 = beta == 0.0f;
    key.sa = strideA; key.sb = strideB; key.sd = strideD;
    key.dt = dtype; key.abt = abtype;
    int al = ptr_align(A);
    if (ptr_align(B) < al) al = ptr_align(B);
    if (ptr_align(D) < al) al = ptr_align(D);
    if (bias && ptr_align(bias) < al) al = ptr_align(bias);
    key.align = al;
    gentry *e = lookup(&key);
    if (!e->used) {
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&e->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
        cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        e->la = make_layout(abtype, ta ? k : m, ta ? m : k, lda, key.batch, strideA);
        e->lb = make_layout(abtype, tb ? n : k, tb ? k : n, ldb, key.batch, strideB);
        e->ld = make_layout(dtype, m, n, ldd, key.batch, strideD);
        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        size_t ws = WS_BYTES;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        uint32_t a32 = (uint32_t)al;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32, sizeof a32));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a32, sizeof a32));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a32, sizeof a32));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a32, sizeof a32));
        cublasLtMatmulHeuristicResult_t res[8];
        int found = 0;
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g_lt, e->op, e->la, e->lb, e->ld, e->ld, pref, 8, res, &found));
        cublasLtMatmulPreferenceDestroy(pref);
        if (found == 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "no algorithm for m=%d n=%d k=%d lda=%d ldb=%d ldd=%d ta=%d tb=%d batch=%d align=%d",
                     m, n, k, lda, ldb, ldd, ta, tb, key.batch, al);
            cu_fail("cuBLASLt", "cublasLtMatmulAlgoGetHeuristic", msg, __FILE__, __LINE__);
        }
        int best = 0;
        if (found > 1 && g_autotune) {
            /* time the candidates once, on a scratch output (the real one may hold values to accumulate onto) */
            size_t esz = dtype == CUDA_R_32F ? 4 : 2;
            size_t bytes = ((size_t)(key.batch - 1) * strideD + (size_t)ldd * n) * esz;
            void *tmp = cu_alloc(bytes, "cuBLASLt autotuning scratch");
            CUDA_CHECK(cudaMemsetAsync(tmp, 0, bytes, g_stream));
            cudaEvent_t ea, eb;
            CUDA_CHECK(cudaEventCreate(&ea));
            CUDA_CHECK(cudaEventCreate(&eb));
            float best_ms = 1e30f;
            for (int i = 0; i < found; i++) {
                if (bias) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
                int ok = 1;
                for (int rep = 0; rep < 6 && ok; rep++) {
                    if (rep == 2) CUDA_CHECK(cudaEventRecord(ea, g_stream));
                    ok = cublasLtMatmul(g_lt, e->op, &alpha, A, e->la, B, e->lb, &beta, tmp, e->ld, tmp, e->ld,
                                        &res[i].algo, g_ws, WS_BYTES, g_stream) == CUBLAS_STATUS_SUCCESS;
                }
                if (!ok) continue;
                CUDA_CHECK(cudaEventRecord(eb, g_stream));
                CUDA_CHECK(cudaEventSynchronize(eb));
                float ms;
                CUDA_CHECK(cudaEventElapsedTime(&ms, ea, eb));
                if (ms < best_ms) { best_ms = ms; best = i; }
            }
            cudaEventDestroy(ea);
            cudaEventDestroy(eb);
            CUDA_CHECK(cudaStreamSynchronize(g_stream));
            cu_free(tmp);
        }
        cublasLtMatmulHeuristicResult_t chosen = res[best];
        e->algo = chosen.algo;
        e->used = 1;
    }
    if (bias)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    CUBLAS_CHECK(cublasLtMatmul(g_lt, e->op, &alpha, A, e->la, B, e->lb, &beta, D, e->ld, D, e->ld,
                                &e->algo, g_ws, WS_BYTES, g_stream));
}
