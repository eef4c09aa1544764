/* train.h - the training loop on the CPU, and the metrics log both
 * trainers write.
 *
 * One update: the masks of the whole batch are drawn first (their count
 * normalises the loss: the gradient is that of the mean cross-entropy over
 * every masked position of the batch, however it is split into
 * micro-batches), then micro-batches run forward and backward, accumulating
 * gradients; then clipping at the global norm, AdamW with the scheduled
 * rate.  A NaN or infinite loss or gradient norm stops the run with an
 * error naming the step; nothing is skipped silently. */
#ifndef SYMBERT_TRAINER_TRAIN_H
#define SYMBERT_TRAINER_TRAIN_H
#include <signal.h>
#include "trainer/ckpt.h"
#include "trainer/batch.h"
#include "trainer/dist.h"  /* bt_comm */

/* One row of metrics.jsonl / one progress report.  NAN fields are absent
 * from the JSON line. */
typedef struct bt_progress {
    long step;              /* updates done */
    long total;             /* where this invocation stops */
    double loss;            /* mean masked-token cross-entropy of the update */
    double eval_loss;       /* validation loss (fixed masks), NAN when not evaluated */
    double lr, grad_norm;   /* rate used by the update, gradient norm before clipping */
    double tokens_per_s;    /* training throughput since the previous row */
    double elapsed;         /* training seconds since the run began (resumes included) */
    const char *saved;      /* a checkpoint written at this step, or NULL */
} bt_progress;

typedef struct bt_metrics bt_metrics;
/* Opens RUN/metrics.jsonl for appending.  Lines of steps after upto_step
 * (left by a run that died after its last checkpoint) are dropped first, so
 * that a resumed run's log has each step once.  A fresh run passes -1 (drop
 * everything: a run that died before its first checkpoint leaves rows). */
bt_metrics *bt_metrics_open(const char *run_dir, long upto_step, char *err, size_t errlen);
/* Appends one JSON line ({"step":..,"loss":..,"eval_loss":..,"lr":..,
 * "grad_norm":..,"tokens_per_s":..,"elapsed_s":..}) and flushes. */
int bt_metrics_log(bt_metrics *m, const bt_progress *p, char *err, size_t errlen);
void bt_metrics_close(bt_metrics *m);

typedef void (*bt_progress_fn)(void *ctx, const bt_progress *p);

typedef struct bt_run {
    bt_opts opts;                 /* options (from the checkpoint when resuming) */
    bt_config cfg;                /* the model */
    const char *resume;           /* checkpoint folder to continue from, or NULL */
    long stop_at;                 /* stop after this step (0: opts.optim.total) */
    int verify_data;              /* check every shard's sha256 first */
    const volatile sig_atomic_t *stop;   /* set by a signal handler: save and return 1 */
    bt_progress_fn progress;      /* called for every row of metrics and every checkpoint */
    void *ctx;
    /* test hook: when not NULL, receives the final parameters (L.total floats, malloc'd) */
    float **params_out;
    /* data parallelism: NULL, one process; else this process is rank comm->rank of
     * comm->world, each computing its share of every update (see bt_train_with) */
    bt_comm *comm;
} bt_run;

/* Trains on the CPU.  Returns 0 when stop_at is reached (a checkpoint is
 * written there), 1 when *stop was set (a checkpoint of the last whole step
 * is written), -1 on error with a message (e.g. "step 12: loss is nan"). */
int bt_train_cpu(const bt_run *r, char *err, size_t errlen);

/* Where the model runs.  The loop, data, masks, evaluation, metrics and
 * checkpoints are one code (bt_train_with); an engine only computes.  The
 * host keeps params, m and v (loaded or initialised before `open`); an
 * engine that keeps its own copies writes them back in `pull`. */
typedef struct bt_engine_ops {
    /* optional: whether the engine can run at all, checked before the data is opened */
    int (*available)(void *arg, char *err, size_t errlen);
    void *(*open)(void *arg, const bt_layout *L, int micro, int T, float *params, float *m, float *v,
                  char *err, size_t errlen);
    void (*close)(void *e);
    void (*zero_grads)(void *e);
    /* one micro-batch forward, and backward when `train` (gradients accumulate,
     * scaled by `scale`); *n_labels gets its masked positions.  May only queue
     * the work: the losses are collected by loss_take.  0, or -1 with err. */
    int (*forward_backward)(void *e, const bt_batch *b, int train, int dropout, uint64_t seed, float scale,
                            int *n_labels, char *err, size_t errlen);
    double (*loss_take)(void *e);    /* sum of the losses since the last call (waits for queued work) */
    /* clip and AdamW at update `step` (1-based) with rate lr; returns the gradient
     * norm before clipping (a non-finite norm: the run stops, nothing is saved) */
    double (*update)(void *e, const bt_optim_cfg *o, long step, double lr);
    void (*pull)(void *e, float *params, float *m, float *v);   /* host copies, for checkpoints */
    /* 1: forward_backward gets raw ids and mask keys (bt_batch.ids) and
     * masks on the device; 0: the host masks (bt_batch.inputs, labels) */
    int device_masks;
    /* sums the accumulated gradients over the ranks of c, in place (data parallelism) */
    int (*allreduce_grads)(void *e, bt_comm *c, char *err, size_t errlen);
} bt_engine_ops;
/* With r->comm, every rank runs this with the same options: --batch stays the
 * global batch, and rank k of W takes samples [k*B/W, (k+1)*B/W) of each
 * update (and of the validation samples) with the masks and dropout streams
 * that a 1-rank run gives them, so W ranks compute the update of 1 rank up
 * to the order of fp32 sums.  Per update one sum of the gradients and one of
 * (loss, stop, error): a signal to any rank stops every rank after the same
 * whole step, and an error on one rank stops the others with an error.
 * Rank 0 alone writes metrics.jsonl, progress and checkpoints; the files are
 * those of a 1-rank run, so --resume may use another number of ranks. */
int bt_train_with(const bt_run *r, const bt_engine_ops *ops, void *arg, char *err, size_t errlen);
#endif
