#!/bin/bash
# experiments/figure2/run.sh - the paper's Figure 2 as one command: a real English corpus,
# oscar-filter | wordpiece | shard-pack, BERT-small with the three attention variants and
# several seeds (bert-train, and the PyTorch reference torch_mlm.py), then a PNG and a table.
#
#   experiments/figure2/run.sh [STAGE...] [options]
#
# Stages, in order (default: all of them; each is skipped when its output is already there):
#   corpus   OSCAR-2301 part 1 (its first --oscar-docs documents) when HF_TOKEN is set and
#            oscar-fetch reaches the hub; otherwise English documentation that Debian ships
#            (linux-doc-6.1's reStructuredText, perl-doc's pods, dict-gcide's entries), fetched
#            with `apt-get download` and written as OSCAR-shaped JSONL by make_corpus.py
#   shards   oscar-filter CORPUS --frame | wordpiece | shard-pack -o WORK/shards --val-samples N
#   train    bert-train (three variants) and torch_mlm.py (original, pairwise), SEEDS each
#   report   WORK/figure2.png and WORK/figure2.md (report.py; gnuplot)
#
# Options:
#   --work DIR            work folder (build/figure2)
#   --source auto|oscar|debian   corpus source (auto: oscar when HF_TOKEN is set)
#   --oscar-docs N        documents taken from OSCAR part 1 (120000)
#   --debs "PKG..."       Debian packages of the stand-in (linux-doc-6.1 perl-doc dict-gcide: Debian 12's
#                         names; on another release name what it has, e.g. linux-doc perl-doc dict-gcide)
#   --val-samples N       validation samples drawn by shard-pack (512)
#   --seq-len N           tokens per sample (512, as the paper; smaller for quick CPU checks)
#   --config C            bert-train's --config: a preset or a BertConfig JSON (small; torch_mlm.py
#                         takes the presets only)
#   --steps N --batch N --lr X --warmup N --eval-every N --eval-samples N
#                         the recipe (1200, 128, 5e-4, 120, 100, 0 = all validation samples)
#   --seeds "S..."        seeds (1 2 3)
#   --variants "V..."     bert-train's variants (original symmetric pairwise; none: skip)
#   --torch-variants "V..."  torch_mlm.py's variants (original pairwise; "" or none: skip)
#   --device cuda|cpu     bert-train's device (cuda where nvidia-smi sees a GPU, else cpu);
#                         torch_mlm.py runs on cuda only (it is skipped on cpu unless --torch-cpu)
#   --torch-cpu           run torch_mlm.py on the CPU too (slow; for checks)
#   --jobs N              trainings at once (3 on cuda, 1 on cpu)
#   --python PATH         python3 with torch for torch_mlm.py (python3)
#   -h, --help
#
# FIG2_OSCAR_URL=URL replaces the hub's address for oscar-fetch (a mirror; the tests' local server).
# Tools: bin/ of the checkout (`make`), else build/opt/bin; FIG2_BIN=DIR overrides.  The vocab
# is found by wordpiece itself (its own lookup: $SYMBERT_VOCAB, or the copy shipped with the tools).
# Everything goes under WORK: corpus/, shards/, runs/{bt,torch}-VARIANT-sSEED/ (each with
# metrics.jsonl, and a .log beside it), figure2.png, figure2.md, timings.txt.
# Exit status: 0 done, 1 a stage failed (the message names it and its log), 2 usage.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/experiments/figure2
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'figure2: %s\n' "$*" >&2; exit 1; }
say() { printf 'figure2: %s\n' "$*" >&2; }

