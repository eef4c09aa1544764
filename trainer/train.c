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
    const bt_engine_ops *ops;
    void *e;                   /* the engine */
    bt_opts o;
    bt_layout L;
    bt_data *data;
    float *params, *m, *v;     /* host copies: what checkpoints hold */
    int32_t *inputs, *labels;
    uint16_t *ids;             /* device_masks engines: raw ids and chosen counts */
    int *counts;
    int T, micro;
    bt_metrics *metrics;
    bt_state st;
    bt_comm *comm;             /* data parallelism, or NULL */
    int rank, world;
    int broken;                /* a sum over the ranks failed: no more of them */
    int agreed;                /* an error every rank knows of: no rank waits for another at the end */
} trainer;

/* This rank's share [*lo, *hi) of n samples. */
static void share(const trainer *t, uint64_t n, uint64_t *lo, uint64_t *hi) {
    *lo = n * (uint64_t)t->rank / (uint64_t)t->world;
    *hi = n * (uint64_t)(t->rank + 1) / (uint64_t)t->world;
}

/* Sums n doubles over the ranks (nothing to do on one). */
static int sum_ranks(trainer *t, double *x, int n, char *err, size_t errlen) {
    char e[1024];
    if (t->comm && t->comm->sum_f64(t->comm, x, n, e, sizeof e)) { t->broken = 1; return fail(err, errlen, "%s", e); }
    return 0;
}

/* A batch of raw ids for an engine that masks on its device. */
static void device_batch(bt_batch *bb, const trainer *t, uint64_t mseed, uint64_t mstep, uint64_t msample0) {
    bb->inputs = NULL; bb->labels = NULL;
    bb->ids = t->ids; bb->counts = t->counts;
    bb->mask_seed = mseed; bb->mask_step = mstep; bb->mask_sample0 = msample0;
}

/* Mean loss over the first eval_samples validation samples with fixed masks
 * (each rank its share, then summed). */
static int evaluate(trainer *t, double *out, char *err, size_t errlen) {
    uint64_t n = bt_data_val_count(t->data), lo, hi;
    if (t->o.eval_samples > 0 && (uint64_t)t->o.eval_samples < n) n = (uint64_t)t->o.eval_samples;
    share(t, n, &lo, &hi);
    long count = 0;
    int rc = 0;
    t->ops->loss_take(t->e);
    for (uint64_t first = lo; first < hi && !rc; first += (uint64_t)t->micro) {
        int b = (int)((hi - first) < (uint64_t)t->micro ? (hi - first) : (uint64_t)t->micro);
        bt_batch bb = { .B = b, .T = t->T, .inputs = t->inputs, .labels = t->labels, .step = 0, .sample0 = 0 };
        if (t->ops->device_masks) {
            if (bt_data_val_ids(t->data, t->o.eval_seed, first, b, t->ids, t->counts, err, errlen)) { rc = -1; break; }
            device_batch(&bb, t, t->o.eval_seed, BT_EVAL_STEP, first);
        } else if (bt_data_val_batch(t->data, t->o.eval_seed, first, b, t->inputs, t->labels, NULL, err, errlen)) {
            rc = -1; break;
        }
        int nl;
        char e[1024];
        if (t->ops->forward_backward(t->e, &bb, 0, 0, 0, 1.0f, &nl, e, sizeof e)) { rc = fail(err, errlen, "evaluation: %s", e); break; }
        count += nl;
    }
    /* (loss, count, error) of every rank, the shape of the step's sum: a rank that failed here
     * still meets the others, and they all stop */
    double sum[3] = { t->ops->loss_take(t->e), (double)count, rc != 0 };
    char e[1024];
    if (sum_ranks(t, sum, 3, e, sizeof e)) return rc ? -1 : fail(err, errlen, "evaluation: %s", e);
    if (sum[2] > 0) {
        t->agreed = 1;
        return rc ? -1 : fail(err, errlen, "evaluation: stopping: another rank failed (its message says why)");
    }
    *out = sum[1] > 0 ? sum[0] / sum[1] : NAN;
    return 0;
}

static int report(trainer *t, bt_progress *p, char *err, size_t errlen) {
    if (t->metrics && bt_metrics_log(t->metrics, p, err, errlen)) return -1;
    if (t->r->progress && t->rank == 0) t->r->progress(t->r->ctx, p);
    return 0;
}

static int save(trainer *t, long total, char *err, size_t errlen) {
    char path[2400];
    t->ops->pull(t->e, t->params, t->m, t->v);
    if (bt_ckpt_save(&t->o, &t->st, &t->L, t->params, t->m, t->v, path, sizeof path, err, errlen)) return -1;
    bt_progress p = { t->st.step, total, NAN, NAN, NAN, NAN, NAN, t->st.elapsed, path };
    if (t->r->progress && t->rank == 0) t->r->progress(t->r->ctx, &p);
    return 0;
}

