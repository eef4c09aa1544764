/* dist_mpi.c - the MPI communicator of dist.h, for the CPU trainer under
 * mpirun (and, under mpirun, the carrier of NCCL's unique id).
 *
 * Sums are a reduce to rank 0 followed by a broadcast, not MPI_Allreduce:
 * MPI does not promise that an all-reduce gives every rank the same bits,
 * and the ranks' copies of the model must stay identical.  Errors return
 * (MPI_ERRORS_RETURN) with MPI's own message; a rank that dies makes
 * mpirun stop the others.  Built without MPI (no mpicc when it was built):
 * bt_mpi_open says so. */
#include "trainer/dist.h"
#include <stdio.h>
#include <stdlib.h>

#ifdef BT_HAVE_MPI
#include <mpi.h>
#include <limits.h>

int bt_mpi_built(void) { return 1; }

static int mpi_fail(int code, const char *what, char *err, size_t errlen) {
    char msg[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, msg, &n) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", code);
    int rank = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    snprintf(err, errlen, "rank %d: MPI %s: %s", rank, what, msg);
    return -1;
}

/* reduce at rank 0, then broadcast: the same bits everywhere; count chunks fit an int */
static int sum_typed(bt_comm *c, void *x, size_t n, MPI_Datatype t, size_t esz, char *err, size_t errlen) {
    const size_t chunk = (size_t)1 << 28;
    for (size_t off = 0; off < n; off += chunk) {
        int k = (int)(n - off < chunk ? n - off : chunk);
        char *p = (char *)x + off * esz;
        int rc = MPI_Reduce(c->rank == 0 ? MPI_IN_PLACE : p, c->rank == 0 ? p : NULL, k, t, MPI_SUM, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "reduce", err, errlen);
        rc = MPI_Bcast(p, k, t, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast", err, errlen);
    }
    return 0;
}
static int mpi_sum_f64(bt_comm *c, double *x, int n, char *err, size_t errlen) {
    return sum_typed(c, x, (size_t)n, MPI_DOUBLE, sizeof *x, err, errlen);
}
static int mpi_sum_f32(bt_comm *c, float *x, size_t n, char *err, size_t errlen) {
    return sum_typed(c, x, n, MPI_FLOAT, sizeof *x, err, errlen);
}
static int mpi_bcast(bt_comm *c, void *buf, size_t len, char *err, size_t errlen) {
    (void)c;
    if (len > INT_MAX) return mpi_fail(MPI_ERR_COUNT, "broadcast", err, errlen);
    int rc = MPI_Bcast(buf, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "broadcast", err, errlen);
}
static void mpi_abort(bt_comm *c) { (void)c; MPI_Abort(MPI_COMM_WORLD, 1); }
static void mpi_close(bt_comm *c) { MPI_Finalize(); free(c); }

bt_comm *bt_mpi_open(char *err, size_t errlen) {
    int rc = MPI_Init(NULL, NULL);
    if (rc != MPI_SUCCESS) { snprintf(err, errlen, "MPI_Init failed (error %d)", rc); return NULL; }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    bt_comm *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); MPI_Finalize(); return NULL; }
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->world);
    c->name = "mpi";
    c->sum_f64 = mpi_sum_f64;
    c->sum_f32 = mpi_sum_f32;
    c->bcast = mpi_bcast;
    c->abort = mpi_abort;
    c->close = mpi_close;
    return c;
}
#else
int bt_mpi_built(void) { return 0; }

bt_comm *bt_mpi_open(char *err, size_t errlen) {
    snprintf(err, errlen, "this build has no MPI (mpicc was not found when it was built: apt-get install libopenmpi-dev, then rebuild)");
    return NULL;
}
#endif
