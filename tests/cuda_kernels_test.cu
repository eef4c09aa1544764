/* cuda_kernels_test.cu - kernel-level checks on a GPU (make test-cuda only):
 * model.h's random streams, compiled for the device, are bit-identical to
 * the host's (and rng.cuh's keep bits too); the flash attention kernels agree with the reference path
 * (cuBLAS + softmax kernel, in fp32 on the same bf16 inputs) for the
 * output and all three input gradients, with and without dropout, for
 * distinct q/k and for q == k (the symmetric variant, dk added into dq),
 * with q, k, v packed in one buffer as the model has them; several lengths;
 * the GELU form of the kernels (one exponential) against erf in double;
 * the one-pass LayerNorm backward against a double-precision host
 * computation, with enough rows that each warp walks several. */
#include "tests/t.h"
#include "trainer/cuda/attention.cuh"
#include "trainer/cuda/elementwise.cuh"
#include "trainer/cuda/layernorm.cuh"
#include <vector>

__global__ void rng_kernel(uint32_t *out, uint64_t *words, uint32_t *kbits, uint64_t *keys, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint64_t k = bt_dropout_key(1234567ULL + i, (uint64_t)i * 7, (uint64_t)i % 300, i % 13 - 1, i % 4);
    keys[i] = k;
    out[i] = bt_rand32(k, (uint64_t)i * 1000003ULL);
    words[i] = bt_dropout_word(k, (uint64_t)i * 1000003ULL);
    /* the 8-element keep bits the LayerNorm kernels use, at threshold p = 0.1 + i % 5 / 10 */
    kbits[i] = d_keep_bits<8>(k, (uint64_t)i * 8, bt_dropout_threshold(0.1f + (float)(i % 5) / 10.0f));
}

