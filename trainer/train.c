/* train.c - the CPU training loop and metrics.jsonl (see train.h). */
#include "trainer/train.h"
#include "trainer/cpu.h"
#include "trainer/data.h"
#include "pipeline/atomic.h"
#include "pipeline/json.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) { va_list ap; va_start(ap, fmt); vsnprintf(err, errlen, fmt, ap); va_end(ap); }
    return -1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ------------------------------------------------------------ metrics */

struct bt_metrics { FILE *f; char path[4200]; };

bt_metrics *bt_metrics_open(const char *run_dir, long upto_step, char *err, size_t errlen) {
    bt_metrics *m = calloc(1, sizeof *m);
    if (!m) { fail(err, errlen, "out of memory"); return NULL; }
    snprintf(m->path, sizeof m->path, "%s/metrics.jsonl", run_dir);
    FILE *in = fopen(m->path, "rb");
    if (in) {   /* keep the lines up to upto_step, atomically */
        afile out;
        if (afile_open(&out, m->path, err, errlen)) { fclose(in); free(m); return NULL; }
        char *line = NULL; size_t cap = 0; ssize_t n;
        js_path p = { { "step" }, 1 };
        int rc = 0;
        while (!rc && (n = getline(&line, &cap, in)) > 0) {
            js_val v; char jerr[200];
            if (js_scan(line, (size_t)n, &p, 1, &v, jerr, sizeof jerr) || v.type != JS_NUMBER) continue;  /* a torn last line */
            if (js_number(&v) <= (double)upto_step) rc = afile_write(&out, line, (size_t)n, err, errlen);
        }
        free(line);
        fclose(in);
        if (rc || afile_commit(&out, err, errlen)) { if (rc) afile_abort(&out); free(m); return NULL; }
    }
    m->f = fopen(m->path, "ab");
    if (!m->f) { fail(err, errlen, "%s: %s", m->path, strerror(errno)); free(m); return NULL; }
    return m;
}

int bt_metrics_log(bt_metrics *m, const bt_progress *p, char *err, size_t errlen) {
    char line[512];
    int k = snprintf(line, sizeof line, "{\"step\":%ld", p->step);
#define FIELD(name, val, fmt) if (!isnan(val)) k += snprintf(line + k, sizeof line - (size_t)k, ",\"" name "\":" fmt, val)
    FIELD("loss", p->loss, "%.7g");
    FIELD("eval_loss", p->eval_loss, "%.7g");
    FIELD("lr", p->lr, "%.7g");
    FIELD("grad_norm", p->grad_norm, "%.7g");
    FIELD("tokens_per_s", p->tokens_per_s, "%.1f");
    FIELD("elapsed_s", p->elapsed, "%.3f");
#undef FIELD
    k += snprintf(line + k, sizeof line - (size_t)k, "}\n");
    if (fputs(line, m->f) == EOF || fflush(m->f) == EOF) return fail(err, errlen, "%s: write error: %s", m->path, strerror(errno));
    return 0;
}

void bt_metrics_close(bt_metrics *m) {
    if (!m) return;
    if (m->f) fclose(m->f);
    free(m);
}

/* ------------------------------------------------------------ the loop */

typedef struct {
    const bt_run *r;
    bt_opts o;
    bt_layout L;
    bt_data *data;
    bt_cpu *cpu;
    float *params, *grads, *m, *v;
    int32_t *inputs, *labels;
    int T, micro;
    bt_metrics *metrics;
    bt_state st;
} trainer;

/* Mean loss over the first eval_samples validation samples with fixed masks. */
static int evaluate(trainer *t, double *out, char *err, size_t errlen) {
    uint64_t n = bt_data_val_count(t->data);
    if (t->o.eval_samples > 0 && (uint64_t)t->o.eval_samples < n) n = (uint64_t)t->o.eval_samples;
    double sum = 0; long count = 0;
    for (uint64_t first = 0; first < n; first += (uint64_t)t->micro) {
        int b = (int)((n - first) < (uint64_t)t->micro ? (n - first) : (uint64_t)t->micro);
        if (bt_data_val_batch(t->data, t->o.eval_seed, first, b, t->inputs, t->labels, NULL, err, errlen)) return -1;
        bt_batch bb = { b, t->T, t->inputs, t->labels, 0, 0 };
        int nl;
        sum += bt_cpu_forward_backward(t->cpu, t->params, NULL, &bb, 0, 0, 1.0f, &nl, NULL);
        if (nl < 0) return fail(err, errlen, "evaluation: out of memory in the forward pass");
        count += nl;
    }
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
    if (bt_ckpt_save(&t->o, &t->st, &t->L, t->params, t->m, t->v, path, sizeof path, err, errlen)) return -1;
    bt_progress p = { t->st.step, total, NAN, NAN, NAN, NAN, NAN, t->st.elapsed, path };
    if (t->r->progress) t->r->progress(t->r->ctx, &p);
    return 0;
}

