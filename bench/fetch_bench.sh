#!/bin/bash
# bench/fetch_bench.sh - oscar-fetch download speed on loopback, against
# tests/fetch_server.py (127.0.0.1, ephemeral port; sendfile for whole bodies).
#
#  1. One large file (FETCH_BENCH_MB, default 1024 MiB, sparse): oscar-fetch
#     (download + sha256 + fdatasync + rename) against the anchors measured in
#     the same run, taking turns in a rotated order, each timed run after an
#     untimed write of a scratch file of the same size: `curl -s -o FILE URL`,
#     and `curl` followed by `sha256sum FILE` (what a user would do to verify
#     by hand).  Written to the disk, then again to /dev/shm (a tmpfs, where
#     the fdatasync is free: the download paths alone; FETCH_BENCH_NOSHM=1
#     skips it).
#  2. Many files (16 x 4 MiB) from a server that limits each connection to
#     8 MiB/s and answers after 50 ms (as a CDN does per connection):
#     -P 4 against -P 1.
# Each figure is the median of FETCH_BENCH_RUNS runs (default 5 and 3).
# Environment: BIN (default build/opt/bin), FETCH_BENCH_MB, FETCH_BENCH_RUNS,
# FETCH_BENCH_PRUNS, FETCH_BENCH_NOSHM.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/opt/bin}
F="$BIN/oscar-fetch"
PY=/usr/bin/python3
MB=${FETCH_BENCH_MB:-1024}
RUNS=${FETCH_BENCH_RUNS:-5}
[ -x "$F" ] || { echo "fetch_bench: $F not built (make)" >&2; exit 1; }
command -v curl >/dev/null || { echo "fetch_bench: the curl command is needed as the anchor" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/fetch_bench.XXXXXX")
PIDS=""
SHM=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$W"; [ -n "$SHM" ] && rm -rf "$SHM"; }
trap cleanup EXIT INT TERM
cd "$W" || exit 1

start_server() {  # NAME ROOT [options]: sets PORT
  rm -f "$1.port"
  $PY "$ROOT/tests/fetch_server.py" --root "$2" --port-file "$1.port" --log "$1.log" "${@:3}" 2>"$1.err" &
  PIDS="$PIDS $!"
  for _ in $(seq 100); do [ -s "$1.port" ] && break; sleep 0.05; done
  PORT=$(cat "$1.port")
}
now() { echo "$EPOCHREALTIME"; }
TIMEFORMAT="%R %U %S"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rate() { awk -v b="$1" -v t="$2" 'BEGIN {printf "%.1f", b / t / 1048576}'; }

echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"

# ---- 1. one large file ---------------------------------------------------------
mkdir -p big/en_meta
truncate -s "${MB}M" big/en_meta/en_meta_part_1.jsonl.zst
(cd big/en_meta && sha256sum en_meta_part_1.jsonl.zst > checksum.sha256)
BYTES=$((MB * 1048576))
start_server big big
URL="http://127.0.0.1:$PORT/en_meta/en_meta_part_1.jsonl.zst"
# Output on the disk (the folder of this script's scratch dir) and, where
# /dev/shm is a tmpfs, there too: fsync costs nothing on a tmpfs, so that
# pair compares the download paths alone.  The disk pair is the real one.
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ -z "${FETCH_BENCH_NOSHM:-}" ] && SHM=$(mktemp -d /dev/shm/fetch_bench.XXXXXX)
cleanup_shm() { [ -n "$SHM" ] && rm -rf "$SHM"; }
WHO="curl ours curlsum"
for where in disk ${SHM:+shm}; do
  case $where in disk) O=$W/out ;; shm) O=$SHM/out ;; esac
  for who in $WHO; do : > "t_${where}_$who"; : > "c_${where}_$who"; done
  for r in $(seq "$RUNS"); do
    # The clients take turns in an order rotated each round, and each timed
    # run starts from the same state: on this VM the first GiB written to the
    # page cache after a `curl -o` run costs 1-1.4 s more than the next one
    # (dd: 1.0-1.6 s, then 0.16 s), whoever writes it.  So a scratch file of
    # the same size is written, synced and deleted first (not timed).
    set -- $WHO; k=$(( (r - 1) % $# )); order="${*:k+1} ${*:1:k}"
    for who in $order; do
      rm -rf "$O"; mkdir -p "$O"
      dd if=/dev/zero of="$O/settle" bs=1M count="$MB" conv=fdatasync status=none; rm -f "$O/settle"
      sync
      # bash's `time`: wall, user and system seconds of the client
      { time case $who in
        curl) curl -s -o "$O/x" "$URL" ;;
        curlsum) curl -s -o "$O/x" "$URL" && sha256sum "$O/x" >/dev/null ;;
        ours) "$F" en 1 -o "$O" -q --base-url "http://127.0.0.1:$PORT" ;;
      esac ; } 2> tm || { echo "fetch_bench: $who failed" >&2; cleanup_shm; exit 1; }
      [ -f "$O/en_meta_part_1.jsonl.zst" ] || [ -f "$O/x" ] || { echo "fetch_bench: no output" >&2; cleanup_shm; exit 1; }
      read -r real user sys < tm
      echo "$real" >> "t_${where}_$who"
      echo "$user $sys" | awk '{print $1 + $2}' >> "c_${where}_$who"
    done
  done
  rm -rf "$O"
  tc=$(median < "t_${where}_curl"); tcs=$(median < "t_${where}_curlsum"); to=$(median < "t_${where}_ours")
  cpu() { awk -v c="$(median < "c_${where}_$1")" -v m="$MB" 'BEGIN {printf "%.2f", c * 1024 / m}'; }
  echo
  case $where in
    disk) echo "one file, ${MB} MiB, loopback, written to the disk ($(df -P "$W" | awk 'NR==2 {print $1}')), median of $RUNS:" ;;
    shm) echo "the same, written to /dev/shm (tmpfs: fdatasync is free; not the disk figure), median of $RUNS:" ;;
  esac
  echo "  curl -s -o FILE URL                 $(rate $BYTES "$tc") MiB/s  ($tc s; client CPU $(cpu curl) s/GiB)"
  echo "  curl ... && sha256sum FILE          $(rate $BYTES "$tcs") MiB/s  ($tcs s; client CPU $(cpu curlsum) s/GiB)"
  echo "  oscar-fetch en 1 (sha256 + fsync)   $(rate $BYTES "$to") MiB/s  ($to s; client CPU $(cpu ours) s/GiB)"
  echo "  ratio oscar-fetch / curl            $(awk -v a="$tc" -v b="$to" 'BEGIN {printf "%.2f", a / b}')"
  echo "  ratio oscar-fetch / curl+sha256sum  $(awk -v a="$tcs" -v b="$to" 'BEGIN {printf "%.2f", a / b}')"
  echo "  all runs (s): curl $(tr '\n' ' ' < "t_${where}_curl")| oscar-fetch $(tr '\n' ' ' < "t_${where}_ours")"