static void test_rng_matches_host(void) {
    const int n = 100000;
    uint32_t *d_out, *d_kb; uint64_t *d_keys, *d_words;
    CUDA_CHECK(cudaMalloc(&d_out, n * 4));
    CUDA_CHECK(cudaMalloc(&d_kb, n * 4));
    CUDA_CHECK(cudaMalloc(&d_keys, n * 8));
    CUDA_CHECK(cudaMalloc(&d_words, n * 8));
    rng_kernel<<<(n + 255) / 256, 256>>>(d_out, d_words, d_kb, d_keys, n);
    std::vector<uint32_t> out(n), kb(n);
    std::vector<uint64_t> keys(n), words(n);
    CUDA_CHECK(cudaMemcpy(out.data(), d_out, n * 4, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(kb.data(), d_kb, n * 4, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(keys.data(), d_keys, n * 8, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(words.data(), d_words, n * 8, cudaMemcpyDeviceToHost));
    int bad = 0, badw = 0, badk = 0;
    long kept = 0, total = 0;
    for (int i = 0; i < n; i++) {
        uint64_t k = bt_dropout_key(1234567ULL + i, (uint64_t)i * 7, (uint64_t)i % 300, i % 13 - 1, i % 4);
        uint32_t want = bt_rand32(k, (uint64_t)i * 1000003ULL);
        if (k != keys[i] || want != out[i]) bad++;
        if (words[i] != bt_dropout_word(k, (uint64_t)i * 1000003ULL)) badw++;
        float p = 0.1f + (float)(i % 5) / 10.0f;
        uint32_t thr = bt_dropout_threshold(p), hb = 0;
        for (int e = 0; e < 8; e++) hb |= (uint32_t)bt_dropout_keep(k, (uint64_t)i * 8 + e, thr) << e;
        if (hb != kb[i]) badk++;
        if (i % 5 == 0) { kept += __builtin_popcount(kb[i]); total += 8; }
    }
    CHECK(bad == 0, "%d of %d draws differ from the host's", bad, n);
    CHECK(badw == 0, "%d of %d dropout words differ from the host's", badw, n);
    CHECK(badk == 0, "%d of %d keep-bit sets differ from the host's", badk, n);
    double rate = (double)kept / total;   /* p 0.1 on 160,000 draws: sd 0.00075 */
    CHECK(fabs(rate - 0.9) < 0.005, "keep rate at p 0.1 is %.4f", rate);
    cudaFree(d_out); cudaFree(d_kb); cudaFree(d_keys); cudaFree(d_words);
}

static float frand(uint64_t k, uint64_t i) { return bt_uniform(k, i) * 2.0f - 1.0f; }

static double rel(const std::vector<float> &a, const std::vector<float> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    return sqrt(num / (den + 1e-30));
}

template <typename T> static T *upload(const std::vector<float> &h) {
    std::vector<T> t(h.size());
    for (size_t i = 0; i < h.size(); i++) t[i] = (T)h[i];
    T *d;
    CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
    CUDA_CHECK(cudaMemcpy(d, t.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <typename T> static std::vector<float> download(const T *d, size_t n) {
    std::vector<T> t(n);
    CUDA_CHECK(cudaMemcpy(t.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> h(n);
    for (size_t i = 0; i < n; i++) h[i] = (float)t[i];
    return h;
}

/* q, k, v packed in one [B*T, 3C] buffer as the model lays them out (k unused
 * when same_qk: k is q); o and dout [B*T, C]. */
static void flash_vs_ref(int B, int T, int NH, int same_qk, int dropout, int impl) {
    const int C = NH * 64, ld = 3 * C;
    AttnShape s = {B, T, NH, 64, ld, ld, ld, C};
    size_t rows = (size_t)B * T, n3 = rows * ld, n = rows * C;
    std::vector<float> qkv(n3), dout(n);
    for (size_t i = 0; i < n3; i++)   /* bf16 values, so both paths see the same inputs */
        qkv[i] = (float)(bf16)((i % ld) < (size_t)(2 * C) ? frand(1, i) : 0.5f * frand(3, i));
    for (size_t i = 0; i < n; i++) dout[i] = (float)(bf16)frand(4, i);
    /* scores of moderate size: with q == k the diagonal q_i.q_i must not swamp the softmax
     * (P one-hot makes dS a difference of nearly equal numbers, ill-conditioned in bf16) */
    DropCtx dc = drop_ctx(42, 7, 3, dropout ? 0.1f : 0.0f);
    int koff = same_qk ? 0 : C;
    /* flash, bf16 */
    bf16 *f = upload<bf16>(qkv), *fdo = upload<bf16>(dout), *fo, *fd;
    float *lse, *dqacc, *dsum;
    uint64_t *bits;
    CUDA_CHECK(cudaMalloc(&fo, n * 2)); CUDA_CHECK(cudaMalloc(&fd, n3 * 2));
    CUDA_CHECK(cudaMalloc(&lse, (size_t)B * NH * T * 4)); CUDA_CHECK(cudaMalloc(&dsum, (size_t)B * NH * T * 4));
    CUDA_CHECK(cudaMalloc(&dqacc, n * 4)); CUDA_CHECK(cudaMalloc(&bits, (size_t)B * NH * T * T / 8));
    CUDA_CHECK(cudaMemset(fo, 0xff, n * 2));    /* poison: NaN unless written */
    CUDA_CHECK(cudaMemset(fd, 0xff, n3 * 2));
    flash_dropout_bits(bits, s, dc, 2, g_stream);
    flash_forward(impl, fo, lse, bits, f, f + koff, f + 2 * C, s, dc);
    float *dbias;   /* the bias gradients the backward sums on the way: [3][C] */
    CUDA_CHECK(cudaMalloc(&dbias, 3 * C * 4)); CUDA_CHECK(cudaMemset(dbias, 0, 3 * C * 4));
    AttnBiasGrad bg = {dbias, same_qk ? NULL : dbias + C, dbias + 2 * C};
    flash_backward(impl, fd, fd + C, fd + 2 * C, dqacc, dsum, fdo, fo, f, f + koff, f + 2 * C, lse, bits, s, dc, same_qk, bg);
    /* reference, fp32 */
    float *r = upload<float>(qkv), *rdo = upload<float>(dout), *ro, *rd, *probs, *s1, *s2;
    size_t tt = (size_t)B * NH * T * T;
    CUDA_CHECK(cudaMalloc(&ro, n * 4)); CUDA_CHECK(cudaMalloc(&rd, n3 * 4));
    CUDA_CHECK(cudaMemset(rd, 0, n3 * 4));
    CUDA_CHECK(cudaMalloc(&probs, tt * 4)); CUDA_CHECK(cudaMalloc(&s1, tt * 4)); CUDA_CHECK(cudaMalloc(&s2, tt * 4));
    attn_ref_forward<float>(ro, probs, s1, r, r + koff, r + 2 * C, s, dc, 2);
    attn_ref_backward<float>(rd, rd + C, rd + 2 * C, s1, s2, rdo, r, r + koff, r + 2 * C, probs, s, dc, 2, same_qk);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> go = download(fo, n), gd = download(fd, n3), ro_h = download(ro, n), rd_h = download(rd, n3);
    auto slice = [&](const std::vector<float> &x, int part) {
        std::vector<float> y(rows * C);
        for (size_t i = 0; i < rows; i++)
            for (int c = 0; c < C; c++) y[i * C + c] = x[i * ld + part * C + c];
        return y;
    };
    double eo = rel(go, ro_h), eq = rel(slice(gd, 0), slice(rd_h, 0)), ev = rel(slice(gd, 2), slice(rd_h, 2));
    double ek = same_qk ? 0.0 : rel(slice(gd, 1), slice(rd_h, 1));
    printf("  %-5s B %d T %d heads %d q==k %d dropout %d: rel err o %.2e dq %.2e dk %.2e dv %.2e\n",
           impl == FLASH_WGMMA ? "wgmma" : "mma", B, T, NH, same_qk, dropout, eo, eq, ek, ev);
    CHECK(eo < 1e-2 && eq < 2e-2 && ek < 2e-2 && ev < 1e-2, "flash differs from the reference");
    /* the column sums of dq, dk, dv summed by the kernels against those of their own outputs, on the
     * scale of dv's (dk's exact sums are 0: softmax ignores a shift of a row's scores) */
    std::vector<float> gb = download(dbias, 3 * C);
    std::vector<double> want(3 * C, 0.0);
    for (size_t i = 0; i < rows; i++)
        for (int part = 0; part < 3; part++)
            for (int c = 0; c < C; c++) want[part * C + c] += gd[i * ld + part * C + c];
    double vnorm = 0;
    for (int c = 0; c < C; c++) vnorm += want[2 * C + c] * want[2 * C + c];
    vnorm = sqrt(vnorm);
    for (int part = 0; part < 3; part++) {
        if (part == 1 && same_qk) continue;
        double e = 0;
        for (int c = 0; c < C; c++) { double x = gb[part * C + c] - want[part * C + c]; e += x * x; }
        e = sqrt(e) / vnorm;
        CHECK(e < 1e-2, "bias gradient %d: column sums off by %.2e of |dv's|", part, e);
    }
    cudaFree(dbias);
    void *bufs[] = {f, fdo, fo, fd, lse, dqacc, dsum, bits, r, rdo, ro, rd, probs, s1, s2};
    for (void *b : bufs) cudaFree(b);
}

/* Every case with the mma.sync kernels and, where they run (H100/H200), the wgmma ones. */
static void test_flash_matches_reference(void) {
    char err[160];
    int impls[2] = {FLASH_MMA, flash_kernels(FLASH_AUTO, err, sizeof err)};
    int ni = impls[1] == FLASH_WGMMA ? 2 : 1;
    if (ni == 1) printf("# no compute capability 9.0 GPU: the wgmma kernels are not tested here\n");
    for (int k = 0; k < ni; k++) {
        flash_vs_ref(2, 128, 3, 0, 0, impls[k]);
        flash_vs_ref(2, 128, 3, 0, 1, impls[k]);
        flash_vs_ref(2, 128, 3, 1, 1, impls[k]);
        flash_vs_ref(1, 512, 2, 0, 1, impls[k]);
        flash_vs_ref(1, 512, 2, 1, 0, impls[k]);
        flash_vs_ref(3, 256, 12, 0, 1, impls[k]);
    }
}

/* GELU and its derivative as the kernels compute them, against double erf, on a dense grid of
 * [-12, 12] and a few large arguments: absolute error below 4e-7 * max(1, |u|). */
__global__ void gelu_kernel(float *g, float *gp, const float *u, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { g[i] = gelu_f(u[i]); gp[i] = gelu_grad_f(u[i]); }
}
static void test_gelu_matches_erf(void) {
    std::vector<float> u;
    for (int i = -120000; i <= 120000; i++) u.push_back((float)i * 1e-4f);
    const float big[] = {-1e4f, -100.0f, -30.0f, -13.0f, 13.0f, 30.0f, 100.0f, 1e4f, 5.5f, -5.5f, 5.50001f, -5.50001f};
    for (float b : big) u.push_back(b);
    int n = (int)u.size();
    float *du, *dg, *dgp;
    CUDA_CHECK(cudaMalloc(&du, n * 4)); CUDA_CHECK(cudaMalloc(&dg, n * 4)); CUDA_CHECK(cudaMalloc(&dgp, n * 4));
    CUDA_CHECK(cudaMemcpy(du, u.data(), n * 4, cudaMemcpyHostToDevice));
    gelu_kernel<<<(n + 255) / 256, 256>>>(dg, dgp, du, n);
    CUDA_CHECK(cudaGetLastError());
    std::vector<float> g(n), gp(n);
    CUDA_CHECK(cudaMemcpy(g.data(), dg, n * 4, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(gp.data(), dgp, n * 4, cudaMemcpyDeviceToHost));
    double worst = 0, worstp = 0;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        double x = u[i], phi = 0.5 * (1.0 + erf(x / sqrt(2.0))), pdf = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
        double e = fabs(g[i] - x * phi) / fmax(1.0, fabs(x)), ep = fabs(gp[i] - (phi + x * pdf)) / fmax(1.0, fabs(x));
        if (e > worst) worst = e;
        if (ep > worstp) worstp = ep;
        if (!(e <= 4e-7 && ep <= 4e-7) && bad++ < 5) printf("# gelu(%.6g) = %.9g, gelu' %.9g\n", x, g[i], gp[i]);
    }
    printf("# gelu: worst error %.3g, gelu' %.3g (relative to max(1, |u|))\n", worst, worstp);
    CHECK(bad == 0, "%d of %d GELU values off by more than 4e-7", bad, n);
    cudaFree(du); cudaFree(dg); cudaFree(dgp);
}

/* layernorm_backward (bf16, dropout 0.1 on y, dy and the bias gradient) against double on the host. */
static float bf_round(float x) { return (float)(bf16)x; }
static void ln_bwd_case(int M, int C, int seq) {
    const size_t n = (size_t)M * C;
    std::vector<float> dout(n), r(n), gamma(C), mean(M), rstd(M);
    for (size_t i = 0; i < n; i++) { dout[i] = bf_round(frand(91, i)); r[i] = bf_round(frand(92, i) * 2.0f + 0.3f); }
    for (int c = 0; c < C; c++) gamma[c] = 1.0f + 0.5f * frand(93, c);
    for (int i = 0; i < M; i++) {
        double s = 0, q = 0;
        for (int c = 0; c < C; c++) s += r[(size_t)i * C + c];
        for (int c = 0; c < C; c++) { double d = r[(size_t)i * C + c] - s / C; q += d * d; }
        mean[i] = (float)(s / C); rstd[i] = (float)(1.0 / sqrt(q / C + 1e-12));
    }
    DropCtx dc = drop_ctx(5, 6, 7, 0.1f);
    LnDrop ld = {dc, 3, BT_DROP_ATTN_OUT, NULL};
    bf16 *d_dout = upload<bf16>(dout), *d_r = upload<bf16>(r), *d_dr, *d_dy;
    float *d_gamma = upload<float>(gamma), *d_mean = upload<float>(mean), *d_rstd = upload<float>(rstd), *d_acc;
    CUDA_CHECK(cudaMalloc(&d_dr, n * 2)); CUDA_CHECK(cudaMalloc(&d_dy, n * 2));
    CUDA_CHECK(cudaMalloc(&d_acc, 3 * C * 4)); CUDA_CHECK(cudaMemset(d_acc, 0, 3 * C * 4));
    int nsm = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, 0));
    layernorm_backward<bf16>(d_dr, d_dy, d_acc, d_acc + C, d_acc + 2 * C, d_dout, d_r, d_mean, d_rstd, d_gamma, M, C, seq,
                             ld, 0, nsm);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> dr = download<bf16>(d_dr, n), dy = download<bf16>(d_dy, n), acc = download<float>(d_acc, 3 * C);
    std::vector<double> sg(C, 0), sb(C, 0), sy(C, 0);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < M; i++) {
        uint64_t key = bt_dropout_key(dc.seed, dc.step, (uint64_t)(dc.sample0 + i / seq), 3, BT_DROP_ATTN_OUT);
        double s1 = 0, s2 = 0;
        for (int c = 0; c < C; c++) {
            size_t o = (size_t)i * C + c;
            double xh = (r[o] - mean[i]) * (double)rstd[i], g = dout[o] * (double)gamma[c];
            s1 += g; s2 += g * xh;
            sg[c] += dout[o] * xh; sb[c] += dout[o];
        }
        s1 /= C; s2 /= C;
        for (int c = 0; c < C; c++) {
            size_t o = (size_t)i * C + c;
            double xh = (r[o] - mean[i]) * (double)rstd[i], g = dout[o] * (double)gamma[c];
            double d = rstd[i] * (g - s1 - xh * s2);
            double y = bt_dropout_keep(key, (uint64_t)(i % seq) * C + c, dc.thr) ? d * dc.scale : 0.0;
            sy[c] += dy[o];   /* (the bias gradient sums dy as the kernel rounded it) */
            double e = fmax(fabs(dr[o] - d), fabs(dy[o] - y)) / (fabs(d) * 0.01 + 1e-2);
            if (e > worst) worst = e;
            if (e > 1.0 && bad++ < 5) printf("# row %d col %d: dr %g want %g, dy %g want %g\n", i, c, dr[o], d, dy[o], y);
        }
    }
    double ag = 0, ab = 0, ay = 0, ng = 0, nb = 0, ny = 0;
    for (int c = 0; c < C; c++) {
        ag = fmax(ag, fabs(acc[c] - sg[c])); ab = fmax(ab, fabs(acc[C + c] - sb[c])); ay = fmax(ay, fabs(acc[2 * C + c] - sy[c]));
        ng = fmax(ng, fabs(sg[c])); nb = fmax(nb, fabs(sb[c])); ny = fmax(ny, fabs(sy[c]));
    }
    printf("# layernorm bwd M %d C %d: dgamma off %.2e of %.2e, dbeta %.2e of %.2e, dbias %.2e of %.2e\n", M, C, ag, ng, ab, nb,
           ay, ny);
    CHECK(bad == 0, "M %d C %d: %d gradient values differ", M, C, bad);
    CHECK(ag <= 1e-3 * ng && ab <= 1e-3 * nb && ay <= 1e-3 * ny, "M %d C %d: column sums differ", M, C);
    cudaFree(d_dout); cudaFree(d_r); cudaFree(d_dr); cudaFree(d_dy); cudaFree(d_gamma); cudaFree(d_mean); cudaFree(d_rstd);
    cudaFree(d_acc);
}
static void test_layernorm_backward(void) {
    ln_bwd_case(5000, 768, 500);   /* more rows than the grid's warps: each walks several */
    ln_bwd_case(300, 64, 100);
    ln_bwd_case(4100, 256, 41);
}

int main(void) {
    int nd = 0;
    if (cudaGetDeviceCount(&nd) != cudaSuccess || nd == 0) { printf("FAIL cuda_kernels_test: no CUDA device\n"); return 1; }
    gemm_init();
    T_RUN(test_rng_matches_host);
    T_RUN(test_flash_matches_reference);
    T_RUN(test_gelu_matches_erf);
    T_RUN(test_layernorm_backward);
    return T_DONE();
}
