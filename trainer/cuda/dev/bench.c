/* bench.c - bin/bert-train-cuda-bench (with bench_kernels.cu, the only
 * program that links this folder): training throughput of the CUDA
 * trainer on synthetic batches (random ids, the MLM masking of model.h),
 * the numbers bench/train_bench.sh reports next to PyTorch's:
 * tokens/s, ms per update, model FLOP utilisation, device memory; and the
 * kernel micro-benchmarks (GEMM and copy ceilings, attention variants).
 * One JSON object per line on stdout. */
#include "trainer/cuda/dev/bench.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *o) {
    fprintf(o,
"usage: bert-train-cuda-bench [options]\n"
"  --config small|base|tiny|FILE.json   model (base)\n"
"  --attention original|symmetric|pairwise|all   (all)\n"
"  --micro-batch N      sequences per forward/backward (32)\n"
"  --accum N            micro-batches per update (1)\n"
"  --seq N              sequence length (512)\n"
"  --steps N            timed updates after 3 warm-up updates (20)\n"
"  --fp32               fp32 mode instead of bf16\n"
"  --attn-impl auto|flash|mma|wgmma|ref   attention implementation (auto; mma, wgmma: those flash kernels)\n"
"  --dense-last         the last layer over every row, not only at the masked rows\n"
"  --kernels            GEMM / copy ceilings and attention micro-benchmarks, then exit\n"
"  --profile            after the timed updates, one more with an event per stage: a table of times\n"
"Prints one JSON object per measurement.  Peak: 989 TFLOP/s (H100 SXM bf16 dense).\n");
}

/* Matmul FLOPs of one token's forward pass; the MLM head counted at a
 * fraction head_frac of the tokens (masked positions only, or 1). */
static double fwd_flops_per_token(const bt_config *c, int T, double head_frac) {
    double C = c->hidden, F = c->ffn, d = (double)c->hidden / c->heads, V = c->vocab_size;
    double proj = c->attn == BT_ATTN_ORIGINAL ? 4 : 3;
    double layer = 2 * C * C * proj + 2 * 2 * (double)T * C + 2 * 2 * C * F;
    if (c->attn == BT_ATTN_PAIRWISE) layer += 2 * C * d;
    return c->layers * layer + head_frac * (2 * C * C + 2 * C * V);
}