/* Every rank must run the same run from the same step: the ranks sum a
 * fingerprint of the state (options, step, the data's identity but not its
 * path: a copy per node is fine), the model and where this call stops, then
 * its squared deviation. */
static int ranks_agree(trainer *t, long stop_at, char *err, size_t errlen) {
    char js[8400];
    bt_opts o = t->o;
    o.data[0] = 0;
    int n = bt_state_to_json(&o, &t->st, js, 8192);
    if (n < 0 || n >= 8192) return fail(err, errlen, "the run's state does not fit its fingerprint");
    const bt_config *c = &t->r->cfg;
    n += snprintf(js + n, sizeof js - (size_t)n, "%d %d %d %d %d %d %d %d %a %a %a %a %d %zu %ld", c->vocab_size, c->max_pos,
                  c->type_vocab, c->hidden, c->layers, c->heads, c->ffn, (int)c->attn, (double)c->ln_eps, (double)c->hidden_dropout,
                  (double)c->attn_dropout, (double)c->init_std, c->pad_id, t->L.total, stop_at);
    uint32_t h = 2166136261u;
    for (int i = 0; i < n && i < (int)sizeof js; i++) h = (h ^ (unsigned char)js[i]) * 16777619u;
    double mean = (double)h;
    if (sum_ranks(t, &mean, 1, err, errlen)) return -1;
    double dev = ((double)h - mean / t->world) * ((double)h - mean / t->world);
    if (sum_ranks(t, &dev, 1, err, errlen)) return -1;
    if (dev != 0)
        return fail(err, errlen, "the %d ranks disagree on the run (options or checkpoint; this rank is at step %ld): give every rank the same flags and files",
                    t->world, t->st.step);
    return 0;
}

static int setup(trainer *t, const bt_run *r, void *arg, char *err, size_t errlen) {
    t->r = r;
    t->o = r->opts;
    t->comm = r->comm;
    t->rank = t->comm ? t->comm->rank : 0;
    t->world = t->comm ? t->comm->world : 1;
    if (t->o.batch < 1) return fail(err, errlen, "--batch must be at least 1");
    t->micro = t->o.micro_batch > 0 && t->o.micro_batch < t->o.batch ? t->o.micro_batch : t->o.batch;
    if (r->cfg.vocab_size <= BT_MASK_ID) return fail(err, errlen, "vocab_size %d: the [MASK] id %d must be inside the vocab", r->cfg.vocab_size, BT_MASK_ID);
    char e[1024];
    if (t->ops->available && !t->ops->available(arg, e, sizeof e)) return fail(err, errlen, "%s", e);
    if (bt_layout_init(&t->L, &r->cfg, err, errlen)) return -1;
    t->data = bt_data_open(t->o.data, r->cfg.vocab_size, r->verify_data, e, sizeof e);
    if (!t->data) return fail(err, errlen, "%s", e);
    t->T = bt_data_seq_len(t->data);
    if (t->T > r->cfg.max_pos) return fail(err, errlen, "%s: seq_len %d > max_position_embeddings %d", t->o.data, t->T, r->cfg.max_pos);
    if (bt_data_bind(&t->o, t->T, bt_data_vocab_sha256(t->data), err, errlen)) return -1;   /* resume: the same data */
    if (t->o.eval_every > 0 && bt_data_val_count(t->data) == 0)
        return fail(err, errlen, "%s: no validation samples to evaluate on (use --eval-every 0)", t->o.data);
    size_t n = t->L.total;
    t->params = malloc(n * sizeof(float));
    t->m = calloc(n, sizeof(float)); t->v = calloc(n, sizeof(float));
    t->inputs = malloc((size_t)t->micro * t->T * sizeof *t->inputs);
    t->labels = malloc((size_t)t->micro * t->T * sizeof *t->labels);
    t->ids = malloc((size_t)t->micro * t->T * sizeof *t->ids);
    t->counts = malloc((size_t)t->micro * sizeof *t->counts);
    if (!t->params || !t->m || !t->v || !t->inputs || !t->labels || !t->ids || !t->counts) return fail(err, errlen, "out of memory for %zu parameters", n);
    memset(&t->st, 0, sizeof t->st);
    if (r->resume) {
        bt_opts o2; bt_config c2;
        if (bt_ckpt_load_meta(r->resume, &c2, &o2, &t->st, err, errlen)) return -1;
        if (bt_ckpt_load_tensors(r->resume, &t->L, t->params, t->m, t->v, err, errlen)) return -1;
    } else {
        bt_params_init(&t->L, t->params, t->o.seed);
    }
    if (t->comm && ranks_agree(t, r->stop_at, err, errlen)) return -1;
    t->e = t->ops->open(arg, &t->L, t->micro, t->T, t->params, t->m, t->v, e, sizeof e);
    if (!t->e) return fail(err, errlen, "%s", e);
    if (t->comm && !t->ops->allreduce_grads) return fail(err, errlen, "this engine cannot sum gradients over ranks");
    if (t->rank != 0) return 0;   /* rank 0 alone writes */
    if (mkdir_p(t->o.out, err, errlen)) return -1;
    bt_run_clean(t->o.out);     /* temporaries of killed runs */
    /* a fresh run starts a fresh log; a resumed one keeps the rows up to its step */
    t->metrics = bt_metrics_open(t->o.out, r->resume ? t->st.step : -1, err, errlen);
    return t->metrics ? 0 : -1;
}

