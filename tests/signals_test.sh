# signals_test.sh - SIGINT and SIGTERM on oscar-filter -o FILE (--stats FILE)
# and wordpiece -o FILE while they read an idle pipe: the tool dies of the
# signal (exit status 130/143), its temporary files are gone and no output
# file appears.
. "$ROOT/tests/lib.sh"
[ -f "$VOCAB" ] || { fail vocab "no vocab at $VOCAB"; exit 1; }
# slowdocs.py FIFO: 3000 documents, then a long pause before the end
cat > slowdocs.py <<'EOF'
import sys, time
with open(sys.argv[1], 'w') as f:
    for i in range(3000): f.write('{"content":"document number %d","metadata":{"harmful_pp":50}}\n' % i)
    f.flush(); time.sleep(30)
EOF
# interrupt NAME OUT CMD...: runs CMD reading the FIFO "ff", signals it once OUT's temporary exists
interrupt() {
  name=$1; out=$2; shift 2
  for sig in INT TERM; do
    rm -f ff; mkfifo ff
    $PY slowdocs.py ff 2>/dev/null & w=$!
    "$@" 2>/dev/null & p=$!
    for _ in $(seq 100); do ls -A | grep -q "^\.$out\.tmp\." && break; sleep 0.05; done
    sleep 0.3
    kill -$sig $p; wait $p; rc=$?; kill $w 2>/dev/null; wait $w 2>/dev/null
    eq ${name}_sig${sig}_exit "$rc" "$([ $sig = INT ] && echo 130 || echo 143)"
    eq ${name}_sig${sig}_no_temp "$(ls -A | grep -c '\.tmp\.')" 0
    ok ${name}_sig${sig}_no_output sh -c "! ls $out* 2>/dev/null | grep -q ."
  done
}
interrupt oscar_filter filtered.jsonl "$BIN/oscar-filter" ff -o filtered.jsonl --stats filtered.jsonl.stats -q
interrupt wordpiece tokens.bin "$BIN/wordpiece" --vocab "$VOCAB" -j 2 ff -o tokens.bin
