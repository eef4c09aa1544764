/* stub.c - bt_train_cuda in builds without the CUDA trainer (no nvcc when
 * it was built): one clear error instead of a link failure, so that a front
 * end can call bt_train_cuda unconditionally. */
#include "trainer/cuda/train_cuda.h"
#include "trainer/cuda/dist_nccl.h"
#include <stdio.h>

bt_comm *btn_open(const bt_dist_env *d, bt_comm *boot, char *err, size_t errlen) {
    (void)boot;
    snprintf(err, errlen, "rank %d: this build has no CUDA trainer, hence no NCCL", d->rank);
    return NULL;
}

int btc_available(char *err, size_t errlen) {
    snprintf(err, errlen, "this build has no CUDA trainer");
    return 0;
}

int bt_train_cuda(const bt_run *r, const btc_options *co, char *err, size_t errlen) {
    (void)r; (void)co;
    snprintf(err, errlen, "this build has no CUDA trainer (nvcc was not found when it was built; see docs/bert-train-cuda.md)");
    return -1;
}
