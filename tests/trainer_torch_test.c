/* trainer_torch_test.c - the CPU model against PyTorch.
 *
 * For each attention variant a small model (2 layers, 2 heads, hidden 32,
 * FFN 64, vocab 256) gets deterministic weights (LayerNorm weights and all
 * biases perturbed so that none is trivial) and a batch of 3 x 16 tokens
 * masked by bt_mask_batch (one unmasked input is id 0, the padding row).
 *   trainer_torch_test --write DIR   writes DIR/<variant>/{model.safetensors,
 *                                    config.json, batch.json} for
 *                                    tests/torch_reference.py (run on the GPU
 *                                    machine, which has torch)
 *   trainer_torch_test               compares our loss, logits and every
 *                                    gradient with what the script wrote to
 *                                    tests/data/trainer/torch_<variant>.{json,safetensors}
 * Tolerance: relative error <= 1e-4 (fp32 against fp32), per tensor. */
#include "tests/t.h"
#include "trainer/cpu.h"
#include "trainer/ckpt.h"
#include "pipeline/atomic.h"
#include "pipeline/json.h"
#include <sys/stat.h>

enum { B = 3, T = 16 };
static const char *names[3] = { "original", "symmetric", "pairwise" };

static void ref_config(bt_config *c, int variant) {
    bt_config_preset("tiny", c);
    c->vocab_size = 256; c->hidden = 32; c->heads = 2; c->layers = 2; c->ffn = 64; c->max_pos = 32;
    c->init_std = 0.2f; c->attn = (bt_attn)variant;
}

static void ref_weights(const bt_layout *L, float *p) {
    bt_params_init(L, p, 2024);
    for (int i = 0; i < L->n; i++) if (L->t[i].init == BT_INIT_ZERO || L->t[i].init == BT_INIT_ONE) {
        uint64_t key = bt_key(77, 5, (uint64_t)i, 0, 0);
        for (size_t e = 0; e < L->t[i].numel; e++) p[L->t[i].offset + e] += 0.4f * (bt_uniform(key, e) - 0.5f);
    }
}

static int ref_batch(int variant, int32_t *in, int32_t *lab) {
    int n = 0;
    for (int b = 0; b < B; b++) {
        uint16_t ids[T];
        ids[0] = BT_CLS_ID; ids[T - 1] = BT_SEP_ID;
        for (int t = 1; t < T - 1; t++) ids[t] = (uint16_t)(104 + bt_rand32(bt_key(3, 9, (uint64_t)variant, (uint64_t)b, 0), (uint64_t)t) % 152);
        if (b == 1) ids[5] = BT_PAD_ID;   /* never masked: the input side of the padding row */
        n += bt_mask_batch(11, 0, (uint64_t)b, ids, T, 256, in + b * T, lab + b * T);
    }
    return n;
}

