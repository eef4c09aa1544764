# train_cuda_test.sh - bert-train's CUDA flags, without a GPU: help, usage
# errors (exit 2), and on a machine without a GPU (or a build without nvcc) a
# one-line error (exit 1) for --device cuda, and the CPU chosen by default
# with a line that says so.
. "$ROOT/tests/lib.sh"
T=$BIN/bert-train
$T --help >out 2>&1; eq "help exits 0" "$?" 0
grep_ok "help names --precision" "precision bf16\|fp32" out
$T --precision fp16 --data x --out y >out 2>&1; eq "bad --precision is a usage error" "$?" 2
grep_ok "bad --precision explained" "not bf16 or fp32" out
$T --attention-impl magic >out 2>&1; eq "bad --attention-impl is a usage error" "$?" 2
$T --device cpu --precision bf16 --data x --out y >out 2>&1; eq "--precision with --device cpu refused" "$?" 2
grep_ok "--precision with --device cpu explained" "is for --device cuda" out
$T --count-params --config base --attention pairwise >out 2>&1; eq "--count-params exits 0" "$?" 0
eq "base pairwise parameter count (Table 2)" "$(cat out)" 103017018
$T --bogus >out 2>&1; eq "unknown option is a usage error" "$?" 2
if ! command -v nvidia-smi >/dev/null 2>&1; then
    $T --device cuda --data /nonexistent --out run >out 2>&1; rc=$?
    eq "no GPU: exit 1" "$rc" 1
    eq "no GPU: one line" "$(wc -l <out | tr -d ' ')" 1
    grep_ok "no GPU: the message says why" "CUDA" out
    $T --data /nonexistent --out run >out 2>&1
    grep_ok "no GPU: default device is the CPU, and it says so" "training on the CPU" out
    $T --precision fp32 --data /nonexistent --out run >out 2>&1; rc=$?
    eq "no GPU: a CUDA-only flag without --device is an error" "$rc" 1
fi
if [ -x "$BIN/bert-train-cuda-bench" ]; then
    $BIN/bert-train-cuda-bench --help >out 2>&1; eq "bench --help exits 0" "$?" 0
    grep_ok "bench --help names --dense-last" "dense-last" out
    $BIN/bert-train-cuda-bench --attn-impl magic >out 2>&1; eq "bench: bad --attn-impl is a usage error" "$?" 2
    grep_ok "bench: bad --attn-impl explained" "not auto, flash, mma, wgmma or ref" out
fi
