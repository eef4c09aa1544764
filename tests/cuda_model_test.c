/* cuda_model_test.c - the CUDA model against the CPU reference (trainer/cpu.c),
 * on a GPU (run by `make test-cuda` only).
 *
 * For tiny and small configs and the three attention variants, the same
 * parameters, batch and masks go through bt_cpu_forward_backward and
 * btc_forward_backward:
 *   fp32 mode: loss and every parameter tensor's gradient within relative
 *              error 1e-3 (||g - g_cpu|| / ||g_cpu||), dropout off and on
 *              (both trainers draw the same dropout masks);  the key bias,
 *              whose exact gradient is zero (softmax is shift-invariant),
 *              must instead have a gradient norm < 1e-4 (bf16: 1e-2) of the
 *              value bias's, on both sides;
 *   bf16 mode: loss within 1e-2 (relative) and each tensor's gradient with
 *              cosine similarity >= 0.999 to the CPU's, dropout off.
 * Also: gradient accumulation over micro-batches equals one big batch;
 * one AdamW step equals bt_adamw_update; a GPU checkpoint
 * (bt_st_write of the GPU's weights) loads on the CPU and back unchanged;
 * masking on the GPU makes exactly bt_mask_batch's inputs and labels; the
 * last layer at the masked rows only equals the dense last layer; and
 * the training loop on the GPU (fp32, device masks, dropout, micro-batches,
 * evaluation) ends with the CPU loop's weights. */
#include "tests/t.h"
#include "trainer/cuda/gpu.h"
#include "trainer/ckpt.h"
#include "trainer/cpu.h"
#include "trainer/train.h"
#include "trainer/cuda/train_cuda.h"
#include "tests/trainer_shards.h"
#include <stdint.h>
#include <unistd.h>

static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
static double dot_self(const float *a, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * a[i];
    return s;
}
static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    if (aa == 0 && bb == 0) return 1.0;
    return ab / sqrt(aa * bb + 1e-300);
}

/* A batch like real data: [CLS] ... [SEP] with a [PAD] and repeated ids. */
static void make_batch(int B, int T, int V, uint64_t seed, uint64_t step, int32_t *in, int32_t *lab, int *n) {
    uint16_t ids[4096];
    *n = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) ids[t] = (uint16_t)(1000 + bt_rand32(seed + 17, (uint64_t)(b * T + t)) % (uint32_t)(V - 1000));
        ids[0] = BT_CLS_ID; ids[T - 1] = BT_SEP_ID; ids[T / 2] = BT_SEP_ID; ids[T / 2 + 1] = BT_CLS_ID;
        ids[5] = BT_PAD_ID; ids[7] = ids[9];
        *n += bt_mask_batch(seed, step, (uint64_t)b, ids, T, V, in + b * T, lab + b * T);
    }
}

typedef struct { const char *preset; int B, T; } shape;