WORK=$ROOT/build/figure2 SOURCE=auto OSCAR_DOCS=120000 VAL=512 SEQ=512 CONFIG=small
STEPS=1200 BATCH=128 LR=5e-4 WARMUP=120 EVAL_EVERY=100 EVAL_SAMPLES=0
SEEDS="1 2 3" VARIANTS="original symmetric pairwise" TVARIANTS="original pairwise"
DEBS="linux-doc-6.1 perl-doc dict-gcide" DEVICE="" TORCH_CPU=0 JOBS="" TPY=python3 STAGES=""
need() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "figure2: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    corpus|shards|train|report) STAGES="$STAGES $1"; shift; continue ;;
    -h|--help) usage; exit 0 ;;
    --torch-cpu) TORCH_CPU=1; shift; continue ;;
    --torch-variants) [ $# -ge 2 ] || { usage >&2; exit 2; }; TVARIANTS=$2; [ "$2" = none ] && TVARIANTS=""; shift 2; continue ;;
    --variants) [ $# -ge 2 ] || { usage >&2; exit 2; }; VARIANTS=$2; [ "$2" = none ] && VARIANTS=""; shift 2; continue ;;
  esac
  need "$@"
  case "$1" in
    --work) WORK=$2 ;; --debs) DEBS=$2 ;; --source) SOURCE=$2 ;; --oscar-docs) OSCAR_DOCS=$2 ;; --val-samples) VAL=$2 ;; --seq-len) SEQ=$2 ;;
    --config) CONFIG=$2 ;; --steps) STEPS=$2 ;; --batch) BATCH=$2 ;; --lr) LR=$2 ;; --warmup) WARMUP=$2 ;;
    --eval-every) EVAL_EVERY=$2 ;; --eval-samples) EVAL_SAMPLES=$2 ;; --seeds) SEEDS=$2 ;;
    --device) DEVICE=$2 ;; --jobs) JOBS=$2 ;; --python) TPY=$2 ;;
    *) echo "figure2: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift 2
done
for n in "$OSCAR_DOCS" "$VAL" "$SEQ" "$STEPS" "$BATCH" "$WARMUP" "$EVAL_EVERY" "$EVAL_SAMPLES" ${JOBS:-1} $SEEDS; do
  case "$n" in ''|*[!0-9]*) echo "figure2: '$n' is not a whole number" >&2; exit 2 ;; esac
