/* dist_nccl.c - the NCCL communicator (see dist_nccl.h).
 *
 * NCCL is opened with dlopen("libnccl.so.2"): the build needs only the
 * header (CI has no libnccl to link), and a machine without NCCL gets one
 * clear error when it asks for more than one process, not a loader failure
 * for every use of bert-train.
 *
 * The communicator is non-blocking (ncclConfig_t.blocking = 0): no NCCL
 * call waits, and every wait is a polling loop here that watches
 * ncclCommGetAsyncError and a deadline, so that a peer that died or never
 * arrived ends in an error (and ncclCommAbort), never in a hang.  Sums
 * are ncclAllReduce, which leaves the same bits on every rank. */
#include "trainer/cuda/dist_nccl.h"
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    int loaded;
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*init_rank_config)(ncclComm_t *, int, ncclUniqueId, int, ncclConfig_t *);
    ncclResult_t (*async_error)(ncclComm_t, ncclResult_t *);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*finalize)(ncclComm_t);
    ncclResult_t (*destroy)(ncclComm_t);
    ncclResult_t (*abort)(ncclComm_t);
    const char *(*error_string)(ncclResult_t);
    const char *(*last_error)(ncclComm_t);
} N;

static int load(char *err, size_t errlen) {
    if (N.loaded) return 0;
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) { snprintf(err, errlen, "cannot load NCCL (libnccl.so.2): %s", dlerror()); return -1; }
#define SYM(field, name) if (!(*(void **)&N.field = dlsym(h, name))) { snprintf(err, errlen, "libnccl.so.2 lacks %s (NCCL >= 2.14 needed)", name); return -1; }
    SYM(get_unique_id, "ncclGetUniqueId");
    SYM(init_rank_config, "ncclCommInitRankConfig");
    SYM(async_error, "ncclCommGetAsyncError");
    SYM(all_reduce, "ncclAllReduce");
    SYM(finalize, "ncclCommFinalize");
    SYM(destroy, "ncclCommDestroy");
    SYM(abort, "ncclCommAbort");
    SYM(error_string, "ncclGetErrorString");
    SYM(last_error, "ncclGetLastError");
#undef SYM
    N.loaded = 1;
    return 0;
}

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;          /* for the sums of host doubles */
    double *d_buf;                /* their device copy */
    double timeout;
    char addr[300];               /* where the ranks met, for messages */
} nccl;

static int nfail(bt_comm *c, const char *what, ncclResult_t r, char *err, size_t errlen) {
    nccl *n = c->impl;
    const char *detail = n->comm ? N.last_error(n->comm) : "";
    snprintf(err, errlen, "rank %d of %d: NCCL %s: %s%s%s", c->rank, c->world, what, N.error_string(r),
             detail && *detail ? ": " : "", detail ? detail : "");
    return -1;
}

/* Waits until the communicator is idle (nothing in progress) and, when
 * stream is not NULL, the stream's work is done.  Fails on an asynchronous
 * NCCL error or after the timeout (aborting the communicator: later calls fail). */
static int wait_done(bt_comm *c, cudaStream_t stream, int check_stream, const char *what, char *err, size_t errlen) {
    nccl *n = c->impl;
    const double t0 = bt_dist_clock();
    for (long spins = 0;; spins++) {
        ncclResult_t a = ncclSuccess;
        ncclResult_t q = N.async_error(n->comm, &a);
        if (q != ncclSuccess) return nfail(c, what, q, err, errlen);
        if (a != ncclSuccess && a != ncclInProgress) {
            nfail(c, what, a, err, errlen);
            N.abort(n->comm); n->comm = NULL;
            return -1;
        }
        if (a == ncclSuccess) {
            if (!check_stream) return 0;
            cudaError_t s = cudaStreamQuery(stream);
            if (s == cudaSuccess) return 0;
            if (s != cudaErrorNotReady) {
                snprintf(err, errlen, "rank %d of %d: %s: CUDA error: %s", c->rank, c->world, what, cudaGetErrorString(s));
                return -1;
            }
        }
        if (bt_dist_clock() - t0 > n->timeout) {
            snprintf(err, errlen, "rank %d of %d: %s did not complete within %g s (a peer died or stalls; ranks met at %s); aborting",
                     c->rank, c->world, what, n->timeout, n->addr);
            N.abort(n->comm); n->comm = NULL;
            return -1;
        }
        if (spins > 1000) { struct timespec ts = { 0, 100000 }; nanosleep(&ts, NULL); }
        else sched_yield();
    }
}

static int sum_on(bt_comm *c, void *x, size_t count, ncclDataType_t t, cudaStream_t stream, const char *what, char *err, size_t errlen) {
    nccl *n = c->impl;
    if (!n->comm) { snprintf(err, errlen, "rank %d of %d: the NCCL communicator was aborted", c->rank, c->world); return -1; }
    ncclResult_t r = N.all_reduce(x, x, count, t, ncclSum, n->comm, stream);
    if (r != ncclSuccess && r != ncclInProgress) return nfail(c, what, r, err, errlen);
    return wait_done(c, stream, 1, what, err, errlen);
}

