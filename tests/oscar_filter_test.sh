# oscar_filter_test.sh - bin/oscar-filter end to end: equivalence with the
# authors' logic (tests/authors_filter.py, Debian's python3) on generated
# OSCAR-2301-shaped corpora full of edge cases, byte-identity of kept lines,
# zstd output, stdin and several files, stats, errors (truncated/corrupt zstd,
# malformed lines, schema errors) with atomic output, custom rules, UT1 lists.
. "$ROOT/tests/lib.sh"
F="$BIN/oscar-filter"
GEN="$ROOT/tests/gen_filter_corpus.py"

# compare.py INPUT.jsonl PY_OUT.zst OURS.jsonl -> "py N ours N order ok|bad bytes ok|bad"
cat > compare.py <<'EOF'
import json, sys, zstandard
src, pyout, ours = sys.argv[1:4]
byid = {}
for l in open(src, "rb").read().split(b"\n"):
    if l.strip():
        byid[json.loads(l)["warc_headers"]["warc-record-id"]] = l
with open(pyout, "rb") as f:
    data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
py = [json.loads(l)["warc_headers"]["warc-record-id"] for l in data.split(b"\n") if l]
raw = open(ours, "rb").read()
lines = raw.split(b"\n")
ok_end = raw.endswith(b"\n") or raw == b""
lines = lines[:-1] if ok_end else lines
ids = [json.loads(l)["warc_headers"]["warc-record-id"] for l in lines]
same_bytes = ok_end and all(byid[i] == l for i, l in zip(ids, lines))
print("py %d ours %d order %s bytes %s" % (len(py), len(ids), "ok" if py == ids else "bad",
                                            "ok" if same_bytes else "bad"))
EOF

# --- help and usage
ok help "$F" --help
"$F" --nope >/dev/null 2>&1; eq usage_exit_2 "$?" 2
"$F" --harmful-pp 9:5 x >/dev/null 2>&1; eq bad_range_exit_2 "$?" 2

# --- equivalence on the edge-case corpus
$PY "$GEN" edge --n 4000 --seed 11 > edge.jsonl
$PY -c "import zstandard,sys; open('edge.jsonl.zst','wb').write(zstandard.ZstdCompressor(level=3).compress(open('edge.jsonl','rb').read()))"
$PY "$ROOT/tests/authors_filter.py" edge.jsonl.zst py.zst 2>py.log
ok run_edge "$F" edge.jsonl.zst -o ours.jsonl --stats stats.json
res=$($PY compare.py edge.jsonl py.zst ours.jsonl)
kept=$(echo "$res" | awk '{print $2}')
eq edge_same_ids_in_order "$(echo "$res" | awk '{print $6}')" ok
eq edge_same_count "$(echo "$res" | awk '{print $4}')" "$kept"
eq edge_kept_lines_byte_identical "$(echo "$res" | awk '{print $8}')" ok
# the corpus must exercise every rule, in both directions
got=$($PY -c "import json; s=json.load(open('stats.json')); print(s['documents'], s['kept'], all(v > 100 for k, v in s['dropped_by'].items() if k != 'ut1'), s['bytes_in'])")
eq edge_stats "$got" "4000 $kept True $(wc -c < edge.jsonl)"
[ "$kept" -gt 1000 ] && [ "$kept" -lt 3000 ] && pass edge_keeps_and_drops || fail edge_keeps_and_drops "kept $kept of 4000"

# --- equivalence on a realistic corpus (bench shape), two zstd frames
$PY "$GEN" bench --mb 6 --seed 5 > real.jsonl
head -n 500 real.jsonl | zstd -q -c > real.jsonl.zst
tail -n +501 real.jsonl | zstd -q -19 -c >> real.jsonl.zst
$PY "$ROOT/tests/authors_filter.py" real.jsonl.zst pyreal.zst 2>/dev/null
ok run_real "$F" -q real.jsonl.zst -o real.out
res=$($PY compare.py real.jsonl pyreal.zst real.out)
eq real_same_ids_and_bytes "$(echo "$res" | awk '{print $6, $8}')" "ok ok"

# --- zstd output, levels, threads
ok zstd_out "$F" -q -z edge.jsonl.zst -o ours.zst
zstd -dc ours.zst > ours.unz 2>/dev/null && cmp -s ours.unz ours.jsonl && pass zstd_out_same || fail zstd_out_same "differs"
ok zstd_l19_T0 "$F" -q -l 19 -T 0 edge.jsonl -o ours19.zst
zstd -dc ours19.zst 2>/dev/null | cmp -s - ours.jsonl && pass zstd_l19_same || fail zstd_l19_same "differs"