done
case "$SOURCE" in auto|oscar|debian) ;; *) echo "figure2: --source auto|oscar|debian, not $SOURCE" >&2; exit 2 ;; esac
case "$DEVICE" in ''|cuda|cpu) ;; *) echo "figure2: --device cuda|cpu, not $DEVICE" >&2; exit 2 ;; esac
[ -n "$STAGES" ] || STAGES="corpus shards train report"
if [ -z "$DEVICE" ]; then
  DEVICE=cpu
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && DEVICE=cuda
fi
[ -n "$JOBS" ] || { JOBS=1; [ "$DEVICE" = cuda ] && JOBS=3; }
BIN=${FIG2_BIN:-}
if [ -z "$BIN" ]; then BIN=$ROOT/bin; [ -x "$BIN/bert-train" ] || BIN=$ROOT/build/opt/bin; fi
mkdir -p "$WORK" || die "cannot create $WORK"
WORK=$(cd "$WORK" && pwd)
TIMES=$WORK/timings.txt
stamp() { printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$1" "$2" >> "$TIMES"; }
tool() { [ -x "$BIN/$1" ] || die "$BIN/$1 is missing: build the tools with \`make\` (or set FIG2_BIN)"; }

# ---------------------------------------------------------------- corpus
CORPUS=$WORK/corpus/en_meta_part_1.jsonl.zst
stage_corpus() {
  if [ -s "$CORPUS" ]; then say "corpus: $CORPUS is there (delete it to make it again)"; return 0; fi
  mkdir -p "$WORK/corpus" || die "cannot create $WORK/corpus"
  local src=$SOURCE
  if [ "$src" = auto ]; then src=debian; [ -n "${HF_TOKEN:-}" ] && src=oscar; fi
  stamp corpus start
  if [ "$src" = oscar ]; then
    tool oscar-fetch
    say "corpus: OSCAR-2301 en part 1 (oscar-fetch), its first $OSCAR_DOCS documents"
    "$BIN/oscar-fetch" en 1 -o "$WORK/corpus/oscar" --no-progress ${FIG2_OSCAR_URL:+--base-url "$FIG2_OSCAR_URL"} \
        2> "$WORK/corpus/oscar-fetch.log" \
      || die "corpus: oscar-fetch failed (see $WORK/corpus/oscar-fetch.log; --source debian uses Debian's documentation instead)"
    # head stops reading after N lines: zstd's SIGPIPE (141) is expected then, nothing else is
    zstd -dc "$WORK/corpus/oscar/en_meta_part_1.jsonl.zst" | head -n "$OSCAR_DOCS" | zstd -q -f -3 -o "$CORPUS.tmp"
    local rc=("${PIPESTATUS[@]}")
    { [ "${rc[0]}" = 0 ] || [ "${rc[0]}" = 141 ]; } && [ "${rc[1]}" = 0 ] && [ "${rc[2]}" = 0 ] \
      || { rm -f "$CORPUS.tmp"; die "corpus: cutting OSCAR part 1 failed (exit ${rc[*]})"; }
    mv "$CORPUS.tmp" "$CORPUS"
  else
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
      || die "corpus: apt-get and dpkg-deb are needed for the Debian stand-in (or set HF_TOKEN for OSCAR)"
    mkdir -p "$WORK/corpus/debs" && rm -rf "$WORK/corpus/tree" && mkdir -p "$WORK/corpus/tree" || die "cannot create $WORK/corpus"
    say "corpus: apt-get download $DEBS"
    (cd "$WORK/corpus/debs" && apt-get download $DEBS) > "$WORK/corpus/apt.log" 2>&1 \
      || die "corpus: apt-get download failed (see $WORK/corpus/apt.log)"
    local d; : > "$WORK/corpus/SOURCES"
    for d in "$WORK"/corpus/debs/*.deb; do
      dpkg-deb -x "$d" "$WORK/corpus/tree" || die "corpus: dpkg-deb -x $d failed"
      printf '%s  %s\n' "$(sha256sum < "$d" | cut -d' ' -f1)" "$(basename "$d")" >> "$WORK/corpus/SOURCES"
    done
    "$PY" "$HERE/make_corpus.py" -o "$CORPUS" --stats "$WORK/corpus/corpus.json" "$WORK/corpus/tree" \
      || die "corpus: make_corpus.py failed"
    rm -rf "$WORK/corpus/tree"
  fi
  stamp corpus end
}

# ---------------------------------------------------------------- shards
SHARDS=$WORK/shards
stage_shards() {
  tool oscar-filter; tool wordpiece; tool shard-pack
  [ -s "$CORPUS" ] || die "shards: no corpus at $CORPUS (run the corpus stage)"
  if [ -f "$SHARDS/manifest.json" ] && "$BIN/shard-pack" --verify "$SHARDS" > /dev/null 2>&1; then
    # shards of another --seq-len or --val-samples (a quick check left in WORK) are not this run's
    local made
    made=$("$PY" -c 'import json, sys; m = json.load(open(sys.argv[1])); print(m["seq_len"], m["val_samples_requested"])' \
           "$SHARDS/manifest.json") || die "shards: cannot read $SHARDS/manifest.json"
    [ "$made" = "$SEQ $VAL" ] || die "shards: $SHARDS holds seq_len and validation samples $made, not $SEQ $VAL: delete it or use another --work"
    say "shards: $SHARDS is there and verifies (delete it to pack again)"; return 0
  fi
  rm -rf "$SHARDS"
  stamp shards start
  say "shards: oscar-filter | wordpiece | shard-pack (validation: $VAL samples)"
  "$BIN/oscar-filter" "$CORPUS" --frame --stats "$WORK/filter-stats.json" 2> "$WORK/filter.log" \
    | "$BIN/wordpiece" 2> "$WORK/wordpiece.log" \
    | "$BIN/shard-pack" -o "$SHARDS" --seq-len "$SEQ" --val-samples "$VAL" --seed 0 2> "$WORK/shard-pack.log"
  local rc=("${PIPESTATUS[@]}") i logs=(filter.log wordpiece.log shard-pack.log)
  for i in 0 1 2; do
    [ "${rc[$i]}" = 0 ] || { cat "$WORK/${logs[$i]}" >&2; die "shards: stage $((i + 1)) of the pipe failed (exit ${rc[$i]}); see $WORK/${logs[$i]}"; }
  done
  sed 's/^/figure2: /' "$WORK/shard-pack.log" >&2
  stamp shards end
}

# ---------------------------------------------------------------- train
# done_run RUN: metrics.jsonl ends with the last step's row
done_run() { [ -f "$1/metrics.jsonl" ] && tail -n 1 "$1/metrics.jsonl" | grep -q "\"step\": *$STEPS[,}]"; }
train_one() {  # KIND VARIANT SEED
  local kind=$1 v=$2 s=$3 run=$WORK/runs/$1-$2-s$3 rc
  if done_run "$run"; then say "train: $kind $v seed $s is done"; return 0; fi
  stamp "train $kind-$v-s$s" start
  if [ "$kind" = bt ]; then
    local args=(--steps "$STEPS" --eval-every "$EVAL_EVERY" --eval-samples "$EVAL_SAMPLES" --save-every 0
                --keep 1 --log-every 10 --quiet --data "$SHARDS")
    if [ -f "$run/latest" ]; then
      "$BIN/bert-train" --resume "$run" "${args[@]}" >> "$run.log" 2>&1
    else
      rm -rf "$run"
      "$BIN/bert-train" --device "$DEVICE" --config "$CONFIG" --attention "$v" --batch "$BATCH" --lr "$LR" \
        --warmup "$WARMUP" --seed "$s" --out "$run" "${args[@]}" > "$run.log" 2>&1
    fi
  else
    rm -rf "$run"
    local tdev=cuda; [ "$DEVICE" = cpu ] && tdev=cpu
    "$TPY" "$HERE/torch_mlm.py" --data "$SHARDS" --out "$run" --attention "$v" --config "$CONFIG" \
      --steps "$STEPS" --batch "$BATCH" --lr "$LR" --warmup "$WARMUP" --eval-every "$EVAL_EVERY" \
      --eval-samples "$EVAL_SAMPLES" --seed "$s" --device "$tdev" > "$run.log" 2>&1
  fi
  rc=$?
  stamp "train $kind-$v-s$s" "end rc=$rc"
  [ "$rc" = 0 ] || { tail -n 5 "$run.log" >&2; say "train: $kind $v seed $s failed (exit $rc); see $run.log"; return 1; }
  say "train: $kind $v seed $s done"
}
stage_train() {
  tool bert-train
  [ -f "$SHARDS/manifest.json" ] || die "train: no shards at $SHARDS (run the shards stage)"
  mkdir -p "$WORK/runs" || die "cannot create $WORK/runs"
  local jobs=() v s failed=0 tv="$TVARIANTS"
  if [ -n "$tv" ] && [ "$DEVICE" = cpu ] && [ "$TORCH_CPU" = 0 ]; then
    say "train: no GPU: torch_mlm.py skipped (--torch-cpu runs it on the CPU)"; tv=""
  fi
  if [ -n "$tv" ] && ! "$TPY" -c 'import torch, numpy' 2>/dev/null; then
    die "train: $TPY cannot import torch and numpy, which torch_mlm.py needs (--python PATH, or --torch-variants none)"
  fi
  # interleave the two trainers so that concurrent jobs mix them
  for s in $SEEDS; do
    for v in $VARIANTS; do jobs+=("bt $v $s"); done
    for v in $tv; do jobs+=("torch $v $s"); done
  done
  say "train: ${#jobs[@]} runs, $JOBS at a time, on $DEVICE ($CONFIG, $STEPS updates of $BATCH x seq, lr $LR, warm-up $WARMUP)"
  stamp train start
  local j running=0
  for j in "${jobs[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then wait -n || failed=1; running=$((running - 1)); fi
    train_one $j &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
  stamp train end
  [ "$failed" = 0 ] || die "train: some runs failed (their logs are in $WORK/runs/)"
}

# ---------------------------------------------------------------- report
stage_report() {
  command -v gnuplot >/dev/null || die "report: gnuplot is needed (Debian: apt-get install gnuplot-nox)"
  "$PY" "$HERE/report.py" --runs "$WORK/runs" --paper "$HERE/paper" --png "$WORK/figure2.png" \
    --md "$WORK/figure2.md" --steps "$STEPS" --warmup "$WARMUP" --timings "$TIMES" || die "report: report.py failed"
  say "report: $WORK/figure2.png and $WORK/figure2.md"
}

# SIGINT/SIGTERM: the trainings first (bert-train saves its last whole update), then their shells
stop_all() {
  local p
  for p in $(jobs -p); do pkill -TERM -P "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
  wait
  say "interrupted (a new call resumes: finished runs are kept, bert-train runs continue from their checkpoint)"
  exit 130
}
trap stop_all INT TERM
for st in $STAGES; do "stage_$st"; done
