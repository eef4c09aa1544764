#!/bin/bash
# bench/filter_bench.sh - oscar-filter speed and memory against its anchors,
# measured in the same run, runs interleaved so that machine noise hits all:
#   1. uncompressed output: MB/s of input vs `zstd -d -c FILE > /dev/null`
#      (target >= 60%);
#   2. compressed output: documents/s vs the authors' logic
#      (tests/authors_filter.py: zstd in, json.loads, rules, json.dumps, zstd
#      out at level 3, Debian's python3) (target >= 5x);
#   3. peak RSS for two input sizes (flat in input size);
#   4. UT1: load time and RSS for a generated list of 3 million domains, and
#      the throughput with it;
#   5. JSON parsers on the same lines: js_scan (pipeline/json.h) vs cJSON,
#      json-c, jansson (a C program written below, one binary per library
#      since json-c and jansson share symbol names).
# Input: gen_filter_corpus.py bench (OSCAR-2301-shaped, ~5.6 KB documents),
# cached in $FILTER_BENCH_DIR.  Prints a Markdown report (also written to
# $FILTER_BENCH_DIR/report.md); bench/results/filter.md holds recorded runs.
#
# Every command that writes a file writes a new one (the previous run's output
# is removed before, and `sync` run, outside the timing, for oscar-filter and
# the authors' script alike).  After the timed rounds the outputs are checked: the
# decompressed -z and -l 1 outputs must equal the plain output byte for byte.
#
#   env: FILTER_BENCH_DIR (/tmp/symbert-filter-bench) FILTER_BENCH_MB (560)
#        FILTER_BENCH_RUNS (7) FILTER_BENCH_PYRUNS (5) OSCAR_FILTER (bin/oscar-filter)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
F=${OSCAR_FILTER:-$ROOT/bin/oscar-filter}
PY=/usr/bin/python3
W=${FILTER_BENCH_DIR:-/tmp/symbert-filter-bench}
MB=${FILTER_BENCH_MB:-560}
RUNS=${FILTER_BENCH_RUNS:-7}
PYRUNS=${FILTER_BENCH_PYRUNS:-5}
GEN="$ROOT/tests/gen_filter_corpus.py"
[ -x "$F" ] || { echo "filter_bench: $F missing (run make)" >&2; exit 1; }
mkdir -p "$W"
cd "$W"

# ---- data (cached)
if [ ! -s big.jsonl.zst ] || [ "$(cat big.mb 2>/dev/null)" != "$MB" ]; then
  echo "generating $MB MB of OSCAR-like JSONL..." >&2
  $PY "$GEN" bench --mb "$MB" --seed 7 | zstd -q -3 -T0 -o big.jsonl.zst -f
  zstd -dc big.jsonl.zst | head -n "$(( $(zstd -dc big.jsonl.zst | wc -l) / 2 ))" | zstd -q -3 -T0 -o half.jsonl.zst -f
  zstd -dc big.jsonl.zst | head -c 100000000 > lines100.jsonl
  echo "$MB" > big.mb
fi
if [ ! -d ut1big/adult ]; then
  echo "generating a UT1 folder with 3 million adult domains..." >&2
  $PY "$GEN" ut1 ut1big --domains 3000000 --seed 3
fi
head -n 100 lines100.jsonl > small.jsonl

# tm VAR CMD... : runs CMD, appends its wall seconds to VAR.t and its CPU
# seconds (user + system, all threads) to VAR.c
tm() { local v=$1; shift; /usr/bin/time -f "%e %U %S" -o tm.txt "$@"; tail -n 1 tm.txt | awk '{print $1}' >> "$v.t"
       tail -n 1 tm.txt | awk '{printf "%.2f\n", $2 + $3}' >> "$v.c"; }
