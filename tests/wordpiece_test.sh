# wordpiece_test.sh - bin/wordpiece end to end: parity with Hugging Face on
# the committed corpus (every document, in the opt and the asan variant),
# -j N, formats, inputs, errors, vocab search, memory.
. "$ROOT/tests/lib.sh"
WP="$BIN/wordpiece"
D="$ROOT/tests/data/wordpiece"
export HOME="$TDIR/home"; unset SYMBERT_VOCAB XDG_DATA_HOME; mkdir -p "$HOME"

ok help "$WP" --help
grep_ok help_text 'usage: wordpiece' "$TDIR/.out"

# ---- parity: every document of the corpus, against tokenizers 0.23.2 ----
"$WP" --vocab "$VOCAB" --format ids "$D/corpus.jsonl.zst" > ids.txt 2> err.txt; rc=$?
zstd -dcq "$D/hf_ids.txt.zst" > hf.txt
n=$(wc -l < hf.txt); m=$(wc -l < ids.txt)
same=$(awk 'NR==FNR { a[FNR] = $0; next } a[FNR] == $0 { s++ } END { print s + 0 }' hf.txt ids.txt)
if [ $rc -eq 0 ] && [ "$n" -ge 5000 ] && [ "$m" -eq "$n" ] && [ "$same" -eq "$n" ]; then
  pass "parity: $same/$n documents identical to Hugging Face (all documents, $VARIANT)"
else
  first=$(awk 'NR==FNR { a[FNR] = $0; next } a[FNR] != $0 { print FNR; exit }' hf.txt ids.txt)
  fail parity "exit $rc, $same of $n documents identical ($m written); first differing document: line $first; $(head -c 200 err.txt)"
fi

# ---- -j N: byte-identical output ----
"$WP" --vocab "$VOCAB" --format ids -j 4 "$D/corpus.jsonl.zst" > ids4.txt 2>/dev/null
eq ids_j4_identical "$(cmp -s ids.txt ids4.txt && echo same)" same
"$WP" --vocab "$VOCAB" "$D/corpus.jsonl.zst" > b1.bin 2>/dev/null
"$WP" --vocab "$VOCAB" -j 3 "$D/corpus.jsonl.zst" > b3.bin 2>/dev/null
eq bin_j3_identical "$(cmp -s b1.bin b3.bin && echo same)" same

# ---- the binary stream: header and records match the ids ----
cat > check_bin.py <<'EOF'
import hashlib, struct, sys, tokstream
b = open(sys.argv[1], "rb").read()
ids = [l.split() for l in open(sys.argv[2])]
sha = hashlib.sha256(open(sys.argv[3], "rb").read()).digest()
assert b[:4] == b"SBTK", "magic"
ver, nv, res = struct.unpack_from("<III", b, 4)
assert (ver, nv, res) == (2, 30522, 0), (ver, nv, res)
assert b[16:48] == sha, "vocab sha256"
pos, k, docs = 48, 0, []
while pos < len(b) - 32:
    (n,) = struct.unpack_from("<I", b, pos)
    doc = struct.unpack_from("<%dH" % n, b, pos + 4)
    assert [str(x) for x in doc] == ids[k], "document %d" % k
    pos += 4 + 2 * n; k += 1; docs.append(doc)
assert pos == len(b) - 32 and k == len(ids), (pos, len(b), k, len(ids))
assert b[pos:] == tokstream.trailer(docs), "trailer: documents, tokens, checksum"
print("ok", k)
EOF
ok bin_format_matches_ids env PYTHONPATH="$ROOT/tests" "$PY" check_bin.py b1.bin ids.txt "$VOCAB"

# ---- inputs: plain, stdin, several files, text mode, nested field ----
zstd -dcq "$D/corpus.jsonl.zst" > corpus.jsonl
head -n 300 corpus.jsonl > part1.jsonl
sed -n '301,500p' corpus.jsonl > part2.jsonl
"$WP" --vocab "$VOCAB" --format ids < part1.jsonl > p1.txt 2>/dev/null
"$WP" --vocab "$VOCAB" --format ids part2.jsonl > p2.txt 2>/dev/null
eq stdin_plain_same_as_zstd "$(cat p1.txt p2.txt | cmp -s - <(head -n 500 ids.txt) && echo same)" same
"$WP" --vocab "$VOCAB" --format ids part1.jsonl - < part2.jsonl > p12.txt 2>/dev/null
eq several_files_in_order "$(cat p1.txt p2.txt | cmp -s - p12.txt && echo same)" same
"$WP" --vocab "$VOCAB" part1.jsonl part2.jsonl > p12.bin 2>/dev/null
"$WP" --vocab "$VOCAB" part1.jsonl > p1.bin 2>/dev/null
"$WP" --vocab "$VOCAB" part2.jsonl > p2.bin 2>/dev/null
eq several_files_one_header_one_trailer "$(stat -c %s p12.bin)" "$(( $(stat -c %s p1.bin) + $(stat -c %s p2.bin) - 48 - 32 ))"