static int nccl_sum_f32_device(bt_comm *c, float *x, size_t count, void *stream, char *err, size_t errlen) {
    return sum_on(c, x, count, ncclFloat32, (cudaStream_t)stream, "all-reduce of the gradients", err, errlen);
}

enum { F64_MAX = 16 };
static int nccl_sum_f64(bt_comm *c, double *x, int count, char *err, size_t errlen) {
    nccl *n = c->impl;
    if (count < 0 || count > F64_MAX) { snprintf(err, errlen, "sum of %d doubles (at most %d)", count, F64_MAX); return -1; }
    if (cudaMemcpyAsync(n->d_buf, x, (size_t)count * sizeof *x, cudaMemcpyHostToDevice, n->stream) != cudaSuccess) {
        snprintf(err, errlen, "rank %d: cudaMemcpyAsync failed", c->rank); return -1;
    }
    if (sum_on(c, n->d_buf, (size_t)count, ncclFloat64, n->stream, "all-reduce of the loss", err, errlen)) return -1;
    if (cudaMemcpy(x, n->d_buf, (size_t)count * sizeof *x, cudaMemcpyDeviceToHost) != cudaSuccess) {
        snprintf(err, errlen, "rank %d: cudaMemcpy failed", c->rank); return -1;
    }
    return 0;
}

static void nccl_abort(bt_comm *c) {
    nccl *n = c->impl;
    if (n->comm) { N.abort(n->comm); n->comm = NULL; }
}

static void nccl_close(bt_comm *c) {
    nccl *n = c->impl;
    if (n->comm) {
        char e[512];
        ncclResult_t r = N.finalize(n->comm);
        if ((r == ncclSuccess || r == ncclInProgress) && !wait_done(c, NULL, 0, "finalize", e, sizeof e)) N.destroy(n->comm);
        else if (n->comm) N.abort(n->comm);
    }
    if (n->d_buf) cudaFree(n->d_buf);
    if (n->stream) cudaStreamDestroy(n->stream);
    free(n);
    free(c);
}

bt_comm *btn_open(const bt_dist_env *d, bt_comm *boot, char *err, size_t errlen) {
    if (load(err, errlen)) return NULL;
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess || ndev < 1) {
        snprintf(err, errlen, "rank %d: no CUDA device (%s)", d->rank, ce != cudaSuccess ? cudaGetErrorString(ce) : "none visible");
        return NULL;
    }
    int dev = d->local_rank % ndev;
    if ((ce = cudaSetDevice(dev)) != cudaSuccess) { snprintf(err, errlen, "rank %d: GPU %d: %s", d->rank, dev, cudaGetErrorString(ce)); return NULL; }
    bt_comm *c = calloc(1, sizeof *c);
    nccl *n = calloc(1, sizeof *n);
    if (!c || !n) { free(c); free(n); snprintf(err, errlen, "out of memory"); return NULL; }
    c->rank = d->rank; c->world = d->world; c->name = "nccl"; c->impl = n;
    c->sum_f64 = nccl_sum_f64;
    c->sum_f32_device = nccl_sum_f32_device;
    c->abort = nccl_abort;
    c->close = nccl_close;
    n->timeout = d->timeout;
    if (boot) snprintf(n->addr, sizeof n->addr, "%s", boot->name);
    else if (d->file[0]) snprintf(n->addr, sizeof n->addr, "file://%.280s", d->file);
    else snprintf(n->addr, sizeof n->addr, "%s:%d", d->host[0] ? d->host : "-", d->port);
    if (cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaMalloc((void **)&n->d_buf, F64_MAX * sizeof(double)) != cudaSuccess) {
        snprintf(err, errlen, "rank %d: GPU %d: cannot allocate the communicator's buffers", d->rank, dev);
        nccl_close(c); return NULL;
    }
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (d->rank == 0) {
        ncclResult_t r = N.get_unique_id(&id);
        if (r != ncclSuccess) { nfail(c, "ncclGetUniqueId", r, err, errlen); nccl_close(c); return NULL; }
    }
    char e[1024];
    int rc = d->world == 1 && !boot && !d->host[0] && !d->file[0] ? 0   /* alone: nobody to meet */
           : boot ? boot->bcast(boot, &id, sizeof id, e, sizeof e) : bt_rendezvous(d, &id, sizeof id, e, sizeof e);
    if (rc) { snprintf(err, errlen, "%s", e); nccl_close(c); return NULL; }
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclResult_t r = N.init_rank_config(&n->comm, d->world, id, d->rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) { nfail(c, "ncclCommInitRankConfig", r, err, errlen); n->comm = NULL; nccl_close(c); return NULL; }
    if (wait_done(c, NULL, 0, "joining the communicator", err, errlen)) { nccl_close(c); return NULL; }
    return c;
}
