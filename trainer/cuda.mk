# trainer/cuda.mk: the CUDA trainer (trainer/cuda/), built wherever nvcc
# exists (CI included, which has nvcc but no GPU: it compiles, and the CPU
# tests run).  Without nvcc this fragment says so once and adds nothing.
#
#   bin/bert-train --device cuda   the trainer on one GPU (libcudatrain, linked into bert-train)
#   bin/bert-train-cuda-bench  throughput, MFU, memory; GEMM and attention micro-benchmarks
#   make test-cuda             builds and runs the GPU tests (tests/cuda_*), on a machine with a GPU
#
# Code: sm_90a machine code (Hopper) plus compute_90 PTX that the driver
# compiles for other GPUs of compute capability >= 9.0.
#
# For a front end that dispatches `--device cuda` to bt_train_cuda
# (trainer/cuda/train_cuda.h): link $(CUDA_TRAIN_LIB) before the trainer's
# libraries and add $(CUDA_TRAIN_LDLIBS), with deferred assignments (=),
# since this fragment is read after trainer/module.mk.  Without nvcc they
# name a stub whose bt_train_cuda returns a clear error.
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))

ifneq ($(NVCC),)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVCC_GENCODE := -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90
NVCCFLAGS ?= -std=c++17 -O3 -lineinfo -I. $(NVCC_GENCODE) -Xcompiler -Wall
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++ -ldl -lrt

CUDA_SRC := trainer/cuda/matmul.cu trainer/cuda/model.cu trainer/cuda/masked_rows.cu trainer/cuda/attention_flash.cu
# nvcc's flags do not depend on the variant (opt / asan: the sanitizers are
# host-compiler flags), so both variants share one set of CUDA objects.
CUDA_OBJDIR := $(BUILDROOT)/cuda-obj
CUDA_OBJ := $(patsubst %.cu,$(CUDA_OBJDIR)/%.cu.o,$(CUDA_SRC))
CUDA_LIB := $(BUILD)/lib/libcudatrain.a
CUDA_TRAIN_LIB := cudatrain
CUDA_TRAIN_LDLIBS = $(CUDA_LDLIBS)

-include $(shell find $(CUDA_OBJDIR) -name '*.d' 2>/dev/null)
$(CUDA_OBJDIR)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

# the NCCL communicator (data parallelism): plain C against nccl.h, libnccl.so.2 opened at run time
$(BUILD)/obj/trainer/cuda/dist_nccl.o: CFLAGS += -I$(CUDA_HOME)/include
$(CUDA_LIB): $(CUDA_OBJ) $(BUILD)/obj/trainer/cuda/train_cuda.o $(BUILD)/obj/trainer/cuda/dist_nccl.o
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^
# benchmark-only code (trainer/cuda/dev/, as llm.c's dev/cuda/): linked into bert-train-cuda-bench only
$(BUILD)/lib/libcudabench.a: $(CUDA_OBJDIR)/trainer/cuda/dev/bench_kernels.cu.o
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

# GPU tests: built by `make` (so CI compiles them), run only by `make test-cuda`;
# they live outside build/*/tests so that tests/run.sh of `make test` never sees them.
CUDA_TESTDIR := $(BUILD)/cuda/tests
CUDA_TESTS := cuda_model_test cuda_kernels_test
$(CUDA_TESTDIR)/cuda_model_test: $(BUILD)/obj/tests/cuda_model_test.o $(CUDA_LIB) $(foreach l,$(TRAINER_LIBS),$(BUILD)/lib/lib$(l).a)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TRAINER_LDLIBS) $(CUDA_LDLIBS) -lm
$(CUDA_TESTDIR)/cuda_kernels_test: $(CUDA_OBJDIR)/tests/cuda_kernels_test.cu.o $(CUDA_LIB) $(foreach l,$(TRAINER_LIBS),$(BUILD)/lib/lib$(l).a)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TRAINER_LDLIBS) $(CUDA_LDLIBS) -lm
EXTRA_TOOLS += $(foreach t,$(CUDA_TESTS),$(CUDA_TESTDIR)/$(t))

TOOLS += bert-train-cuda-bench
bert-train-cuda-bench_SRC := trainer/cuda/dev/bench.c
bert-train-cuda-bench_LIBS := cudabench cudatrain $(TRAINER_LIBS)
bert-train-cuda-bench_LDLIBS := $(TRAINER_LDLIBS) $(CUDA_LDLIBS)

# builds only what the GPU tests need (not every tool: a GPU machine may lack other tools' libraries)
test-cuda:
	@$(MAKE) --no-print-directory V=opt $(foreach t,$(CUDA_TESTS),$(BUILDROOT)/opt/cuda/tests/$(t)) $(BUILDROOT)/opt/bin/bert-train $(BUILDROOT)/opt/bin/bert-train-cuda-bench
	@ln -sfn ../bin $(BUILDROOT)/opt/cuda/bin
	@TESTS_MATCH='^cuda_' sh tests/run.sh $(BUILDROOT)/opt/cuda
else
LIBS += cudastub
cudastub_SRC := trainer/cuda/stub.c
CUDA_TRAIN_LIB := cudastub
CUDA_TRAIN_LDLIBS :=
test-cuda:
	@echo "test-cuda: nvcc not found (looked on PATH and in /usr/local/cuda/bin): the CUDA trainer is not built" >&2
	@false
endif