printf 'Hello world\n\nCaf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87!\r\nab\xff\xfe''cd [MASK]x' > lines.txt
printf '%s\n' '{"content": "Hello world"}' '{"content": ""}' '{"content": "Café 中文!\r"}' '{"content": "abcd [MASK]x"}' > lines.jsonl
"$WP" --vocab "$VOCAB" --input text --format ids lines.txt > t1.txt 2>/dev/null
"$WP" --vocab "$VOCAB" --format ids lines.jsonl > t2.txt 2>/dev/null
eq text_mode_docs "$(wc -l < t1.txt)" 4
eq text_mode_same_as_jsonl "$(cmp -s t1.txt t2.txt && echo same)" same
eq empty_document "$(sed -n 2p t1.txt)" "101 102"
eq invalid_utf8_dropped "$(sed -n 4p t1.txt)" "$(printf 'abcd [MASK]x\n' | "$WP" --vocab "$VOCAB" --input text --format ids 2>/dev/null)"
eq hello_world_ids "$(sed -n 1p t1.txt)" "101 7592 2088 102"

printf '%s\n' '{"meta": {"text": "Hello world"}, "content": "other"}' > nested.jsonl
eq nested_field "$("$WP" --vocab "$VOCAB" --field meta.text --format ids nested.jsonl 2>/dev/null)" "101 7592 2088 102"
printf '%s\n' '{"content": "Hello world"}' '' '   ' '{"content": "Hello world"}' > blank.jsonl
eq blank_lines_skipped "$("$WP" --vocab "$VOCAB" --format ids blank.jsonl 2>/dev/null | wc -l)" 2
: > empty.jsonl
eq empty_input_bin_header_and_trailer "$("$WP" --vocab "$VOCAB" < empty.jsonl 2>/dev/null | wc -c)" 80
eq empty_input_ids_nothing "$("$WP" --vocab "$VOCAB" --format ids < empty.jsonl 2>/dev/null | wc -c)" 0

# ---- errors: file and line, non-zero exit, no output file ----
printf '%s\n' '{"content": "a"}' '{"content": "b"}' '{"content": "c", }' '{"content": "d"}' > bad.jsonl
nok malformed_json_fails "$WP" --vocab "$VOCAB" -o out.bin bad.jsonl
grep_ok malformed_json_names_line 'bad\.jsonl:3: malformed JSON' "$TDIR/.out"
eq malformed_json_no_output "$(ls -A | grep -c -e '^out\.bin$' -e '\.tmp\.')" 0
nok malformed_json_fails_j2 "$WP" --vocab "$VOCAB" -j 2 bad.jsonl
grep_ok malformed_json_names_line_j2 'bad\.jsonl:3:' "$TDIR/.out"
{ head -n 3000 corpus.jsonl; echo '{"content": x}'; head -n 100 corpus.jsonl; } > badlate.jsonl
"$WP" --vocab "$VOCAB" --format ids badlate.jsonl > e1.txt 2>/dev/null; r1=$?
"$WP" --vocab "$VOCAB" --format ids -j 3 badlate.jsonl > e3.txt 2> e3.err; r3=$?
eq error_after_chunks_same_output_j3 "$r1 $r3 $(cmp -s e1.txt e3.txt && echo same) $(wc -l < e1.txt)" "1 1 same 3000"
grep_ok error_after_chunks_names_line 'badlate\.jsonl:3001: malformed JSON' e3.err
printf '%s\n' '{"content": "a"}' '{"text": "b"}' > nofield.jsonl
nok missing_field_fails "$WP" --vocab "$VOCAB" nofield.jsonl
grep_ok missing_field_message 'nofield\.jsonl:2: field "content" is absent' "$TDIR/.out"
printf '%s\n' '{"content": 5}' > notstring.jsonl
nok field_not_string_fails "$WP" --vocab "$VOCAB" notstring.jsonl
head -c 100000 "$D/corpus.jsonl.zst" > trunc.jsonl.zst
nok truncated_zstd_fails "$WP" --vocab "$VOCAB" -o trunc.bin trunc.jsonl.zst
grep_ok truncated_zstd_names_file 'trunc\.jsonl\.zst' "$TDIR/.out"
nok missing_input_fails "$WP" --vocab "$VOCAB" no_such_file.jsonl
grep_ok missing_input_named 'no_such_file\.jsonl' "$TDIR/.out"
nok unknown_option_fails "$WP" --vocab "$VOCAB" --frobnicate
nok bad_jobs_fails "$WP" --vocab "$VOCAB" -j 0
nok bad_format_fails "$WP" --vocab "$VOCAB" --format csv

# ---- -o writes the same bytes, atomically ----
ok output_file "$WP" --vocab "$VOCAB" -o out_ok.bin part1.jsonl
eq output_file_same_as_stdout "$(cmp -s out_ok.bin p1.bin && echo same)" same
eq no_temp_files_left "$(ls -A | grep -c '\.tmp\.')" 0

