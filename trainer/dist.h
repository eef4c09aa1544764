/* dist.h - data parallelism: which rank this process is, how the ranks of a
 * run meet, and the communicator the training loop sums over.
 *
 * One process per device (GPU, or a CPU process under mpirun).  The launcher
 * says who is who through the environment (bt_dist_detect): torchrun (RANK,
 * WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), Slurm's srun
 * (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_JOB_NODELIST) or
 * OpenMPI's mpirun (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK).
 *
 * The training loop (trainer/train.h) needs few collectives: per update one
 * sum of the gradients and one sum of a few doubles (the loss, a stop flag,
 * an error flag), so a communicator is a small table of functions.  Its
 * implementations: MPI for the CPU trainer (trainer/dist_mpi.c), NCCL for
 * the GPU trainer (trainer/cuda/dist_nccl.c).  Every sum gives the same bits
 * on every rank, so every rank's copy of the model stays identical.
 *
 * NCCL needs its ncclUniqueId carried from rank 0 to the others before it
 * can talk: bt_rendezvous does that over TCP or a shared file (or the MPI
 * communicator's broadcast, under mpirun).  A peer that never arrives is an
 * error naming the rank and the address after a timeout, never a hang. */
#ifndef SYMBERT_TRAINER_DIST_H
#define SYMBERT_TRAINER_DIST_H
#include <stddef.h>

typedef struct bt_comm bt_comm;
struct bt_comm {
    int rank, world;
    const char *name;                 /* "mpi" or "nccl" */
    /* n doubles of host memory summed over the ranks, in place */
    int (*sum_f64)(bt_comm *c, double *x, int n, char *err, size_t errlen);
    /* n floats summed in place: of host memory (sum_f32) or of device memory
     * on `stream` (sum_f32_device); NULL where the communicator cannot */
    int (*sum_f32)(bt_comm *c, float *x, size_t n, char *err, size_t errlen);
    int (*sum_f32_device)(bt_comm *c, float *x, size_t n, void *stream, char *err, size_t errlen);
    /* len bytes from rank 0 to every rank; NULL where the communicator cannot */
    int (*bcast)(bt_comm *c, void *buf, size_t len, char *err, size_t errlen);
    /* after an error on this rank: stop the others (they get an error, never hang) */
    void (*abort)(bt_comm *c);
    void (*close)(bt_comm *c);
    void *impl;
};

typedef struct bt_dist_env {
    int rank, world, local_rank;
    const char *launcher;             /* "torchrun", "slurm", "openmpi"; NULL: none */
    /* the rendezvous: host and port (tcp), or a shared file; both empty: none given */
    char host[256];
    int port;
    char file[2048];
    double timeout;                   /* seconds to wait for a peer (bt_rendezvous, NCCL) */
} bt_dist_env;

#define BT_DIST_PORT 29500            /* torchrun's default MASTER_PORT */
#define BT_DIST_TIMEOUT 600.0

/* Reads the launcher's variables (the first launcher found of torchrun,
 * Slurm, OpenMPI) and the rendezvous: `init` (tcp://HOST:PORT or
 * file:///PATH, from --dist-init; may be NULL), else MASTER_ADDR and
 * MASTER_PORT (BT_DIST_PORT when unset; under torchrun one port above,
 * since torchrun's agent serves its store at MASTER_PORT itself), else
 * under Slurm the first host of SLURM_JOB_NODELIST with MASTER_PORT or
 * BT_DIST_PORT.  Returns 1 when a launcher was found, 0 when
 * none was (d: rank 0 of 1), -1 with a message for inconsistent values. */
int bt_dist_detect(bt_dist_env *d, const char *init, double timeout, char *err, size_t errlen);

/* The first host name of a Slurm node list ("gpu[07-09,12],cpu3" -> "gpu07").
 * 0, or -1 for a list it cannot read. */
int bt_slurm_first_host(const char *list, char *host, size_t cap);

/* Carries len bytes (at most 4096) from rank 0 to every rank.  tcp: rank 0
 * listens on d->port and serves each rank once it connects; the others
 * connect to d->host:d->port, retrying.  file: rank 0 writes d->file
 * atomically (refusing one that exists: left by an earlier run), the others
 * read it and answer with d->file.RANK, which rank 0 waits for and then
 * removes with the file.  Either way every rank checks that all agree on
 * the world size, and waits at most d->timeout seconds: "rank 1: no answer
 * from rank 0 at node1:29500 after 60 s", "rank 0: rank 2 of 3 did not
 * arrive at node1:29500 within 60 s".  0, or -1 with such a message. */
int bt_rendezvous(const bt_dist_env *d, void *buf, size_t len, char *err, size_t errlen);

/* Monotonic seconds, for the waits on peers. */
double bt_dist_clock(void);

/* The MPI communicator (trainer/dist_mpi.c): MPI_Init, and the rank and
 * world size MPI gives.  NULL with a message in builds without MPI or when
 * MPI cannot start. */
bt_comm *bt_mpi_open(char *err, size_t errlen);
int bt_mpi_built(void);               /* 1 when this build has MPI */
#endif