# --- stdin, plain and zstd; several files
"$F" -q < edge.jsonl > stdin.out && cmp -s stdin.out ours.jsonl && pass stdin_plain || fail stdin_plain "differs"
cat edge.jsonl.zst | "$F" -q - > stdin2.out && cmp -s stdin2.out ours.jsonl && pass stdin_zstd || fail stdin_zstd "differs"
"$F" -q edge.jsonl.zst edge.jsonl > two.out && cat ours.jsonl ours.jsonl | cmp -s - two.out && pass two_files || fail two_files "differs"

# --- rules off: every line comes out as it went in
"$F" -q --categories off --harmful-pp off --reject-warnings off edge.jsonl > all.out
cmp -s all.out edge.jsonl && pass rules_off_identity || fail rules_off_identity "output differs from input"

# --- custom rules against a generalised reference
"$F" -q --categories news,Adult --harmful-pp 100:1e4 --reject-warnings tiny,footer edge.jsonl > custom.out
want=$($PY - edge.jsonl <<'EOF'
import json, sys
n = 0
for l in open(sys.argv[1], "rb").read().split(b"\n"):
    if not l: continue
    md = json.loads(l)["metadata"]
    if any(c in ("news", "Adult") for c in (md.get("categories") or [])): continue
    pp = md.get("harmful_pp")
    if pp is None or not 100 < pp < 1e4: continue
    if any(w in ("tiny", "footer") for w in (md.get("quality_warnings") or [])): continue
    n += 1
print(n)
EOF
)
eq custom_rules_count "$(wc -l < custom.out | tr -d ' ')" "$want"

# --- invalid UTF-8 passes through unchanged; a last line without '\n' gets one
printf '{"content":"bad \377\376 \355\240\200 utf8","metadata":{"harmful_pp":300}}' > u8.jsonl
"$F" -q u8.jsonl > u8.out
{ cat u8.jsonl; printf '\n'; } | cmp -s - u8.out && pass invalid_utf8_passes || fail invalid_utf8_passes "bytes changed"

# --- errors: truncated and corrupt zstd, atomic output
head -c -7 edge.jsonl.zst > trunc.zst
"$F" trunc.zst -o t.out --stats t.json 2> t.err; rc=$?
[ $rc -eq 1 ] && pass truncated_exit_1 || fail truncated_exit_1 "exit $rc"
grep_ok truncated_names_file_offset 'trunc\.zst: .*byte [0-9]+' t.err
[ ! -e t.out ] && [ ! -e t.json ] && pass truncated_no_output || fail truncated_no_output "t.out or t.json exists"
ls -a | grep -q '\.tmp\.' && fail no_temp_left "$(ls -a | grep tmp)" || pass no_temp_left
$PY -c "
b = bytearray(open('edge.jsonl.zst','rb').read()); m = len(b) // 2
b[m:m+64] = bytes(64); open('corrupt.zst','wb').write(b)"
nok corrupt_fails "$F" corrupt.zst -o c.out
grep_ok corrupt_names_offset 'corrupt\.zst: .*byte [0-9]+' "$TDIR/.out"
[ ! -e c.out ] && pass corrupt_no_output || fail corrupt_no_output "c.out exists"

# --- malformed lines: error with file and line, or counted with --skip-malformed
{ head -n 2 edge.jsonl; echo '{"metadata":{"harmful_pp":300},}'; sed -n 3,5p edge.jsonl
  echo '{"metadata":{"harmful_pp":"300"}}'; echo '[1]'; } > bad.jsonl
"$F" bad.jsonl -o b.out 2> b.err; rc=$?
eq malformed_exit_1 "$rc" 1
grep_ok malformed_names_line 'bad\.jsonl: line 3: byte 31' b.err
[ ! -e b.out ] && pass malformed_no_output || fail malformed_no_output "b.out exists"
"$F" --skip-malformed bad.jsonl -o b.out --stats b.json 2> b.err; rc=$?
eq skip_malformed_exit_0 "$rc" 0
grep_ok skip_reports_line 'skipped bad\.jsonl: line 7: byte [0-9]+: metadata\.harmful_pp is a string' b.err
grep_ok skip_reports_object 'skipped bad\.jsonl: line 8: .*not an object' b.err
eq skip_stats "$($PY -c "import json; s=json.load(open('b.json')); print(s['malformed'], s['documents'])")" "3 5"
grep_ok summary_line 'oscar-filter: 5 documents, [0-9]+ kept .*3 malformed skipped' b.err

# --- empty input
: > empty.jsonl
"$F" -q empty.jsonl > e.out && [ ! -s e.out ] && pass empty_input || fail empty_input "non-empty or failed"

