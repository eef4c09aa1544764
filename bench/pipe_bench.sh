#!/bin/bash
# bench/pipe_bench.sh - the whole pipe at scale: oscar-filter | wordpiece | shard-pack
# on >= 1 GB of generated OSCAR-shaped input (data/gen_sample.py --bench-bytes).
#
# Measures, each the median of RUNS runs:
#   anchor       zstd -dc INPUT > /dev/null   (reading the input at all)
#   filter       oscar-filter INPUT --ut1 data/ut1 > /dev/null
#   wordpiece    wordpiece -j 1 / -j NPROC FILTERED > /dev/null
#   shard-pack   shard-pack TOKENS -o DIR (shards written and fsynced)
#   pipe         oscar-filter INPUT --ut1 | wordpiece -j NPROC | shard-pack -o DIR
#   then         shard-pack --verify, merge (copy) and merge --link of the pipe's folder
# and for each process (/usr/bin/time -v) its CPU time, CPU use and peak RSS.
# Throughputs are in MB/s of the uncompressed input JSONL that the stage
# stands for (so they compare directly); the stage with the lowest one alone
# limits the pipe.
#
# Environment: BENCH_BYTES (1100000000), RUNS (3), BENCH_DIR (/tmp/symbert-pipe-bench,
# kept between runs: the generated input is reused), JOBS (nproc), BIN (bin/),
# SYMBERT_VOCAB (else data/vocab/, the repository's copy), BENCH_MD (a file to write the Markdown table to).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
BYTES=${BENCH_BYTES:-1100000000}
RUNS=${RUNS:-3}
JOBS=${JOBS:-$(nproc)}
W=${BENCH_DIR:-/tmp/symbert-pipe-bench}
PY=/usr/bin/python3
VOCAB=${SYMBERT_VOCAB:-$ROOT/data/vocab/bert-base-uncased-vocab.txt}
die() { echo "pipe_bench: $*" >&2; exit 1; }
for t in oscar-filter wordpiece shard-pack; do [ -x "$BIN/$t" ] || die "$BIN/$t missing: run make"; done
[ -f "$VOCAB" ] || die "no vocab: set SYMBERT_VOCAB"
[ -x /usr/bin/time ] || die "/usr/bin/time (Debian package time) is needed for CPU and RSS figures"
mkdir -p "$W" || die "cannot create $W"
IN="$W/input-$BYTES.jsonl.zst"
if [ ! -f "$IN" ]; then
  echo "pipe_bench: generating $BYTES bytes of OSCAR-shaped input into $IN"
  $PY "$ROOT/data/gen_sample.py" --bench-bytes "$BYTES" -o "$IN" || die "generator failed"
fi
RAW=$(zstd -dc "$IN" | wc -c)
FILT="$W/filtered.jsonl"; TOK="$W/tokens.bin"
UT1="$ROOT/data/ut1"
echo "pipe_bench: preparing the inputs of the later stages"
"$BIN/oscar-filter" "$IN" --ut1 "$UT1" -q -o "$FILT" || die "oscar-filter failed"
"$BIN/wordpiece" --vocab "$VOCAB" -j "$JOBS" -o "$TOK" "$FILT" || die "wordpiece failed"
T="$W/times"; rm -rf "$T"; mkdir -p "$T"

# timed NAME RUN CMD... : /usr/bin/time -v of one command, its stdout discarded.
# (Never "-o /dev/null": a tool that writes -o FILE atomically would rename a
# regular file over the device.)
timed() {
  local name=$1 run=$2; shift 2
  sync; /usr/bin/time -v -o "$T/$name.$run.time" "$@" > /dev/null || die "$name failed: $*"
}
for r in $(seq 1 "$RUNS"); do
  echo "pipe_bench: run $r/$RUNS"
  timed anchor "$r" zstd -dc "$IN"
  timed filter "$r" "$BIN/oscar-filter" "$IN" --ut1 "$UT1" -q
  timed wordpiece_j1 "$r" "$BIN/wordpiece" --vocab "$VOCAB" -j 1 "$FILT"
  [ "$JOBS" != 1 ] && timed wordpiece_jN "$r" "$BIN/wordpiece" --vocab "$VOCAB" -j "$JOBS" "$FILT"
  timed shardpack "$r" "$BIN/shard-pack" "$TOK" -o "$W/shards" --val-samples 10000 --force -q
  rm -rf "$W/shards_pipe"; sync
  s=$(date +%s.%N)
  /usr/bin/time -v -o "$T/pipe_filter.$r.time" "$BIN/oscar-filter" "$IN" --ut1 "$UT1" -q \
    | /usr/bin/time -v -o "$T/pipe_wordpiece.$r.time" "$BIN/wordpiece" --vocab "$VOCAB" -j "$JOBS" \
    | /usr/bin/time -v -o "$T/pipe_shardpack.$r.time" "$BIN/shard-pack" -o "$W/shards_pipe" --val-samples 10000 -q
  st=("${PIPESTATUS[@]}")
  e=$(date +%s.%N)
  [ "${st[*]}" = "0 0 0" ] || die "pipe failed: exit statuses ${st[*]}"
  echo "$s $e" > "$T/pipe_wall.$r"
  timed verify "$r" "$BIN/shard-pack" --verify "$W/shards_pipe"
  timed merge_copy "$r" "$BIN/shard-pack" merge -o "$W/merged" "$W/shards_pipe" --force -q
  timed merge_link "$r" "$BIN/shard-pack" merge --link -o "$W/linked" "$W/shards_pipe" --force -q