median() { sort -n "$1.t" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
cmedian() { sort -n "$1.c" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
runs() { tr '\n' ' ' < "$1.t"; }
rm -f ./*.t ./*.c ut1mem.txt

inbytes=$(zstd -dc big.jsonl.zst | wc -c)
"$F" -q big.jsonl.zst --stats st.json > /dev/null
docs=$($PY -c "import json; print(json.load(open('st.json'))['documents'])")
kept=$($PY -c "import json; print(json.load(open('st.json'))['kept'])")

# fresh: removes the previous output and writes back what earlier commands
# left dirty (the authors' script does not fsync its output), outside the
# timing, so that no command pays for another's write-back
fresh() { rm -f "$@"; sync; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "running: $RUNS rounds (python: $PYRUNS), interleaved..." >&2
for r in $(seq "$RUNS"); do
  fresh; tm zstd_d zstd -q -d -c big.jsonl.zst > /dev/null
  tm plain "$F" -q big.jsonl.zst > /dev/null
  fresh out.zst; tm z_def "$F" -q -z big.jsonl.zst -o out.zst
  fresh outt1.zst; tm z_t1 "$F" -q -z -T 1 big.jsonl.zst -o outt1.zst
  fresh out1.zst; tm z_l1 "$F" -q -l 1 big.jsonl.zst -o out1.zst
  tm plain_ut1 "$F" -q --ut1 ut1big big.jsonl.zst > /dev/null
  if [ "$r" -le "$PYRUNS" ]; then fresh py.zst; tm py $PY "$ROOT/tests/authors_filter.py" big.jsonl.zst py.zst 2>/dev/null; fi
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
zsize=$(stat -c %s out.zst); z1size=$(stat -c %s out1.zst); pysize=$(stat -c %s py.zst)
# the compressed outputs hold exactly the plain output's bytes
"$F" -q big.jsonl.zst > kept.jsonl
verified=yes
for o in out.zst outt1.zst out1.zst; do zstd -q -d -c "$o" | cmp -s - kept.jsonl || { verified="NO ($o differs)"; echo "filter_bench: $o differs from the plain output" >&2; }; done
keptbytes=$(stat -c %s kept.jsonl); rm -f kept.jsonl

# ---- memory: peak RSS (KB) for half and full input
rss() { /usr/bin/time -f %M -o rss.txt "$@" > /dev/null 2>&1; cat rss.txt; }
m_plain_half=$(rss "$F" -q half.jsonl.zst); m_plain_big=$(rss "$F" -q big.jsonl.zst)
m_z_half=$(rss "$F" -q -z half.jsonl.zst -o out.zst); m_z_big=$(rss "$F" -q -z big.jsonl.zst -o out.zst)
m_py_half=$(rss $PY "$ROOT/tests/authors_filter.py" half.jsonl.zst py.zst)
m_py_big=$(rss $PY "$ROOT/tests/authors_filter.py" big.jsonl.zst py.zst)

# ---- UT1 load: 3 runs, load seconds from the tool's own line, RSS
for r in 1 2 3; do
  /usr/bin/time -f "%M %U" -o ut1rss.txt "$F" --ut1 ut1big small.jsonl 2> ut1.err > /dev/null
  sed -n 's/.* in \([0-9.]*\) s, \([0-9.]*\) MB$/\1/p' ut1.err >> ut1load.t
  cat ut1rss.txt >> ut1mem.txt
done
ut1line=$(grep 'UT1' ut1.err | sed 's/^oscar-filter: //')
ut1rss=$(sort -n ut1mem.txt | awk 'NR==2 {print $1}')
m_small=$(rss "$F" -q small.jsonl)

# ---- JSON parsers
cat > jsonbench.c <<'EOF'
/* Parse speed of whole OSCAR-like lines, reading harmful_pp from each. */
#include "pipeline/json.h"
#if LIB == 1
#include <cjson/cJSON.h>
#elif LIB == 2
#include <json-c/json.h>
#elif LIB == 3
#include <jansson.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static volatile double sink;
static long parse(const char *s, size_t len) {
#if LIB == 0
    static const js_path P[] = { {{"metadata"},1}, {{"metadata","categories"},2}, {{"metadata","harmful_pp"},2},
                                 {{"metadata","quality_warnings"},2}, {{"warc_headers","warc-target-uri"},2} };
    js_val v[5]; char e[128];
    if (js_scan(s, len, P, 5, v, e, sizeof e) < 0) return -1;
    if (v[2].type == JS_NUMBER) sink += js_number(&v[2]);
#elif LIB == 1
    cJSON *r = cJSON_ParseWithLength(s, len);
    if (!r) return -1;
    cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "metadata"), "harmful_pp");
    if (cJSON_IsNumber(p)) sink += p->valuedouble;
    cJSON_Delete(r);
#elif LIB == 2
    static json_tokener *tok;
    if (!tok) tok = json_tokener_new();
    json_tokener_reset(tok);
    json_object *r = json_tokener_parse_ex(tok, s, (int)len), *m, *p;
    if (!r) return -1;
    if (json_object_object_get_ex(r, "metadata", &m) && json_object_object_get_ex(m, "harmful_pp", &p)) sink += json_object_get_double(p);
    json_object_put(r);
#else
    json_error_t e;
    json_t *r = json_loadb(s, len, 0, &e);
    if (!r) return -1;
    json_t *p = json_object_get(json_object_get(r, "metadata"), "harmful_pp");
    if (json_is_number(p)) sink += json_number_value(p);
    json_decref(r);
#endif
    return 0;
}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    FILE *fp = fopen(argv[1], "rb");
    size_t cap = 200u << 20; char *buf = malloc(cap); size_t n = fread(buf, 1, cap, fp); fclose(fp);
    while (n && buf[n - 1] != '\n') n--;
    int reps = atoi(argv[2]); double r[32];
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        for (char *p = buf; p < buf + n; ) {
            char *e = memchr(p, '\n', (size_t)(buf + n - p));
            if (parse(p, (size_t)(e - p)) < 0) { fprintf(stderr, "parse error\n"); return 1; }
            p = e + 1;
        }
        r[i] = (double)n / (now() - t0) / 1e6;
    }
    qsort(r, (size_t)reps, sizeof r[0], cmp);
    printf("%.0f\n", r[reps / 2]);
    return 0;
}
EOF
declare -A JL=([0]="" [1]="-lcjson" [2]="-ljson-c" [3]="-ljansson")
declare -A JN=([0]="js_scan (pipeline/json.h)" [1]="cJSON $(dpkg-query -W -f='${Version}' libcjson-dev 2>/dev/null)"
               [2]="json-c $(dpkg-query -W -f='${Version}' libjson-c-dev 2>/dev/null)"
               [3]="jansson $(dpkg-query -W -f='${Version}' libjansson-dev 2>/dev/null)")