static void teardown(trainer *t) {
    bt_metrics_close(t->metrics);
    if (t->e) t->ops->close(t->e);
    bt_data_close(t->data);
    bt_layout_free(&t->L);
    free(t->params); free(t->m); free(t->v); free(t->inputs); free(t->labels);
    free(t->ids); free(t->counts);
}

int bt_train_with(const bt_run *r, const bt_engine_ops *ops, void *arg, char *err, size_t errlen) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.ops = ops;
    int rc = setup(&t, r, arg, err, errlen);
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
    uint64_t lo, hi;   /* this rank's samples of every update */
    share(&t, (uint64_t)B, &lo, &hi);
    /* one process stops at once; ranks stop together, after the step's sum */
    const volatile sig_atomic_t *stop_now = t.comm ? NULL : r->stop;
    while (!rc && t.st.step < total) {
        if (stop_now && *stop_now) { interrupted = 1; break; }
        const uint64_t step = (uint64_t)t.st.step;
        double t0 = now();
        long masked = bt_data_train_masked(t.data, t.o.seed, step, B);
        /* no break: the ranks meet at the step's sum below, and stop together */
        if (masked < 0) rc = fail(err, errlen, "step %ld: cannot read the batch", t.st.step + 1);
        ops->zero_grads(t.e);
        const float scale = masked > 0 ? 1.0f / (float)masked : 0.0f;
        for (int first = (int)lo; first < (int)hi && !rc; first += t.micro) {
            int b = (int)hi - first < t.micro ? (int)hi - first : t.micro;
            bt_batch bb = { .B = b, .T = t.T, .inputs = t.inputs, .labels = t.labels, .step = step, .sample0 = (uint64_t)first };
            if (ops->device_masks) {
                if (bt_data_train_ids(t.data, t.o.seed, step, B, first, b, t.ids, t.counts, err, errlen)) { rc = -1; break; }
                device_batch(&bb, &t, t.o.seed, step, (uint64_t)first);
            } else if (bt_data_train_batch(t.data, t.o.seed, step, B, first, b, t.inputs, t.labels, NULL, err, errlen)) {
                rc = -1; break;
            }
            int nl;
            char e[1024];
            if (ops->forward_backward(t.e, &bb, 1, t.o.dropout, t.o.seed, scale, &nl, e, sizeof e)) {
                rc = fail(err, errlen, "step %ld: %s", t.st.step + 1, e); break;
            }
            if (stop_now && *stop_now) { interrupted = 1; break; }
        }
        double loss_sum = ops->loss_take(t.e);
        if (t.comm) {   /* (loss, stop, error) of every rank */
            double red[3] = { loss_sum, r->stop && *r->stop, rc != 0 };
            char e[1024];
            if (sum_ranks(&t, red, 3, e, sizeof e)) { rc = fail(err, errlen, "step %ld: %s", t.st.step + 1, e); break; }
            t.agreed = red[2] > 0;
            if (t.agreed && !rc) rc = fail(err, errlen, "step %ld: stopping: another rank failed (its message says why)", t.st.step + 1);
            interrupted = red[1] > 0;
            loss_sum = red[0];
        }
        if (rc || interrupted) break;
        double loss = masked ? loss_sum / (double)masked : 0.0;
        if (!isfinite(loss)) { t.agreed = 1; rc = fail(err, errlen, "step %ld: loss is %s; stopping (the last checkpoint is intact)", t.st.step + 1, isnan(loss) ? "nan" : "infinite"); break; }
        if (t.comm) {
            char e[1024];
            if (ops->allreduce_grads(t.e, t.comm, e, sizeof e)) { t.broken = 1; rc = fail(err, errlen, "step %ld: %s", t.st.step + 1, e); break; }
        }
        double lr = bt_lr_at(&t.o.optim, t.st.step);
        double norm = ops->update(t.e, &t.o.optim, t.st.step + 1, lr);
        if (!isfinite(norm)) { t.agreed = 1; rc = fail(err, errlen, "step %ld: gradient norm is %s; stopping (the last checkpoint is intact)", t.st.step + 1, isnan(norm) ? "nan" : "infinite"); break; }
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
        if (!rc && t.rank == 0 && t.st.step < total && t.o.save_every > 0 && t.st.step % t.o.save_every == 0) rc = save(&t, total, err, errlen);
    }
    if (!rc && t.rank == 0) rc = save(&t, total, err, errlen);   /* at the end, or the last whole step when interrupted */
    if (t.comm && !t.agreed && !t.broken && (rc == 0 || t.rank == 0)) {
        /* the ranks leave together: rank 0's saving failed, or not */
        double red[3] = { 0, 0, rc != 0 };
        char e[1024];
        if (sum_ranks(&t, red, 3, e, sizeof e)) { if (!rc) rc = fail(err, errlen, "%s", e); }
        else if (red[2] > 0 && !rc) rc = fail(err, errlen, "rank 0 could not write the checkpoint (its message says why)");
    }
    if (!rc && r->params_out) {
        ops->pull(t.e, t.params, t.m, t.v);
        *r->params_out = t.params;
        t.params = NULL;
    }
    teardown(&t);
    return rc ? -1 : interrupted ? 1 : 0;
}

