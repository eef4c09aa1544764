/* trainer_test.c - the parameter table (Table 2 counts, names, offsets) and
 * model.h's dropout draws. */
#include "tests/t.h"
#include <math.h>
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

/* model.h's dropout: thresholds are ceil(p 2^16); element e reads slot e % 4 of
 * word e / 4; over many draws the keep rate is 1 - p, and the four slots of a
 * word, and neighbouring words, are independent (joint keep rate (1-p)^2). */
static void test_dropout_stream(void) {
    CHECK(bt_dropout_threshold(0.0f) == 0);
    CHECK(bt_dropout_threshold(0.5f) == 32768);
    CHECK(bt_dropout_threshold(0.1f) == 6554, "%u", bt_dropout_threshold(0.1f));   /* 6553.6 rounded up */
    CHECK(bt_dropout_threshold(0.999f) == 65471, "%u", bt_dropout_threshold(0.999f));
    uint64_t key = bt_dropout_key(42, 7, 3, 2, BT_DROP_ATTN_PROBS);
    CHECK(key != bt_dropout_key(42, 7, 3, 2, BT_DROP_FFN_OUT) && key != bt_dropout_key(42, 7, 4, 2, BT_DROP_ATTN_PROBS));
    const uint32_t thr = bt_dropout_threshold(0.1f);
    const long n = 1L << 22;
    long kept = 0, both_slot = 0, both_word = 0, slot_mismatch = 0;
    long per_slot[4] = {0, 0, 0, 0};
    for (long e = 0; e < n; e++) {
        int k = bt_dropout_keep(key, (uint64_t)e, thr);
        uint64_t w = bt_dropout_word(key, (uint64_t)e / 4);
        if (k != (int)(((w >> (16 * (e % 4))) & 0xffff) >= thr)) slot_mismatch++;
        kept += k; per_slot[e % 4] += k;
        if (e % 4 < 3) both_slot += k && bt_dropout_keep(key, (uint64_t)e + 1, thr);
        if (e % 4 == 3 && e + 1 < n) both_word += k && bt_dropout_keep(key, (uint64_t)e + 1, thr);
    }
    CHECK(slot_mismatch == 0, "%ld draws are not their word's slot", slot_mismatch);
    double rate = (double)kept / n;                 /* sd of the rate: 0.00015 */
    CHECK(fabs(rate - 0.9) < 0.001, "keep rate %.5f", rate);
    for (int s = 0; s < 4; s++) CHECK(fabs((double)per_slot[s] / (n / 4) - 0.9) < 0.002, "slot %d: %.5f", s, (double)per_slot[s] / (n / 4));
    double js = (double)both_slot / (n / 4 * 3), jw = (double)both_word / (n / 4);
    CHECK(fabs(js - 0.81) < 0.002, "adjacent slots kept together %.5f, want 0.81", js);
    CHECK(fabs(jw - 0.81) < 0.003, "adjacent words kept together %.5f, want 0.81", jw);
}

int main(void) {
    T_RUN(test_table2_counts);
    T_RUN(test_layout_contiguous);
    T_RUN(test_dropout_stream);
    return T_DONE();
}