static int setup(trainer *t, const bt_run *r, char *err, size_t errlen) {
    t->r = r;
    t->o = r->opts;
    if (t->o.batch < 1) return fail(err, errlen, "--batch must be at least 1");
    t->micro = t->o.micro_batch > 0 && t->o.micro_batch < t->o.batch ? t->o.micro_batch : t->o.batch;
    if (r->cfg.vocab_size <= BT_MASK_ID) return fail(err, errlen, "vocab_size %d: the [MASK] id %d must be inside the vocab", r->cfg.vocab_size, BT_MASK_ID);
    if (bt_layout_init(&t->L, &r->cfg, err, errlen)) return -1;
    char e[1024];
    t->data = bt_data_open(t->o.data, r->cfg.vocab_size, r->verify_data, e, sizeof e);
    if (!t->data) return fail(err, errlen, "%s", e);
    t->T = bt_data_seq_len(t->data);
    if (t->T > r->cfg.max_pos) return fail(err, errlen, "%s: seq_len %d > max_position_embeddings %d", t->o.data, t->T, r->cfg.max_pos);
    if (t->o.eval_every > 0 && bt_data_val_count(t->data) == 0)
        return fail(err, errlen, "%s: no validation samples to evaluate on (use --eval-every 0)", t->o.data);
    t->cpu = bt_cpu_new(&t->L, t->micro, t->T, e, sizeof e);
    if (!t->cpu) return fail(err, errlen, "%s", e);
    size_t n = t->L.total;
    t->params = malloc(n * sizeof(float)); t->grads = malloc(n * sizeof(float));
    t->m = calloc(n, sizeof(float)); t->v = calloc(n, sizeof(float));
    t->inputs = malloc((size_t)t->micro * t->T * sizeof *t->inputs);
    t->labels = malloc((size_t)t->micro * t->T * sizeof *t->labels);
    if (!t->params || !t->grads || !t->m || !t->v || !t->inputs || !t->labels) return fail(err, errlen, "out of memory for %zu parameters", n);
    memset(&t->st, 0, sizeof t->st);
    if (r->resume) {
        bt_opts o2; bt_config c2;
        if (bt_ckpt_load_meta(r->resume, &c2, &o2, &t->st, err, errlen)) return -1;
        if (bt_ckpt_load_tensors(r->resume, &t->L, t->params, t->m, t->v, err, errlen)) return -1;
    } else {
        bt_params_init(&t->L, t->params, t->o.seed);
    }
    if (mkdir_p(t->o.out, err, errlen)) return -1;
    /* a fresh run starts a fresh log; a resumed one keeps the rows up to its step */
    t->metrics = bt_metrics_open(t->o.out, r->resume ? t->st.step : -1, err, errlen);
    return t->metrics ? 0 : -1;
}

static void teardown(trainer *t) {
    bt_metrics_close(t->metrics);
    bt_cpu_free(t->cpu);
    bt_data_close(t->data);
    bt_layout_free(&t->L);
    free(t->params); free(t->grads); free(t->m); free(t->v); free(t->inputs); free(t->labels);
}

int bt_train_cpu(const bt_run *r, char *err, size_t errlen) {
    trainer t;
    memset(&t, 0, sizeof t);
    int rc = setup(&t, r, err, errlen);
    if (rc) { teardown(&t); return -1; }
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
        memset(t.grads, 0, t.L.total * sizeof(float));
        const float scale = masked ? 1.0f / (float)masked : 0.0f;
        double loss_sum = 0;
        for (int first = 0; first < B && !rc; first += t.micro) {
            int b = B - first < t.micro ? B - first : t.micro;
            if (bt_data_train_batch(t.data, t.o.seed, step, B, first, b, t.inputs, t.labels, NULL, err, errlen)) { rc = -1; break; }
            bt_batch bb = { b, t.T, t.inputs, t.labels, step, (uint64_t)first };
            int nl;
            loss_sum += bt_cpu_forward_backward(t.cpu, t.params, t.grads, &bb, t.o.dropout, t.o.seed, scale, &nl, NULL);
            if (nl < 0) { rc = fail(err, errlen, "step %ld: out of memory in the forward pass", t.st.step + 1); break; }
            if (r->stop && *r->stop) { interrupted = 1; break; }
        }
        if (rc || interrupted) break;
        double loss = masked ? loss_sum / (double)masked : 0.0;
        double norm = bt_grad_norm(t.grads, t.L.total);
        if (!isfinite(loss)) { rc = fail(err, errlen, "step %ld: loss is %s; stopping (the last checkpoint is intact)", t.st.step + 1, isnan(loss) ? "nan" : "infinite"); break; }
        if (!isfinite(norm)) { rc = fail(err, errlen, "step %ld: gradient norm is %s; stopping (the last checkpoint is intact)", t.st.step + 1, isnan(norm) ? "nan" : "infinite"); break; }
        double lr = bt_lr_at(&t.o.optim, t.st.step);
        bt_adamw_update(&t.L, &t.o.optim, t.params, t.grads, t.m, t.v, t.st.step + 1, lr, bt_clip_coef(&t.o.optim, norm));
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
        *r->params_out = t.params;
        t.params = NULL;
    }
    teardown(&t);
    return rc ? -1 : interrupted ? 1 : 0;
}
