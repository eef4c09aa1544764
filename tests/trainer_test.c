/* trainer_test.c - the parameter table: Table 2 counts, names, offsets. */
#include "tests/t.h"
#include "trainer/model.h"

static void test_table2_counts(void) {
    static const struct { const char *preset; bt_attn a; size_t want; } c[] = {
        { "small", BT_ATTN_ORIGINAL, 28795194 }, { "small", BT_ATTN_SYMMETRIC, 27744570 },
        { "small", BT_ATTN_PAIRWISE, 27875642 }, { "base", BT_ATTN_ORIGINAL, 109514298 },
        { "base", BT_ATTN_SYMMETRIC, 102427194 }, { "base", BT_ATTN_PAIRWISE, 103017018 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        bt_config cfg;
        REQUIRE(bt_config_preset(c[i].preset, &cfg) == 0);
        cfg.attn = c[i].a;
        size_t n = bt_param_count(&cfg);
        CHECK(n == c[i].want, "%s/%d: %zu, want %zu", c[i].preset, (int)c[i].a, n, c[i].want);
    }
}

static void test_layout_contiguous(void) {
    for (int a = 0; a < 3; a++) {
        bt_config cfg; bt_config_preset("tiny", &cfg); cfg.attn = (bt_attn)a;
        bt_layout L; char err[200];
        REQUIRE(bt_layout_init(&L, &cfg, err, sizeof err) == 0, "%s", err);
        size_t off = 0;
        for (int i = 0; i < L.n; i++) {
            CHECK(L.t[i].offset == off, "%s offset", L.t[i].name);
            off += L.t[i].numel;
            CHECK(bt_tensor_find(&L, L.t[i].name) == &L.t[i]);
            int is_ln = strstr(L.t[i].name, "LayerNorm") != NULL, is_bias = strstr(L.t[i].name, "bias") != NULL;
            CHECK(L.t[i].decay == !(is_ln || is_bias), "%s decay flag", L.t[i].name);
        }
        CHECK(off == L.total);
        CHECK((bt_tensor_of(&L, BT_T_K_W, 1) != NULL) == (a == BT_ATTN_ORIGINAL));
        CHECK((bt_tensor_of(&L, BT_T_PAIR, 1) != NULL) == (a == BT_ATTN_PAIRWISE));
        const bt_tensor *q = bt_tensor_of(&L, BT_T_Q_W, 1);
        REQUIRE(q != NULL);
        CHECK(!strcmp(q->name, "bert.encoder.layer.1.attention.self.query.weight"), "%s", q->name);
        CHECK(bt_off(&L, BT_T_WORD_EMB, 0) == 0);
        CHECK(bt_tensor_of(&L, BT_T_DEC_B, 0)->numel == 30522);
        if (a == BT_ATTN_PAIRWISE) {
            const bt_tensor *p = bt_tensor_of(&L, BT_T_PAIR, 0);
            CHECK(p->ndim == 3 && p->shape[0] == 2 && p->shape[1] == 64 && p->shape[2] == 64);
        }
        bt_layout_free(&L);
    }
}

int main(void) {
    T_RUN(test_table2_counts);
    T_RUN(test_layout_contiguous);
    return T_DONE();
}
