#!/bin/sh
# bench/run.sh - runs every bench/*_bench.sh in turn (make bench).  Each
# script prints its figures and the command that produced them; see
# bench/RESULTS.md for recorded numbers.
cd "$(dirname "$0")/.." || exit 1
rc=0
for b in bench/*_bench.sh; do
  [ -f "$b" ] || continue
  echo "== $b"; bash "$b" || { echo "bench: $b failed" >&2; rc=1; }
done
exit $rc