static void compare(shape sh, bt_attn attn, int prec, int dropout) {
    bt_config cfg; char err[512];
    REQUIRE(bt_config_preset(sh.preset, &cfg) == 0, "preset %s", sh.preset);
    cfg.attn = attn;
    bt_layout L;
    REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    const int B = sh.B, T = sh.T;
    float *p = malloc(L.total * 4), *gc = calloc(L.total, 4), *gg = calloc(L.total, 4);
    int32_t *in = malloc(B * T * 4), *lab = malloc(B * T * 4);
    REQUIRE(p && gc && gg && in && lab, "out of host memory");
    bt_params_init(&L, p, 1234);
    /* LayerNorm weights/biases off 1/0 so that their gradients matter */
    for (int i = 0; i < L.n; i++) if (L.t[i].init == BT_INIT_ONE || L.t[i].init == BT_INIT_ZERO) {
        uint64_t key = bt_key(77, 9, (uint64_t)i, 0, 0);
        for (size_t e = 0; e < L.t[i].numel; e++) p[L.t[i].offset + e] += 0.2f * (bt_uniform(key, e) - 0.5f);
    }
    int n;
    make_batch(B, T, cfg.vocab_size, 5, 3, in, lab, &n);
    REQUIRE(n > 0, "no masked position");
    float scale = 1.0f / (float)n;
    bt_batch bb = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 3, .sample0 = 0 };
    bt_cpu *cpu = bt_cpu_new(&L, B, T, err, sizeof err);
    REQUIRE(cpu, "%s", err);
    int nc = 0, ng = 0;
    double lc = bt_cpu_forward_backward(cpu, p, gc, &bb, dropout, 99, scale, &nc, NULL);
    btc_model *g = btc_new(&L, B, T, &(btc_opts){ .precision = prec }, err, sizeof err);
    REQUIRE(g, "%s", err);
    btc_set_params(g, p);
    btc_zero_grads(g);
    double lg = btc_forward_backward(g, &bb, 1, dropout, 99, scale, &ng);
    btc_get_grads(g, gg);
    CHECK(nc == ng && ng == n, "labels cpu %d gpu %d want %d", nc, ng, n);
    double lrel = fabs(lg - lc) / fabs(lc);
    double worst = 0, worst_cos = 1;
    const char *wname = "", *cname = "";
    for (int i = 0; i < L.n; i++) {
        const bt_tensor *t = &L.t[i];
        if (t->kind == BT_T_K_B) {
            /* The key bias adds q.b_k to every score of a row: softmax ignores it, so its exact
             * gradient is 0 and both sides hold rounding noise.  Check that the noise is small
             * next to the value bias gradient of the same layer instead. */
            const bt_tensor *vb = bt_tensor_of(&L, BT_T_V_B, t->layer);
            double ref = sqrt(dot_self(gc + vb->offset, vb->numel));
            double ngg = sqrt(dot_self(gg + t->offset, t->numel)), ncc = sqrt(dot_self(gc + t->offset, t->numel));
            double tol = prec == BTC_FP32 ? 1e-4 : 1e-2;
            CHECK(ngg <= tol * ref && ncc <= tol * ref, "%s: |g| gpu %.3g cpu %.3g, value bias |g| %.3g", t->name, ngg, ncc, ref);
            continue;
        }
        double r = rel_err(gg + t->offset, gc + t->offset, t->numel);
        double cs = cosine(gg + t->offset, gc + t->offset, t->numel);
        if (!(r <= worst)) { worst = r; wname = t->name; }
        if (!(cs >= worst_cos)) { worst_cos = cs; cname = t->name; }
        if (prec == BTC_FP32) CHECK(r <= 1e-3, "%s: gradient rel err %.3g", t->name, r);
        else CHECK(cs >= 0.999, "%s: gradient cosine %.6f (rel err %.3g)", t->name, cs, r);
    }
    if (prec == BTC_FP32) CHECK(lrel <= 1e-3, "loss gpu %.7g cpu %.7g", lg, lc);
    else CHECK(lrel <= 1e-2, "loss gpu %.7g cpu %.7g", lg, lc);
    printf("  %-5s %-9s %s dropout %d attn %-9s: loss cpu %.6f gpu %.6f (rel %.2e); worst grad rel %.2e (%s); "
           "min cosine %.6f (%s)\n", sh.preset, attn == 0 ? "original" : attn == 1 ? "symmetric" : "pairwise",
           prec == BTC_FP32 ? "fp32" : "bf16", dropout, btc_attn_name(g), lc / n, lg / n, lrel, worst, wname,
           worst_cos, cname);
    btc_free(g);
    bt_cpu_free(cpu);
    bt_layout_free(&L);
    free(p); free(gc); free(gg); free(in); free(lab);
}

static shape TINY = { "tiny", 2, 128 }, SMALL = { "small", 2, 128 };

static void test_fp32_tiny(void) {
    for (int a = 0; a < 3; a++) for (int d = 0; d < 2; d++) compare(TINY, (bt_attn)a, BTC_FP32, d);
}
static void test_fp32_small(void) {
    for (int a = 0; a < 3; a++) compare(SMALL, (bt_attn)a, BTC_FP32, 1);
}
static void test_bf16_tiny(void) {
    for (int a = 0; a < 3; a++) compare(TINY, (bt_attn)a, BTC_BF16, 0);
}
static void test_bf16_small(void) {
    for (int a = 0; a < 3; a++) compare(SMALL, (bt_attn)a, BTC_BF16, 0);
}

/* One bf16 pass (flash attention, dropout on, two samples of 256: masked
 * rows not a multiple of the padding) under options a and under b, for the
 * three variants: the same loss (relative 1e-3) and gradients (cosine >=
 * 0.9999 per tensor). */
