# pipe_kill_test.sh - the documented pipe publishes no shard folder when any
# stage fails or is killed: a framed source (as oscar-fetch --stdout --frame)
# | oscar-filter --frame | wordpiece | shard-pack, each stage killed in turn
# with SIGKILL and SIGTERM while documents are in flight; each input
# truncated; and the README's pipe as written (set -o pipefail).
. "$ROOT/tests/lib.sh"
SAMPLE="$ROOT/data/sample/en_meta_part_1.jsonl.zst"
[ -f "$VOCAB" ] || { fail vocab "no vocab at $VOCAB"; exit 1; }
zstd -dcq "$SAMPLE" > sample.jsonl
# src.py OUT PAUSE: a begin record, the sample 16 times (10 MB: more than
# oscar-filter's 4 MB blocks), a pause, the sample 4 times more, an end record
cat > src.py <<'EOF'
import sys, time
lines = open('sample.jsonl').readlines()
with open(sys.argv[1], 'w') as f:
    f.write('{"symbert_stream":"begin","writer":"src.py"}\n')
    f.writelines(lines * 16); f.flush()
    time.sleep(float(sys.argv[2]))
    f.writelines(lines * 4)
    f.write('{"symbert_stream":"end","writer":"src.py","lines":%d}\n' % (20 * len(lines)))
EOF
published() { [ -e "$1/manifest.json" ] || ls "$1"/*.npy >/dev/null 2>&1; }

# the four stages as one pipe, through named pipes so that each has a PID of its own
run_pipe() {  # OUT PAUSE
  rm -f p1 p2 p3; mkfifo p1 p2 p3
  $PY src.py p1 "$2" 2>/dev/null & SRC=$!
  "$BIN/oscar-filter" --frame -q < p1 > p2 2>> "$1.err" & FLT=$!
  "$BIN/wordpiece" --vocab "$VOCAB" -j 2 < p2 > p3 2>> "$1.err" & WP=$!
  "$BIN/shard-pack" -o "$1" --seq-len 128 --shard-samples 1000 -q < p3 2>> "$1.err" & SP=$!
}
run_pipe whole 0
wait $SRC $FLT $WP $SP
ok whole_pipe_published "$BIN/shard-pack" --verify whole
eq whole_pipe_documents "$($PY -c "import json; print(json.load(open('whole/manifest.json'))['totals']['documents'])")" \
  "$(( 20 * $("$BIN/oscar-filter" -q sample.jsonl | wc -l) ))"

for sig in KILL TERM; do
  for stage in SRC FLT WP SP; do
    out=cut_${stage}_$sig
    run_pipe $out 30
    # documents are in flight: the packer has written a (hidden) shard; the source pauses
    for _ in $(seq 300); do [ "$(ls -A $out 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.05; done
    eval "victim=\$$stage"
    kill -$sig $victim
    wait $SP 2>/dev/null      # the packer ends when its input does (or was the victim)
    kill $SRC $FLT $WP 2>/dev/null; wait $SRC $FLT $WP 2>/dev/null
    published $out && fail "kill_${stage}_$sig" "a shard folder was published: $(ls $out; cat $out.err)" || pass "kill_${stage}_$sig"
  done
done
grep_ok kill_src_filter_says "ends without the end record" cut_SRC_KILL.err
grep_ok kill_filter_wordpiece_says "ends without the end record|malformed JSON" cut_FLT_KILL.err   # cut between or inside lines
grep_ok kill_wordpiece_shardpack_says "without its trailer" cut_WP_KILL.err

# ---- truncated inputs
head -c 30000 "$SAMPLE" > trunc.zst
"$BIN/oscar-filter" --frame -q trunc.zst | "$BIN/wordpiece" --vocab "$VOCAB" | "$BIN/shard-pack" -o t_zst --seq-len 32 -q 2> t_zst.err
ok truncated_zstd_nothing_published sh -c '! { [ -e t_zst/manifest.json ] || ls t_zst/*.npy; } 2>/dev/null'
head -c 100000 sample.jsonl > trunc.jsonl      # cut inside a line
"$BIN/oscar-filter" --frame -q trunc.jsonl | "$BIN/wordpiece" --vocab "$VOCAB" | "$BIN/shard-pack" -o t_jsonl --seq-len 32 -q 2>/dev/null
ok truncated_jsonl_nothing_published sh -c '! { [ -e t_jsonl/manifest.json ] || ls t_jsonl/*.npy; } 2>/dev/null'
"$BIN/oscar-filter" --frame -q "$SAMPLE" -o framed.jsonl
head -n 150 framed.jsonl > framed_cut.jsonl    # cut at a line boundary: only the end record tells
"$BIN/wordpiece" --vocab "$VOCAB" framed_cut.jsonl 2>/dev/null | "$BIN/shard-pack" -o t_framed --seq-len 32 -q 2>/dev/null
ok framed_cut_nothing_published sh -c '! { [ -e t_framed/manifest.json ] || ls t_framed/*.npy; } 2>/dev/null'
"$BIN/wordpiece" --vocab "$VOCAB" framed.jsonl -o tok.bin
size=$(stat -c %s tok.bin); n=0
for cut in 20 48 1000 $((size / 2)) $((size - 40)) $((size - 32)) $((size - 1)); do
  head -c $cut tok.bin > tcut.bin
  "$BIN/shard-pack" tcut.bin -o t_tok_$cut --seq-len 32 -q 2>/dev/null
  { [ -e t_tok_$cut/manifest.json ] || ls t_tok_$cut/*.npy; } >/dev/null 2>&1 || n=$((n + 1))
done
eq truncated_token_stream_nothing_published "$n" 7

# ---- the README's pipe, as written: pipefail makes the pipe's status that of the failed stage
bash -o pipefail -c "'$BIN/oscar-filter' --frame -q trunc.zst | '$BIN/wordpiece' --vocab '$VOCAB' | '$BIN/shard-pack' -o t_readme -q" 2>/dev/null
rc=$?
[ $rc -ne 0 ] && pass readme_pipe_fails || fail readme_pipe_fails "exit 0"
ok readme_pipe_nothing_published test ! -e t_readme/manifest.json
