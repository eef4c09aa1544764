#!/bin/bash
# bench/bert_train_cpu_bench.sh - throughput of the CPU trainer (bin/bert-train).
#
#   bash bench/bert_train_cpu_bench.sh [RUNS]     (RUNS repetitions per figure, 3)
#
# Trains the tiny config (2 layers, hidden 128, vocab 30522) on generated
# shards of 128 tokens, batch 16, dropout on, for each attention variant on
# 1 and on all threads, and reports the median tokens/s over the timed
# updates (3..12) of RUNS runs, with the arithmetic rate it implies.
# Anchor, measured in the same run: numpy's float32 matrix product on
# 1024^3 through whatever BLAS numpy links (the script names it: netlib's
# reference BLAS on a plain Debian, OpenBLAS where installed); the ratio
# compares the trainer's plain-C loops with that library's sgemm.  BASE=1 adds one
# BERT-base figure (seq 128, batch 4, 2 timed updates: slow).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/build/opt/bin}
RUNS=${1:-3}
PY=/usr/bin/python3
T="$BIN/bert-train"
[ -x "$T" ] || { echo "bert_train_cpu_bench: $T not built"; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
"$PY" - <<'EOF'
import hashlib, json, os
import numpy as np
os.makedirs("sh", exist_ok=True)
a = np.random.default_rng(1).integers(1000, 30522, size=(512, 128), dtype=np.uint16)
a[:, 0] = 101; a[:, -1] = 102
np.save("sh/train-00000.npy", a)
h = hashlib.sha256(open("sh/train-00000.npy", "rb").read()).hexdigest()
json.dump({"format": "symbert-shards", "version": 1, "seq_len": 128, "vocab_size": 30522, "vocab_sha256": "0" * 64,
           "shards": [{"name": "train-00000.npy", "split": "train", "samples": 512, "sha256": h}],
           "totals": {"documents": 512, "tokens": 65536, "samples": 512, "train_samples": 512,
                      "validation_samples": 0, "dropped_tail_tokens": 0}}, open("sh/manifest.json", "w"))
EOF
NT=$(nproc)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $NT threads; $(date -u '+%Y-%m-%d %H:%M UTC')"
ANCHOR=$("$PY" -c '
import time, numpy as np
a = np.random.rand(1024, 1024).astype(np.float32); b = np.random.rand(1024, 1024).astype(np.float32)
a @ b; best = 1e9
for _ in range(5):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print("%.1f" % (2 * 1024**3 / best / 1e9))')
BLAS=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
echo "anchor: numpy float32 1024^3 matmul ($BLAS): $ANCHOR GFLOP/s"
# arithmetic per token of one update (forward + backward = 3 x forward), tiny, seq 128:
# encoder 2 layers x (4h^2 + 2hf + 2Th) MACs, head 15% of tokens x (h^2 + Vh) MACs
flops_tiny=$(awk 'BEGIN { h = 128; f = 512; T = 128; V = 30522; enc = 2 * (4*h*h + 2*h*f + 2*T*h); head = 0.15 * (h*h + V*h); print 2 * 3 * (enc + head) }')
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
run() {  # config attention threads batch steps -> median tok/s of the timed steps
  for r in $(seq "$RUNS"); do
    rm -rf out
    "$T" --config "$1" --attention "$2" --threads "$3" --data sh --out out --steps "$5" --batch "$4" \
         --warmup 1 --eval-every 0 --save-every 0 --quiet || return 1
    # tokens/s of each update after the first two
    grep -o '"tokens_per_s":[0-9.]*' out/metrics.jsonl | sed 's/.*://' | tail -n +3
  done | median
}
printf '%-6s %-10s %7s %10s %9s %8s\n' config attention threads tokens/s GFLOP/s "of anchor"
for a in original symmetric pairwise; do
  for th in 1 "$NT"; do
    tps=$(run tiny $a "$th" 16 12)
    awk -v c=tiny -v a=$a -v th="$th" -v t="$tps" -v f="$flops_tiny" -v an="$ANCHOR" \
      'BEGIN { g = t * f / 1e9; printf "%-6s %-10s %7s %10.0f %9.1f %7.1f%%\n", c, a, th, t, g, 100 * g / an }'
  done
done
if [ "${BASE:-0}" = 1 ]; then
  tps=$(RUNS=1 run base pairwise "$NT" 4 4)
  echo "base   pairwise   $NT threads: $tps tokens/s (seq 128, batch 4)"
fi
echo "command: bash bench/bert_train_cpu_bench.sh $RUNS  (bert-train --config tiny --batch 16, seq 128, --threads N)"
