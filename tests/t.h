/* t.h - the smallest test harness that does the job.
 *
 * A test program is a main() that calls T_RUN(fn) for each test function.
 * Inside a test, CHECK(cond, fmt, ...) records a failure (and goes on);
 * REQUIRE(cond, ...) records it and returns from the test.  T_RUN prints one
 * line per test, "PASS name" or "FAIL name: file:line: message", which
 * tests/run.sh counts.  T_DONE() is main's return value: non-zero if any
 * test failed. */
#ifndef SYMBERT_T_H
#define SYMBERT_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdarg.h>

static int t_failed_now, t_total_failed, t_total_passed;

/* printf without format checking, so that CHECK(cond) needs no message */
static inline void t_say(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); vfprintf(stdout, fmt, ap); va_end(ap);
}
static const char *t_cur_name;
/* records a failure; evaluates `ok` once (it is already a value) */
#define T_FAILED(text, ...) do { \
    if (!t_failed_now) fprintf(stdout, "FAIL %s: ", t_cur_name); else fprintf(stdout, "     "); \
    fprintf(stdout, "%s:%d: ", __FILE__, __LINE__); t_say("" __VA_ARGS__); \
    fprintf(stdout, " [%s]\n", text); t_failed_now = 1; } while (0)
#define CHECK(cond, ...) do { if (!(cond)) T_FAILED(#cond, __VA_ARGS__); } while (0)
#define REQUIRE(cond, ...) do { if (!(cond)) { T_FAILED(#cond, __VA_ARGS__); return; } } while (0)
/* |a-b| <= tol*max(1,|b|) */
#define CHECK_NEAR(a, b, tol) do { double t_a_ = (a), t_b_ = (b); \
    CHECK(fabs(t_a_ - t_b_) <= (tol) * fmax(1.0, fabs(t_b_)), "%s = %.9g, want %.9g", #a, t_a_, t_b_); } while (0)

#define T_RUN(fn) do { t_cur_name = #fn; t_failed_now = 0; fflush(stdout); fn(); \
    if (t_failed_now) t_total_failed++; else { t_total_passed++; printf("PASS %s\n", #fn); } \
    fflush(stdout); } while (0)
#define T_DONE() (t_total_failed ? 1 : 0)

/* Where test data and built tools live (set by tests/run.sh). */
static inline const char *t_env(const char *name, const char *dflt) {
    const char *v = getenv(name); return v && *v ? v : dflt;
}
#endif
