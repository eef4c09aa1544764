# train_cuda_test.sh - bin/bert-train-cuda's command line, without a GPU:
# help, usage errors (exit 2), parameter counts (no GPU needed), and on a
# machine without a GPU a one-line error (exit 1).  Nothing to test where
# nvcc was absent and the tool was not built.
. "$ROOT/tests/lib.sh"
T=$BIN/bert-train-cuda
[ -x "$T" ] || exit 0
$T --help >out 2>&1; eq "help exits 0" "$?" 0
grep_ok "help names --precision" "precision bf16\|fp32" out
$T --precision fp16 --data x --out y >out 2>&1; eq "bad --precision is a usage error" "$?" 2
grep_ok "bad --precision explained" "not bf16 or fp32" out
$T --attention-impl magic >out 2>&1; eq "bad --attention-impl is a usage error" "$?" 2
$T --device cpu --data x --out y >out 2>&1; eq "--device cpu refused" "$?" 2
grep_ok "--device cpu points to bert-train" "use bert-train" out
$T --count-params --config base --attention pairwise >out 2>&1; eq "--count-params exits 0" "$?" 0
eq "base pairwise parameter count (Table 2)" "$(cat out)" 103017018
$T --bogus >out 2>&1; eq "unknown option is a usage error" "$?" 2
if ! command -v nvidia-smi >/dev/null 2>&1; then
    $T --data /nonexistent --out run >out 2>&1; rc=$?
    eq "no GPU: exit 1" "$rc" 1
    eq "no GPU: one line" "$(wc -l <out | tr -d ' ')" 1
    grep_ok "no GPU: the message says why" "CUDA" out
fi
$BIN/bert-train-cuda-bench --help >out 2>&1; eq "bench --help exits 0" "$?" 0
