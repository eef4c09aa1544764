# pipe_test.sh - the whole pipe on the bundled sample (data/):
# oscar-filter --ut1 | wordpiece | shard-pack, checked stage by stage against
# what data/gen_sample.py computed independently; -j 2 gives the same shards;
# per-part runs merged equal one run; data/demo.sh (without training) runs.
. "$ROOT/tests/lib.sh"
SAMPLE="$ROOT/data/sample/en_meta_part_1.jsonl.zst"
for t in oscar-filter wordpiece shard-pack; do
  [ -x "$BIN/$t" ] || { fail "tool_$t" "$BIN/$t not built"; exit 1; }
done
[ -f "$VOCAB" ] || { fail vocab "no vocab at $VOCAB"; exit 1; }

# the committed sample is what the generator writes (compare decompressed: zstd versions may differ)
ok regenerate $PY "$ROOT/data/gen_sample.py" --sample-dir gen --ut1-dir genut1
ok sample_is_generated sh -c "zstd -dc '$SAMPLE' > a.jsonl && zstd -dc gen/en_meta_part_1.jsonl.zst > b.jsonl && cmp a.jsonl b.jsonl"
ok expected_is_generated cmp gen/expected_kept.txt "$ROOT/data/sample/expected_kept.txt"
ok expected_stats_generated cmp gen/expected_stats.json "$ROOT/data/sample/expected_stats.json"
ok ut1_is_generated diff -r genut1 "$ROOT/data/ut1"

# stage 1: the filter keeps exactly the documents the rules keep, and counts each rule
ok filter "$BIN/oscar-filter" "$SAMPLE" --ut1 "$ROOT/data/ut1" --stats stats.json -o kept.jsonl -q
ok filter_kept_ids $PY - <<EOF
import json
got = [json.loads(l)['warc_headers']['warc-record-id'] for l in open('kept.jsonl')]
want = open('$ROOT/data/sample/expected_kept.txt').read().split()
assert got == want, (len(got), len(want), [x for x in got if x not in want][:3], [x for x in want if x not in got][:3])
EOF
ok filter_stats $PY - <<EOF
import json
s = json.load(open('stats.json')); e = json.load(open('$ROOT/data/sample/expected_stats.json'))
for k in ('documents', 'kept', 'dropped'):
    assert s[k] == e[k], (k, s[k], e[k])
assert {k: s['dropped_by'].get(k, 0) for k in e['dropped_by']} == e['dropped_by'], (s['dropped_by'], e['dropped_by'])
assert all(v > 0 for v in e['dropped_by'].values())
EOF

# stage 2+3 as one pipe; the shards hold the documents' ids, concatenated
"$BIN/oscar-filter" "$SAMPLE" --ut1 "$ROOT/data/ut1" --frame -q | "$BIN/wordpiece" --vocab "$VOCAB" \
  | "$BIN/shard-pack" -o shards --seq-len 128 --shard-samples 100 --val-samples 6 --seed 5 2> pack.log
eq pipe_exit "${PIPESTATUS[*]}" "0 0 0"
grep_ok pack_summary "364 documents, [0-9]+ tokens -> [0-9]+ samples of 128" pack.log
ok ids_reference "$BIN/wordpiece" --vocab "$VOCAB" --format ids kept.jsonl -o ids.txt
ok shards_equal_concatenation $PY - <<'EOF'
import json, numpy as np
ids = [int(x) for line in open('ids.txt') for x in line.split()]
lines = open('ids.txt').read().split('\n')[:-1]
assert len(lines) == 364 and all(l.startswith('101 ') and l.endswith(' 102') for l in lines)
m = json.load(open('shards/manifest.json')); t = m['totals']; L = 128; S = len(ids) // L
assert t['documents'] == 364 and t['tokens'] == len(ids) and t['samples'] == S and t['dropped_tail_tokens'] == len(ids) % L, t
load = lambda s: np.concatenate([np.load('shards/' + x['name'], mmap_mode='r') for x in m['shards'] if x['split'] == s])
tr, va = load('train'), load('validation')
chunks = np.array(ids[:S * L], np.uint16).reshape(S, L)
where = {chunks[i].tobytes(): i for i in range(S)}
ti = [where[r.tobytes()] for r in tr]; vi = [where[r.tobytes()] for r in va]
assert len(va) == 6 and sorted(ti + vi) == list(range(S)) and vi == sorted(vi)
EOF
ok verify "$BIN/shard-pack" --verify shards --vocab "$VOCAB"
ok show "$BIN/shard-pack" --show shards 2 --split validation --vocab "$VOCAB"
grep_ok show_is_english "validation sample 2 .*128 ids" "$TDIR/.out"
grep_ok show_words " the " "$TDIR/.out"