jres=""
for i in 0 1 2 3; do
  if cc -O2 -march=x86-64-v2 -DLIB=$i -I"$ROOT" jsonbench.c "$ROOT/pipeline/json.c" -o jb$i ${JL[$i]} -lm 2> jb$i.err; then
    jres="$jres| ${JN[$i]} | $(./jb$i lines100.jsonl 5) |\n"
  else
    jres="$jres| ${JN[$i]} | not built (library missing: $(head -c 120 jb$i.err | tr '\n' ' ')) |\n"
  fi
done
zstd -q -f -c lines100.jsonl > l100.zst
for r in 1 2 3; do tm zd100 zstd -q -d -c l100.zst > /dev/null; done
zstd100=$(awk -v n="$(stat -c %s lines100.jsonl)" -v t="$(median zd100)" 'BEGIN {printf "%.0f", n / t / 1e6}')

# ---- report
Tz=$(median zstd_d); Tp=$(median plain); Tpy=$(median py)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mbs() { awk -v n="$inbytes" -v t="$1" 'BEGIN {printf "%.0f", n / t / 1e6}'; }
dps() { awk -v n="$docs" -v t="$1" 'BEGIN {printf "%.0f", n / t}'; }
{
echo "## oscar-filter bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(free -g | awk '/Mem:/ {print $2}') GiB;" \
     "load average before the timed rounds: $load0, after: $load1. zstd $(zstd -V | sed 's/.*v\([0-9.]*\).*/\1/'), $($PY --version)."
echo "Input: $MB MB generated OSCAR-like JSONL ($docs documents, $kept kept by the paper's rules)," \
     "zstd -3: $(stat -c %s big.jsonl.zst) bytes. Median of $RUNS interleaved runs (python: $PYRUNS); wall seconds, and CPU seconds (user + system, all threads)."
echo
echo "| command | runs (s) | median s | CPU s | MB/s of input | docs/s | ratio |"
echo "|---|---|---|---|---|---|---|"
echo "| \`zstd -d -c big.jsonl.zst > /dev/null\` (anchor 1) | $(runs zstd_d) | $Tz | $(cmedian zstd_d) | $(mbs "$Tz") | | 1 |"
echo "| \`oscar-filter big.jsonl.zst > /dev/null\` | $(runs plain) | $Tp | $(cmedian plain) | $(mbs "$Tp") | $(dps "$Tp") | **$(ratio "$Tz" "$Tp")** of zstd -d |"
echo "| \`oscar-filter --ut1 ut1big big.jsonl.zst > /dev/null\` (3.15M domains; includes loading them) | $(runs plain_ut1) | $(median plain_ut1) | $(cmedian plain_ut1) | $(mbs "$(median plain_ut1)") | $(dps "$(median plain_ut1)") | $(ratio "$Tz" "$(median plain_ut1)") of zstd -d |"
echo "| \`authors_filter.py big.jsonl.zst py.zst\` (anchor 2, level 3) | $(runs py) | $Tpy | $(cmedian py) | $(mbs "$Tpy") | $(dps "$Tpy") | 1 |"
for v in z_def z_t1 z_l1; do
  case $v in z_def) c="-z (level 3, default -T $(n=$(nproc); [ "$n" -gt 8 ] && n=8; echo "$n"))";; z_t1) c="-z -T 1";; z_l1) c="-l 1 (level 1)";; esac
  echo "| \`oscar-filter $c big.jsonl.zst -o out.zst\` | $(runs $v) | $(median $v) | $(cmedian $v) | $(mbs "$(median $v)") | $(dps "$(median $v)") | **$(ratio "$Tpy" "$(median $v)")x** python |"
done
echo
echo "Output sizes: oscar-filter -z $zsize bytes, -l 1 $z1size bytes, python (json.dumps, level 3) $pysize bytes." \
     "Decompressed -z, -z -T 1 and -l 1 outputs equal the plain output ($keptbytes bytes): $verified."
echo
echo "Peak RSS (KB, /usr/bin/time -f %M), half vs full input: oscar-filter plain $m_plain_half / $m_plain_big;" \
     "-z $m_z_half / $m_z_big; authors_filter.py $m_py_half / $m_py_big."
echo
echo "UT1: $ut1line. Load seconds over 3 runs: $(runs ut1load); peak RSS $ut1rss KB (without --ut1: $m_small KB)."
echo
echo "JSON parsers, whole lines of lines100.jsonl ($(stat -c %s lines100.jsonl) bytes), reading harmful_pp, median of 5 passes (zstd -d of the same bytes: $zstd100 MB/s):"
echo
echo "| parser | MB/s |"
echo "|---|---|"
printf "$jres"
} | tee report.md
