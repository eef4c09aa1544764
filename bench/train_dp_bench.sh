#!/bin/sh
# bench/train_dp_bench.sh - data-parallel scaling of bert-train on the GPUs of
# one node, beside PyTorch DDP of the bench/ baseline, in one call.
#
#   sh bench/train_dp_bench.sh [STEPS]      (STEPS updates a figure, 30; the first 5 are not timed)
#   GPUS="1 2" SIZE=base ATTN=pairwise sh bench/train_dp_bench.sh 30
#
# For N in $GPUS (default 1 2 4 8, up to the GPUs present): BERT-$SIZE (base), seq 512,
# global batch 256 (--batch 256, 256/N sequences a GPU in micro-batches of at most 32),
# bf16, attention $ATTN (pairwise):
#   ours    torchrun --no-python --standalone --nproc-per-node N bin/bert-train ... on
#           random shards of 512 tokens (tests/tiny_shards.py; the work of an update does
#           not depend on the text); tokens/s = median of the metrics.jsonl rows after
#           the first 5 updates (rank 0's clock, the whole update, all-reduce included)
#   PyTorch torchrun --standalone --nproc-per-node N bench/torch_bert_bench.py --ddp
#           --batch 256 32 STEPS SIZE --kinds ATTN (DistributedDataParallel, NCCL,
#           torch.compile, fused AdamW, bf16 autocast); TORCH=0 skips it
# Then a table: tokens/s, scaling efficiency (N-GPU tok/s / (N x 1-GPU tok/s)) of both,
# and ours / PyTorch.  Raw output in $BENCH_OUT (build/bench/train_dp).
# With fewer than 2 GPUs it says so and stops (FORCE=1 runs the 1-GPU row anyway,
# to try the script).  Targets (issue 18): >= 95% at 2 GPUs, >= 90% at 8.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
STEPS=${1:-30}
SIZE=${SIZE:-base}
ATTN=${ATTN:-pairwise}
BIN=${BENCH_BIN:-$ROOT/build/opt/bin}
OUTD=${BENCH_OUT:-$ROOT/build/bench/train_dp}
T=$BIN/bert-train
TR=${TORCHRUN:-$(command -v torchrun || echo /opt/torch/.venv/bin/torchrun)}
if [ ! -x "$T" ]; then echo "train_dp_bench: $T not built: stopped"; exit 0; fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "train_dp_bench: no GPU here: stopped (run it on a node with several GPUs)"; exit 0
fi
NG=$(nvidia-smi -L | grep -c '^GPU')
if [ "$NG" -lt 2 ] && [ "${FORCE:-0}" != 1 ]; then
  echo "train_dp_bench: $NG GPU here; data-parallel scaling needs 2 or more: stopped (FORCE=1 runs the 1-GPU row)"; exit 0
fi
if [ ! -x "$TR" ]; then echo "train_dp_bench: no torchrun (set TORCHRUN=): stopped"; exit 1; fi
GPUS=${GPUS:-1 2 4 8}
mkdir -p "$OUTD"
nvidia-smi -L; date -u
SH=$OUTD/shards
# 256 x (STEPS + 1) samples, made once: an update sees new ones while STEPS is not raised
[ -f "$SH/manifest.json" ] || python3 "$ROOT/tests/tiny_shards.py" "$SH" 1 512 30522 $((256 * (STEPS + 1))) 64 || exit 1
: > "$OUTD/ours.jsonl"; : > "$OUTD/torch.jsonl"
for n in $GPUS; do
  [ "$n" -gt "$NG" ] && continue
  share=$((256 / n)); mb=$share; [ "$mb" -gt 32 ] && mb=32
  rm -rf "$OUTD/run$n"
  echo "== bert-train, $n GPU(s): --batch 256, $share a GPU in micro-batches of $mb"
  "$TR" --standalone --nproc-per-node "$n" --no-python "$T" --config "$SIZE" --attention "$ATTN" --data "$SH" \
      --out "$OUTD/run$n" --batch 256 --micro-batch $mb --steps "$STEPS" --eval-every 0 --save-every 0 \
      --log-every 1 --quiet > "$OUTD/run$n.log" 2>&1 || { echo "bert-train on $n GPUs failed:"; tail -n 5 "$OUTD/run$n.log"; }
  if [ -f "$OUTD/run$n/metrics.jsonl" ]; then
    python3 - "$OUTD/run$n/metrics.jsonl" "$n" <<'PY' | tee -a "$OUTD/ours.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_s"' in l]
v = sorted(r["tokens_per_s"] for r in rows[5:]) or [0]
print(json.dumps({"model": "bert-train", "world": int(sys.argv[2]), "tok_s": round(v[len(v) // 2]), "updates": len(rows)}))
PY
  fi
  rm -rf "$OUTD/run$n"/checkpoint-*   # a BERT-base checkpoint is 1.2 GB
  if [ "${TORCH:-1}" != 0 ]; then
    echo "== PyTorch DDP, $n GPU(s)"
    PYTHONUNBUFFERED=1 "$TR" --standalone --nproc-per-node "$n" "$ROOT/bench/torch_bert_bench.py" --ddp --batch 256 \
        32 "$STEPS" "$SIZE" --kinds "$ATTN" --no-hf > "$OUTD/torch$n.log" 2>&1 \
      || { echo "PyTorch DDP on $n GPUs failed:"; tail -n 5 "$OUTD/torch$n.log"; }
    grep 'sdpa+compile ddp' "$OUTD/torch$n.log" | tee -a "$OUTD/torch.jsonl"
  fi
done
echo "== summary: BERT-$SIZE $ATTN, seq 512, global batch 256, bf16"
python3 - "$OUTD" <<'PY'
import json, os, sys
d = sys.argv[1]
def load(f):
    out = {}
    for l in open(os.path.join(d, f)):
        l = l.strip()
        if l.startswith("{"):
            try: r = json.loads(l)
            except ValueError: continue
            if "world" in r: out[r["world"]] = r["tok_s"]
    return out
ours, torch = load("ours.jsonl"), load("torch.jsonl")
def eff(t, n): return "%.1f%%" % (100.0 * t[n] / (n * t[1])) if 1 in t and n in t and t[1] else "-"
def k(t, n): return "%.1fk" % (t[n] / 1e3) if n in t else "-"
print("| GPUs | bert-train tok/s | efficiency | PyTorch DDP tok/s | efficiency | ours / PyTorch |")
print("|---|---|---|---|---|---|")
for n in sorted(set(ours) | set(torch)):
    ratio = "%.2fx" % (ours[n] / torch[n]) if n in ours and n in torch and torch[n] else "-"
    print("| %d | %s | %s | %s | %s | %s |" % (n, k(ours, n), eff(ours, n), k(torch, n), eff(torch, n), ratio))
PY
