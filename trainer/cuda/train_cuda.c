/* train_cuda.c - the training loop on one GPU: the same loop as
 * bt_train_cpu (trainer/train.c), with the model in GPU memory.  Data,
 * masking, metrics.jsonl, checkpoints and resume are the CPU trainer's
 * own code (data.h, ckpt.h, train.h), so a run can move between the
 * trainers: a checkpoint written here resumes on the CPU and back.
 *
 * Per update: the batch's masked-position count (the loss normaliser) on
 * the host; then for each micro-batch the host masks the samples
 * (bt_data_train_batch) and queues the forward and backward pass, so that
 * masking the next micro-batch overlaps the GPU's work on this one; one
 * synchronisation reads the loss, a second the gradient norm. */
#include "trainer/cuda/train_cuda.h"
#include "trainer/data.h"
#include "pipeline/atomic.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const bt_run *r;
    bt_opts o;
    bt_layout L;
    bt_data *data;
    btc_model *gpu;
    float *params, *m, *v;     /* host copies, for checkpoints */
    int32_t *inputs, *labels;
    int T, micro;
    bt_metrics *metrics;
    bt_state st;
} trainer;

static int evaluate(trainer *t, double *out, char *err, size_t errlen) {
    uint64_t n = bt_data_val_count(t->data);
    if (t->o.eval_samples > 0 && (uint64_t)t->o.eval_samples < n) n = (uint64_t)t->o.eval_samples;
    long count = 0;
    btc_loss_wait(t->gpu);
    for (uint64_t first = 0; first < n; first += (uint64_t)t->micro) {
        int b = (int)((n - first) < (uint64_t)t->micro ? (n - first) : (uint64_t)t->micro);
        if (bt_data_val_batch(t->data, t->o.eval_seed, first, b, t->inputs, t->labels, NULL, err, errlen)) return -1;
        bt_batch bb = { b, t->T, t->inputs, t->labels, 0, 0 };
        int nl;
        btc_forward_backward_async(t->gpu, &bb, 0, 0, 0, 1.0f, &nl);
        count += nl;
    }
    double sum = btc_loss_wait(t->gpu);
    *out = count ? sum / (double)count : NAN;
    return 0;
}

static int report(trainer *t, bt_progress *p, char *err, size_t errlen) {
    if (t->metrics && bt_metrics_log(t->metrics, p, err, errlen)) return -1;
    if (t->r->progress) t->r->progress(t->r->ctx, p);
    return 0;
}

static int save(trainer *t, long total, char *err, size_t errlen) {
    char path[2400];
    btc_get_params(t->gpu, t->params);
    btc_get_moments(t->gpu, t->m, t->v);
    if (bt_ckpt_save(&t->o, &t->st, &t->L, t->params, t->m, t->v, path, sizeof path, err, errlen)) return -1;
    bt_progress p = { t->st.step, total, NAN, NAN, NAN, NAN, NAN, t->st.elapsed, path };
    if (t->r->progress) t->r->progress(t->r->ctx, &p);
    return 0;
}

static int setup(trainer *t, const bt_run *r, const btc_options *co, char *err, size_t errlen) {
    t->r = r;
    t->o = r->opts;
    if (t->o.batch < 1) return fail(err, errlen, "--batch must be at least 1");
    t->micro = t->o.micro_batch > 0 && t->o.micro_batch < t->o.batch ? t->o.micro_batch : t->o.batch;
    if (r->cfg.vocab_size <= BT_MASK_ID) return fail(err, errlen, "vocab_size %d: the [MASK] id %d must be inside the vocab", r->cfg.vocab_size, BT_MASK_ID);
    char e[1024];
    if (!btc_available(e, sizeof e)) return fail(err, errlen, "%s", e);
    if (bt_layout_init(&t->L, &r->cfg, err, errlen)) return -1;
    t->data = bt_data_open(t->o.data, r->cfg.vocab_size, r->verify_data, e, sizeof e);
    if (!t->data) return fail(err, errlen, "%s", e);
    t->T = bt_data_seq_len(t->data);
    if (t->T > r->cfg.max_pos) return fail(err, errlen, "%s: seq_len %d > max_position_embeddings %d", t->o.data, t->T, r->cfg.max_pos);
    if (t->o.eval_every > 0 && bt_data_val_count(t->data) == 0)
        return fail(err, errlen, "%s: no validation samples to evaluate on (use --eval-every 0)", t->o.data);
    size_t n = t->L.total;
    t->params = malloc(n * sizeof(float));
    t->m = calloc(n, sizeof(float)); t->v = calloc(n, sizeof(float));
    t->inputs = malloc((size_t)t->micro * t->T * sizeof *t->inputs);
    t->labels = malloc((size_t)t->micro * t->T * sizeof *t->labels);
    if (!t->params || !t->m || !t->v || !t->inputs || !t->labels) return fail(err, errlen, "out of host memory for %zu parameters", n);
    memset(&t->st, 0, sizeof t->st);
    if (r->resume) {
        bt_opts o2; bt_config c2;
        if (bt_ckpt_load_meta(r->resume, &c2, &o2, &t->st, err, errlen)) return -1;
        if (bt_ckpt_load_tensors(r->resume, &t->L, t->params, t->m, t->v, err, errlen)) return -1;
    } else {
        bt_params_init(&t->L, t->params, t->o.seed);
    }
    t->gpu = btc_new(&t->L, t->micro, t->T, co ? co->precision : BTC_BF16, co ? co->attn_impl : BTC_ATTN_AUTO, e, sizeof e);
    if (!t->gpu) return fail(err, errlen, "%s", e);
    btc_set_params(t->gpu, t->params);
    btc_set_moments(t->gpu, t->m, t->v);
    if (mkdir_p(t->o.out, err, errlen)) return -1;
    t->metrics = bt_metrics_open(t->o.out, r->resume ? t->st.step : -1, err, errlen);
    return t->metrics ? 0 : -1;
}

