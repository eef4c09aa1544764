# trainer/: the BERT MLM trainer (library `trainer`, prefix bt_) and bin/bert-train.
# OpenMP is used when the compiler has it; results do not depend on the
# thread count (every output element is summed by one thread in a fixed order).
LIBS += trainer
trainer_SRC := trainer/config.c trainer/cpu.c trainer/mask.c trainer/optim.c trainer/data.c trainer/ckpt.c trainer/train.c
TRAINER_OPENMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
# Link line for anything that uses libtrainer (after trainer in _LIBS: shard pipeline).
TRAINER_LIBS := trainer shard pipeline
TRAINER_LDLIBS := -lzstd $(TRAINER_OPENMP)
$(patsubst %.c,$(BUILD)/obj/%.o,$(trainer_SRC) trainer/main.c tests/trainer_train_test.c): CFLAGS += $(TRAINER_OPENMP)
ifeq ($(V),opt)
$(patsubst %.c,$(BUILD)/obj/%.o,trainer/cpu.c trainer/optim.c): CFLAGS += -O3
endif

# Data parallelism (trainer/dist.h): the launcher's environment, the
# rendezvous, and the MPI communicator of the CPU trainer, in a library of
# their own so that only bert-train and its test link MPI.  MPI is optional:
# without mpicc, one line says so and bt_mpi_open explains at run time.
LIBS += trainerdist
trainerdist_SRC := trainer/dist.c trainer/dist_mpi.c
MPICC ?= mpicc
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LDLIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
ifeq ($(if $(strip $(MPI_LDLIBS)),$(shell echo '\#include <mpi.h>' | $(CC) $(MPI_CFLAGS) -E -x c - >/dev/null 2>&1 && echo yes)),)
MPI_LDLIBS :=
$(info bert-train: no MPI (no OpenMPI mpicc and mpi.h; Debian: libopenmpi-dev): the CPU trainer runs as one process)
else
$(BUILD)/obj/trainer/dist_mpi.o: CFLAGS += -DBT_HAVE_MPI $(MPI_CFLAGS)
endif

# --device cuda goes to bt_train_cuda: the CUDA trainer's library where nvcc
# exists, else its stub (one clear error).  Deferred (=): trainer/cuda.mk,
# which defines CUDA_TRAIN_LIB / CUDA_TRAIN_LDLIBS, is read after this file.
TOOLS += bert-train
bert-train_SRC := trainer/main.c
bert-train_LIBS = $(CUDA_TRAIN_LIB) trainerdist $(TRAINER_LIBS)
bert-train_LDLIBS = $(TRAINER_LDLIBS) $(MPI_LDLIBS) $(CUDA_TRAIN_LDLIBS)

TESTS += dist_test
dist_test_SRC := tests/dist_test.c
dist_test_LIBS := trainerdist $(TRAINER_LIBS)
dist_test_LDLIBS := $(TRAINER_LDLIBS) $(MPI_LDLIBS)

TESTS += trainer_test
trainer_test_SRC := tests/trainer_test.c
trainer_test_LIBS := $(TRAINER_LIBS)
trainer_test_LDLIBS := $(TRAINER_LDLIBS)

TESTS += trainer_grad_test
trainer_grad_test_SRC := tests/trainer_grad_test.c
trainer_grad_test_LIBS := $(TRAINER_LIBS)
trainer_grad_test_LDLIBS := $(TRAINER_LDLIBS)

TESTS += trainer_train_test
trainer_train_test_SRC := tests/trainer_train_test.c
trainer_train_test_LIBS := $(TRAINER_LIBS)
trainer_train_test_LDLIBS := $(TRAINER_LDLIBS)

TESTS += trainer_torch_test
trainer_torch_test_SRC := tests/trainer_torch_test.c
trainer_torch_test_LIBS := $(TRAINER_LIBS)
trainer_torch_test_LDLIBS := $(TRAINER_LDLIBS)
