#!/bin/bash
# wordpiece_bench.sh - speed of bin/wordpiece on English web-like text, and
# the Hugging Face anchor when `tokenizers` can be imported.
#
#   bash bench/wordpiece_bench.sh            (make bench runs it)
#
# Environment (all optional):
#   WP=bin/wordpiece   the binary          VOCAB=...   the vocab (else $SYMBERT_VOCAB, else data/vocab/)
#   MB=100             corpus size         JOBS="1 2"  thread counts; the first is the baseline
#   RUNS=5             runs per figure (median)        DIR=build/bench  where the corpus is kept
#   HF=auto|0|1        run bench/wordpiece_hf.py with RAYON_NUM_THREADS=1 and =nproc
#   PY=python3         the Python that generates the corpus (and has tokenizers, for HF)
#
# The corpus is tests/gen_parity_corpus.py --english-mb MB (deterministic for
# a given vocab), written once to DIR.  Every figure is the median of RUNS
# runs of the whole tool (read, JSON, tokenise, write --format bin to
# /dev/null).  MB/s is given per MB of JSONL input and per MB of document
# text ("content"), the unit of the Hugging Face anchor, whose time excludes
# reading and JSON parsing.
set -u
cd "$(dirname "$0")/.." || exit 1
WP=${WP:-bin/wordpiece}
MB=${MB:-100}
JOBS=${JOBS:-"1 2"}
RUNS=${RUNS:-5}
DIR=${DIR:-build/bench}
HF=${HF:-auto}
PY=${PY:-python3}
VOCAB=${VOCAB:-${SYMBERT_VOCAB:-}}
[ -n "$VOCAB" ] || VOCAB=data/vocab/bert-base-uncased-vocab.txt   # the repository's copy
[ -x "$WP" ] || { echo "wordpiece_bench: $WP not built (run make)" >&2; exit 1; }
[ -f "$VOCAB" ] || { echo "wordpiece_bench: vocab $VOCAB not found: set VOCAB (or SYMBERT_VOCAB) to vocab.txt" >&2; exit 1; }
VARG="--vocab $VOCAB"
GENPY=$PY
"$GENPY" -c 'import json, random' 2>/dev/null || GENPY=/usr/bin/python3

mkdir -p "$DIR"
CORPUS=$DIR/wordpiece_en_${MB}mb.jsonl
if [ ! -s "$CORPUS" ]; then
  echo "generating $CORPUS ..."
  "$GENPY" tests/gen_parity_corpus.py --vocab "$VOCAB" --english-mb "$MB" -o "$CORPUS.tmp" && mv "$CORPUS.tmp" "$CORPUS" || exit 1
fi
BYTES=$(stat -c %s "$CORPUS")
CONTENT=$("$GENPY" -c '
import json, sys
print(sum(len(json.loads(l)["content"].encode()) for l in open(sys.argv[1], "rb") if l.strip()))' "$CORPUS")
SUM=$(sha256sum "$CORPUS" | cut -c1-16)
echo "machine: $(uname -m), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus: $CORPUS  $BYTES bytes JSONL, $CONTENT bytes of content, sha256 $SUM..."

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# secs CMD...: "wall cpu" seconds of one run (cpu = user + sys, all threads)
secs() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" >/dev/null 2>&1 || echo FAILED; } 2>&1 ) || return 1
  case "$t" in *FAILED*) return 1;; esac
  echo "$t" | awk '{ printf "%s %.3f\n", $1, $2 + $3 }'
}

declare -A MED
base=""
for j in $JOBS; do
  times=""; cpus=""
  for r in $(seq "$RUNS"); do
    t=$(secs "$WP" $VARG -j "$j" "$CORPUS") || { echo "wordpiece_bench: $WP -j $j failed" >&2; exit 1; }
    times="$times ${t% *}"; cpus="$cpus ${t#* }"
  done
  m=$(echo $times | tr ' ' '\n' | median)
  c=$(echo $cpus | tr ' ' '\n' | median)
  MED[$j]=$m
  [ -z "$base" ] && base=$j
  b=$(echo $times | tr ' ' '\n' | sort -g | head -n 1)
  printf 'wordpiece -j %-3s median %.3f s  %7.1f MB/s input  %7.1f MB/s content  (best %.1f MB/s input; cpu %.3f s; wall runs:%s)' \
    "$j" "$m" "$(calc "$BYTES/$m/1000000")" "$(calc "$CONTENT/$m/1000000")" "$(calc "$BYTES/$b/1000000")" "$c" "$times"
  [ "$j" != "$base" ] && printf '  x%.2f vs -j %s' "$(calc "${MED[$base]}/$m")" "$base"
  echo
done
# -j N output is byte-identical to -j 1
ref=$("$WP" $VARG -j 1 "$CORPUS" | sha256sum | cut -c1-16)
for j in $JOBS; do
  s=$("$WP" $VARG -j "$j" "$CORPUS" | sha256sum | cut -c1-16)
  [ "$s" = "$ref" ] && echo "output -j $j identical to -j 1 ($s)" || echo "OUTPUT -j $j DIFFERS from -j 1 ($s vs $ref)"
done
echo "command: $WP --vocab VOCAB -j N $CORPUS > /dev/null"

if [ "$HF" = auto ]; then "$PY" -c 'import tokenizers' 2>/dev/null && HF=1 || HF=0; fi
if [ "$HF" = 1 ]; then
  n=$(nproc)
  hf1=$(RAYON_NUM_THREADS=1 "$PY" bench/wordpiece_hf.py "$VOCAB" "$CORPUS" 3) || exit 1
  echo "$hf1"
  hfn=$(RAYON_NUM_THREADS=$n "$PY" bench/wordpiece_hf.py "$VOCAB" "$CORPUS" 3) || exit 1
  echo "$hfn"
  get() { echo "$1" | tr ' ' '\n' | awk -v k="$2" -F= '$1==k {print $2}'; }
  c1=$(calc "$CONTENT/${MED[$base]}/1000000")
  printf 'ratio: wordpiece -j %s / hf 1 thread = %.1fx (content MB/s %.1f vs %.2f)\n' "$base" \
    "$(calc "$c1/$(get "$hf1" MB/s)")" "$c1" "$(get "$hf1" MB/s)"
  for j in $JOBS; do
    [ "$j" = "$base" ] && continue
    cj=$(calc "$CONTENT/${MED[$j]}/1000000")
    printf 'ratio: wordpiece -j %s / hf %s threads = %.1fx (content MB/s %.1f vs %.2f)\n' "$j" "$n" \
      "$(calc "$cj/$(get "$hfn" MB/s)")" "$cj" "$(get "$hfn" MB/s)"
  done
else
  echo "hf anchor: not run here (no Python tokenizers); see bench/results/wordpiece.md for the device figures"
fi