static void teardown(trainer *t) {
    bt_metrics_close(t->metrics);
    btc_free(t->gpu);
    bt_data_close(t->data);
    bt_layout_free(&t->L);
    free(t->params); free(t->m); free(t->v); free(t->inputs); free(t->labels);
}

int bt_train_cuda(const bt_run *r, const btc_options *co, char *err, size_t errlen) {
    trainer t;
    memset(&t, 0, sizeof t);
    int rc = setup(&t, r, co, err, errlen);
    if (rc) { teardown(&t); return -1; }
    if (co && co->describe) {
        char dev[256];
        btc_device_name(dev, sizeof dev);
        co->describe(r->ctx, dev, btc_attn_name(t.gpu), t.micro, btc_memory_used());
    }
    const long total = r->stop_at > 0 ? r->stop_at : t.o.optim.total;
    const int B = t.o.batch;
    int interrupted = 0;
    if (t.o.eval_every > 0 && t.st.step == 0) {
        bt_progress p = { 0, total, NAN, NAN, NAN, NAN, NAN, 0, NULL };
        rc = evaluate(&t, &p.eval_loss, err, errlen);
        if (!rc) rc = report(&t, &p, err, errlen);
    }
    double t_log = now(), tokens_since = 0;
    while (!rc && t.st.step < total) {
        if (r->stop && *r->stop) { interrupted = 1; break; }
        const uint64_t step = (uint64_t)t.st.step;
        double t0 = now();
        long masked = bt_data_train_masked(t.data, t.o.seed, step, B);
        if (masked < 0) { rc = fail(err, errlen, "step %ld: cannot read the batch", t.st.step + 1); break; }
        btc_zero_grads(t.gpu);
        const float scale = masked ? 1.0f / (float)masked : 0.0f;
        for (int first = 0; first < B && !rc; first += t.micro) {
            int b = B - first < t.micro ? B - first : t.micro;
            if (bt_data_train_batch(t.data, t.o.seed, step, B, first, b, t.inputs, t.labels, NULL, err, errlen)) { rc = -1; break; }
            bt_batch bb = { b, t.T, t.inputs, t.labels, step, (uint64_t)first };
            int nl;
            btc_forward_backward_async(t.gpu, &bb, 1, t.o.dropout, t.o.seed, scale, &nl);
            if (r->stop && *r->stop) { interrupted = 1; break; }
        }
        double loss_sum = btc_loss_wait(t.gpu);
        if (rc || interrupted) break;
        double loss = masked ? loss_sum / (double)masked : 0.0;
        if (!isfinite(loss)) { rc = fail(err, errlen, "step %ld: loss is %s; stopping (the last checkpoint is intact)", t.st.step + 1, isnan(loss) ? "nan" : "infinite"); break; }
        btc_allreduce_grads(t.gpu);
        double lr = bt_lr_at(&t.o.optim, t.st.step);
        double norm = btc_adamw_step(t.gpu, &t.o.optim, t.st.step + 1, lr);
        if (!isfinite(norm)) { rc = fail(err, errlen, "step %ld: gradient norm is %s; stopping (the last checkpoint is intact)", t.st.step + 1, isnan(norm) ? "nan" : "infinite"); break; }
        t.st.step++;
        t.st.tokens += (double)B * t.T;
        tokens_since += (double)B * t.T;
        t.st.elapsed += now() - t0;
        int do_eval = t.o.eval_every > 0 && t.st.step % t.o.eval_every == 0;
        int do_log = do_eval || t.st.step == total || (t.o.log_every > 0 && t.st.step % t.o.log_every == 0);
        if (do_log) {
            double tn = now();
            bt_progress p = { t.st.step, total, loss, NAN, lr, norm, tokens_since / (tn - t_log > 1e-9 ? tn - t_log : 1e-9),
                              t.st.elapsed, NULL };
            if (do_eval) rc = evaluate(&t, &p.eval_loss, err, errlen);
            if (!rc) rc = report(&t, &p, err, errlen);
            t_log = now(); tokens_since = 0;
        }
        if (!rc && t.st.step < total && t.o.save_every > 0 && t.st.step % t.o.save_every == 0) rc = save(&t, total, err, errlen);
    }
    if (!rc) rc = save(&t, total, err, errlen);   /* at the end, or the last whole step when interrupted */
    if (!rc && r->params_out) {
        btc_get_params(t.gpu, t.params);
        *r->params_out = t.params;
        t.params = NULL;
    }
    teardown(&t);
    return rc ? -1 : interrupted ? 1 : 0;
}