done
cleanup_shm
rm -rf big
echo "load after part 1: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 2. many files, per-connection rate limit: -P 4 against -P 1 ----------------------
mkdir -p many/en_meta
for i in $(seq 16); do head -c $((4 * 1048576)) /dev/urandom > "many/en_meta/en_meta_part_$i.jsonl.zst"; done
(cd many/en_meta && sha256sum en_meta_part_*.jsonl.zst > checksum.sha256)
start_server many many --rate $((8 * 1048576)) --latency-ms 50
PR=${FETCH_BENCH_PRUNS:-3}
: > t_p1; : > t_p4
for r in $(seq "$PR"); do
  for p in 1 4; do
    rm -rf out
    t0=$(now)
    "$F" en 1-16 -o out -q -P $p --base-url "http://127.0.0.1:$PORT" || { echo "fetch_bench: -P $p failed" >&2; exit 1; }
    t1=$(now)
    echo "$t0 $t1" | awk '{print $2 - $1}' >> "t_p$p"
  done
done
t1=$(median < t_p1); t4=$(median < t_p4)
echo
echo "16 files x 4 MiB, server limited to 8 MiB/s per connection + 50 ms latency, median of $PR:"
echo "  oscar-fetch -P 1   $t1 s  ($(rate $((64 * 1048576)) "$t1") MiB/s)"
echo "  oscar-fetch -P 4   $t4 s  ($(rate $((64 * 1048576)) "$t4") MiB/s)"
echo "  speed-up -P 4 / -P 1   $(awk -v a="$t1" -v b="$t4" 'BEGIN {printf "%.2f", a / b}')"