static int run(const char *config, bt_attn attn, int mb, int accum, int T, int steps, const btc_opts *mo, int profile) {
    bt_config cfg; char err[512];
    if (bt_config_preset(config, &cfg) && bt_config_load_json(config, &cfg, err, sizeof err)) {
        fprintf(stderr, "bert-train-cuda-bench: %s\n", err); return 1;
    }
    cfg.attn = attn;
    bt_layout L;
    if (bt_layout_init(&L, &cfg, err, sizeof err)) { fprintf(stderr, "bert-train-cuda-bench: %s\n", err); return 1; }
    float *p = malloc(L.total * sizeof *p);
    bt_params_init(&L, p, 42);
    btc_model *m = btc_new(&L, mb, T, mo, err, sizeof err);
    if (!m) { fprintf(stderr, "bert-train-cuda-bench: %s\n", err); return 1; }
    btc_set_params(m, p);
    int B = mb * accum;
    uint16_t *ids = malloc((size_t)B * T * sizeof *ids);
    int *counts = malloc((size_t)B * sizeof *counts);
    for (size_t i = 0; i < (size_t)B * T; i++) ids[i] = (uint16_t)(1000 + bt_rand32(7, i) % (uint32_t)(cfg.vocab_size - 1000));
    bt_optim_cfg o; bt_optim_defaults(&o);
    long masked = 0, tokens = 0;
    double t0 = 0, loss = 0;
    double dt = 0;
    for (int s = 0; s < steps + 3 + (profile ? 1 : 0); s++) {
        if (s == 3) { btc_sync(); t0 = now(); masked = 0; tokens = 0; }
        if (s == steps + 3) { dt = now() - t0; btc_profile_begin(); }
        /* as the training loop does: the host counts the masked positions, the GPU masks */
        int n = 0;
        for (int b = 0; b < B; b++) n += counts[b] = bt_mask_count(1, (uint64_t)s, (uint64_t)b, ids + (size_t)b * T, T);
        btc_zero_grads(m);
        for (int a = 0; a < accum; a++) {
            bt_batch bb = { .B = mb, .T = T, .step = (uint64_t)s, .sample0 = (uint64_t)(a * mb),
                            .ids = ids + (size_t)a * mb * T, .counts = counts + a * mb,
                            .mask_seed = 1, .mask_step = (uint64_t)s, .mask_sample0 = (uint64_t)(a * mb) };
            btc_forward_backward_async(m, &bb, 1, 1, 1, 1.0f / n, NULL);
        }
        loss = btc_loss_wait(m) / n;
        btc_allreduce_grads(m, NULL, NULL, NULL, 0);
        btc_adamw_step(m, &o, s + 1, 1e-4);
        if (s < steps + 3) { masked += n; tokens += (long)B * T; }
    }
    if (!profile) dt = now() - t0;
    if (profile) {
        const char *names[64]; double ms[64], total = 0;
        int k = btc_profile_end(names, ms, 64);
        for (int i = 0; i < k; i++) total += ms[i];
        for (int i = 0; i < k; i++)
            printf("{\"profile\": \"%s\", \"ms\": %.3f, \"share\": %.3f}\n", names[i], ms[i], ms[i] / total);
        printf("{\"profile\": \"total\", \"ms\": %.3f}\n", total);
    }
    double tps = tokens / dt, frac = (double)masked / tokens;
    double fl = 3 * fwd_flops_per_token(&cfg, T, frac), fl_full = 3 * fwd_flops_per_token(&cfg, T, 1.0);
    const char *an = attn == BT_ATTN_ORIGINAL ? "original" : attn == BT_ATTN_SYMMETRIC ? "symmetric" : "pairwise";
    printf("{\"model\": \"symbert-cuda\", \"size\": \"%s\", \"kind\": \"%s\", \"B\": %d, \"accum\": %d, \"seq\": %d, "
           "\"precision\": \"%s\", \"attention\": \"%s\", \"tok_s\": %.0f, \"s_per_step\": %.4f, \"params\": %zu, "
           "\"tflops\": %.1f, \"mfu_989\": %.3f, \"tflops_hf_equiv\": %.1f, \"mem_trainer_GB\": %.2f, "
           "\"mem_device_GB\": %.2f, \"loss\": %.4f}\n",
           config, an, mb, accum, T, mo->precision == BTC_FP32 ? "fp32" : "bf16", btc_attn_name(m), tps, dt / steps, L.total,
           fl * tps / 1e12, fl * tps / 989e12, fl_full * tps / 1e12, btc_memory_used() / 1e9, btc_memory_device() / 1e9,
           loss);
    fflush(stdout);
    btc_free(m);
    bt_layout_free(&L);
    free(p); free(ids); free(counts);
    return isfinite(loss) ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *config = "base", *attn = "all";
    int mb = 32, accum = 1, T = 512, steps = 20, kernels = 0, profile = 0;
    btc_opts mo = { BTC_BF16, BTC_ATTN_AUTO, 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--kernels")) kernels = 1;
        else if (!strcmp(a, "--fp32")) mo.precision = BTC_FP32;
        else if (!strcmp(a, "--dense-last")) mo.dense_last = 1;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!v) { fprintf(stderr, "bert-train-cuda-bench: %s needs a value (see --help)\n", a); return 2; }
        else if (!strcmp(a, "--config")) config = argv[++i];
        else if (!strcmp(a, "--attention")) attn = argv[++i];
        else if (!strcmp(a, "--micro-batch")) mb = atoi(argv[++i]);
        else if (!strcmp(a, "--accum")) accum = atoi(argv[++i]);
        else if (!strcmp(a, "--seq")) T = atoi(argv[++i]);
        else if (!strcmp(a, "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(a, "--attn-impl")) {
            const char *s = argv[++i];
            mo.attn = !strcmp(s, "flash") ? BTC_ATTN_FLASH : !strcmp(s, "mma") ? BTC_ATTN_FLASH_MMA
                    : !strcmp(s, "wgmma") ? BTC_ATTN_FLASH_WGMMA : !strcmp(s, "ref") ? BTC_ATTN_REF : BTC_ATTN_AUTO;
            if (mo.attn == BTC_ATTN_AUTO && strcmp(s, "auto")) {
                fprintf(stderr, "bert-train-cuda-bench: --attn-impl %s: not auto, flash, mma, wgmma or ref\n", s);
                return 2;
            }
        } else { fprintf(stderr, "bert-train-cuda-bench: unknown option %s (see --help)\n", a); return 2; }
    }
    if (mb < 1 || accum < 1 || T < 1 || steps < 1) { fprintf(stderr, "bert-train-cuda-bench: sizes must be positive\n"); return 2; }
    char err[256], name[256];
    if (!btc_available(err, sizeof err)) { fprintf(stderr, "bert-train-cuda-bench: %s\n", err); return 1; }
    btc_device_name(name, sizeof name);
    printf("{\"device\": \"%s\"}\n", name);
    if (kernels) {
        printf("{\"bench\": \"gemm\", \"shape\": \"8192x8192x8192 bf16\", \"tflops\": %.1f}\n", btc_bench_gemm(8192, 8192, 8192, 0, 20));
        /* the forward products of BERT-base at micro-batch 32 (out x tokens x in), without and with the bias epilogue */
        static const int shp[4][3] = { {2304, 16384, 768}, {768, 16384, 768}, {3072, 16384, 768}, {768, 16384, 3072} };
        static const char *what[4] = { "QKV", "attention output", "FFN1", "FFN2" };
        for (int i = 0; i < 4; i++)
            for (int bias = 0; bias < 2; bias++)
                printf("{\"bench\": \"gemm\", \"shape\": \"%dx%dx%d bf16 (%s of base, mb 32)\", \"bias\": %d, \"tflops\": %.1f}\n",
                       shp[i][1], shp[i][0], shp[i][2], what[i], bias, btc_bench_gemm(shp[i][0], shp[i][1], shp[i][2], bias, 20));
        for (int tune = 0; tune < 2; tune++)
            for (int Vr = 30522; Vr <= 30592; Vr += Vr == 30522 ? 6 : 64) {
                double hm[3];
                btc_bench_head(30522, Vr, 2560, 768, tune, 20, hm);
                double f = 2.0 * Vr * 2560.0 * 768 / 1e9;
                printf("{\"bench\": \"mlm head\", \"vocab rows\": %d, \"masked rows\": 2560, \"autotune\": %d, \"fwd_ms\": %.3f, "
                       "\"dword_ms\": %.3f, \"dx_ms\": %.3f, \"tflops\": [%.1f, %.1f, %.1f]}\n", Vr, tune, hm[0], hm[1], hm[2],
                       f / hm[0], f / hm[1], f / hm[2]);
            }
        printf("{\"bench\": \"copy\", \"bytes\": 1073741824, \"GB_s\": %.0f}\n", btc_bench_copy(1u << 30, 20));
        {
            const char *pw[16];
            double ms[16], by[16];
            int np = 0;
            btc_bench_pointwise(16384, 768, 3072, 20, pw, ms, by, &np);
            for (int i = 0; i < np; i++)
                printf("{\"bench\": \"pointwise\", \"kernel\": \"%s\", \"shape\": \"base, mb 32\", \"ms\": %.4f, \"GB_s\": %.0f}\n",
                       pw[i], ms[i], by[i] / (ms[i] * 1e-3) / 1e9);
            fflush(stdout);
        }
        /* the flash kernels asked for (mma, wgmma; else those that run here), then the reference path */
        const int flash = mo.attn == BTC_ATTN_FLASH_MMA || mo.attn == BTC_ATTN_FLASH_WGMMA ? mo.attn : BTC_ATTN_FLASH;
        for (int ref = 0; ref < 2; ref++)
            for (int dr = 1; dr >= 0; dr--) {
                double f, b;
                btc_bench_attention(32, 512, 12, ref ? BTC_ATTN_REF : flash, dr ? 0.1f : 0.0f, 10, &f, &b);
                double fl = 4.0 * 32 * 12 * 512.0 * 512 * 64;
                printf("{\"bench\": \"attention\", \"impl\": \"%s\", \"shape\": \"B32 T512 H12 d64\", \"dropout\": %.1f, "
                       "\"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"fwd_tflops\": %.1f, \"bwd_tflops\": %.1f}\n",
                       ref ? "cuBLAS batched + softmax" : btc_flash_kernels(flash), dr ? 0.1 : 0.0, f, b,
                       fl / (f * 1e-3) / 1e12, 2.5 * fl / (b * 1e-3) / 1e12);
                fflush(stdout);
            }
        return 0;
    }
    int rc = 0;
    for (int a = 0; a < 3; a++) {
        const char *an = a == 0 ? "original" : a == 1 ? "symmetric" : "pairwise";
        if (strcmp(attn, "all") && strcmp(attn, an) && !(a == 0 && !strcmp(attn, "vanilla"))) continue;
        rc |= run(config, (bt_attn)a, mb, accum, T, steps, &mo, profile);
    }
    return rc;
}
