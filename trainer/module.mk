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

# --device cuda goes to bt_train_cuda: the CUDA trainer's library where nvcc
# exists, else its stub (one clear error).  Deferred (=): trainer/cuda.mk,
# which defines CUDA_TRAIN_LIB / CUDA_TRAIN_LDLIBS, is read after this file.
TOOLS += bert-train
bert-train_SRC := trainer/main.c
bert-train_LIBS = $(CUDA_TRAIN_LIB) $(TRAINER_LIBS)
bert-train_LDLIBS = $(TRAINER_LDLIBS) $(CUDA_TRAIN_LDLIBS)

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