/* ------------------------------------------------------------ the CPU engine */

typedef struct {
    const bt_layout *L;
    bt_cpu *cpu;
    float *params, *m, *v;     /* the host copies themselves: nothing to pull */
    float *grads;
    double loss;
} cpu_engine;

static void *cpu_open(void *arg, const bt_layout *L, int micro, int T, float *params, float *m, float *v, char *err, size_t errlen) {
    (void)arg;
    cpu_engine *c = calloc(1, sizeof *c);
    if (!c) { fail(err, errlen, "out of memory"); return NULL; }
    c->L = L; c->params = params; c->m = m; c->v = v;
    c->grads = malloc(L->total * sizeof(float));
    c->cpu = bt_cpu_new(L, micro, T, err, errlen);
    if (!c->grads || !c->cpu) {
        if (!c->grads) fail(err, errlen, "out of memory for %zu gradients", L->total);
        bt_cpu_free(c->cpu); free(c->grads); free(c); return NULL;
    }
    return c;
}
static void cpu_close(void *e) { cpu_engine *c = e; bt_cpu_free(c->cpu); free(c->grads); free(c); }
static void cpu_zero_grads(void *e) { cpu_engine *c = e; memset(c->grads, 0, c->L->total * sizeof(float)); }
static int cpu_forward_backward(void *e, const bt_batch *b, int train, int dropout, uint64_t seed, float scale,
                                int *n_labels, char *err, size_t errlen) {
    cpu_engine *c = e;
    c->loss += bt_cpu_forward_backward(c->cpu, c->params, train ? c->grads : NULL, b, dropout, seed, scale, n_labels, NULL);
    if (*n_labels < 0) return fail(err, errlen, "out of memory in the forward pass");
    return 0;
}
static double cpu_loss_take(void *e) { cpu_engine *c = e; double l = c->loss; c->loss = 0; return l; }
static double cpu_update(void *e, const bt_optim_cfg *o, long step, double lr) {
    cpu_engine *c = e;
    double norm = bt_grad_norm(c->grads, c->L->total);
    if (isfinite(norm)) bt_adamw_update(c->L, o, c->params, c->grads, c->m, c->v, step, lr, bt_clip_coef(o, norm));
    return norm;
}
static void cpu_pull(void *e, float *params, float *m, float *v) { (void)e; (void)params; (void)m; (void)v; }
static int cpu_allreduce_grads(void *e, bt_comm *comm, char *err, size_t errlen) {
    cpu_engine *c = e;
    if (!comm->sum_f32) return fail(err, errlen, "the CPU trainer cannot sum its gradients over %s", comm->name);
    return comm->sum_f32(comm, c->grads, c->L->total, err, errlen);
}

static const bt_engine_ops cpu_ops = {
    NULL, cpu_open, cpu_close, cpu_zero_grads, cpu_forward_backward, cpu_loss_take, cpu_update, cpu_pull, 0,
    cpu_allreduce_grads
};

int bt_train_cpu(const bt_run *r, char *err, size_t errlen) {
    return bt_train_with(r, &cpu_ops, NULL, err, errlen);
}
