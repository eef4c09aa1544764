# bare_clone_test.sh - what a clone with nothing beside it relies on: the
# tools find the vocab (--vocab, $SYMBERT_VOCAB, the place of `oscar-fetch
# vocab`, the copy shipped beside them) in the build and after `make
# install`; shard-pack --verify checks the manifest's vocab without being
# given one; the fuzz driver refuses a missing corpus; no code reads
# ../shared.  The order itself, step by step: tests/tokenizer_test.c.
. "$ROOT/tests/lib.sh"
SHIPPED=$(cd "$BIN/.." && pwd)/share/symbert/vocab.txt

# ---- the shipped copy: the repository's vocab, unmodified ----------------
eq vocab_lines "$(wc -l < "$ROOT/data/vocab/bert-base-uncased-vocab.txt")" 30522
eq vocab_bytes "$(wc -c < "$ROOT/data/vocab/bert-base-uncased-vocab.txt")" 231508
eq vocab_sha256 "$(sha256sum < "$ROOT/data/vocab/bert-base-uncased-vocab.txt" | cut -d' ' -f1)" \
   07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
ok shipped_copy_built cmp "$ROOT/data/vocab/bert-base-uncased-vocab.txt" "$SHIPPED"

# ---- every tool that takes a vocab finds it with nothing set ---------------
printf '{"content":"The quick brown fox."}\n{"content":"Hello world"}\n' > docs.jsonl
eq wordpiece_shipped "$("$BIN/wordpiece" --format ids docs.jsonl 2>&1 | tail -n 1)" "101 7592 2088 102"
ok pack "$BIN/wordpiece" -o docs.bin docs.jsonl
ok pack_shards "$BIN/shard-pack" docs.bin -o s --seq-len 8 -q
ok verify_shipped "$BIN/shard-pack" --verify s
ok show_shipped "$BIN/shard-pack" --show s 0
grep_ok show_shipped_text '^\[CLS\] the quick brown' "$TDIR/.out"

# ---- order: the fetched place over the shipped copy, $SYMBERT_VOCAB over
# both, --vocab over all; a named file that is missing is an error --------
{ cat "$VOCAB"; echo zzzextra; } > other.txt
mkdir -p "$HOME/.local/share/symbert" && cp other.txt "$HOME/.local/share/symbert/vocab.txt"
nok fetched_over_shipped "$BIN/wordpiece" docs.jsonl
grep_ok fetched_over_shipped_named "$HOME/.local/share/symbert/vocab.txt is not bert-base-uncased" "$TDIR/.out"
nok verify_uses_fetched "$BIN/shard-pack" --verify s
grep_ok verify_uses_fetched_says "made with vocab sha256 07eced.*not the given vocab" "$TDIR/.out"
grep_ok verify_uses_fetched_named "problem.*\(vocab: $HOME/.local/share/symbert/vocab.txt\)" "$TDIR/.out"
eq env_over_fetched "$(SYMBERT_VOCAB="$VOCAB" "$BIN/wordpiece" --format ids docs.jsonl 2>&1 | tail -n 1)" "101 7592 2088 102"
ok env_over_fetched_verify env SYMBERT_VOCAB="$VOCAB" "$BIN/shard-pack" --verify s
eq flag_over_env "$(SYMBERT_VOCAB=other.txt "$BIN/wordpiece" --vocab "$VOCAB" --format ids docs.jsonl 2>&1 | tail -n 1)" "101 7592 2088 102"
nok missing_env_is_error env SYMBERT_VOCAB=nowhere.txt "$BIN/wordpiece" docs.jsonl
grep_ok missing_env_named 'vocab nowhere.txt \(from \$SYMBERT_VOCAB\)' "$TDIR/.out"
nok missing_flag_is_error "$BIN/shard-pack" --show s 0 --vocab nowhere.txt
grep_ok missing_flag_named 'vocab nowhere.txt \(from --vocab\)' "$TDIR/.out"
rm -rf "$HOME/.local"

# ---- issue 14 item 6: a zeroed vocab_sha256 fails --verify without --vocab
cp -r s z
sed -i 's/"vocab_sha256": "[0-9a-f]*"/"vocab_sha256": "'"$(printf '0%.0s' $(seq 64))"'"/' z/manifest.json
grep_ok zeroed_manifest '"vocab_sha256": "0{64}"' z/manifest.json
nok verify_zeroed_sha "$BIN/shard-pack" --verify z
grep_ok verify_zeroed_sha_says 'made with vocab sha256 0{64}' "$TDIR/.out"

# ---- make install PREFIX=...: tools in PREFIX/bin find PREFIX/share/symbert
P="$TDIR/prefix"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" install PREFIX="$P" V="$VARIANT" \
    BUILDROOT="$(cd "$BIN/../.." && pwd)" DEPS=0 > install.log 2>&1
ok install_ran test -x "$P/bin/wordpiece" -a -x "$P/bin/shard-pack" -a -x "$P/bin/oscar-fetch"
ok install_vocab cmp "$ROOT/data/vocab/bert-base-uncased-vocab.txt" "$P/share/symbert/vocab.txt"
ok install_licence cmp "$ROOT/data/vocab/LICENSE" "$P/share/symbert/vocab-LICENSE"
eq installed_wordpiece "$("$P/bin/wordpiece" --format ids docs.jsonl 2>&1 | tail -n 1)" "101 7592 2088 102"
ok installed_verify "$P/bin/shard-pack" --verify s
mv "$P/share" "$P/elsewhere"
nok installed_without_share "$P/bin/wordpiece" docs.jsonl
grep_ok installed_without_share_says "none at .*$P/share/symbert/vocab.txt .*oscar-fetch vocab" "$TDIR/.out"
ok help_says_order sh -c '"$0" --help | tr -s " \n" "  " | grep -q "SYMBERT_VOCAB, .*oscar-fetch vocab.*ships with the tools"' "$BIN/wordpiece"
ok help_says_order_sp sh -c '"$0" --help | tr -s " \n" "  " | grep -q "SYMBERT_VOCAB, .*oscar-fetch vocab.*ships with the tools"' "$BIN/shard-pack"

# ---- the fuzz driver: no corpus is a failure, not "0 corpus files" -------
for f in "$TBUILD"/fuzz_*; do
  n=$(basename "$f"); n=${n#fuzz_}
  ok "corpus_$n" test -n "$(ls -A "$ROOT/tests/corpus/$n" 2>/dev/null)"
done
nok fuzz_missing_corpus env FUZZ_ITERS=1 "$TBUILD/fuzz_json" "$TDIR/no-corpus"
grep_ok fuzz_missing_corpus_says 'FAIL fuzz .*no-corpus' "$TDIR/.out"
mkdir -p empty-corpus
nok fuzz_empty_corpus env FUZZ_ITERS=1 "$TBUILD/fuzz_json" empty-corpus

# ---- nothing in the repository's code reads ../shared (users lack it) -----
hits=$(cd "$ROOT" && grep -rnI --exclude-dir=build --exclude-dir=bin --exclude-dir=.git --exclude-dir=.dev \
        --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh' --include='*.sh' --include='*.py' \
        --include='*.mk' --include=Makefile --include=run --include=plot -e '\.\./shared' . | grep -v '^./tests/bare_clone_test.sh:')
eq no_shared_reads "$hits" ""
