#!/bin/sh
# data/demo.sh - `make demo`: the whole pipe on the bundled sample, offline.
#
#   oscar-filter data/sample/*.zst --ut1 data/ut1 --frame | wordpiece | shard-pack -o build/demo/shards
#   shard-pack --verify, shard-pack --show, the filter's stats,
#   and, when bin/bert-train exists, 20 steps of a tiny model on the CPU.
#
# Needs the tools in bin/ (`make`).  The tools find the bert-base-uncased
# vocab themselves: $SYMBERT_VOCAB, the place `oscar-fetch vocab` fills, else
# the copy that ships with them (data/vocab/, see data/vocab/README.md).
# Work folder: build/demo (DEMO_DIR=... to change); it is replaced each run.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DEMO_BIN:-$ROOT/bin}
OUT=${DEMO_DIR:-$ROOT/build/demo}
say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for t in oscar-filter wordpiece shard-pack; do
  [ -x "$BIN/$t" ] || die "$BIN/$t is missing: build the tools with \`make\` first (bin/$t comes from the issue that owns it)"
done

SAMPLE="$ROOT/data/sample/en_meta_part_1.jsonl.zst"
rm -rf "$OUT" && mkdir -p "$OUT" || die "cannot create $OUT"
cd "$OUT" || exit 1
say "demo: working in $OUT"

# 1. the pipe, as on the real corpus (each stage's stderr kept in a log)
"$BIN/oscar-filter" "$SAMPLE" --ut1 "$ROOT/data/ut1" --frame --stats filter-stats.json 2>filter.log \
  | "$BIN/wordpiece" 2>wordpiece.log \
  | "$BIN/shard-pack" -o shards --seq-len 512 --val-samples 8 --seed 1 2>shard-pack.log
rc=("${PIPESTATUS[@]}")
for i in 0 1 2; do
  if [ "${rc[$i]}" != 0 ]; then
    log=$(echo filter.log wordpiece.log shard-pack.log | cut -d' ' -f$((i + 1)))
    cat "$log" >&2; die "stage $((i + 1)) of the pipe failed (exit ${rc[$i]}); see $OUT/$log"
  fi
done
say "demo: 1. oscar-filter | wordpiece | shard-pack on data/sample ($(du -k "$SAMPLE" | cut -f1) KB of zstd JSONL)"

# 2. what the filter dropped, from its --stats file
/usr/bin/python3 - filter-stats.json <<'EOF' || die "cannot read filter-stats.json"
import json, sys
s = json.load(open(sys.argv[1]))
by = ", ".join("%s %d" % kv for kv in s.get("dropped_by", {}).items())
print("demo: 2. filter: %d documents read, %d kept, %d dropped (%s)" % (s["documents"], s["kept"], s["dropped"], by))
EOF

# 3. the shards, checked against their manifest
sed 's/^shard-pack: /demo: 3. shard-pack: /' shard-pack.log | grep -v 'wrote '
"$BIN/shard-pack" --verify shards > verify.log 2>&1 || { cat verify.log >&2; die "shard-pack --verify failed"; }
say "demo:    verify: $(sed 's/^[^:]*: //' verify.log)"
/usr/bin/python3 -c "import numpy; a = numpy.load('shards/train-00000.npy', mmap_mode='r'); print('demo:    numpy.load(shards/train-00000.npy):', a.shape, a.dtype)" 2>/dev/null || true

# 4. one sample decoded back to text
"$BIN/shard-pack" --show shards 0 > sample0.txt 2>&1 || { cat sample0.txt >&2; die "shard-pack --show failed"; }
say "demo: 4. $(head -n 1 sample0.txt)"
tail -n +2 sample0.txt | tr '\n' ' ' | cut -c 1-400 | sed 's/ [^ ]*$//' | fold -s -w 96 | sed 's/^/demo:      /'
say "demo:      ... (whole sample: $OUT/sample0.txt)"

# 5. a short CPU training run, once bert-train exists
if [ -x "$BIN/bert-train" ]; then
  say "demo: 5. bert-train: tiny model, pairwise attention, 20 steps of 8 samples on the CPU (a minute or so)"
  "$BIN/bert-train" --device cpu --config tiny --attention pairwise --data shards --steps 20 --batch 8 \
      --lr 1e-3 --warmup 2 --eval-every 10 --out run --quiet > train.log 2>&1 \
    || { tail -n 5 train.log >&2; die "bert-train failed; see $OUT/train.log"; }
  /usr/bin/python3 - run/metrics.jsonl <<'EOF' || die "cannot read run/metrics.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in rows if r.get("loss") is not None]
first, last = steps[0], steps[-1]
ev = [r for r in rows if r.get("eval_loss") is not None]
msg = "demo:    loss %.3f at step %d -> %.3f at step %d" % (first["loss"], first["step"], last["loss"], last["step"])
if ev:
    msg += "; validation loss %.3f at step %d" % (ev[-1]["eval_loss"], ev[-1]["step"])
print(msg + "; checkpoint in run/")
EOF
else
  say "demo: 5. bin/bert-train is not built: training skipped"
fi
say "demo: done; everything is in $OUT"