static void same_pass(const char *what, btc_opts oa, btc_opts ob) {
    for (int a = 0; a < 3; a++) {
        bt_config cfg; char err[512];
        REQUIRE(bt_config_preset("small", &cfg) == 0);
        cfg.attn = (bt_attn)a;
        bt_layout L;
        REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
        const int B = 2, T = 256;
        float *p = malloc(L.total * 4), *g0 = calloc(L.total, 4), *g1 = calloc(L.total, 4);
        int32_t *in = malloc(B * T * 4), *lab = malloc(B * T * 4);
        REQUIRE(p && g0 && g1 && in && lab, "out of host memory");
        bt_params_init(&L, p, 4321);
        int n;
        make_batch(B, T, cfg.vocab_size, 8, 2, in, lab, &n);
        bt_batch bb = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 2, .sample0 = 0 };
        double loss[2];
        float *gs[2] = { g0, g1 };
        for (int k = 0; k < 2; k++) {
            btc_model *g = btc_new(&L, B, T, k ? &ob : &oa, err, sizeof err);
            REQUIRE(g, "%s", err);
            CHECK(!strcmp(btc_attn_name(g), "flash"), "%s: attention path %s", what, btc_attn_name(g));
            btc_set_params(g, p);
            btc_zero_grads(g);
            int ng = 0;
            loss[k] = btc_forward_backward(g, &bb, 1, 1, 7, 1.0f / (float)n, &ng);
            CHECK(ng == n);
            btc_get_grads(g, gs[k]);
            btc_free(g);
        }
        CHECK(fabs(loss[0] - loss[1]) <= 1e-3 * fabs(loss[1]), "%s: loss %.7g vs %.7g", what, loss[0], loss[1]);
        double worst = 1;
        const char *wn = "";
        for (int i = 0; i < L.n; i++) {
            const bt_tensor *t = &L.t[i];
            if (t->kind == BT_T_K_B) continue;   /* exact gradient 0: rounding noise on both sides */
            double cs = cosine(g0 + t->offset, g1 + t->offset, t->numel);
            if (!(cs >= worst)) { worst = cs; wn = t->name; }
            CHECK(cs >= 0.9999, "%s: %s: gradient cosine %.7f", what, t->name, cs);
        }
        printf("  %s, %s: loss %.6f vs %.6f, min gradient cosine %.7f (%s)\n", what,
               a == 0 ? "original" : a == 1 ? "symmetric" : "pairwise", loss[0] / n, loss[1] / n, worst, wn);
        bt_layout_free(&L);
        free(p); free(g0); free(g1); free(in); free(lab);
    }
}

/* The last layer at the masked rows only (the default: its attention for
 * the masked queries only, gathered 128 a sample) gives the dense layer's
 * loss and gradients. */
static void test_sparse_last_equals_dense(void) {
    same_pass("sparse vs dense last layer", (btc_opts){ .dense_last = 0 }, (btc_opts){ .dense_last = 1 });
}

/* The mma.sync and the wgmma flash kernels give one model; where wgmma does
 * not run (compute capability other than 9.0), asking for it is an error
 * that says so. */
static void test_flash_kernels_agree(void) {
    bt_config cfg; char err[512];
    REQUIRE(bt_config_preset("tiny", &cfg) == 0);
    bt_layout L;
    REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    btc_model *g = btc_new(&L, 1, 128, &(btc_opts){ .attn = BTC_ATTN_FLASH_WGMMA }, err, sizeof err);
    bt_layout_free(&L);
    if (!g) {
        CHECK(strstr(err, "compute capability 9.0") != NULL, "no wgmma model, and the message is: %s", err);
        printf("# no compute capability 9.0 GPU: %s\n", err);
        return;
    }
    btc_free(g);
    same_pass("mma.sync vs wgmma kernels", (btc_opts){ .attn = BTC_ATTN_FLASH_MMA },
              (btc_opts){ .attn = BTC_ATTN_FLASH_WGMMA });
}

