# shard_pack_test.sh - bin/shard-pack end to end on token streams written
# here (by Python, from the format in pipeline/tokstream.h): numpy reads the
# shards and finds the documents' ids concatenated; --verify, --show, merge,
# refusal without --force, bad input, and interrupted runs.
. "$ROOT/tests/lib.sh"
SP="$BIN/shard-pack"
[ -f "$VOCAB" ] || { fail vocab "no vocab at $VOCAB"; exit 1; }

# mkstream.py OUT NDOCS SEED [VOCABSHA]: random documents [CLS] ... [SEP]; ids
# are also written as OUT.ids (one document a line) for the checks below.
export PYTHONPATH="$ROOT/tests"
cat > mkstream.py <<'EOF'
import hashlib, random, sys, tokstream
out, ndocs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vocab = sys.argv[4] if len(sys.argv) > 4 else None
sha = hashlib.sha256(open(vocab, 'rb').read()).digest() if vocab else b'\xab' * 32
rng = random.Random(seed)
docs = []
for d in range(ndocs):
    n = rng.choice([0, 1, 5, 40, 200, 700]) if d % 3 else rng.randrange(0, 120)
    docs.append([101] + [rng.randrange(999, 30522) for _ in range(n)] + [102])
open(out, 'wb').write(tokstream.stream(30522, sha, docs))
open(out + '.ids', 'w').write(''.join(' '.join(map(str, ids)) + '\n' for ids in docs))
EOF
$PY mkstream.py a.bin 300 1 "$VOCAB"
$PY mkstream.py b.bin 200 2 "$VOCAB"
$PY mkstream.py other.bin 10 3          # another vocab (sha ab ab ...)

ok help "$SP" --help
grep_ok help_text "--val-samples" "$TDIR/.out"

# pack from stdin: numpy sees (N, 64) uint16 and the ids of the documents, concatenated
ok pack_stdin sh -c "'$SP' -o s1 --seq-len 64 --shard-samples 50 < a.bin 2> s1.log"
grep_ok summary_line "300 documents, [0-9]+ tokens -> [0-9]+ samples of 64" s1.log
cat > check.py <<'EOF'
import json, sys, numpy as np
d, L, streams = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
ids = [int(x) for s in streams for line in open(s + '.bin.ids') for x in line.split()]
m = json.load(open(d + '/manifest.json'))
S = len(ids) // L
assert m['format'] == 'symbert-shards' and m['version'] == 1 and m['seq_len'] == L and m['vocab_size'] == 30522
t = m['totals']
assert t['documents'] == sum(1 for s in streams for _ in open(s + '.bin.ids')), t
assert t['tokens'] == len(ids) and t['samples'] == S and t['dropped_tail_tokens'] == len(ids) % L, (t, len(ids))
tr = [np.load(d + '/' + s['name'], mmap_mode='r') for s in m['shards'] if s['split'] == 'train']
va = [np.load(d + '/' + s['name'], mmap_mode='r') for s in m['shards'] if s['split'] == 'validation']
for a in tr + va:
    assert a.dtype == np.dtype('<u2') and a.ndim == 2 and a.shape[1] == L and a.flags['C_CONTIGUOUS'], (a.dtype, a.shape)
chunks = np.array(ids[:S * L], dtype=np.uint16).reshape(S, L)
train = np.concatenate(tr) if tr else np.zeros((0, L), np.uint16)
val = np.concatenate(va) if va else np.zeros((0, L), np.uint16)
assert len(train) == t['train_samples'] and len(val) == t['validation_samples'] == m.get('val_samples_requested', 0)
if len(val) == 0:
    assert (train == chunks).all(), 'train is not the concatenation of the documents'
else:
    where = {chunks[i].tobytes(): i for i in range(S)}
    ti = [where[r.tobytes()] for r in train]; vi = [where[r.tobytes()] for r in val]
    assert sorted(ti + vi) == list(range(S)), 'train + validation is not every sample exactly once'
    assert vi == sorted(vi), 'validation not in stream order'
