# symbert: one Makefile for every tool.
#
#   make            build every tool into bin/ (optimised, build/opt)
#   make test       build opt + ASan/UBSan variants, run tests/run.sh on both
#   make bench      run the benchmarks in bench/
#   make demo       run the whole pipe on the bundled sample in data/
#   make install    the tools into $(PREFIX)/bin, the vocab into $(PREFIX)/share/symbert
#                   (PREFIX=/usr/local; DESTDIR is honoured)
#   make deps       install every missing Debian package (apt-get, as root)
#
# `make`, `make test`, `make demo` and `make bench` each check first that the
# Debian packages they need are there (mk/deps.sh build|test|demo|bench), and
# install the missing ones as root; DEPS=0 skips the check.
#
# Each folder adds itself in its module.mk: libraries (LIBS), tools (TOOLS),
# unit-test programs (TESTS) and fuzz targets (FUZZ). See mk/rules.mk.

V ?= opt
BUILDROOT ?= build
BUILD := $(BUILDROOT)/$(V)

CC ?= cc
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow -Werror=implicit-function-declaration -I. -pthread -g
ifeq ($(V),opt)
  CFLAGS_V := -O2 -march=x86-64-v2
  LDFLAGS_V :=
else ifeq ($(V),asan)
  CFLAGS_V := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS_V := -fsanitize=address,undefined
else
  $(error V must be opt or asan)
endif
CFLAGS += $(CFLAGS_COMMON) $(CFLAGS_V)
LDFLAGS += -pthread $(LDFLAGS_V)

LIBS :=
TOOLS :=
TESTS :=
FUZZ :=

.PHONY: all test test-cuda bench demo deps clean tools tests fuzz install deps-build deps-test deps-demo deps-bench
all: deps-build
	@$(MAKE) --no-print-directory V=opt tools
	@mkdir -p bin && for t in $(TOOLS_ALL); do ln -sf $(abspath $(BUILDROOT))/opt/bin/$$t bin/$$t; done
	@echo "built: $(TOOLS_ALL) -> bin/"
	@$(if $(NVCC),:,echo "CUDA trainer not built: nvcc not found (looked on PATH and in /usr/local/cuda/bin); bert-train runs on the CPU only")

include mk/modules.mk
include mk/rules.mk

TOOLS_ALL = $(TOOLS)

DEPS ?= 1
deps: deps-bench
deps-build deps-test deps-demo deps-bench:
	@$(if $(filter 0,$(DEPS)),:,sh mk/deps.sh $(patsubst deps-%,%,$@))

test: deps-test
	@$(MAKE) --no-print-directory V=opt tools tests
	@$(MAKE) --no-print-directory V=asan tools tests
	@mkdir -p bin && for t in $(TOOLS); do ln -sf $(abspath $(BUILDROOT))/opt/bin/$$t bin/$$t; done
	@sh tests/run.sh $(BUILDROOT)/opt $(BUILDROOT)/asan

# (all after the packages, not beside them: one apt-get at a time under -j)
bench: deps-bench
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh

demo: deps-demo
	@$(MAKE) --no-print-directory all
	@sh data/demo.sh

# The tools find the vocab at ../share/symbert/vocab.txt from their own folder
# (tokenizer/vocab.h), as they do in build/<variant>/ (mk/rules.mk).
PREFIX ?= /usr/local
install:
	@$(MAKE) --no-print-directory V=$(V) tools
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/symbert
	install -m 755 $(addprefix $(BUILD)/bin/,$(TOOLS_ALL)) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 data/vocab/bert-base-uncased-vocab.txt $(DESTDIR)$(PREFIX)/share/symbert/vocab.txt
	install -m 644 data/vocab/LICENSE $(DESTDIR)$(PREFIX)/share/symbert/vocab-LICENSE

clean:
	rm -rf build bin
