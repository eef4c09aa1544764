/* trainer_train_test.c - the training loop: resume exactness, interruption,
 * thread-count and micro-batch independence, NaN detection, checkpoints,
 * metrics, learning on structured data, corrupt shards. */
#include "tests/t.h"
#include "tests/trainer_shards.h"
#include "trainer/cpu.h"
#include "trainer/data.h"
#include "trainer/train.h"
#include "pipeline/json.h"
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { VOCAB = 160, SEQ = 16 };

static void cfg_small(bt_config *c, bt_attn a) {
    bt_config_preset("tiny", c);
    c->vocab_size = VOCAB; c->hidden = 32; c->heads = 2; c->layers = 2; c->ffn = 64; c->max_pos = 32; c->attn = a;
}

static void opts_small(bt_opts *o, const char *out) {
    bt_opts_defaults(o);
    snprintf(o->data, sizeof o->data, "shards");
    snprintf(o->out, sizeof o->out, "%s", out);
    o->batch = 4; o->micro_batch = 2;
    o->optim.lr = 1e-3f; o->optim.warmup = 2; o->optim.total = 8;
    o->eval_every = 4; o->eval_samples = 6; o->save_every = 3; o->log_every = 1;
}

/* Trains; returns the final parameters (malloc'd) or NULL; rc to *rcp. */
static float *run(bt_opts *o, bt_config *c, const char *resume, long stop_at, volatile sig_atomic_t *stop,
                  bt_progress_fn fn, void *ctx, int *rcp, char *err, size_t errlen) {
    bt_run r; memset(&r, 0, sizeof r);
    float *p = NULL;
    r.opts = *o; r.cfg = *c; r.resume = resume; r.stop_at = stop_at; r.stop = stop;
    r.progress = fn; r.ctx = ctx; r.params_out = &p;
    *rcp = bt_train_cpu(&r, err, errlen);
    return p;
}

static size_t total_of(const bt_config *c) { return bt_param_count(c); }

static void test_resume_exact(void) {
    static const bt_attn kinds[3] = { BT_ATTN_ORIGINAL, BT_ATTN_SYMMETRIC, BT_ATTN_PAIRWISE };
    for (int k = 0; k < 3; k++) {
        bt_config c; cfg_small(&c, kinds[k]);
        bt_opts o; char err[1024]; int rc;
        char outA[64], outB[64];
        snprintf(outA, sizeof outA, "runA%d", k); snprintf(outB, sizeof outB, "runB%d", k);
        opts_small(&o, outA);
        float *a = run(&o, &c, NULL, 0, NULL, NULL, NULL, &rc, err, sizeof err);
        REQUIRE(rc == 0 && a, "run A: %s", err);
        opts_small(&o, outB);
        float *b1 = run(&o, &c, NULL, 4, NULL, NULL, NULL, &rc, err, sizeof err);
        REQUIRE(rc == 0 && b1, "run B (first half): %s", err);
        CHECK(memcmp(a, b1, total_of(&c) * 4) != 0, "4 steps and 8 steps gave the same weights");
        char ck[2300];
        REQUIRE(bt_ckpt_find(outB, ck, sizeof ck, err, sizeof err) == 0, "%s", err);
        CHECK(strstr(ck, "checkpoint-4") != NULL, "latest is %s", ck);
        float *b = run(&o, &c, ck, 0, NULL, NULL, NULL, &rc, err, sizeof err);
        REQUIRE(rc == 0 && b, "run B (resumed): %s", err);
        CHECK(memcmp(a, b, total_of(&c) * 4) == 0, "attention %d: 8 steps != 4 + resume + 4", k);
        /* the saved model of the last step is what the loop ended with */
        bt_layout L; REQUIRE(bt_layout_init(&L, &c, err, sizeof err) == 0);
        float *s = malloc(L.total * 4);
        REQUIRE(bt_ckpt_find(outB, ck, sizeof ck, err, sizeof err) == 0, "%s", err);
        REQUIRE(bt_ckpt_load_tensors(ck, &L, s, NULL, NULL, err, sizeof err) == 0, "%s", err);
        CHECK(memcmp(s, b, L.total * 4) == 0, "checkpoint differs from the final weights");
        /* metrics: one row per step (steps 1..8) plus the step-0 evaluation, each step once */
        char mp[128]; snprintf(mp, sizeof mp, "%s/metrics.jsonl", outB);
        FILE *f = fopen(mp, "r"); REQUIRE(f, "no %s", mp);
        char line[1024]; int rows = 0, last = -1, evals = 0, sorted = 1;
        js_path pp[2] = { { { "step" }, 1 }, { { "eval_loss" }, 1 } };
        while (fgets(line, sizeof line, f)) {
            js_val v[2]; char je[100];
            REQUIRE(js_scan(line, strlen(line), pp, 2, v, je, sizeof je) == 0, "bad metrics line %s", line);
            int st = (int)js_number(&v[0]);
            if (st < last) sorted = 0;
            if (st == last && v[1].type != JS_NUMBER) sorted = 0;
            last = st; rows++;
            if (v[1].type == JS_NUMBER) evals++;
        }
        fclose(f);
        CHECK(rows == 9 && sorted, "%d metric rows (sorted %d)", rows, sorted);
        CHECK(evals == 3, "%d evaluations (steps 0, 4, 8)", evals);
        free(s); bt_layout_free(&L);
        free(a); free(b1); free(b);
    }
}

