# Generic rules: turn the LIBS/TOOLS/TESTS/FUZZ lists from module.mk files into
# build/$(V)/lib/lib<name>.a, build/$(V)/bin/<tool>, build/$(V)/tests/<test>.
#
#   LIBS  += foo          foo_SRC := foo/a.c foo/b.c
#   TOOLS += bar          bar_SRC := foo/main.c   bar_LIBS := foo pipeline   bar_LDLIBS := -lzstd
#   TESTS += foo_test     foo_test_SRC := tests/foo_test.c  foo_test_LIBS := foo  foo_test_LDLIBS := ...
#   FUZZ  += fuzz_foo     fuzz_foo_SRC := tests/fuzz_foo.c  fuzz_foo_LIBS := foo ...
#
# Fuzz targets define LLVMFuzzerTestOneInput; here they are linked with
# tests/fuzz_driver.c, which replays a corpus folder and a seeded random
# stream, so that every build (gcc, sanitizers, CI) runs them.  `make fuzz`
# builds real libFuzzer binaries with clang into build/fuzz/.

OBJ = $(BUILD)/obj
src2obj = $(patsubst %.c,$(OBJ)/%.o,$(1))
libfile = $(BUILD)/lib/lib$(1).a

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

define LIB_template
$(call libfile,$(1)): $(call src2obj,$($(1)_SRC))
	@mkdir -p $$(dir $$@)
	$$(AR) rcs $$@ $$^
endef

define EXE_template
$(2)/$(1): $(call src2obj,$($(1)_SRC)) $(foreach l,$($(1)_LIBS),$(call libfile,$(l))) $(3)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $(call src2obj,$($(1)_SRC)) $(3) $(foreach l,$($(1)_LIBS),$(call libfile,$(l))) $($(1)_LDLIBS) -lm
endef

FUZZ_DRIVER := $(call src2obj,tests/fuzz_driver.c)
$(foreach l,$(LIBS),$(eval $(call LIB_template,$(l))))
$(foreach t,$(TOOLS),$(eval $(call EXE_template,$(t),$(BUILD)/bin,)))
$(foreach t,$(TESTS),$(eval $(call EXE_template,$(t),$(BUILD)/tests,)))
$(foreach t,$(FUZZ),$(eval $(call EXE_template,$(t),$(BUILD)/tests,$(FUZZ_DRIVER))))

# The vocab that ships with the tools, where they look for it last: one
# folder up from their own, share/symbert/vocab.txt (tokenizer/vocab.h).
SHIPPED_VOCAB = $(BUILD)/share/symbert/vocab.txt
$(SHIPPED_VOCAB): data/vocab/bert-base-uncased-vocab.txt
	@mkdir -p $(dir $@)
	cp $< $@.tmp && mv $@.tmp $@

tools: $(foreach t,$(TOOLS),$(BUILD)/bin/$(t)) $(EXTRA_TOOLS) $(SHIPPED_VOCAB)
tests: $(foreach t,$(TESTS) $(FUZZ),$(BUILD)/tests/$(t)) $(SHIPPED_VOCAB)

# Real libFuzzer builds (clang): build/fuzz/<target>; run e.g.
#   build/fuzz/fuzz_wordpiece -max_total_time=60 tests/corpus/wordpiece
FUZZCC ?= clang
define FUZZ_template
build/fuzz/$(1): $($(1)_SRC) $(foreach l,$($(1)_LIBS),$($(l)_SRC))
	@mkdir -p build/fuzz
	$$(FUZZCC) -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined -pthread -o $$@ $$^ $($(1)_LDLIBS) -lm
endef
$(foreach t,$(FUZZ),$(eval $(call FUZZ_template,$(t))))
fuzz: $(foreach t,$(FUZZ),build/fuzz/$(t))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