print('ok', len(train), len(val))
EOF
ok numpy_reads_concatenation $PY check.py s1 64 a
eq shard_count "$(ls s1/train-*.npy | wc -l)" "$($PY -c "import json; t=json.load(open('s1/manifest.json'))['totals']; print(-(-t['samples']//50))")"

# several files (streams concatenated), validation drawn, numpy agrees
ok pack_files_val "$SP" a.bin b.bin -o s2 --seq-len 64 --shard-samples 40 --val-samples 7 --seed 9 -q
ok numpy_val_partition $PY check.py s2 64 a b
ok pack_cat_stream sh -c "cat a.bin b.bin | '$SP' -o s3 --seq-len 64 --shard-samples 40 --val-samples 7 --seed 9 -q"
eq same_from_cat_and_files "$(cd s2 && sha256sum *.npy manifest.json | sha256sum)" "$(cd s3 && sha256sum *.npy manifest.json | sha256sum)"
"$SP" a.bin b.bin -o s4 --seq-len 64 --shard-samples 40 --val-samples 7 --seed 10 -q
nok other_seed_other_validation cmp -s s2/validation-00000.npy s4/validation-00000.npy

# --verify
ok verify "$SP" --verify s2
grep_ok verify_says_ok "ok: [0-9]+ shards" "$TDIR/.out"
ok verify_with_vocab "$SP" --verify s2 --vocab "$VOCAB"
cp -r s2 bad
printf 'X' | dd of=bad/train-00001.npy bs=1 seek=300 conv=notrunc 2>/dev/null
nok verify_corrupt "$SP" --verify bad
grep_ok verify_names_file "train-00001.npy: sha256" "$TDIR/.out"
rm -r bad; cp -r s2 bad; rm bad/validation-00000.npy
nok verify_missing "$SP" --verify bad
grep_ok verify_missing_msg "validation-00000.npy: cannot open" "$TDIR/.out"
nok verify_no_manifest "$SP" --verify mkstream.py
grep_ok verify_no_manifest_msg "no manifest.json" "$TDIR/.out"

# --show: a sample decoded with the vocab ("##" pieces glued), or its ids
tok() { awk -v w="$1" '$0 == w { print NR - 1; exit }' "$VOCAB"; }
cat > words.py <<'EOF'
import hashlib, sys, tokstream
vocab, out = sys.argv[1], sys.argv[2]
toks = [l.rstrip('\n') for l in open(vocab, encoding='utf-8')]
ix = {t: i for i, t in enumerate(toks)}
words = "the quick brown fox is play ##ing in the garden".split() * 4
ids = [101] + [ix[w] for w in words] + [102]
open(out, 'wb').write(tokstream.stream(len(toks), hashlib.sha256(open(vocab, 'rb').read()).digest(), [ids] * 3))
EOF
$PY words.py "$VOCAB" words.bin
ok pack_words "$SP" words.bin -o sw --seq-len 32 -q
ok show "$SP" --show sw 1 --vocab "$VOCAB"
grep_ok show_header "train sample 1 \(train-00000.npy row 1\), 32 ids" "$TDIR/.out"
grep_ok show_text "fox is playing in the garden" "$TDIR/.out"
grep_ok show_doc_break "^\[CLS\] the quick" "$TDIR/.out"
SYMBERT_VOCAB="$VOCAB" "$SP" --show sw 0 > show_env.txt 2>&1
grep_ok show_vocab_from_env "^\[CLS\] the quick brown fox" show_env.txt
ok show_ids "$SP" --show sw 0 --ids
grep_ok show_ids_text "^101 $(tok the) $(tok quick) " "$TDIR/.out"
nok show_out_of_range "$SP" --show sw 99 --ids
grep_ok show_range_msg "no train sample 99 \(the folder has [0-9]+" "$TDIR/.out"
nok show_no_validation "$SP" --show sw 0 --split validation --ids
printf 'a\nb\n' > tiny_vocab.txt
nok show_wrong_vocab "$SP" --show sw 0 --vocab tiny_vocab.txt
grep_ok show_wrong_vocab_msg "not the one these shards were made with" "$TDIR/.out"

# a folder that holds shards is refused without --force; --force replaces
nok refuse_existing "$SP" a.bin -o s1 --seq-len 64
grep_ok refuse_msg "already holds shards.*--force" "$TDIR/.out"
ok verify_after_refusal "$SP" --verify s1
ok force_replaces "$SP" a.bin -o s1 --seq-len 128 --force -q
eq force_seq_len "$($PY -c "import json; print(json.load(open('s1/manifest.json'))['seq_len'])")" 128
ok verify_after_force "$SP" --verify s1

# bad input: one clear line, non-zero exit, no files left
head -c 5000 a.bin > trunc.bin
nok truncated_stream "$SP" trunc.bin -o st
grep_ok truncated_msg "trunc.bin: token stream truncated" "$TDIR/.out"
eq truncated_leaves_nothing "$(ls -A st 2>/dev/null | wc -l)" 0
printf '{"content": "not tokens"}\n' > text.jsonl
nok not_a_stream "$SP" text.jsonl -o sx
grep_ok not_a_stream_msg "text.jsonl: not a wordpiece token stream" "$TDIR/.out"
nok mixed_vocab "$SP" a.bin other.bin -o sm
grep_ok mixed_vocab_msg "other.bin: made with another vocab" "$TDIR/.out"
eq mixed_vocab_leaves_nothing "$(ls -A sm 2>/dev/null | wc -l)" 0
nok too_short "$SP" words.bin -o ss --seq-len 4096
grep_ok too_short_msg "no complete sample" "$TDIR/.out"
nok val_takes_all "$SP" words.bin -o sv --seq-len 32 --val-samples 100
grep_ok val_takes_all_msg "nothing left to train on" "$TDIR/.out"
nok no_out "$SP" a.bin
grep_ok no_out_msg "pass -o DIR" "$TDIR/.out"
nok bad_number "$SP" a.bin -o sb --seq-len 12x
nok zero_seq_len "$SP" a.bin -o sb --seq-len 0
nok unknown_flag "$SP" --frobnicate
nok missing_file "$SP" nonexistent.bin -o sb
grep_ok missing_file_msg "nonexistent.bin: cannot open" "$TDIR/.out"

# merge: per-part folders into one; train in order, validation drawn from the merged train
"$SP" a.bin -o pa --seq-len 64 -q && "$SP" b.bin -o pb --seq-len 64 -q
ok merge "$SP" merge -o merged pa pb --shard-samples 30 --val-samples 5 --seed 3
grep_ok merge_summary "500 documents" "$TDIR/.out"
ok merge_verify "$SP" --verify merged
ok merge_numpy $PY - <<'EOF'
import json, numpy as np
def split(d, s):
    m = json.load(open(d + '/manifest.json'))
    a = [np.load(d + '/' + x['name']) for x in m['shards'] if x['split'] == s]
    return np.concatenate(a) if a else np.zeros((0, 64), np.uint16), m
pa, ma = split('pa', 'train'); pb, mb = split('pb', 'train')
tr, m = split('merged', 'train'); va, _ = split('merged', 'validation')
both = np.concatenate([pa, pb])
assert len(tr) + len(va) == len(both) and len(va) == 5
assert m['merged_from'] == ['pa', 'pb'] and m['totals']['documents'] == 500
assert m['totals']['dropped_tail_tokens'] == ma['totals']['dropped_tail_tokens'] + mb['totals']['dropped_tail_tokens']
rows = {r.tobytes() for r in both}
assert all(r.tobytes() in rows for r in tr) and all(r.tobytes() in rows for r in va)
assert not ({r.tobytes() for r in tr} & {r.tobytes() for r in va})
EOF
ok merge_link "$SP" merge --link -o linked pa pb
ok merge_link_verify "$SP" --verify linked
eq merge_link_is_link "$(stat -c %i linked/train-00000.npy)" "$(stat -c %i pa/train-00000.npy)"
eq merge_link_same_train "$(cat linked/train-*.npy | wc -c)" "$(cat pa/train-*.npy pb/train-*.npy | wc -c)"
nok merge_into_input "$SP" merge -o pa pa pb --force
grep_ok merge_into_input_msg "also an input" "$TDIR/.out"
ok merge_input_intact "$SP" --verify pa
"$SP" a.bin -o p128 --seq-len 128 -q
nok merge_seq_len_mismatch "$SP" merge -o m2 pa p128
grep_ok merge_mismatch_msg "seq_len" "$TDIR/.out"
nok merge_nothing "$SP" merge -o m3

# interrupted runs: SIGINT removes everything; after SIGKILL only hidden
# files remain (no manifest), and the next run clears them without --force
# hidden_at_least DIR N: waits (up to 20 s) until DIR holds N hidden files
hidden_at_least() { for _ in $(seq 200); do [ "$(ls -A "$1" 2>/dev/null | grep -c '^\.')" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
# slow writer: three streams, a pause, a fourth (one process, so that killing it ends it)
cat > slow.py <<'EOF'
import sys, time
with open(sys.argv[1], 'wb') as f:
    for _ in range(3): f.write(open('a.bin', 'rb').read())
    f.flush(); time.sleep(4); f.write(open('b.bin', 'rb').read())
EOF
mkfifo fifo fifo2
$PY slow.py fifo 2>/dev/null &   # (its traceback when the reader goes must not join a PASS line)
writer=$!
"$SP" fifo -o si --seq-len 16 --shard-samples 20 2> si.log &
sp=$!
hidden_at_least si 2
visible=$(ls si 2>/dev/null | wc -l); hidden=$(ls -A si 2>/dev/null | grep -c '^\.')
kill -INT $sp; wait $sp; rc=$?; kill $writer 2>/dev/null; wait $writer 2>/dev/null
eq sigint_mid_run_nothing_visible "$visible" 0
[ "$hidden" -ge 2 ] && pass sigint_mid_run_hidden_shards || fail sigint_mid_run_hidden_shards "$hidden hidden files"
eq sigint_exit 130 "$rc"
grep_ok sigint_msg "interrupted: no shard written" si.log
eq sigint_leaves_nothing "$(ls -A si | wc -l)" 0
$PY slow.py fifo2 2>/dev/null &
writer=$!
"$SP" fifo2 -o sk --seq-len 16 --shard-samples 20 2> sk.log &
sp=$!
hidden_at_least sk 2
kill -KILL $sp; wait $sp 2>/dev/null; kill $writer 2>/dev/null; wait $writer 2>/dev/null
eq sigkill_no_manifest "$(ls sk | wc -l)" 0
[ "$(ls -A sk | wc -l)" -ge 1 ] && pass sigkill_left_hidden || fail sigkill_left_hidden "expected hidden leftovers"
ok rerun_after_kill "$SP" a.bin -o sk --seq-len 16 --shard-samples 20 -q
eq rerun_cleared_leftovers "$(ls -A sk | grep -c '^\.')" 0
ok rerun_verify "$SP" --verify sk

# ---- the trailer: a stream without it (its writer died) is refused and publishes nothing
head -c $(( $(stat -c %s a.bin) - 32 )) a.bin > cut.bin
nok no_trailer_refused "$SP" cut.bin -o nt --seq-len 64
grep_ok no_trailer_msg "cut.bin: token stream ends at byte [0-9]+ without its trailer.*--accept-partial" "$TDIR/.out"
ok no_trailer_nothing_published test ! -e nt
ok accept_partial "$SP" cut.bin -o ap --seq-len 64 --accept-partial
grep_ok accept_partial_says "no trailer after document 300" "$TDIR/.out"
ok accept_partial_verify "$SP" --verify ap
cat cut.bin b.bin > cutcat.bin
nok header_after_cut_stream "$SP" cutcat.bin -o nt2 --seq-len 64
grep_ok header_after_cut_msg "a header at byte [0-9]+ follows a stream without its trailer" "$TDIR/.out"
$PY - <<'EOF'
b = bytearray(open('a.bin', 'rb').read()); b[-24] ^= 1     # trailer: one document more or less
open('badtrailer.bin', 'wb').write(bytes(b))
EOF
nok trailer_mismatch "$SP" badtrailer.bin -o nt3 --seq-len 64
grep_ok trailer_mismatch_msg "the trailer at byte [0-9]+ counts 30[01] documents.*holds 300" "$TDIR/.out"
# a cut inside the first header is named as such; a vocab size beyond u16 names the file
head -c 20 a.bin > cuthead.bin
nok cut_in_header "$SP" cuthead.bin -o ch
grep_ok cut_in_header_msg "cuthead.bin: token stream truncated inside the header that starts at byte 0: it ends at byte 20" "$TDIR/.out"
ok cut_in_header_no_document sh -c "! grep -q 'document' '$TDIR/.out'"
$PY -c "
import struct; b = bytearray(open('a.bin','rb').read()); struct.pack_into('<I', b, 8, 70000); open('v70k.bin','wb').write(bytes(b))"
nok vocab_70000 "$SP" v70k.bin -o v7
grep_ok vocab_70000_names_file "v70k.bin: the token stream header at byte 0 says vocab size 70000" "$TDIR/.out"
eq failed_runs_leave_no_folder "$(ls -d nt nt2 nt3 ch v7 2>/dev/null | wc -l)" 0

# ---- a signal while the input pipe is idle: out within a second, 128+signal, nothing left
cat > idle.py <<'EOF'
import sys, time
with open(sys.argv[1], 'wb') as f:
    f.write(open('a.bin', 'rb').read()[:-32]); f.flush(); time.sleep(30)
EOF
for sig in TERM INT; do
  rm -f idlefifo; mkfifo idlefifo
  $PY idle.py idlefifo 2>/dev/null & writer=$!
  "$SP" idlefifo -o idle$sig --seq-len 16 --shard-samples 20 2> idle.log & sp=$!
  hidden_at_least idle$sig 2
  sleep 0.5
  t0=$(date +%s%N); kill -$sig $sp; wait $sp; rc=$?; t1=$(date +%s%N)
  kill $writer 2>/dev/null; wait $writer 2>/dev/null
  [ $(( (t1 - t0) / 1000000 )) -lt 1500 ] && pass idle_sig${sig}_within_a_second || fail idle_sig${sig}_within_a_second "$(( (t1 - t0) / 1000000 )) ms"
  eq idle_sig${sig}_exit "$rc" "$([ $sig = TERM ] && echo 143 || echo 130)"
  ok idle_sig${sig}_nothing_left test ! -e idle$sig
done

# ---- --verify checks every total it can: documents, dropped tails, shard_samples, validation
edit() {  # edit DIR EXPR: copy s2 to DIR and change its manifest with a Python expression on m
  rm -rf "$1"; cp -r s2 "$1"
  $PY -c "import json; m = json.load(open('$1/manifest.json')); $2; json.dump(m, open('$1/manifest.json', 'w'))"
}
edit vdocs "m['totals']['documents'] *= 10"
nok verify_documents "$SP" --verify vdocs
grep_ok verify_documents_msg "totals.documents 5000 cannot be" "$TDIR/.out"
edit vdocs0 "m['totals']['documents'] = 0"
nok verify_documents_zero "$SP" --verify vdocs0
edit vtail "t = m['totals']; t['dropped_tail_tokens'] += 64; t['tokens'] += 64"
nok verify_tail "$SP" --verify vtail
grep_ok verify_tail_msg "dropped_tail_tokens [0-9]+ is more than 1 stream can drop" "$TDIR/.out"
edit vshs "m['shard_samples'] = 10"
nok verify_shard_samples "$SP" --verify vshs
grep_ok verify_shard_samples_msg "more than shard_samples 10" "$TDIR/.out"
edit vval "m['val_samples_requested'] = 8"
nok verify_val_requested "$SP" --verify vval
grep_ok verify_val_requested_msg "validation_samples 7 but val_samples_requested 8" "$TDIR/.out"
ok verify_merged_still_ok "$SP" --verify merged

# ---- --verify counts documents by the vocab's own [CLS] id (id 2 here, not bert's 101)
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nquick\nbrown\nfox\n' > cls2_vocab.txt
for i in $(seq 1 40); do echo '{"content":"the quick brown fox the fox"}'; done > cls2.jsonl
"$BIN/wordpiece" --vocab cls2_vocab.txt --any-vocab cls2.jsonl 2>/dev/null | "$SP" -o cls2 --seq-len 8 --val-samples 0 -q
ok verify_other_cls_id "$SP" --verify cls2 --vocab cls2_vocab.txt
printf '[PAD]\n[UNK]\n[SEP]\n[MASK]\nthe\n' > nocls_vocab.txt
nok verify_vocab_without_cls "$SP" --verify cls2 --vocab nocls_vocab.txt