/* Two micro-batches of one sample add up to the batch of two. */
static void test_accumulation(void) {
    bt_config cfg; char err[256];
    bt_config_preset("tiny", &cfg); cfg.attn = BT_ATTN_PAIRWISE;
    bt_layout L; REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    enum { B = 2, T = 64 };
    float *p = malloc(L.total * 4), *g1 = malloc(L.total * 4), *g2 = malloc(L.total * 4);
    int32_t in[B * T], lab[B * T];
    int n;
    bt_params_init(&L, p, 5);
    make_batch(B, T, cfg.vocab_size, 8, 2, in, lab, &n);
    btc_model *g = btc_new(&L, B, T, &(btc_opts){ .precision = BTC_FP32 }, err, sizeof err);
    REQUIRE(g, "%s", err);
    btc_set_params(g, p);
    bt_batch all = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 2, .sample0 = 0 };
    btc_zero_grads(g);
    double la = btc_forward_backward(g, &all, 1, 1, 4, 1.0f / n, NULL);
    btc_get_grads(g, g1);
    btc_zero_grads(g);
    double ls = 0;
    for (int b = 0; b < B; b++) {
        bt_batch one = { .B = 1, .T = T, .inputs = in + b * T, .labels = lab + b * T, .step = 2, .sample0 = (uint64_t)b };
        ls += btc_forward_backward(g, &one, 1, 1, 4, 1.0f / n, NULL);
    }
    btc_get_grads(g, g2);
    CHECK(fabs(la - ls) <= 1e-5 * fabs(la), "loss %g vs %g", la, ls);
    double r = rel_err(g2, g1, L.total);
    CHECK(r <= 1e-5, "accumulated gradients differ: rel %.3g", r);
    btc_free(g);
    bt_layout_free(&L);
    free(p); free(g1); free(g2);
}

/* One AdamW update with clipping, on the GPU and with bt_adamw_update. */
static void test_adamw(void) {
    bt_config cfg; char err[256];
    bt_config_preset("tiny", &cfg);
    bt_layout L; REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    enum { B = 2, T = 64 };
    size_t N = L.total;
    float *p = malloc(N * 4), *g = calloc(N, 4), *m = calloc(N, 4), *v = calloc(N, 4), *pg = malloc(N * 4),
          *mg = malloc(N * 4), *vg = malloc(N * 4);
    int32_t in[B * T], lab[B * T];
    int n;
    bt_params_init(&L, p, 6);
    make_batch(B, T, cfg.vocab_size, 9, 1, in, lab, &n);
    bt_optim_cfg o; bt_optim_defaults(&o);
    o.clip = 0.05f;   /* so that clipping happens */
    btc_model *gm = btc_new(&L, B, T, &(btc_opts){ .precision = BTC_FP32 }, err, sizeof err);
    REQUIRE(gm, "%s", err);
    bt_batch bb = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 1, .sample0 = 0 };
    btc_set_params(gm, p);
    btc_zero_grads(gm);
    btc_forward_backward(gm, &bb, 1, 0, 0, 1.0f / n, NULL);
    btc_get_grads(gm, g);
    /* two updates, so that the moments are non-zero going into the second */
    for (long t = 1; t <= 2; t++) {
        double lr = 3e-4 * t;
        double norm_gpu = btc_adamw_step(gm, &o, t, lr);
        double norm = bt_grad_norm(g, N);
        CHECK(fabs(norm_gpu - norm) <= 1e-5 * norm, "norm gpu %g cpu %g", norm_gpu, norm);
        bt_adamw_update(&L, &o, p, g, m, v, t, lr, bt_clip_coef(&o, norm));
    }
    btc_get_params(gm, pg);
    btc_get_moments(gm, mg, vg);
    CHECK(rel_err(pg, p, N) <= 1e-6, "params rel %.3g", rel_err(pg, p, N));
    CHECK(rel_err(mg, m, N) <= 1e-5, "m rel %.3g", rel_err(mg, m, N));
    CHECK(rel_err(vg, v, N) <= 1e-5, "v rel %.3g", rel_err(vg, v, N));
    btc_free(gm);
    bt_layout_free(&L);
    free(p); free(g); free(m); free(v); free(pg); free(mg); free(vg);
}

