/* dist_nccl.h - the NCCL communicator of trainer/dist.h, for the GPU
 * trainer: one process per GPU, the gradients summed on the GPUs. */
#ifndef SYMBERT_TRAINER_CUDA_DIST_NCCL_H
#define SYMBERT_TRAINER_CUDA_DIST_NCCL_H
#include "trainer/dist.h"

/* Picks GPU d->local_rank (modulo the GPUs this process sees), then joins
 * rank d->rank of d->world.  Rank 0's ncclUniqueId reaches the others by
 * boot->bcast (MPI under mpirun) or, boot NULL, by bt_rendezvous(d).
 * libnccl.so.2 is loaded at run time, so a build needs only nccl.h.
 * Every wait (joining, each sum) polls NCCL's asynchronous error and gives
 * up after d->timeout seconds, aborting the communicator: a dead peer
 * makes the others fail with "rank 1: NCCL ...", never hang.  NULL with a
 * message naming the rank on failure (also in builds without CUDA). */
bt_comm *btn_open(const bt_dist_env *d, bt_comm *boot, char *err, size_t errlen);
#endif
