# tests/lib.sh - helpers for shell tests (sourced).  Each check prints
# "PASS name" or "FAIL name: why" and also appends its name to
# $TDIR/.t_passed or $TDIR/.t_failed; tests/run.sh counts those files (a line
# that a background process's output joined would not be seen in the log).
# Environment from run.sh: BIN (built tools), TDIR (scratch dir), ROOT (repo).
set -u
: "${BIN:?BIN unset}" "${TDIR:?TDIR unset}" "${ROOT:?ROOT unset}"
pass() { echo "PASS $1"; echo "$1" >> "$TDIR/.t_passed"; }
fail() { n=$1; shift; echo "FAIL $n: $*"; echo "$n" >> "$TDIR/.t_failed"; }
# ok NAME CMD...   : passes when CMD exits 0
ok() { n=$1; shift; if "$@" >"$TDIR/.out" 2>&1; then pass "$n"; else fail "$n" "exit $? from: $* :: $(head -c 300 "$TDIR/.out")"; fi; }
# nok NAME CMD...  : passes when CMD exits non-zero without crashing (no signal, no sanitizer report)
nok() { n=$1; shift; "$@" >"$TDIR/.out" 2>&1; rc=$?
  if [ $rc -eq 0 ]; then fail "$n" "expected failure, got exit 0: $*"
  elif [ $rc -ge 128 ]; then fail "$n" "crashed (exit $rc): $*"
  elif grep -q 'Sanitizer' "$TDIR/.out"; then fail "$n" "sanitizer report: $(grep -m1 Sanitizer "$TDIR/.out")"
  else pass "$n"; fi; }
# eq NAME GOT WANT
eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi; }
# grep_ok NAME PATTERN FILE
grep_ok() { if grep -qE -- "$2" "$3"; then pass "$1"; else fail "$1" "'$2' not in $3: $(head -c 300 "$3")"; fi; }
# None of the user's vocab settings reach the tools under test (a test that
# needs one sets it): no $SYMBERT_VOCAB or $XDG_DATA_HOME, a HOME of their own.
unset SYMBERT_VOCAB XDG_DATA_HOME
export HOME="$TDIR/home"; mkdir -p "$HOME"
# the vocab the tests use: the repository's copy (SYMBERT_TEST_VOCAB=... to try another)
VOCAB=${SYMBERT_TEST_VOCAB:-$ROOT/data/vocab/bert-base-uncased-vocab.txt}
PY=/usr/bin/python3