static int write_inputs(const char *dir) {
    char err[512], p[1024];
    for (int v = 0; v < 3; v++) {
        bt_config c; ref_config(&c, v);
        bt_layout L;
        if (bt_layout_init(&L, &c, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        float *w = malloc(L.total * 4);
        ref_weights(&L, w);
        snprintf(p, sizeof p, "%s/%s", dir, names[v]);
        if (mkdir_p(p, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        snprintf(p, sizeof p, "%s/%s/model.safetensors", dir, names[v]);
        const char *pre[1] = { "" }; const float *bufs[1] = { w };
        if (bt_st_write(p, &L, 1, pre, bufs, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        char js[4096];
        int k = bt_config_to_json(&c, js, sizeof js);
        snprintf(p, sizeof p, "%s/%s/config.json", dir, names[v]);
        if (afile_put(p, js, (size_t)k, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        int32_t in[B * T], lab[B * T];
        ref_batch(v, in, lab);
        snprintf(p, sizeof p, "%s/%s/batch.json", dir, names[v]);
        FILE *f = fopen(p, "w");
        if (!f) return 1;
        fprintf(f, "{\"B\": %d, \"T\": %d, \"input_ids\": [", B, T);
        for (int i = 0; i < B * T; i++) fprintf(f, "%s%d", i ? ", " : "", in[i]);
        fprintf(f, "], \"labels\": [");
        for (int i = 0; i < B * T; i++) fprintf(f, "%s%d", i ? ", " : "", lab[i]);
        fprintf(f, "]}\n");
        fclose(f);
        free(w); bt_layout_free(&L);
    }
    return 0;
}

static void compare(int v) {
    const char *root = t_env("ROOT", ".");
    bt_config c; ref_config(&c, v);
    bt_layout L; char err[1024], p[2048];
    REQUIRE(bt_layout_init(&L, &c, err, sizeof err) == 0, "%s", err);
    float *w = malloc(L.total * 4), *g = calloc(L.total, 4), *tg = calloc(L.total, 4);
    float *logits = malloc((size_t)B * T * 256 * 4);
    ref_weights(&L, w);
    int32_t in[B * T], lab[B * T];
    int M = ref_batch(v, in, lab);
    REQUIRE(M > 0, "no masked positions");
    bt_cpu *m = bt_cpu_new(&L, B, T, err, sizeof err);
    REQUIRE(m, "%s", err);
    bt_batch bb = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 0, .sample0 = 0 };
    int nl;
    double loss = bt_cpu_forward_backward(m, w, g, &bb, 0, 0, 1.0f / (float)M, &nl, logits) / M;
    /* torch's numbers */
    snprintf(p, sizeof p, "%s/tests/data/trainer/torch_%s.safetensors", root, names[v]);
    REQUIRE(bt_st_read(p, &L, "grad.", tg, err, sizeof err) == 0, "%s", err);
    snprintf(p, sizeof p, "%s/tests/data/trainer/torch_%s.json", root, names[v]);
    FILE *f = fopen(p, "rb");
    REQUIRE(f, "cannot open %s", p);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    js_path q[3] = { { { "loss" }, 1 }, { { "logits" }, 1 }, { { "n_masked" }, 1 } };
    js_val jv[3];
    REQUIRE(js_scan(text, n, q, 3, jv, err, sizeof err) == 0, "%s: %s", p, err);
    REQUIRE(jv[0].type == JS_NUMBER && jv[1].type == JS_ARRAY && jv[2].type == JS_NUMBER, "%s: fields", p);
    CHECK((int)js_number(&jv[2]) == M, "torch masked %d positions, we %d", (int)js_number(&jv[2]), M);
    double tl = js_number(&jv[0]);
    CHECK(fabs(loss - tl) <= 1e-4 * fabs(tl), "loss %.9g, torch %.9g", loss, tl);
    /* logits at the masked positions, row by row */
    size_t pos = 0, rows = 0; js_val row;
    double num = 0, den = 0;
    while (js_array_next(&jv[1], &pos, &row)) {
        size_t p2 = 0, col = 0; js_val x;
        while (js_array_next(&row, &p2, &x)) {
            if (rows < (size_t)M && col < 256) {
                double d = logits[rows * 256 + col] - js_number(&x);
                num += d * d; den += js_number(&x) * js_number(&x);
            }
            col++;
        }
        CHECK(col == 256, "logits row %zu has %zu columns", rows, col);
        rows++;
    }
    CHECK(rows == (size_t)M, "%zu logits rows, want %d", rows, M);
    CHECK(sqrt(num / den) <= 1e-4, "logits: relative error %.3g", sqrt(num / den));
    double worst = 0; const char *wn = "";
    for (int i = 0; i < L.n; i++) {
        const bt_tensor *t = &L.t[i];
        double a = 0, d2 = 0;
        for (size_t e = 0; e < t->numel; e++) {
            double x = tg[t->offset + e], y = g[t->offset + e];
            a += x * x; d2 += (x - y) * (x - y);
        }
        if (t->kind == BT_T_K_B) {   /* mathematically zero: both must be tiny */
            CHECK(sqrt(a) < 1e-5 && sqrt(d2) < 1e-5, "%s: |torch| %.3g, |diff| %.3g", t->name, sqrt(a), sqrt(d2));
            continue;
        }
        double rel = sqrt(d2 / a);
        if (rel > worst) { worst = rel; wn = t->name; }
        CHECK(a > 0 && rel <= 1e-4, "%s: relative error %.3g (|grad| %.3g)", t->name, rel, sqrt(a));
    }
    printf("# %s: loss %.7f (torch %.7f), %d masked, worst gradient relative error %.2g (%s)\n",
           names[v], loss, tl, M, worst, wn);
    bt_cpu_free(m); free(w); free(g); free(tg); free(logits); bt_layout_free(&L);
}

static void test_torch_original(void) { compare(0); }
static void test_torch_symmetric(void) { compare(1); }
static void test_torch_pairwise(void) { compare(2); }

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write")) return write_inputs(argv[2]);
    T_RUN(test_torch_original);
    T_RUN(test_torch_symmetric);
    T_RUN(test_torch_pairwise);
    return T_DONE();
}
