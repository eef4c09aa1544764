# symbert: one Makefile for every tool.
#
#   make            build every tool into bin/ (optimised, build/opt)
#   make test       build opt + ASan/UBSan variants, run tests/run.sh on both
#   make bench      run the benchmarks in bench/
#   make demo       run the whole pipe on the bundled sample in data/
#   make deps       install missing Debian packages (apt-get, as root)
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

.PHONY: all test test-cuda bench demo deps clean tools tests fuzz
all: deps
	@$(MAKE) --no-print-directory V=opt tools
	@mkdir -p bin && for t in $(TOOLS_ALL); do ln -sf $(abspath $(BUILDROOT))/opt/bin/$$t bin/$$t; done
	@echo "built: $(TOOLS_ALL) -> bin/"

include mk/modules.mk
include mk/rules.mk

TOOLS_ALL = $(TOOLS)

deps:
	@sh mk/deps.sh

test: deps
	@$(MAKE) --no-print-directory V=opt tools tests
	@$(MAKE) --no-print-directory V=asan tools tests
	@mkdir -p bin && for t in $(TOOLS); do ln -sf $(abspath $(BUILDROOT))/opt/bin/$$t bin/$$t; done
	@sh tests/run.sh $(BUILDROOT)/opt $(BUILDROOT)/asan

bench: all
	@sh bench/run.sh

demo: all
	@sh data/demo.sh

clean:
	rm -rf build bin