/* Interrupt after step 3 (the flag a signal handler would set), then resume. */
static volatile sig_atomic_t flag;
static void stop_after_3(void *ctx, const bt_progress *p) { (void)ctx; if (!p->saved && p->step == 3) flag = 1; }

static void test_interrupt_resume(void) {
    bt_config c; cfg_small(&c, BT_ATTN_PAIRWISE);
    bt_opts o; char err[1024]; int rc;
    opts_small(&o, "runI_ref");
    float *a = run(&o, &c, NULL, 0, NULL, NULL, NULL, &rc, err, sizeof err);
    REQUIRE(rc == 0 && a, "%s", err);
    opts_small(&o, "runI");
    flag = 0;
    float *b1 = run(&o, &c, NULL, 0, &flag, stop_after_3, NULL, &rc, err, sizeof err);
    CHECK(rc == 1, "interrupted run returned %d (%s)", rc, err);
    free(b1);
    char ck[2300];
    REQUIRE(bt_ckpt_find("runI", ck, sizeof ck, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(ck, "checkpoint-3") != NULL, "saved %s, want checkpoint-3", ck);
    flag = 0;
    float *b = run(&o, &c, ck, 0, &flag, NULL, NULL, &rc, err, sizeof err);
    REQUIRE(rc == 0 && b, "%s", err);
    CHECK(memcmp(a, b, total_of(&c) * 4) == 0, "interrupted + resumed run differs");
    free(a); free(b);
}

static void test_threads(void) {
    /* big enough that the matrix products run on several threads (cpu.c: PAR) */
    bt_config c; cfg_small(&c, BT_ATTN_ORIGINAL);
    c.hidden = 64; c.ffn = 256;
    bt_opts o; char err[1024]; int rc;
    opts_small(&o, "runT1"); o.eval_every = 0; o.batch = 8; o.micro_batch = 8; o.optim.total = 3;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    float *a = run(&o, &c, NULL, 0, NULL, NULL, NULL, &rc, err, sizeof err);
    REQUIRE(rc == 0 && a, "%s", err);
#ifdef _OPENMP
    omp_set_num_threads(3);
#endif
    opts_small(&o, "runT3"); o.eval_every = 0; o.batch = 8; o.micro_batch = 8; o.optim.total = 3;
    float *b = run(&o, &c, NULL, 0, NULL, NULL, NULL, &rc, err, sizeof err);
    REQUIRE(rc == 0 && b, "%s", err);
    CHECK(memcmp(a, b, total_of(&c) * 4) == 0, "1 and 3 threads differ");
#ifndef _OPENMP
    printf("# built without OpenMP: one thread only\n");
#endif
#ifdef _OPENMP
    omp_set_num_threads(1);   /* the rest of the tests: tiny models are fastest on one thread */
#endif
    free(a); free(b);
}

/* The gradient of one update does not depend on how the batch is split. */
static void test_microbatch_split(void) {
    bt_config c; cfg_small(&c, BT_ATTN_PAIRWISE);
    bt_layout L; char err[1024];
    REQUIRE(bt_layout_init(&L, &c, err, sizeof err) == 0, "%s", err);
    bt_data *d = bt_data_open("shards", VOCAB, 0, err, sizeof err);
    REQUIRE(d, "%s", err);
    enum { B = 8 };
    float *p = malloc(L.total * 4), *g[3];
    bt_params_init(&L, p, 3);
    long masked = bt_data_train_masked(d, 9, 5, B);
    REQUIRE(masked > 0);
    static const int split[3] = { 8, 3, 1 };
    double loss[3];
    int32_t in[B * SEQ], lab[B * SEQ];
    for (int k = 0; k < 3; k++) {
        g[k] = calloc(L.total, 4);
        bt_cpu *m = bt_cpu_new(&L, split[k], SEQ, err, sizeof err);
        REQUIRE(m, "%s", err);
        loss[k] = 0;
        long seen = 0;
        for (int first = 0; first < B; first += split[k]) {
            int n = B - first < split[k] ? B - first : split[k];
            long nm;
            REQUIRE(bt_data_train_batch(d, 9, 5, B, first, n, in, lab, &nm, err, sizeof err) == 0, "%s", err);
            bt_batch bb = { .B = n, .T = SEQ, .inputs = in, .labels = lab, .step = 5, .sample0 = (uint64_t)first };
            int nl;
            loss[k] += bt_cpu_forward_backward(m, p, g[k], &bb, 1, 9, 1.0f / (float)masked, &nl, NULL);
            seen += nl;
        }
        CHECK(seen == masked, "split %d: %ld labels, %ld counted before", split[k], seen, masked);
        bt_cpu_free(m);
    }
    for (int k = 1; k < 3; k++) {
        double num = 0, den = 0;
        for (size_t i = 0; i < L.total; i++) { num += (double)(g[k][i] - g[0][i]) * (g[k][i] - g[0][i]); den += (double)g[0][i] * g[0][i]; }
        CHECK(sqrt(num / den) < 1e-5, "micro-batch %d vs %d: gradients differ by %g", split[k], B, sqrt(num / den));
        CHECK_NEAR(loss[k], loss[0], 1e-6);
    }
    for (int k = 0; k < 3; k++) free(g[k]);
    free(p); bt_data_close(d); bt_layout_free(&L);
}

static void test_nan_stops(void) {
    bt_config c; cfg_small(&c, BT_ATTN_SYMMETRIC);
    bt_opts o; char err[1024]; int rc;
    opts_small(&o, "runN");
    float *p = run(&o, &c, NULL, 2, NULL, NULL, NULL, &rc, err, sizeof err);
    REQUIRE(rc == 0 && p, "%s", err);
    /* poison one weight of the saved model, then resume: step 3 must fail by name */
    bt_layout L; REQUIRE(bt_layout_init(&L, &c, err, sizeof err) == 0);
    p[bt_off(&L, BT_T_FFN1_W, 1) + 5] = NAN;
    const char *pre[1] = { "" }; const float *bufs[1] = { p };
    REQUIRE(bt_st_write("runN/checkpoint-2/model.safetensors", &L, 1, pre, bufs, err, sizeof err) == 0, "%s", err);
    float *q = run(&o, &c, "runN/checkpoint-2", 0, NULL, NULL, NULL, &rc, err, sizeof err);
    CHECK(rc == -1 && q == NULL, "a NaN weight did not stop the run (rc %d)", rc);
    CHECK(strstr(err, "step 3") && strstr(err, "nan"), "message: %s", err);
    /* the checkpoint it resumed from is still the latest */
    char ck[2300];
    REQUIRE(bt_ckpt_find("runN", ck, sizeof ck, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(ck, "checkpoint-2") != NULL, "latest moved to %s", ck);
    free(p); free(q); bt_layout_free(&L);
}

static void test_learns(void) {
    /* structured walks: the loss must fall far below log(vocab) */
    bt_config c; cfg_small(&c, BT_ATTN_PAIRWISE);
    bt_opts o; char err[1024]; int rc;
    opts_small(&o, "runL");
    o.batch = 16; o.micro_batch = 8; o.optim.total = 400; o.optim.warmup = 20; o.optim.lr = 3e-3f;
    o.eval_every = 50; o.eval_samples = 32; o.save_every = 0; o.log_every = 50; o.dropout = 0;
    float *p = run(&o, &c, NULL, 0, NULL, NULL, NULL, &rc, err, sizeof err);
    REQUIRE(rc == 0 && p, "%s", err);
    FILE *f = fopen("runL/metrics.jsonl", "r"); REQUIRE(f);
    char line[1024]; double first = NAN, last = NAN;
    js_path pp = { { "eval_loss" }, 1 };
    while (fgets(line, sizeof line, f)) {
        js_val v; char je[100];
        if (js_scan(line, strlen(line), &pp, 1, &v, je, sizeof je) == 0 && v.type == JS_NUMBER) {
            if (isnan(first)) first = js_number(&v);
            last = js_number(&v);
        }
    }
    fclose(f);
    printf("# eval loss %.3f -> %.3f (log vocab %.3f)\n", first, last, log((double)VOCAB));
    CHECK(first > 0.9 * log((double)VOCAB), "initial eval loss %g not near log(vocab)", first);
    CHECK(last < 0.5 * log((double)VOCAB), "eval loss %g after 150 steps, want < %g", last, 0.5 * log((double)VOCAB));
    free(p);
}

static void test_bad_shards(void) {
    char err[1024];
    REQUIRE(ts_write("bad", SEQ, VOCAB, 8, 2) == 0);
    bt_data *d = bt_data_open("bad", VOCAB + 1, 0, err, sizeof err);
    CHECK(!d && strstr(err, "vocab_size"), "vocab mismatch: %s", err);
    bt_data_close(d);
    /* a token id beyond the vocab: named with its file and row when used */
    FILE *f = fopen("bad/train-00000.npy", "r+b"); REQUIRE(f);
    uint16_t big = 60000;
    fseek(f, 128 + (3 * SEQ + 5) * 2, SEEK_SET); fwrite(&big, 2, 1, f); fclose(f);
    d = bt_data_open("bad", VOCAB, 0, err, sizeof err);
    REQUIRE(d, "%s", err);
    int32_t in[8 * SEQ], lab[8 * SEQ];
    int seen = 0;
    for (uint64_t step = 0; step < 2 && !seen; step++)
        if (bt_data_train_batch(d, 1, step, 8, 0, 8, in, lab, NULL, err, sizeof err)) seen = 1;
    CHECK(seen && strstr(err, "train-00000.npy row 3") && strstr(err, "60000"), "message: %s", err);
    bt_data_close(d);
    /* --verify-data catches the sha256 mismatch up front */
    d = bt_data_open("bad", VOCAB, 1, err, sizeof err);
    CHECK(!d && strstr(err, "train-00000.npy"), "verify: %s", err);
    bt_data_close(d);
    /* a truncated shard */
    REQUIRE(truncate("bad/train-00000.npy", 128 + 7 * SEQ * 2) == 0);
    d = bt_data_open("bad", VOCAB, 0, err, sizeof err);
    CHECK(!d && strstr(err, "train-00000.npy"), "truncated: %s", err);
    bt_data_close(d);
}

static void test_perm(void) {
    for (uint64_t n = 1; n < 300; n += 37) {
        unsigned char *seen = calloc(n, 1);
        int ok = 1;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t j = bt_perm(5, 2, n, i);
            if (j >= n || seen[j]) ok = 0; else seen[j] = 1;
        }
        CHECK(ok, "bt_perm is not a permutation of %llu", (unsigned long long)n);
        free(seen);
    }
    int differ = 0;
    for (uint64_t i = 0; i < 100; i++) differ += bt_perm(5, 0, 100, i) != bt_perm(5, 1, 100, i);
    CHECK(differ > 80, "epochs share the order (%d of 100 differ)", differ);
}

/* The raw-id path of device-masking engines: bt_data_train_ids / val_ids
 * give the samples bt_data_train_batch masks, and counts equal to its
 * labelled positions; bt_data_train_masked is their sum over the batch. */
static void test_raw_ids(void) {
    char err[512];
    bt_data *d = bt_data_open("shards", VOCAB, 0, err, sizeof err);
    REQUIRE(d, "%s", err);
    enum { NB = 6 };
    static int32_t in[NB * SEQ], lab[NB * SEQ], in2[NB * SEQ], lab2[NB * SEQ];
    static uint16_t ids[NB * SEQ];
    int counts[NB];
    for (int split = 0; split < 2; split++) {
        for (uint64_t step = 0; step < 3; step++) {
            long nm = 0, sum = 0;
            if (split == 0) {
                REQUIRE(bt_data_train_batch(d, 9, step, 10, 4, NB, in, lab, &nm, err, sizeof err) == 0, "%s", err);
                REQUIRE(bt_data_train_ids(d, 9, step, 10, 4, NB, ids, counts, err, sizeof err) == 0, "%s", err);
            } else {
                REQUIRE(bt_data_val_batch(d, 3, step * NB, NB, in, lab, &nm, err, sizeof err) == 0, "%s", err);
                REQUIRE(bt_data_val_ids(d, 3, step * NB, NB, ids, counts, err, sizeof err) == 0, "%s", err);
            }
            int same = 1;
            for (int b = 0; b < NB; b++) {
                sum += counts[b];
                uint64_t ms = split ? BT_EVAL_STEP : step, si = split ? step * NB + (uint64_t)b : 4 + (uint64_t)b;
                int k = bt_mask_batch(split ? 3 : 9, ms, si, ids + b * SEQ, SEQ, VOCAB, in2 + b * SEQ, lab2 + b * SEQ);
                same &= k == counts[b];
            }
            CHECK(sum == nm, "%s step %llu: counts sum to %ld, the batch has %ld labels", split ? "val" : "train",
                  (unsigned long long)step, sum, nm);
            CHECK(same && !memcmp(in, in2, sizeof in) && !memcmp(lab, lab2, sizeof lab),
                  "%s step %llu: masking the raw ids differs from the masked batch", split ? "val" : "train",
                  (unsigned long long)step);
        }
    }
    long whole = bt_data_train_masked(d, 9, 1, 10), parts = 0;
    for (int first = 0; first < 10; first += 5) {
        REQUIRE(bt_data_train_ids(d, 9, 1, 10, first, 5, ids, counts, err, sizeof err) == 0, "%s", err);
        for (int b = 0; b < 5; b++) parts += counts[b];
    }
    CHECK(whole == parts && whole > 0, "bt_data_train_masked %ld, counts %ld", whole, parts);
    bt_data_close(d);
}

int main(void) {
#ifdef _OPENMP
    omp_set_num_threads(1);   /* tiny models: threads cost more than they give (test_threads uses 3) */
#endif
    if (ts_write("shards", SEQ, VOCAB, 2048, 32)) { printf("FAIL setup: cannot write shards\n"); return 1; }
    T_RUN(test_perm);
    T_RUN(test_raw_ids);
    T_RUN(test_resume_exact);
    T_RUN(test_interrupt_resume);
    T_RUN(test_threads);
    T_RUN(test_microbatch_split);
    T_RUN(test_nan_stops);
    T_RUN(test_bad_shards);
    T_RUN(test_learns);
    return T_DONE();
}
