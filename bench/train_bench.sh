#!/bin/sh
# bench/train_bench.sh - the CUDA trainer's throughput next to PyTorch's, in one
# session on one GPU (make bench runs it; without a GPU it says so and stops).
#
#   sh bench/train_bench.sh [STEPS]          (STEPS timed updates per figure, 20; BERT-small 5 x STEPS)
#   RUNS=3 sh bench/train_bench.sh 20        (BERT-base measured RUNS times, ours and
#                                             PyTorch's, interleaved; the table gives medians)
#
# 1. ceilings and kernels: a large bf16 GEMM through the trainer's cuBLASLt
#    wrapper, a device copy, attention forward/backward (flash vs cuBLAS+softmax)
# 2. bert-train-cuda-bench: BERT-base and BERT-small, seq 512, micro-batch 32,
#    the three attention variants (tokens/s, ms/update, MFU, memory), one
#    profiled update, and micro-batch 64 of BERT-base (does it fit?)
# 3. PyTorch: torch_bert_bench.py (compact BERT, SDPA, torch.compile, fused
#    AdamW, bf16 autocast; plus HF BertForMaskedLM) with the same micro-batch,
#    $TORCH_BENCH, else bench/torch_bert_bench.py (python3 with torch);
#    TORCH=0 skips it, TORCH_SIZES=base limits it (it compiles each model).
# 4. a table: tokens/s side by side and the ratio per variant, and the time of
#    the paper's recipe (200,000 updates of 256 x 512 tokens) at our rate.
# Raw JSON lines go to $BENCH_OUT (default build/bench/train) for the record.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
STEPS=${1:-20}
BIN=${BENCH_BIN:-$ROOT/build/opt/bin}
OUTD=${BENCH_OUT:-$ROOT/build/bench/train}
B=$BIN/bert-train-cuda-bench
if [ ! -x "$B" ]; then echo "train_bench: $B not built (no nvcc?): skipped"; exit 0; fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "train_bench: no GPU here: skipped (run it on a machine with an H100)"; exit 0
fi
mkdir -p "$OUTD"
nvidia-smi -L; date -u
echo "== 1. kernels"; "$B" --kernels | tee "$OUTD/kernels.jsonl"
RUNS=${RUNS:-1}
TB=${TORCH_BENCH:-$ROOT/bench/torch_bert_bench.py}
[ "${TORCH:-1}" = 0 ] && TB=none
if [ "$TB" != none ] && [ -f "$TB" ] && python3 -c 'import torch' 2>/dev/null; then :; else
  echo "== PyTorch: torch_bert_bench.py or python3 with torch not found: no side-by-side figures"; TB=none
fi
: > "$OUTD/ours.jsonl"; : > "$OUTD/torch.jsonl"
run=1
while [ "$run" -le "$RUNS" ]; do
  # run 1: base and small; later runs: BERT-base only (the comparison that has a target)
  sizes=base; [ "$run" = 1 ] && sizes="base small"
  echo "== 2. symbert CUDA trainer, bf16, micro-batch 32, seq 512, $STEPS timed updates (run $run of $RUNS)"
  # BERT-small's update takes ~5 ms: 5x the updates, so that a figure is not 0.1 s of timing
  for size in $sizes; do
    st=$STEPS; [ "$size" = small ] && st=$((STEPS * 5))
    "$B" --config $size --micro-batch 32 --steps "$st" | grep '"model"' | tee -a "$OUTD/ours.jsonl"
  done
  if [ "$TB" != none ]; then
    ts=base; [ "$run" = 1 ] && ts=${TORCH_SIZES:-base,small}
    echo "== 3. PyTorch ($TB 32 $STEPS $ts, run $run of $RUNS)"
    PYTHONUNBUFFERED=1 python3 "$TB" 32 "$STEPS" "$ts" 2>&1 | tee -a "$OUTD/torch.jsonl"
  fi
  run=$((run + 1))
done
"$B" --config base --attention original --micro-batch 32 --steps 5 --profile | grep '"profile"' > "$OUTD/profile.jsonl"
echo "== micro-batch 64 (BERT-base)"; "$B" --config base --micro-batch 64 --steps 5 | grep '"model"' | tee "$OUTD/mb64.jsonl"
echo "== 4. summary"
python3 - "$OUTD" <<'PY'
import json, sys, os
d = sys.argv[1]
def rows(f):
    out = []
    for l in open(os.path.join(d, f)):
        l = l.strip()
        if l.startswith("{"):
            try: out.append(json.loads(l))
            except ValueError: pass
    return out
def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
def groups(rs, key):
    out = {}
    for r in rs: out.setdefault(key(r), []).append(r)
    return out
ours = groups([r for r in rows("ours.jsonl") if "tok_s" in r], lambda r: (r["size"], r["kind"]))
torch = groups([r for r in rows("torch.jsonl") if r.get("model") == "compact+sdpa+compile"], lambda r: (r["size"], r["kind"]))
print("%-6s %-10s %4s %13s %12s %7s %6s %8s %9s %s" % ("size", "variant", "runs", "symbert tok/s", "torch tok/s", "ratio", "MFU",
      "mem GB", "recipe", "(ranges: symbert; torch)"))
for (size, kind), rs in ours.items():
    o = median([r["tok_s"] for r in rs])
    t = torch.get((size, kind), [])
    tt = median([x["tok_s"] for x in t]) if t else None
    mfu = median([r["mfu_989"] for r in rs])
    days = 200000 * 256 * 512 / o / 86400
    rng = "%d-%d" % (min(r["tok_s"] for r in rs), max(r["tok_s"] for r in rs))
    if t: rng += "; %d-%d" % (min(x["tok_s"] for x in t), max(x["tok_s"] for x in t))
    print("%-6s %-10s %4d %13.0f %12s %7s %6.3f %8.2f %7.1f d %s" % (size, kind, len(rs), o, "%.0f" % tt if tt else "-",
          "%.2fx" % (o / tt) if tt else "-", mfu, rs[0]["mem_device_GB"], days, rng))
for (m, size), rs in groups([r for r in rows("torch.jsonl") if r.get("model", "").startswith("hf")],
                            lambda r: (r["model"], r["size"])).items():
    print("PyTorch %s %s: %d tok/s (median of %d)" % (m, size, median([r["tok_s"] for r in rs]), len(rs)))
for r in rows("mb64.jsonl"): print("micro-batch 64 base %s: %.0f tok/s, %.1f GB on the device" % (r["kind"], r["tok_s"], r["mem_device_GB"]))
PY
