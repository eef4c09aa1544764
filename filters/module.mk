# filters/: the paper's OSCAR document rules and the UT1 URL lists (library
# `filters`, prefixes flt_ and ut1_) and the CLI bin/oscar-filter.
LIBS += filters
filters_SRC := filters/filter.c filters/run.c filters/ut1.c
FILTERS_LDLIBS := -lpcre2-8 -lzstd

TOOLS += oscar-filter
oscar-filter_SRC := filters/main.c
oscar-filter_LIBS := filters pipeline
oscar-filter_LDLIBS := $(FILTERS_LDLIBS)

TESTS += filter_test
filter_test_SRC := tests/filter_test.c
filter_test_LIBS := filters pipeline
filter_test_LDLIBS := $(FILTERS_LDLIBS)

# The scanner and the rules against cJSON on every input (see the file's header).
FUZZ += fuzz_filter
fuzz_filter_SRC := tests/fuzz_filter.c
fuzz_filter_LIBS := filters pipeline
fuzz_filter_LDLIBS := -lcjson $(FILTERS_LDLIBS)
