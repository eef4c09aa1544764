# tests/fetch_test.sh - oscar-fetch against tests/fetch_server.py, a
# fault-injecting HTTP server this test starts on 127.0.0.1 (ephemeral
# ports).  Each case checks the exit code, the files and their sha256, and
# the requests the server logged (Range on resume, where the token went).
. "$ROOT/tests/lib.sh"
F="$BIN/oscar-fetch"
SRV="$ROOT/tests/fetch_server.py"
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; for p in $PIDS; do wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
# No token from the environment of whoever runs the tests.
unset HF_TOKEN HF_TOKEN_PATH HF_HOME XDG_CACHE_HOME
export HOME="$TDIR/home"; mkdir -p "$HOME"

# ---- data: 4 parts of random bytes and their checksum list ----------------
mkdir -p root/en_meta
$PY - <<'EOF'
import os, random
r = random.Random(7)
for i, n in enumerate([300001, 524288, 777777, 65536], 1):
    open("root/en_meta/en_meta_part_%d.jsonl.zst" % i, "wb").write(r.randbytes(n))
EOF
(cd root/en_meta && sha256sum en_meta_part_*.jsonl.zst > checksum.sha256)
GOOD_SUMS=$(cat root/en_meta/checksum.sha256)
size() { stat -c %s "$1"; }

