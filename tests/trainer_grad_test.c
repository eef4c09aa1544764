/* trainer_grad_test.c - the CPU backward pass against finite differences
 * for every parameter tensor (every element of the small ones, 48 spread
 * over each larger one), for the three attention variants, with dropout on
 * (its masks are fixed functions of their keys) and off.  A config small enough that 2 forward passes per parameter are
 * cheap: vocab 128, hidden 16, 2 heads, 2 layers, FFN 32, 8 tokens x 2. */
#include "tests/t.h"
#include "trainer/cpu.h"

static void small_config(bt_config *c, bt_attn a) {
    bt_config_preset("tiny", c);
    c->vocab_size = 128; c->hidden = 16; c->heads = 2; c->layers = 2; c->ffn = 32; c->max_pos = 16;
    c->init_std = 0.3f; c->attn = a;
    c->pad_id = 127;   /* no input below uses it, so every embedding row is a plain function of the loss */
}

static void check_variant(bt_attn attn, int dropout) {
    bt_config cfg; small_config(&cfg, attn);
    bt_layout L; char err[256];
    REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
    enum { B = 2, T = 8 };
    bt_cpu *m = bt_cpu_new(&L, B, T, err, sizeof err);
    REQUIRE(m != NULL, "%s", err);
    float *p = malloc(L.total * sizeof *p), *g = calloc(L.total, sizeof *g);
    REQUIRE(p && g, "alloc");
    bt_params_init(&L, p, 7);
    /* LayerNorm weights and biases away from 1 and 0 so their gradients are exercised fully */
    for (int i = 0; i < L.n; i++) if (L.t[i].init != BT_INIT_NORMAL && L.t[i].init != BT_INIT_STDNORMAL) {
        uint64_t key = bt_key(99, 9, (uint64_t)i, 0, 0);
        for (size_t e = 0; e < L.t[i].numel; e++) p[L.t[i].offset + e] += 0.5f * (bt_uniform(key, e) - 0.5f);
    }
    int32_t in[B * T], lab[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = 1 + (int)(bt_rand32(5, (uint64_t)i) % 126);
        lab[i] = (i % 3 == 0) ? (int)(bt_rand32(6, (uint64_t)i) % 128) : BT_IGNORE;
    }
    in[3] = 0;
    lab[3] = 5;
    bt_batch b = { .B = B, .T = T, .inputs = in, .labels = lab, .step = 11, .sample0 = 4 };
    int n;
    double loss = bt_cpu_forward_backward(m, p, g, &b, dropout, 3, 1.0f, &n, NULL);
    CHECK(n == 6, "labels %d", n);
    CHECK(isfinite(loss) && loss > 0, "loss %g", loss);
    const double eps = 4e-2;
    int worst_t = -1; double worst = 0;
    for (int ti = 0; ti < L.n; ti++) {
        const bt_tensor *t = &L.t[ti];
        double num = 0, den = 0;
        int bad = 0;
        /* every element of small tensors; 48 spread over each larger one (an odd stride) */
        size_t stride = t->numel <= 48 ? 1 : (t->numel / 48) | 1;
        for (size_t e = 0; e < t->numel; e += stride) {
            float *x = &p[t->offset + e], x0 = *x;
            double dd[2];
            for (int k = 0; k < 2; k++) {   /* central differences at eps and eps/2, then Richardson */
                double h = k ? eps / 2 : eps;
                *x = (float)(x0 + h); double lp = bt_cpu_forward_backward(m, p, NULL, &b, dropout, 3, 1.0f, &n, NULL);
                *x = (float)(x0 - h); double lm = bt_cpu_forward_backward(m, p, NULL, &b, dropout, 3, 1.0f, &n, NULL);
                dd[k] = (lp - lm) / ((double)(float)(x0 + h) - (double)(float)(x0 - h));
            }
            *x = x0;
            double fd = (4 * dd[1] - dd[0]) / 3, an = g[t->offset + e];
            num += (fd - an) * (fd - an); den += fd * fd + an * an;
            if (fabs(fd - an) > 2e-3 + 2e-2 * fabs(fd)) {
                if (bad < 3) CHECK(0, "%s[%zu]: analytic %.6g, finite difference %.6g", t->name, e, an, fd);
                bad++;
            }
        }
        /* the key bias has no effect on the loss (softmax is shift-invariant): both are ~0 */
        if (t->kind == BT_T_K_B) {
            CHECK(sqrt(den) < 1e-3, "%s: gradient should vanish, norm %.3g", t->name, sqrt(den));
            continue;
        }
        double rel = den > 0 ? sqrt(num / den) : 0;
        if (rel > worst) { worst = rel; worst_t = ti; }
        CHECK(rel < 2e-3, "%s: relative error %.3g over the tensor", t->name, rel);
        CHECK(den > 1e-6, "%s: gradient identically zero", t->name);
    }
    printf("# attention %d dropout %d: worst relative error %.3g (%s)\n", (int)attn, dropout, worst,
           worst_t >= 0 ? L.t[worst_t].name : "-");
    bt_cpu_free(m); free(p); free(g); bt_layout_free(&L);
}

static void test_grad_original(void) { check_variant(BT_ATTN_ORIGINAL, 0); }
static void test_grad_symmetric(void) { check_variant(BT_ATTN_SYMMETRIC, 0); }
static void test_grad_pairwise(void) { check_variant(BT_ATTN_PAIRWISE, 0); }
static void test_grad_original_dropout(void) { check_variant(BT_ATTN_ORIGINAL, 1); }
static void test_grad_symmetric_dropout(void) { check_variant(BT_ATTN_SYMMETRIC, 1); }
static void test_grad_pairwise_dropout(void) { check_variant(BT_ATTN_PAIRWISE, 1); }

int main(void) {
    T_RUN(test_grad_original);
    T_RUN(test_grad_symmetric);
    T_RUN(test_grad_pairwise);
    T_RUN(test_grad_original_dropout);
    T_RUN(test_grad_symmetric_dropout);
    T_RUN(test_grad_pairwise_dropout);
    return T_DONE();
}