/* GPU weights -> safetensors -> CPU buffer -> GPU -> identical. */
static void test_checkpoint_roundtrip(void) {
    bt_config cfg; char err[512];
    bt_config_preset("tiny", &cfg); cfg.attn = BT_ATTN_PAIRWISE;
    bt_layout L; REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    size_t N = L.total;
    float *p = malloc(N * 4), *q = malloc(N * 4), *r = malloc(N * 4);
    bt_params_init(&L, p, 3);
    btc_model *g = btc_new(&L, 1, 64, NULL, err, sizeof err);
    REQUIRE(g, "%s", err);
    btc_set_params(g, p);
    btc_get_params(g, q);
    CHECK(!memcmp(p, q, N * 4), "weights changed on the way to the GPU and back");
    const char *pre[1] = { "" };
    const float *bufs[1] = { q };
    char path[] = "gpu_ckpt.safetensors";
    REQUIRE(bt_st_write(path, &L, 1, pre, bufs, err, sizeof err) == 0, "%s", err);
    REQUIRE(bt_st_read(path, &L, "", r, err, sizeof err) == 0, "%s", err);
    CHECK(!memcmp(p, r, N * 4), "safetensors round trip changed the weights");
    btc_set_params(g, r);
    btc_get_params(g, q);
    CHECK(!memcmp(p, q, N * 4), "CPU-loaded weights changed on the GPU");
    unlink(path);
    btc_free(g);
    bt_layout_free(&L);
    free(p); free(q); free(r);
}

/* Raw ids (with [CLS]/[SEP]/[PAD]) masked on the GPU equal bt_mask_batch's,
 * and the pass gives the loss of the host-masked batch. */
static void test_device_masks(void) {
    bt_config cfg; char err[512];
    bt_config_preset("tiny", &cfg);
    bt_layout L; REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    enum { B = 5, T = 128 };
    const int V = cfg.vocab_size;
    static uint16_t ids[B * T];
    static int32_t in[B * T], lab[B * T], gin[B * T], glab[B * T];
    int counts[B], n = 0;
    for (int b = 0; b < B; b++) {
        uint16_t *s = ids + b * T;
        for (int t = 0; t < T; t++) s[t] = (uint16_t)(bt_rand32(bt_key(8, 1, (uint64_t)b, 0, 0), (uint64_t)t) % (uint32_t)V);
        s[0] = BT_CLS_ID; s[T - 1] = BT_SEP_ID; s[40] = BT_SEP_ID; s[41] = BT_CLS_ID;
        for (int t = 100 + b; t < T - 1; t++) s[t] = BT_PAD_ID;   /* padded tails of different lengths */
        counts[b] = bt_mask_count(5, 7, 3 + (uint64_t)b, s, T);
        int k = bt_mask_batch(5, 7, 3 + (uint64_t)b, s, T, V, in + b * T, lab + b * T);
        CHECK(k == counts[b], "sample %d: bt_mask_count %d, bt_mask_batch %d", b, counts[b], k);
        n += k;
    }
    REQUIRE(n > 0, "nothing masked");
    float *p = malloc(L.total * 4);
    REQUIRE(p, "out of host memory");
    bt_params_init(&L, p, 1);
    btc_model *g = btc_new(&L, B, T, &(btc_opts){ .precision = BTC_FP32 }, err, sizeof err);
    REQUIRE(g, "%s", err);
    btc_set_params(g, p);
    bt_batch raw = { .B = B, .T = T, .inputs = NULL, .labels = NULL, .step = 3, .sample0 = 0, .ids = ids, .counts = counts, .mask_seed = 5, .mask_step = 7, .mask_sample0 = 3 };
    int nd = 0, nh = 0;
    btc_zero_grads(g);
    double ld = btc_forward_backward(g, &raw, 1, 1, 11, 1.0f / n, &nd);
    btc_get_batch(g, gin, glab, B);
    int bad_in = 0, bad_lab = 0, replaced = 0;
    for (int i = 0; i < B * T; i++) {
        bad_in += gin[i] != in[i];
        bad_lab += glab[i] != lab[i];
        replaced += lab[i] != BT_IGNORE && in[i] != BT_MASK_ID && in[i] != lab[i];
    }
    CHECK(nd == n, "device pass counted %d labels, host %d", nd, n);
    CHECK(bad_in == 0, "%d of %d masked inputs differ from bt_mask_batch's", bad_in, B * T);
    CHECK(bad_lab == 0, "%d of %d labels differ from bt_mask_batch's", bad_lab, B * T);
    CHECK(replaced > 0, "no position got a random id: the test does not cover that branch");
    bt_batch host = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 3, .sample0 = 0 };
    btc_zero_grads(g);
    double lh = btc_forward_backward(g, &host, 1, 1, 11, 1.0f / n, &nh);
    CHECK(nh == n && ld == lh, "loss with device masks %.9g, host masks %.9g", ld, lh);
    printf("  %d samples, %d labelled (%d random ids): device masks equal bt_mask_batch, loss %.7f both\n",
           B, n, replaced, ld / n);
    btc_free(g);
    bt_layout_free(&L);
    free(p);
}