# start_server NAME [server options...]: sets PORT_<NAME>; log in NAME.log
start_server() {
  name=$1; shift
  rm -f "$name.port" "$name.log"; : > "$name.log"
  $PY "$SRV" --root "${SROOT:-root}" --port-file "$name.port" --log "$name.log" "$@" 2>"$name.err" &
  PIDS="$PIDS $!"
  for _ in $(seq 100); do [ -s "$name.port" ] && break; sleep 0.05; done
  eval "PORT_$name=\$(cat $name.port)"
}
stop_servers() { cleanup; PIDS=""; }
# run OUTDIR [args...]: oscar-fetch en ... against server A; exit code in RC, stderr+stdout in run.out
fetch() {
  "$F" --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --stall-secs 1 --no-progress "$@" >run.out 2>&1
  RC=$?
}
# q LOG PYEXPR: evaluates PYEXPR with `r` = list of logged requests (dicts)
q() { $PY -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(eval(sys.argv[2]))' "$1" "$2"; }
nreq() { q "$1" "len([x for x in r if '$2' in x['path']])"; }
sums_ok() { (cd "$1" && sha256sum --quiet -c "$ROOT_SUMS" >/dev/null 2>&1); }
ROOT_SUMS="$TDIR/root/en_meta/checksum.sha256"
no_part_files() { [ -z "$(find "$1" -name '*.part' 2>/dev/null)" ]; }
no_crash() { if [ "$RC" -ge 128 ] || grep -q Sanitizer run.out; then fail "$1" "crash or sanitizer report (rc $RC): $(head -c 400 run.out)"; else pass "$1"; fi; }

# ---- 1. plain download, -P 2 -------------------------------------------------
start_server A
fetch en 1-4 -o out -P 2
eq basic_exit "$RC" 0
ok basic_sha256 sums_ok out
ok basic_no_part no_part_files out
eq basic_one_request_each "$(q A.log "sorted(x['path'].split('/')[-1] for x in r)")" \
  "['checksum.sha256', 'en_meta_part_1.jsonl.zst', 'en_meta_part_2.jsonl.zst', 'en_meta_part_3.jsonl.zst', 'en_meta_part_4.jsonl.zst']"
eq basic_no_range "$(q A.log "[x['range'] for x in r if x['range']]")" "[]"
eq basic_no_token_sent "$(q A.log "[x['auth'] for x in r if x['auth']]")" "[]"
grep_ok basic_summary '4 files: 4 downloaded' run.out

# ---- 2. a re-run skips verified files ----------------------------------------
: > A.log
fetch en 1-4 -o out
eq rerun_exit "$RC" 0
eq rerun_only_checksum_requested "$(q A.log "[x['path'] for x in r]")" "['/en_meta/checksum.sha256']"
grep_ok rerun_says_skipped '4 already there' run.out

# ---- 3. --verify re-hashes, and a damaged final file is fetched again ---------
printf 'X' | dd of=out/en_meta_part_3.jsonl.zst bs=1 seek=1000 conv=notrunc status=none
: > A.log
fetch en 1-4 -o out --verify
eq verify_exit "$RC" 0
ok verify_sha256 sums_ok out
eq verify_refetched_only_part3 "$(q A.log "[x['path'].split('/')[-1] for x in r if 'part' in x['path']]")" "['en_meta_part_3.jsonl.zst']"
stop_servers

# ---- 4. resume a .part with Range ---------------------------------------------
mkdir -p res
head -c 100000 root/en_meta/en_meta_part_2.jsonl.zst > res/en_meta_part_2.jsonl.zst.part
start_server A
fetch en 2 -o res
eq resume_exit "$RC" 0
ok resume_sha256 cmp res/en_meta_part_2.jsonl.zst root/en_meta/en_meta_part_2.jsonl.zst
eq resume_range "$(q A.log "[(x['range'], x['status']) for x in r if 'part_2' in x['path']]")" "[('bytes=100000-', 206)]"
ok resume_no_part no_part_files res

# ---- 5. a stale .part (wrong bytes) is dropped and fetched from 0, once --------
rm -rf res; mkdir -p res
head -c 5000 /dev/zero > res/en_meta_part_1.jsonl.zst.part
: > A.log
fetch en 1 -o res
eq stale_exit "$RC" 0
ok stale_sha256 cmp res/en_meta_part_1.jsonl.zst root/en_meta/en_meta_part_1.jsonl.zst
eq stale_requests "$(q A.log "[x['range'] for x in r if 'part_1' in x['path']]")" "['bytes=5000-', None]"
grep_ok stale_note 'earlier run: downloading again from byte 0' run.out
stop_servers

# ---- 6. connection cut mid-body: resume where it broke -------------------------
start_server A --fault 'en_meta_part_3.jsonl.zst:cut'
fetch en 3 -o cut
eq cut_exit "$RC" 0
ok cut_sha256 cmp cut/en_meta_part_3.jsonl.zst root/en_meta/en_meta_part_3.jsonl.zst
eq cut_ranges "$(q A.log "[(x['range'], x['status']) for x in r if 'part_3' in x['path']]")" \
  "[(None, 200), ('bytes=$(( $(size root/en_meta/en_meta_part_3.jsonl.zst) / 2 ))-', 206)]"
stop_servers

# ---- 6b. a large part (several write buffers, past the flusher's step) cut at
# an odd offset: the buffered bytes reach the .part, the resume asks for them
mkdir -p bigroot/en_meta
$PY -c 'import random; open("bigroot/en_meta/en_meta_part_1.jsonl.zst", "wb").write(random.Random(3).randbytes(40 << 20))'
(cd bigroot/en_meta && sha256sum en_meta_part_1.jsonl.zst > checksum.sha256)
CUT=$((3 * 1048576 + 12345))
SROOT=bigroot start_server A --fault "en_meta_part_1.jsonl.zst:cut:1:$CUT"
fetch en 1 -o big
eq big_exit "$RC" 0
ok big_sha256 cmp big/en_meta_part_1.jsonl.zst bigroot/en_meta/en_meta_part_1.jsonl.zst
eq big_ranges "$(q A.log "[(x['range'], x['status']) for x in r if 'part_1' in x['path']]")" "[(None, 200), ('bytes=$CUT-', 206)]"
ok big_no_part no_part_files big
rm -rf bigroot big
stop_servers

# ---- 7. 500 twice, then 200 ----------------------------------------------------
start_server A --fault 'en_meta_part_1.jsonl.zst:500:2'
fetch en 1 -o e500
eq 500_exit "$RC" 0
ok 500_sha256 cmp e500/en_meta_part_1.jsonl.zst root/en_meta/en_meta_part_1.jsonl.zst
eq 500_statuses "$(q A.log "[x['status'] for x in r if 'part_1' in x['path']]")" "[500, 500, 200]"
grep_ok 500_retry_line 'HTTP 500 Internal Server Error; retry 2' run.out
stop_servers

# ---- 8. 429 with Retry-After: 1 is honoured (back-off alone would be ~20 ms) ----
start_server A --fault 'en_meta_part_4.jsonl.zst:429:1:1'
fetch en 4 -o e429
eq 429_exit "$RC" 0
ok 429_sha256 cmp e429/en_meta_part_4.jsonl.zst root/en_meta/en_meta_part_4.jsonl.zst
eq 429_statuses "$(q A.log "[x['status'] for x in r if 'part_4' in x['path']]")" "[429, 200]"
eq 429_waited_1s "$(q A.log "(lambda t: t[1]-t[0] >= 0.95)([x['t'] for x in r if 'part_4' in x['path']])")" True
stop_servers

# ---- 9. a server that ignores Range: restart the file ---------------------------
mkdir -p norange
head -c 200000 root/en_meta/en_meta_part_3.jsonl.zst > norange/en_meta_part_3.jsonl.zst.part
start_server A --fault 'en_meta_part_3.jsonl.zst:norange:0'
fetch en 3 -o norange
eq norange_exit "$RC" 0
ok norange_sha256 cmp norange/en_meta_part_3.jsonl.zst root/en_meta/en_meta_part_3.jsonl.zst
eq norange_one_request "$(q A.log "[(x['range'], x['status']) for x in r if 'part_3' in x['path']]")" "[('bytes=200000-', 200)]"
grep_ok norange_note 'ignored the Range request' run.out

# ---- 10. a 206 that starts at the wrong byte: retry from 0 ----------------------
: > A.log; stop_servers
head -c 100000 root/en_meta/en_meta_part_2.jsonl.zst > norange/en_meta_part_2.jsonl.zst.part
start_server A --fault 'en_meta_part_2.jsonl.zst:badrange'
fetch en 2 -o norange
eq badrange_exit "$RC" 0
ok badrange_sha256 cmp norange/en_meta_part_2.jsonl.zst root/en_meta/en_meta_part_2.jsonl.zst
eq badrange_requests "$(q A.log "[x['range'] for x in r if 'part_2' in x['path']]")" "['bytes=100000-', None]"
stop_servers

# ---- 11. a stalled transfer is abandoned (low-speed limit) and resumed ----------
start_server A --fault 'en_meta_part_2.jsonl.zst:stall:1:20'
fetch en 2 -o stall
eq stall_exit "$RC" 0
ok stall_sha256 cmp stall/en_meta_part_2.jsonl.zst root/en_meta/en_meta_part_2.jsonl.zst
eq stall_resumed "$(q A.log "[x['range'] for x in r if 'part_2' in x['path']]")" "[None, 'bytes=1000-']"
grep_ok stall_message 'stalled' run.out
stop_servers

# ---- 12. retries are bounded ----------------------------------------------------
start_server A --fault 'en_meta_part_1.jsonl.zst:503:0'
fetch en 1 -o bounded --retries 2
eq bounded_exit "$RC" 1
eq bounded_3_attempts "$(nreq A.log part_1)" 3
grep_ok bounded_message 'en_meta_part_1.jsonl.zst: gave up after 3 failed attempts in a row: HTTP 503' run.out
no_crash bounded_no_crash
stop_servers

# ---- 13. wrong checksum: nothing kept, the file named, the others fine ----------
mkdir -p badroot/en_meta; cp root/en_meta/*.zst badroot/en_meta/
cp root/en_meta/checksum.sha256 badroot/en_meta/
$PY - <<'EOF'
p = "badroot/en_meta/checksum.sha256"
lines = open(p).read().splitlines()
out = []
for l in lines:
    h, n = l.split("  ")
    if n.endswith("part_3.jsonl.zst"):
        h = ("0" if h[0] != "0" else "1") + h[1:]
    out.append(h + "  " + n)
open(p, "w").write("\n".join(out) + "\n")
EOF
SROOT=badroot start_server A
fetch en 1-4 -o bad
eq badsum_exit "$RC" 1
ok badsum_nothing_kept test ! -e bad/en_meta_part_3.jsonl.zst -a ! -e bad/en_meta_part_3.jsonl.zst.part
grep_ok badsum_names_file 'en_meta_part_3.jsonl.zst: sha256 mismatch \(got [0-9a-f]{64}, expected [0-9a-f]{64}\); nothing was kept' run.out
ok badsum_others_ok cmp bad/en_meta_part_4.jsonl.zst root/en_meta/en_meta_part_4.jsonl.zst
no_crash badsum_no_crash
stop_servers

# ---- 14. 404: the part is named --------------------------------------------------
mkdir -p r404/en_meta; cp root/en_meta/checksum.sha256 root/en_meta/en_meta_part_1.jsonl.zst r404/en_meta/
SROOT=r404 start_server A
fetch en 1-2 -o o404
eq 404_exit "$RC" 1
grep_ok 404_names_part 'en_meta_part_2.jsonl.zst: HTTP 404 Not Found \(http://127.0.0.1:[0-9]+/en_meta/en_meta_part_2.jsonl.zst\): no such file' run.out
ok 404_other_ok cmp o404/en_meta_part_1.jsonl.zst root/en_meta/en_meta_part_1.jsonl.zst
eq 404_no_retry "$(nreq A.log part_2)" 1
ok 404_no_empty_part test ! -e o404/en_meta_part_2.jsonl.zst.part
grep_ok 404_counted_once '2 files: 1 downloaded .*, 0 already there, 1 failed$' run.out
# a part the checksum list doesn't have: refused before any download
: > A.log
fetch en 1,7-8 -o o404b
eq unlisted_exit "$RC" 1
grep_ok unlisted_message 'en_meta_part_7.jsonl.zst is not listed in en_meta/checksum.sha256' run.out
eq unlisted_no_download "$(nreq A.log part_)" 0
# an unknown language: the checksum list is missing
fetch xx 1 -o o404c
eq nolang_exit "$RC" 1
grep_ok nolang_message "xx_meta/checksum.sha256: HTTP 404.*is 'xx' a language of OSCAR-2301" run.out
stop_servers

# ---- 15. gated: 401 without a token, with a bad token; the token works ----------
TOKEN=hf_TestToken123secretXYZ
start_server A --token "$TOKEN"
fetch en 1 -o gated
eq gated_exit "$RC" 1
grep_ok gated_message 'checksum.sha256: HTTP 401 Unauthorized.*OSCAR-2301 is a gated dataset: accept its terms at https://huggingface.co/datasets/oscar-corpus/OSCAR-2301.*HF_TOKEN' run.out
eq gated_one_line "$(grep -c 'oscar-fetch:.*gated' run.out)" 1
HF_TOKEN=hf_wrong fetch en 1 -o gated
eq badtoken_exit "$RC" 1
grep_ok badtoken_message 'the token from \$HF_TOKEN was refused' run.out
ok badtoken_not_printed sh -c '! grep -q hf_wrong run.out'
HF_TOKEN=$TOKEN fetch en 1-2 -o gated
eq token_exit "$RC" 0
ok token_sha256 cmp gated/en_meta_part_2.jsonl.zst root/en_meta/en_meta_part_2.jsonl.zst
ok token_not_printed sh -c "! grep -q '$TOKEN' run.out"
# the hub's token file: $HF_HOME/token, then ~/.cache/huggingface/token
mkdir -p hfhome "$HOME/.cache/huggingface"
printf '%s\n' "$TOKEN" > hfhome/token
rm -rf gated; HF_HOME=$TDIR/hfhome fetch en 1 -o gated
eq token_hf_home "$RC" 0
printf '  %s  \n' "$TOKEN" > "$HOME/.cache/huggingface/token"
rm -rf gated; fetch en 1 -o gated
eq token_cache_file "$RC" 0
rm -f "$HOME/.cache/huggingface/token"
eq token_sent_as_bearer "$(q A.log "sorted(set(x['auth'] for x in r if x['status'] == 200))")" "['Bearer $TOKEN']"
stop_servers

# ---- 16. redirect to another host: the token does not follow --------------------
start_server B --fault 'en_meta_part_3.jsonl.zst:cut'
start_server A --token "$TOKEN" --redirect "*.zst=http://127.0.0.1:$PORT_B"
HF_TOKEN=$TOKEN fetch en 1-3 -o redir
eq redirect_exit "$RC" 0
ok redirect_sha256 sh -c 'for i in 1 2 3; do cmp redir/en_meta_part_$i.jsonl.zst root/en_meta/en_meta_part_$i.jsonl.zst || exit 1; done'
eq redirect_A_saw_token "$(q A.log "sorted(set((x['status'], x['auth']) for x in r))")" "[(200, 'Bearer $TOKEN'), (302, 'Bearer $TOKEN')]"
eq redirect_B_no_token "$(q B.log "[x['auth'] for x in r]")" "[None, None, None, None]"
eq redirect_B_resumed "$(q B.log "[x['range'] for x in r if 'part_3' in x['path']]")" "[None, 'bytes=$(( 777777 / 2 ))-']"
eq redirect_retry_via_A "$(nreq A.log part_3)" 2
ok redirect_token_not_printed sh -c "! grep -q '$TOKEN' run.out"
stop_servers

# ---- 17. --stdout: parts in order, verified, resumed across a cut ---------------
cat root/en_meta/en_meta_part_1.jsonl.zst root/en_meta/en_meta_part_2.jsonl.zst root/en_meta/en_meta_part_3.jsonl.zst > want123
start_server A --fault 'en_meta_part_2.jsonl.zst:cut'
"$F" --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress en 1-3 --stdout -P 3 > got123 2>run.out
eq stdout_exit "$?" 0
ok stdout_bytes cmp got123 want123
eq stdout_in_order "$(q A.log "[x['path'].split('_')[-1].split('.')[0] for x in r if 'part' in x['path']]")" "['1', '2', '2', '3']"
eq stdout_range "$(q A.log "[x['range'] for x in r if 'part_2' in x['path']]")" "[None, 'bytes=262144-']"
ok stdout_nothing_stored sh -c '! ls *.zst* >/dev/null 2>&1'
stop_servers
# a cut then a server that ignores Range: the bytes already written are skipped
start_server A --fault 'en_meta_part_2.jsonl.zst:cut:1:1000' --fault 'en_meta_part_2.jsonl.zst:norange:1'
"$F" --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress en 1-3 --stdout > got123 2>run.out
eq stdout_skip_exit "$?" 0
ok stdout_skip_bytes cmp got123 want123
eq stdout_skip_requests "$(q A.log "[(x['range'], x['status']) for x in r if 'part_2' in x['path']]")" "[(None, 200), ('bytes=1000-', 200)]"
stop_servers
# a checksum mismatch stops the stream and says where
SROOT=badroot start_server A
"$F" --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress en 2-4 --stdout > gotbad 2>run.out
RC=$?
eq stdout_bad_exit "$RC" 1
grep_ok stdout_bad_where 'en_meta_part_3.jsonl.zst: sha256 mismatch after its 777777 bytes were written to standard output.*the first 524288 bytes of the output came from verified parts' run.out
eq stdout_bad_stopped "$(nreq A.log part_4)" 0
eq stdout_bad_size "$(size gotbad)" $((524288 + 777777))
grep_ok stdout_bad_counts '3 files: 1 streamed .*, 0 already there, 1 failed, 1 not finished$' run.out
ok stdout_bad_no_part_claim sh -c '! grep -q "\.part files are kept" run.out'
stop_servers
# --frame: a begin and an end record, each a zstd frame; the end only after every part was verified
mkdir -p froot/en_meta
for i in 1 2; do printf '{"content":"part %s doc %s"}\n' $i 1 $i 2 | zstd -q > froot/en_meta/en_meta_part_$i.jsonl.zst; done
(cd froot/en_meta && sha256sum en_meta_part_*.jsonl.zst > checksum.sha256)
SROOT=froot start_server A
"$F" --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress en 1-2 --stdout --frame > framed.zst 2>run.out
eq frame_exit "$?" 0
eq frame_records "$(zstd -dcq framed.zst | sed -n '1p;$p' | tr '\n' ' ')" '{"symbert_stream":"begin","writer":"oscar-fetch"} {"symbert_stream":"end","writer":"oscar-fetch"} '
eq frame_documents "$(zstd -dcq framed.zst | grep -c '"content"')" 4
nok frame_needs_stdout "$F" en 1 --frame -o x
ok frame_read_by_filter sh -c "'$BIN/oscar-filter' -q < framed.zst > framed_kept.jsonl"
eq frame_filter_keeps_documents "$(grep -c '"content"' framed_kept.jsonl) $(grep -c symbert_stream framed_kept.jsonl)" "4 0"
stop_servers
cp froot/en_meta/en_meta_part_1.jsonl.zst froot/en_meta/en_meta_part_2.jsonl.zst    # its sha256 no longer matches
SROOT=froot start_server A
"$F" --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress en 1-2 --stdout --frame > framed_bad.zst 2>run.out
eq frame_bad_exit "$?" 1
eq frame_bad_no_end "$(zstd -dcq framed_bad.zst | tail -n 1)" '{"content":"part 1 doc 2"}'
nok frame_bad_refused_by_filter sh -c "'$BIN/oscar-filter' -q < framed_bad.zst"
grep_ok frame_bad_filter_msg "<stdin>: ends without the end record" "$TDIR/.out"
stop_servers

# ---- 18. interrupted: the .part stays and the next run resumes it ---------------
start_server A --rate 400000
"$F" --base-url "http://127.0.0.1:$PORT_A" --no-progress en 3 -o intr >run.out 2>&1 &
fp=$!
for _ in $(seq 100); do [ -s intr/en_meta_part_3.jsonl.zst.part ] && break; sleep 0.05; done
# a second run on the same folder meanwhile: the .part is locked
"$F" --base-url "http://127.0.0.1:$PORT_A" --no-progress en 3 -o intr >run2.out 2>&1
eq lock_second_run_exit "$?" 1
grep_ok lock_message 'en_meta_part_3.jsonl.zst.part: another oscar-fetch is downloading it now' run2.out
sleep 0.2
kill -INT $fp; wait $fp; RC=$?
eq interrupt_exit "$RC" 130
ok interrupt_part_kept test -s intr/en_meta_part_3.jsonl.zst.part -a ! -e intr/en_meta_part_3.jsonl.zst
have=$(size intr/en_meta_part_3.jsonl.zst.part)
stop_servers
start_server A
fetch en 3 -o intr
eq interrupt_resume_exit "$RC" 0
ok interrupt_resume_sha256 cmp intr/en_meta_part_3.jsonl.zst root/en_meta/en_meta_part_3.jsonl.zst
eq interrupt_resume_range "$(q A.log "[x['range'] for x in r if 'part' in x['path']]")" "['bytes=$have-']"

# ---- 19. progress display (forced, as on a terminal) -------------------------
"$F" --base-url "http://127.0.0.1:$PORT_A" --progress en 1-4 -o prog >run.out 2>&1
eq progress_exit "$?" 0
grep_ok progress_total_line 'total: [0-9]+/4 files' run.out
stop_servers

# ---- 20. vocab: the pinned sha256 is enforced --------------------------------
mkdir -p vroot vroot2
head -n 1000 "$VOCAB" > vroot/vocab.txt
cp "$VOCAB" vroot2/vocab.txt
SROOT=vroot start_server A
"$F" vocab -o vdir --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress >run.out 2>&1
eq vocab_bad_exit "$?" 1
grep_ok vocab_bad_message 'vocab.txt: sha256 mismatch \(got [0-9a-f]{64}, expected 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3\)' run.out
ok vocab_bad_nothing_kept test ! -e vdir/vocab.txt -a ! -e vdir/vocab.txt.part
stop_servers
SROOT=vroot2 start_server A
"$F" vocab -o vdir --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
eq vocab_exit "$?" 0
ok vocab_same cmp vdir/vocab.txt "$VOCAB"
# no -o: ${XDG_DATA_HOME:-~/.local/share}/symbert/vocab.txt
XDG_DATA_HOME=$TDIR/xdg "$F" vocab --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
eq vocab_default_exit "$?" 0
ok vocab_default_place cmp xdg/symbert/vocab.txt "$VOCAB"
"$F" vocab --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
ok vocab_home_place cmp "$HOME/.local/share/symbert/vocab.txt" "$VOCAB"
stop_servers

# ---- 21. ut1: unpack, per category, and unsafe archives refused --------------------
mkdir -p uroot
$PY - <<'EOF'
import io, tarfile
def add(t, name, data=None, kind="file", target=None):
    ti = tarfile.TarInfo(name)
    if kind == "dir":
        ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
    elif kind == "sym":
        ti.type = tarfile.SYMTYPE; ti.linkname = target; t.addfile(ti)
    elif kind == "hard":
        ti.type = tarfile.LNKTYPE; ti.linkname = target; t.addfile(ti)
    else:
        b = data.encode(); ti.size = len(b); t.addfile(ti, io.BytesIO(b))
cats = {"adult": {"domains": "example-adult.com\nxxx.test\n", "urls": "example-adult.com/path\n",
                  "expressions": "(porn|xxx)\n", "usage": "black\n"},
        "gambling": {"domains": "casino.test\n", "urls": "casino.test/play\n", "usage": "black\n"}}
with tarfile.open("uroot/blacklists.tar.gz", "w:gz") as t:
    add(t, "blacklists", kind="dir")
    for c, files in cats.items():
        add(t, "blacklists/" + c, kind="dir")
        for f, d in files.items():
            add(t, "blacklists/%s/%s" % (c, f), d)
    add(t, "blacklists/porn", kind="sym", target="adult")
    add(t, "blacklists/README", "UT1 test list\n")
for c, files in cats.items():
    with tarfile.open("uroot/%s.tar.gz" % c, "w:gz") as t:
        add(t, c, kind="dir")
        for f, d in files.items():
            add(t, "%s/%s" % (c, f), d)
evil = {
    "abs": [("/tmp/evil-abs-%s" % "x", "file")],
    "dotdot": [("blacklists/../evil", "file")],
    "symout": [("blacklists/adult", "dir"), ("blacklists/adult/domains", "file"), ("blacklists/esc", "sym", "../../outside")],
    "symabs": [("blacklists/esc", "sym", "/etc")],
    "through": [("blacklists/adult", "dir"), ("blacklists/ln", "sym", "adult"), ("blacklists/ln/domains", "file")],
    "hardout": [("blacklists/adult", "dir"), ("blacklists/adult/h", "hard", "../x")],
}
for name, ents in evil.items():
    with tarfile.open("uroot/evil-%s.tar.gz" % name, "w:gz") as t:
        for e in ents:
            if e[1] == "file": add(t, e[0], "evil\n")
            elif e[1] == "dir": add(t, e[0], kind="dir")
            elif e[1] == "sym": add(t, e[0], kind="sym", target=e[2])
            else: add(t, e[0], kind="hard", target=e[2])
EOF
SROOT=uroot start_server A
"$F" ut1 -o ut1 --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
eq ut1_exit "$?" 0
eq ut1_domains "$(cat ut1/adult/domains)" "$(printf 'example-adult.com\nxxx.test')"
ok ut1_layout test -f ut1/adult/urls -a -f ut1/adult/expressions -a -f ut1/gambling/domains -a -f ut1/README
eq ut1_link_inside "$(readlink ut1/porn)" adult
ok ut1_no_tmp sh -c '! ls -a ut1 | grep -q "^\.ut1-tmp"'
# a second run replaces the lists
echo stale > ut1/gambling/domains
"$F" ut1 -o ut1 --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
eq ut1_rerun "$(cat ut1/gambling/domains)" casino.test
"$F" ut1 -o ut1c --categories adult,gambling --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
eq ut1_categories_exit "$?" 0
ok ut1_categories_files test -f ut1c/adult/domains -a -f ut1c/gambling/urls -a ! -e ut1c/porn
eq ut1_categories_requests "$(q A.log "sorted(x['path'] for x in r if 'adult.tar' in x['path'] or 'gambling.tar' in x['path'])")" "['/adult.tar.gz', '/gambling.tar.gz']"
"$F" ut1 -o ut1d --categories nosuch --base-url "http://127.0.0.1:$PORT_A" --retry-base-ms 20 --no-progress >run.out 2>&1
eq ut1_missing_category_exit "$?" 1
grep_ok ut1_missing_category_message 'nosuch.tar.gz: HTTP 404' run.out
for e in abs dotdot symout symabs through hardout; do
  mkdir -p "uevil-$e"
  "$F" ut1 -o "uevil-$e" --categories "evil-$e" --base-url "http://127.0.0.1:$PORT_A" --no-progress >run.out 2>&1
  RC=$?
  eq "ut1_refuses_$e" "$RC" 1
  eq "ut1_refuses_${e}_nothing_installed" "$(ls -A "uevil-$e")" ""
  no_crash "ut1_refuses_${e}_no_crash"
done
grep_ok ut1_refuse_message 'refused|goes through a link' run.out
ok ut1_nothing_outside test ! -e "$TDIR/outside" -a ! -e "$TDIR/evil" -a ! -e /tmp/evil-abs-x
stop_servers

# ---- 21b. the disk refuses a write (file size limit: EFBIG from the writer thread) ---
start_server A
( ulimit -f 256; trap '' XFSZ; fetch en 3 -o fullout; echo "$RC" > fullout.rc ) 2>/dev/null
RC=$(cat fullout.rc 2>/dev/null || echo missing)
eq write_error_exit "$RC" 1
grep_ok write_error_names_file 'en_meta_part_3.jsonl.zst.*(large|space|write)' run.out
ok write_error_no_final_file test ! -e fullout/en_meta_part_3.jsonl.zst
no_crash write_error_no_crash
stop_servers

# ---- 22. usage ------------------------------------------------------------------
ok help "$F" --help
grep_ok help_text 'usage: oscar-fetch LANG PARTS' .out
"$F" en 5-1 >run.out 2>&1; eq usage_backwards_range "$?" 2
grep_ok usage_backwards_message "part range '5-1' goes backwards" run.out
"$F" en 1,x >run.out 2>&1; eq usage_bad_parts "$?" 2
"$F" en 1 -P 0 >run.out 2>&1; eq usage_bad_parallel "$?" 2
"$F" en >run.out 2>&1; eq usage_no_parts "$?" 2
"$F" en 1 --base-url ftp://x >run.out 2>&1; eq usage_bad_base "$?" 2
"$F" vocab extra >run.out 2>&1; eq usage_extra_arg "$?" 2
HF_TOKEN='bad token' "$F" en 1 --base-url http://127.0.0.1:1 >run.out 2>&1; eq token_with_space_refused "$?" 1
ok token_with_space_not_printed sh -c '! grep -q "bad token" run.out'