# ---- the vocab: search order, sha256 check ----
# nothing given or fetched: the copy shipped beside the tools (BIN/../share/symbert)
eq vocab_shipped "$("$WP" --format ids lines.jsonl 2>/dev/null | head -n 1)" "101 7592 2088 102"
mkdir -p lone/bin && cp "$WP" lone/bin/wordpiece      # a copy with no share/ beside it
nok no_vocab_fails lone/bin/wordpiece lines.jsonl
grep_ok no_vocab_says_how 'no vocab: .*lone/share/symbert/vocab.txt.*oscar-fetch vocab' "$TDIR/.out"
eq vocab_from_env "$(SYMBERT_VOCAB="$VOCAB" "$WP" --format ids lines.jsonl 2>/dev/null | head -n 1)" "101 7592 2088 102"
mkdir -p xdg/symbert && cp "$VOCAB" xdg/symbert/vocab.txt
eq vocab_default_path "$(XDG_DATA_HOME="$TDIR/xdg" "$WP" --format ids lines.jsonl 2>/dev/null | head -n 1)" "101 7592 2088 102"
mkdir -p "$HOME/.local/share/symbert" && cp "$VOCAB" "$HOME/.local/share/symbert/vocab.txt"
eq vocab_home_default "$("$WP" --format ids lines.jsonl 2>/dev/null | head -n 1)" "101 7592 2088 102"
{ cat "$VOCAB"; echo "zzzextra"; } > other_vocab.txt
nok other_vocab_refused "$WP" --vocab other_vocab.txt lines.jsonl
grep_ok other_vocab_message 'not bert-base-uncased.*--any-vocab' "$TDIR/.out"
eq other_vocab_allowed "$("$WP" --vocab other_vocab.txt --any-vocab --format ids lines.jsonl 2>/dev/null | head -n 1)" "101 7592 2088 102"

# ---- -v summary ----
"$WP" --vocab "$VOCAB" -v part1.jsonl > /dev/null 2> verbose.txt
grep_ok verbose_summary '300 docs, [0-9]+ tokens' verbose.txt

# ---- memory does not grow with the number of documents (opt only: ASan
#      reserves terabytes of address space, so no limit can be set there) ----
if [ "$VARIANT" = opt ]; then
  doc='{"content": "The quick brown fox jumps over the lazy dog, again and again. [SEP] 3.14"}'
  per=$(echo "$doc" | "$WP" --vocab "$VOCAB" 2>/dev/null | wc -c)
  got=$( (ulimit -v 100000; yes "$doc" | head -n 1500000 | "$WP" --vocab "$VOCAB" 2>/dev/null | wc -c) )
  eq memory_flat_1500000_docs_in_100MB "$got" $(( 80 + 1500000 * (per - 80) ))
else
  echo "note: the memory-limit check runs in the opt variant only"
fi

# ---- stream records (pipeline/frame.h): read, never tokenised; a begin without its end is an error
{ echo '{"symbert_stream":"begin","writer":"t"}'; cat part1.jsonl; echo '{"symbert_stream":"end","writer":"t","lines":300}'; } > framed.jsonl
"$WP" --vocab "$VOCAB" framed.jsonl > framed.bin 2>/dev/null
eq framed_same_as_plain "$(cmp -s framed.bin p1.bin && echo same)" same
"$WP" --vocab "$VOCAB" -j 3 framed.jsonl framed.jsonl > framed2.bin 2>/dev/null
"$WP" --vocab "$VOCAB" part1.jsonl part1.jsonl > plain2.bin 2>/dev/null
eq framed_twice_j3 "$(cmp -s framed2.bin plain2.bin && echo same)" same
head -n 200 framed.jsonl > cutframed.jsonl
"$WP" --vocab "$VOCAB" cutframed.jsonl > cutframed.bin 2> cutframed.err; rc=$?
eq cut_input_fails "$rc" 1
grep_ok cut_input_msg "cutframed.jsonl: ends without the end record of the stream begun at line 1 \(after 199 lines\)" cutframed.err
trailer() { $PY -c "import sys; b = open(sys.argv[1], 'rb').read(); print('trailer' if b[-32:-28] == b'SBTE' else 'none')" "$1"; }
eq cut_input_no_trailer "$(trailer cutframed.bin)" none
eq whole_input_trailer "$(trailer framed.bin)" trailer
nok cut_input_o "$WP" --vocab "$VOCAB" -o cut_o.bin cutframed.jsonl
ok cut_input_o_no_file test ! -e cut_o.bin
{ head -n 100 framed.jsonl; echo '{"symbert_stream":"end","writer":"t","lines":300}'; } > shortframe.jsonl
nok frame_count_mismatch "$WP" --vocab "$VOCAB" shortframe.jsonl
grep_ok frame_count_mismatch_msg "shortframe.jsonl:101: the end record says 300 lines, the stream begun at line 1 holds 99" "$TDIR/.out"
# the trailer comes only after input that ended cleanly: not after a truncated zstd file
"$WP" --vocab "$VOCAB" trunc.jsonl.zst > trunc_out.bin 2>/dev/null
eq no_trailer_after_truncated_input "$(trailer trunc_out.bin)" none
"$WP" --vocab "$VOCAB" -j 2 badlate.jsonl > badlate.bin 2>/dev/null
eq no_trailer_after_bad_line "$(trailer badlate.bin)" none