# wordpiece -j 2 in the pipe: the same shards, byte for byte
"$BIN/oscar-filter" "$SAMPLE" --ut1 "$ROOT/data/ut1" -q | "$BIN/wordpiece" --vocab "$VOCAB" -j 2 \
  | "$BIN/shard-pack" -o shards_j2 --seq-len 128 --shard-samples 100 --val-samples 6 --seed 5 -q
eq j2_same_shards "$(cd shards_j2 && sha256sum *.npy manifest.json)" "$(cd shards && sha256sum *.npy manifest.json)"

# per-part runs, merged: the train samples of the parts in order, totals that add up
head -n 180 kept.jsonl > part1.jsonl; tail -n +181 kept.jsonl > part2.jsonl
for p in 1 2; do
  "$BIN/wordpiece" --vocab "$VOCAB" part$p.jsonl | "$BIN/shard-pack" -o part$p --seq-len 128 -q
done
ok merge "$BIN/shard-pack" merge -o merged part1 part2 --val-samples 6 --seed 5 -q
ok merged_verify "$BIN/shard-pack" --verify merged
ok merged_content $PY - <<'EOF'
import json, numpy as np
def arr(d, s):
    m = json.load(open(d + '/manifest.json'))
    a = [np.load(d + '/' + x['name']) for x in m['shards'] if x['split'] == s]
    return (np.concatenate(a) if a else np.zeros((0, 128), np.uint16)), m
p1, m1 = arr('part1', 'train'); p2, m2 = arr('part2', 'train')
tr, m = arr('merged', 'train'); va, _ = arr('merged', 'validation')
assert m['totals']['documents'] == 364 and m['totals']['tokens'] == m1['totals']['tokens'] + m2['totals']['tokens']
both = np.concatenate([p1, p2]); rows = {r.tobytes(): i for i, r in enumerate(both)}
ti = [rows[r.tobytes()] for r in tr]; vi = [rows[r.tobytes()] for r in va]
assert len(vi) == 6 and sorted(ti + vi) == list(range(len(both)))
EOF

# data/demo.sh without bert-train (training is exercised by the trainer's own tests)
mkdir demobin && for t in oscar-filter wordpiece shard-pack; do ln -s "$BIN/$t" demobin/$t; done
DEMO_BIN=$TDIR/demobin DEMO_DIR=$TDIR/demo SYMBERT_VOCAB=$VOCAB bash "$ROOT/data/demo.sh" > demo.out 2>&1
eq demo_exit $? 0
grep_ok demo_filter_line "^demo: 2. filter: 400 documents read, 364 kept, 36 dropped" demo.out
grep_ok demo_verify_line "^demo:    verify: ok" demo.out
grep_ok demo_show_line "^demo: 4. train sample 0" demo.out
grep_ok demo_skip_training "bert-train is not built: training skipped" demo.out
rm demobin/wordpiece
DEMO_BIN=$TDIR/demobin DEMO_DIR=$TDIR/demo2 SYMBERT_VOCAB=$VOCAB bash "$ROOT/data/demo.sh" > demo2.out 2>&1
[ $? -ne 0 ] && pass demo_missing_tool_fails || fail demo_missing_tool_fails "exit 0"
grep_ok demo_missing_tool_msg "wordpiece is missing: build the tools with .make." demo2.out
