#!/bin/sh
# tests/run.sh BUILD_DIR...  -- runs every test of the project against each
# build variant (build/opt, build/asan): the C test programs in
# BUILD_DIR/tests/ and the shell tests tests/*_test.sh with BIN=BUILD_DIR/bin.
# Counts "PASS"/"FAIL" lines; a program that dies or exits non-zero without a
# FAIL line counts as one failure.  Last line: "N passed, N failed".
# TESTS_MATCH=regex runs only the tests whose file name matches.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ROOT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}
passed=0; failed=0
LOG=$(mktemp -d)/log
run_one() {  # label cmd...
  label=$1; shift
  rm -f "$TDIR/.t_passed" "$TDIR/.t_failed"
  "$@" >"$LOG" 2>&1; rc=$?
  p=$(grep -c '^PASS ' "$LOG"); f=$(grep -c '^FAIL ' "$LOG")
  sed -n 's/^\(FAIL .*\)/  \1/p' "$LOG" | sed "s|^  FAIL |  FAIL [$label] |"
  # shell tests (tests/lib.sh) also list their checks in files: those counts win
  if [ -f "$TDIR/.t_passed" ] || [ -f "$TDIR/.t_failed" ]; then
    mp=$(cat "$TDIR/.t_passed" 2>/dev/null | wc -l); mf=$(cat "$TDIR/.t_failed" 2>/dev/null | wc -l)
    if [ "$mf" -gt "$f" ]; then
      echo "  FAIL [$label] $((mf - f)) failed check(s) whose FAIL line was lost in the output: $(tr '\n' ' ' < "$TDIR/.t_failed")"
    fi
    p=$mp; f=$mf
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "  FAIL [$label] exited $rc with no FAIL line; last lines:"; tail -n 15 "$LOG" | sed 's/^/    /'
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-44s %4d passed %3d failed\n' "$label" "$p" "$f"
}
for B in "$@"; do
  B=$(cd "$B" && pwd); v=$(basename "$B")
  export BIN="$B/bin" TBUILD="$B/tests" VARIANT="$v"
  for t in "$B"/tests/*; do
    [ -x "$t" ] || continue
    [ -n "${TESTS_MATCH:-}" ] && ! basename "$t" | grep -qE "$TESTS_MATCH" && continue
    TDIR=$(mktemp -d); export TDIR
    run_one "$v/$(basename "$t")" sh -c 'cd "$TDIR" && exec "$0"' "$t"
    rm -rf "$TDIR"
  done
  for s in "$ROOT"/tests/*_test.sh; do
    [ -f "$s" ] || continue
    [ -n "${TESTS_MATCH:-}" ] && ! basename "$s" | grep -qE "$TESTS_MATCH" && continue
    TDIR=$(mktemp -d); export TDIR
    run_one "$v/$(basename "$s")" sh -c 'cd "$TDIR" && exec bash "$0"' "$s"
    rm -rf "$TDIR"
  done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