done

$PY - "$T" "$RUNS" "$RAW" "$(stat -c %s "$IN")" "$(stat -c %s "$FILT")" "$(stat -c %s "$TOK")" "$JOBS" "$W/shards_pipe/manifest.json" "${BENCH_MD:-}" <<'EOF'
import json, os, re, statistics, sys, platform, datetime, subprocess
T, runs, raw, zsize, fsize, tsize, jobs, manifest, md_out = sys.argv[1:]
runs, raw, zsize, fsize, tsize, jobs = int(runs), int(raw), int(zsize), int(fsize), int(tsize), int(jobs)
def parse(path):
    d = {}
    for line in open(path):
        k, _, v = line.strip().rpartition(': ')
        d[k] = v
    w = d['Elapsed (wall clock) time (h:mm:ss or m:ss)'].split(':')
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
    return dict(wall=wall, user=float(d['User time (seconds)']), sys=float(d['System time (seconds)']),
                rss=int(d['Maximum resident set size (kbytes)']) / 1024)
def med(name):
    rs = [parse(os.path.join(T, '%s.%d.time' % (name, r))) for r in range(1, runs + 1) if os.path.exists(os.path.join(T, '%s.%d.time' % (name, r)))]
    if not rs: return None
    return {k: statistics.median(r[k] for r in rs) for k in rs[0]}
m = json.load(open(manifest))['totals']
MB = 1e6
rows = []
anchor = med('anchor')
def row(label, r, what, wall=None):
    wall = wall or r['wall']
    rows.append((label, wall, raw / MB / wall, (r['user'] + r['sys']) / wall * 100, r['user'] + r['sys'], r['rss'], what))
row('anchor: zstd -dc > /dev/null', anchor, 'decompression only')
row('oscar-filter --ut1 (alone)', med('filter'), 'reads %.0f MB zstd, writes %.0f MB' % (zsize / MB, fsize / MB))
row('wordpiece -j 1 (alone)', med('wordpiece_j1'), '%.0f MB of kept JSONL in' % (fsize / MB))
if med('wordpiece_jN'): row('wordpiece -j %d (alone)' % jobs, med('wordpiece_jN'), '')
row('shard-pack (alone)', med('shardpack'), '%.0f MB of token stream in' % (tsize / MB))
walls = sorted(float(open(os.path.join(T, 'pipe_wall.%d' % r)).read().split()[1]) - float(open(os.path.join(T, 'pipe_wall.%d' % r)).read().split()[0]) for r in range(1, runs + 1))
pw = statistics.median(walls)
pf, pwp, ps = med('pipe_filter'), med('pipe_wordpiece'), med('pipe_shardpack')
row('pipe: oscar-filter', pf, 'in the pipe', pw)
row('pipe: wordpiece -j %d' % jobs, pwp, 'in the pipe', pw)
row('pipe: shard-pack', ps, 'in the pipe', pw)
row('shard-pack --verify', med('verify'), 'sha256 + id check of %.0f MB of shards' % (m['samples'] * 1024 / MB))
row('shard-pack merge (copy)', med('merge_copy'), 'reads, checks, rewrites every shard')
row('shard-pack merge --link', med('merge_link'), 'hard links + manifest')
tot_cpu = sum(r['user'] + r['sys'] for r in (pf, pwp, ps))
alone = {'oscar-filter': med('filter')['wall'], 'wordpiece -j %d' % jobs: (med('wordpiece_jN') or med('wordpiece_j1'))['wall'], 'shard-pack': med('shardpack')['wall']}
limit = max(alone, key=alone.get)
cpu = subprocess.run(['sh', '-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
out = []
out.append('Machine: %s, %d cores (nproc), %s; %s.' % (cpu, os.cpu_count(), platform.platform(), datetime.date.today().isoformat()))
out.append('Input: %.2f GB of generated OSCAR-shaped JSONL (%.0f MB zstd -3); kept %.0f MB; %d documents kept, %d tokens, %d samples of 512 + %d dropped tail tokens.'
           % (raw / 1e9, zsize / MB, fsize / MB, m['documents'], m['tokens'], m['samples'], m['dropped_tail_tokens']))
out.append('Figures: median of %d runs; MB/s of uncompressed input JSONL; CPU %% = (user+sys)/wall (100%% = one core).' % runs)
out.append('')
out.append('| stage | wall s | MB/s of input | CPU % | CPU s | peak RSS MB | note |')
out.append('|---|---:|---:|---:|---:|---:|---|')
for r in rows:
    out.append('| %s | %.2f | %.1f | %.0f | %.2f | %.1f | %s |' % r)
out.append('')
out.append('Pipe: %.2f s wall, %.1f MB/s of input (%.2fx the zstd -dc anchor), %.0f documents/s, %.2f M tokens/s; %.1f CPU s in all (%.0f%% of %d cores).'
           % (pw, raw / MB / pw, (raw / MB / pw) / (raw / MB / anchor['wall']), m['documents'] / pw, m['tokens'] / pw / 1e6, tot_cpu, tot_cpu / pw / os.cpu_count() * 100, os.cpu_count()))
out.append('Limiting stage (slowest alone): %s (%.2f s alone vs %.2f s for the whole pipe).' % (limit, alone[limit], pw))
text = '\n'.join(out)
print(text)
if md_out:
    open(md_out, 'w').write(text + '\n')
EOF