# --- UT1 lists
$PY "$GEN" ut1 ut1 --domains 2000 --seed 3
dom=$(sed -n 50p ut1/adult/domains); url=$(sed -n 3p ut1/phishing/urls)
cat > u.jsonl <<EOF
{"warc_headers":{"warc-record-id":"a","warc-target-uri":"https://www.$dom/page"},"metadata":{"harmful_pp":300}}
{"warc_headers":{"warc-record-id":"b","warc-target-uri":"http://$url/deeper?x=1"},"metadata":{"harmful_pp":300}}
{"warc_headers":{"warc-record-id":"c","warc-target-uri":"http://clean.example.org/free-sex/"},"metadata":{"harmful_pp":300}}
{"warc_headers":{"warc-record-id":"d","warc-target-uri":"http://clean.example.org/essex/"},"metadata":{"harmful_pp":300}}
{"warc_headers":{"warc-record-id":"e","warc-target-uri":"http://not$dom/"},"metadata":{"harmful_pp":300}}
{"warc_headers":{"warc-record-id":"f","warc-target-uri":"HTTP://WWW.${dom^^}.:8080/"},"content":"no metadata"}
{"warc_headers":{"warc-record-id":"g","warc-target-uri":"http://fine.example.org/"},"content":"no metadata"}
{"warc_headers":{"warc-record-id":"h"},"metadata":{"harmful_pp":300}}
EOF
"$F" --ut1 ut1 u.jsonl --stats u.json > u.out 2> u.err; rc=$?
eq ut1_exit_0 "$rc" 0
eq ut1_kept "$($PY -c "import json; print(' '.join(json.loads(l)['warc_headers']['warc-record-id'] for l in open('u.out')))")" "d e g h"
eq ut1_stats "$($PY -c "import json; s=json.load(open('u.json')); print(s['dropped_by']['ut1'], s['ut1_matches'], s['unannotated'], s['no_url'])")" \
   "4 {'domains': 2, 'urls': 1, 'expressions': 1} 2 1"
grep_ok ut1_load_line 'UT1 ut1: [0-9]+ domains' u.err
"$F" -q --ut1 ut1 --ut1-categories phishing u.jsonl > u2.out
eq ut1_categories_subset "$(wc -l < u2.out | tr -d ' ')" 7
nok ut1_missing_dir "$F" --ut1 nosuchdir u.jsonl
grep_ok ut1_missing_dir_message 'nosuchdir/.*no such UT1 category' "$TDIR/.out"

# ---- every output is checked before any is published: an error means no FILE
printf '%s\n' '{"content":"a","metadata":{"harmful_pp":50}}' '{"content":"b","metadata":{"harmful_pp":50}}' > two.jsonl
nok stats_unwritable "$F" two.jsonl -o pub.jsonl --stats /nonexistent-dir/s.json -q
grep_ok stats_unwritable_msg "/nonexistent-dir/s.json: cannot create" "$TDIR/.out"
ok stats_unwritable_no_file test ! -e pub.jsonl
nok out_unwritable "$F" two.jsonl -o /nonexistent-dir/x.jsonl -q
grep_ok out_unwritable_names_user_path "^oscar-filter: /nonexistent-dir/x.jsonl: cannot create" "$TDIR/.out"
ls -a | grep -q '\.tmp\.' && fail no_temp_after_output_errors "$(ls -a | grep tmp)" || pass no_temp_after_output_errors

# ---- --frame: a begin and an end record around the kept lines; records in the input are checked, never kept
ok frame_out "$F" --frame two.jsonl -o framed.jsonl -q
eq frame_lines "$(sed -n '1p;$p' framed.jsonl | tr '\n' ' ')" '{"symbert_stream":"begin","writer":"oscar-filter"} {"symbert_stream":"end","writer":"oscar-filter","lines":2} '
eq frame_kept "$(grep -c '"content"' framed.jsonl)" 2
ok frame_input_read "$F" framed.jsonl -o unframed.jsonl -q
ok frame_input_not_kept cmp unframed.jsonl two.jsonl
head -n 2 framed.jsonl > cutframe.jsonl
nok frame_input_cut "$F" cutframe.jsonl -o cf.jsonl -q
grep_ok frame_input_cut_msg "cutframe.jsonl: ends without the end record of the stream begun at line 1 \(after 1 lines\)" "$TDIR/.out"
ok frame_input_cut_no_file test ! -e cf.jsonl
{ head -n 2 framed.jsonl; tail -n 1 framed.jsonl; } > lostline.jsonl
nok frame_line_count "$F" lostline.jsonl -q
grep_ok frame_line_count_msg "lostline.jsonl:3: the end record says 2 lines, the stream begun at line 1 holds 1" "$TDIR/.out"
ok frame_zstd sh -c "'$F' --frame -z two.jsonl -q | zstd -dc | cmp - framed.jsonl"

