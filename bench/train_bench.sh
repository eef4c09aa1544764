#!/bin/sh
# bench/train_bench.sh - the CUDA trainer's throughput next to PyTorch's, in one
# session on one GPU (make bench runs it; without a GPU it says so and stops).
#
#   sh bench/train_bench.sh [STEPS]          (STEPS timed updates per figure, 20)
#
# 1. ceilings and kernels: a large bf16 GEMM through the trainer's cuBLASLt
#    wrapper, a device copy, attention forward/backward (flash vs cuBLAS+softmax)
# 2. bert-train-cuda-bench: BERT-base and BERT-small, seq 512, micro-batch 32,
#    the three attention variants (tokens/s, ms/update, MFU, memory), one
#    profiled update, and micro-batch 64 of BERT-base (does it fit?)
# 3. PyTorch: torch_bert_bench.py (compact BERT, SDPA, torch.compile, fused
#    AdamW, bf16 autocast; plus HF BertForMaskedLM) with the same micro-batch,
#    found as $TORCH_BENCH, ../shared/bench/ or .dev/ (python3 with torch);
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
echo "== 2. symbert CUDA trainer, bf16, micro-batch 32, seq 512, $STEPS timed updates"
: > "$OUTD/ours.jsonl"
for size in base small; do "$B" --config $size --micro-batch 32 --steps "$STEPS" | grep '"model"' | tee -a "$OUTD/ours.jsonl"; done
"$B" --config base --attention original --micro-batch 32 --steps 5 --profile | grep '"profile"' > "$OUTD/profile.jsonl"
echo "== micro-batch 64 (BERT-base)"; "$B" --config base --micro-batch 64 --steps 5 | grep '"model"' | tee "$OUTD/mb64.jsonl"
TB=${TORCH_BENCH:-}
[ "${TORCH:-1}" = 0 ] && TB=none
for c in "$ROOT/../shared/bench/torch_bert_bench.py" "$ROOT/.dev/torch_bert_bench.py"; do [ -z "$TB" ] && [ -f "$c" ] && TB=$c; done
: > "$OUTD/torch.jsonl"
if [ -n "$TB" ] && [ "$TB" != none ] && python3 -c 'import torch' 2>/dev/null; then
  echo "== 3. PyTorch ($TB 32 $STEPS ${TORCH_SIZES:-base,small})"
  PYTHONUNBUFFERED=1 python3 "$TB" 32 "$STEPS" "${TORCH_SIZES:-base,small}" 2>&1 | tee "$OUTD/torch.jsonl"
else
  echo "== 3. PyTorch: torch_bert_bench.py or python3 with torch not found: no side-by-side figures"
fi
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
ours = [r for r in rows("ours.jsonl") if "tok_s" in r]
torch = [r for r in rows("torch.jsonl") if r.get("model") == "compact+sdpa+compile"]
print("%-6s %-10s %12s %12s %7s %6s %8s %9s" % ("size", "variant", "symbert tok/s", "torch tok/s", "ratio", "MFU", "mem GB", "recipe"))
for r in ours:
    t = [x for x in torch if x["size"] == r["size"] and x["kind"] == r["kind"]]
    tt = t[0]["tok_s"] if t else None
    days = 200000 * 256 * 512 / r["tok_s"] / 86400
    print("%-6s %-10s %12.0f %12s %7s %6.3f %8.2f %7.1f d" % (r["size"], r["kind"], r["tok_s"], "%.0f" % tt if tt else "-",
          "%.2fx" % (r["tok_s"] / tt) if tt else "-", r["mfu_989"], r["mem_device_GB"], days))
for r in rows("torch.jsonl"):
    if r.get("model", "").startswith("hf"): print("PyTorch %s %s: %d tok/s" % (r["model"], r["size"], r["tok_s"]))
for r in rows("mb64.jsonl"): print("micro-batch 64 base %s: %.0f tok/s, %.1f GB on the device" % (r["kind"], r["tok_s"], r["mem_device_GB"]))
PY
