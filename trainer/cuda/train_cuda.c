/* train_cuda.c - the GPU engine of the one training loop (bt_train_with in
 * trainer/train.c): the loop, data, masking, metrics.jsonl, checkpoints and
 * resume are the CPU trainer's own code, so a run can move between the
 * trainers: a checkpoint written here resumes on the CPU and back.
 *
 * Per update: for each micro-batch the host copies the raw ids and counts
 * the positions the masks choose (the loss normaliser and the head's
 * shapes need the counts); this engine masks on the GPU and queues the
 * forward and backward pass, so the host's reading of the next micro-batch
 * overlaps the GPU's work on this one; one synchronisation reads the loss
 * (loss_take), a second the gradient norm (update). */
#include "trainer/cuda/train_cuda.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const bt_run *r;
    const btc_options *co;
} gpu_arg;

typedef struct { btc_model *gpu; } gpu_engine;

static int gpu_available(void *arg, char *err, size_t errlen) { (void)arg; return btc_available(err, errlen); }

static void *gpu_open(void *arg, const bt_layout *L, int micro, int T, float *params, float *m, float *v, char *err, size_t errlen) {
    const gpu_arg *a = arg;
    const btc_options *co = a->co;
    gpu_engine *g = calloc(1, sizeof *g);
    if (!g) { snprintf(err, errlen, "out of host memory"); return NULL; }
    btc_opts o = { co ? co->precision : BTC_BF16, co ? co->attn_impl : BTC_ATTN_AUTO, 0 };
    g->gpu = btc_new(L, micro, T, &o, err, errlen);
    if (!g->gpu) { free(g); return NULL; }
    btc_set_params(g->gpu, params);
    btc_set_moments(g->gpu, m, v);
    if (co && co->describe) {
        char dev[256];
        btc_device_name(dev, sizeof dev);
        co->describe(a->r->ctx, dev, btc_attn_name(g->gpu), micro, btc_memory_used());
    }
    return g;
}
static void gpu_close(void *e) { gpu_engine *g = e; btc_free(g->gpu); free(g); }
static void gpu_zero_grads(void *e) { btc_zero_grads(((gpu_engine *)e)->gpu); }
/* queued: the host masks the next micro-batch while the GPU works on this one */
static int gpu_forward_backward(void *e, const bt_batch *b, int train, int dropout, uint64_t seed, float scale,
                                int *n_labels, char *err, size_t errlen) {
    (void)err; (void)errlen;   /* CUDA errors are fatal with call, file and line (common.cuh) */
    btc_forward_backward_async(((gpu_engine *)e)->gpu, b, train, dropout, seed, scale, n_labels);
    return 0;
}
static double gpu_loss_take(void *e) { return btc_loss_wait(((gpu_engine *)e)->gpu); }
static double gpu_update(void *e, const bt_optim_cfg *o, long step, double lr) {
    return btc_adamw_step(((gpu_engine *)e)->gpu, o, step, lr);
}
static int comm_sum(void *ctx, float *dev, size_t n, void *stream, char *err, size_t errlen) {
    bt_comm *c = ctx;
    return c->sum_f32_device(c, dev, n, stream, err, errlen);
}
/* data parallelism: the gradients summed where they are, on the GPU (NCCL) */
static int gpu_allreduce_grads(void *e, bt_comm *c, char *err, size_t errlen) {
    if (!c->sum_f32_device) { snprintf(err, errlen, "the GPU trainer cannot sum its gradients over %s (it needs NCCL)", c->name); return -1; }
    return btc_allreduce_grads(((gpu_engine *)e)->gpu, comm_sum, c, err, errlen);
}
static void gpu_pull(void *e, float *params, float *m, float *v) {
    gpu_engine *g = e;
    btc_get_params(g->gpu, params);
    btc_get_moments(g->gpu, m, v);
}

static const bt_engine_ops gpu_ops = {
    gpu_available, gpu_open, gpu_close, gpu_zero_grads, gpu_forward_backward, gpu_loss_take, gpu_update, gpu_pull,
    1,  /* masks on the device (trainer/cuda/mask.cuh) */
    gpu_allreduce_grads
};

int bt_train_cuda(const bt_run *r, const btc_options *co, char *err, size_t errlen) {
    gpu_arg a = { r, co };
    return bt_train_with(r, &gpu_ops, &a, err, errlen);
}