/* bt_train_cuda (fp32: the CPU's arithmetic; masks drawn on the GPU) and
 * bt_train_cpu, same run: the same weights at the end. */
static void test_train_loop_matches_cpu(void) {
    char err[1024];
    enum { VOC = 160, SEQ = 32 };
    REQUIRE(ts_write("shards", SEQ, VOC, 48, 8) == 0, "cannot write test shards");
    static const bt_attn kinds[3] = { BT_ATTN_ORIGINAL, BT_ATTN_SYMMETRIC, BT_ATTN_PAIRWISE };
    for (int k = 0; k < 3; k++) {
        bt_config c;
        bt_config_preset("tiny", &c);
        c.vocab_size = VOC; c.hidden = 32; c.heads = 2; c.layers = 2; c.ffn = 64; c.max_pos = SEQ; c.attn = kinds[k];
        float *w[2] = { NULL, NULL };
        for (int dev = 0; dev < 2; dev++) {
            bt_run r; memset(&r, 0, sizeof r);
            bt_opts_defaults(&r.opts);
            snprintf(r.opts.data, sizeof r.opts.data, "shards");
            snprintf(r.opts.out, sizeof r.opts.out, "run-%d-%d", k, dev);
            r.opts.batch = 6; r.opts.micro_batch = 4;   /* micro-batches of 4 and 2 */
            r.opts.optim.lr = 1e-3f; r.opts.optim.warmup = 2; r.opts.optim.total = 6;
            r.opts.eval_every = 3; r.opts.eval_samples = 6; r.opts.save_every = 0; r.opts.log_every = 1;
            r.cfg = c; r.params_out = &w[dev];
            btc_options co = { BTC_FP32, BTC_ATTN_AUTO, NULL };
            int rc = dev ? bt_train_cuda(&r, &co, err, sizeof err) : bt_train_cpu(&r, err, sizeof err);
            REQUIRE(rc == 0 && w[dev], "%s run: %s", dev ? "GPU" : "CPU", err);
        }
        /* per tensor; not the key bias, whose exact gradient is 0 (rounding noise that AdamW
         * normalises to steps of size lr, see compare()) */
        bt_layout L;
        REQUIRE(bt_layout_init(&L, &c, err, sizeof err) == 0, "%s", err);
        double rel = 0;
        const char *wn = "";
        for (int i = 0; i < L.n; i++) {
            if (L.t[i].kind == BT_T_K_B) continue;
            double r = rel_err(w[1] + L.t[i].offset, w[0] + L.t[i].offset, L.t[i].numel);
            if (!(r <= rel)) { rel = r; wn = L.t[i].name; }
        }
        bt_layout_free(&L);
        CHECK(rel <= 1e-4, "%s: weights after 6 updates differ, %s rel %.3g",
              k == 0 ? "original" : k == 1 ? "symmetric" : "pairwise", wn, rel);
        printf("  %-9s 6 updates (6 = 4 + 2 per update, dropout, device masks): worst tensor rel diff GPU/CPU %.2e (%s)\n",
               k == 0 ? "original" : k == 1 ? "symmetric" : "pairwise", rel, wn);
        free(w[0]); free(w[1]);
    }
}

int main(void) {
    char err[256], name[256];
    if (!btc_available(err, sizeof err)) { printf("FAIL cuda_model_test: %s\n", err); return 1; }
    btc_device_name(name, sizeof name);
    printf("device: %s\n", name);
    T_RUN(test_fp32_tiny);
    T_RUN(test_fp32_small);
    T_RUN(test_bf16_tiny);
    T_RUN(test_bf16_small);
    T_RUN(test_sparse_last_equals_dense);
    T_RUN(test_flash_kernels_agree);
    T_RUN(test_accumulation);
    T_RUN(test_adamw);
    T_RUN(test_checkpoint_roundtrip);
    T_RUN(test_device_masks);
    T_RUN(test_train_loop_matches_cpu);
    return T_DONE();
}
