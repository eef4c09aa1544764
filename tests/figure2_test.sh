# figure2_test.sh - experiments/figure2 without a GPU and without the network: the corpus
# maker on a tiny Debian-like tree (rst, pod, dictd), its output through the real pipe,
# bert-train's validation masks in NumPy against trainer/model.h, report.py on synthetic
# metrics (table values, PNG, bad input), run.sh end to end on the CPU (a micro model), and its
# OSCAR route against the local fetch server.
# Sourced helpers: tests/lib.sh.
. "$ROOT/tests/lib.sh"
E=$ROOT/experiments/figure2
MC="$PY $E/make_corpus.py"

# ---- 1. a tiny tree in the shape of the three Debian packages
"$PY" - <<'EOF'
import gzip, os
def w(path, data, gz=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = data.encode()
    open(path, "wb").write(gzip.compress(data, mtime=0) if gz else data)
words = ("the kernel keeps a list of every device it knows and asks each driver in turn whether "
         "it can handle the new hardware before the system finishes booting").split()
def para(seed, n):
    return " ".join(words[(seed * 7 + i * 3) % len(words)] for i in range(n)) + "."
src = "tree/usr/share/doc/linux-doc-6.1/html/_sources/"
for k in range(6):
    body = "\n\n".join(para(k * 10 + j, 60) for j in range(12))
    w(src + "sub/doc%d.rst.txt" % k, ".. SPDX-License-Identifier: GPL-2.0\n\n=========\nTitle %d\n=========\n\n%s\n\n"
      "Section\n-------\n\n%s\n" % (k, body, para(k, 40)))
w(src + "short.rst.txt", "Too short.\n")
w(src + "notes.txt", "not a source: skipped\n" * 20)
pod = ("=head1 NAME\n\nperlfoo - B<bold> and I<italic> and C<code> and L<perlvar/$_> and E<lt>tagE<gt>\n\n"
       "=over 4\n\n=item *\n\n" + para(3, 50) + "\n\n=back\n\n=cut\n")
w("tree/usr/share/perl/5.36.0/pod/perlfoo.pod", pod)
w("tree/usr/share/doc/perl/perlbar.pod.gz", pod.replace("perlfoo", "perlbar"), gz=True)
# dictd: a header entry, three entries (one indexed twice), one too short
entries = ["00-database-short\n   A test dictionary\n",
           "Apple \\Ap\"ple\\, n.\n   1. The fleshy fruit of a tree of the rose family, " + para(1, 20) + "\n",
           "Book \\Book\\, n.\n   1. A collection of sheets of paper bound together, " + para(2, 20) + "\n",
           "Cat\n   see Feline\n",
           "Door \\Door\\, n.\n   1. An opening in the wall of a house by which to go in and out, " + para(4, 20) + "\n"]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
def b64(n):
    s = ""
    while True:
        s = B64[n % 64] + s
        n //= 64
        if not n:
            return s
data, idx, off = b"", [], 0
for e in entries:
    b = e.encode()
    idx.append((e.split("\n")[0].split(" ")[0], off, len(b)))
    data += b
    off += len(b)
idx.append(("Apples", idx[1][1], idx[1][2]))  # a second headword for the same entry
w("tree/usr/share/dictd/test.index", "".join("%s\t%s\t%s\n" % (h, b64(o), b64(n)) for h, o, n in sorted(idx)))
w("tree/usr/share/dictd/test.dict.dz", data.decode(), gz=True)
EOF
ok corpus_make $MC -o c1.jsonl.zst --stats c1.json tree
ok corpus_make_again $MC -o c2.jsonl.zst tree
ok corpus_deterministic cmp c1.jsonl.zst c2.jsonl.zst
zstd -dc c1.jsonl.zst > c1.jsonl 2>/dev/null
eq corpus_documents "$(wc -l < c1.jsonl)" 11
eq corpus_kinds "$("$PY" -c 'import json,sys; s=json.load(open("c1.json")); print(s["documents"], s["dropped_short"], sorted((k, v["documents"]) for k, v in s["by_kind"].items()))')" \
   "11 2 [('dict', 3), ('pod', 2), ('rst', 6)]"
"$PY" - c1.jsonl > c1.check <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = []
for r in rows:
    m, h, c = r["metadata"], r["warc_headers"], r["content"]
    if not (5.0 < m["harmful_pp"] < 100000.0) or m["quality_warnings"] or m["categories"]:
        bad.append("rules " + h["warc-target-uri"])
    if len(m["sentence_identifications"]) != len(c.split("\n")):
        bad.append("sentence_identifications " + h["warc-target-uri"])
    if "=====" in c or "-----" in c or "SPDX" in c or "=head1" in c or "=item" in c or "B<" in c or "E<" in c:
        bad.append("markup " + h["warc-target-uri"])
    if int(h["content-length"]) != len(c.encode()):
        bad.append("content-length " + h["warc-target-uri"])
pod = [r["content"] for r in rows if r["warc_headers"]["warc-target-uri"].endswith("perlfoo.pod")][0]
print("bad:", bad)
print("pod:", pod.split("\n")[0])
print("uris:", [r["warc_headers"]["warc-target-uri"].rsplit("/", 1)[1] for r in rows])
EOF
grep_ok corpus_shape_and_rules '^bad: \[\]$' c1.check
grep_ok corpus_pod_text '^pod: NAME$' c1.check
grep_ok corpus_pod_codes 'perlfoo - bold and italic and code and perlvar/\$_ and <tag>' c1.jsonl
# sorted paths (dictd < doc/linux-doc < doc/perl < perl); Apple once though indexed twice; Cat too short
grep_ok corpus_order_and_dict_once "^uris: \['test.dict.dz#entry-0', 'test.dict.dz#entry-1', 'test.dict.dz#entry-3', 'doc0.rst.txt', .*'doc5.rst.txt', 'perlbar.pod.gz', 'perlfoo.pod'\]" c1.check

# the corpus through the pipe: the filter keeps every document, the tokens land in shards
"$BIN/oscar-filter" c1.jsonl.zst --frame --stats f.json 2>/dev/null | "$BIN/wordpiece" --vocab "$VOCAB" 2>/dev/null \
  | "$BIN/shard-pack" -o shards --val-samples 2 --seed 0 -q
eq corpus_pipe_exit "$?" 0
eq corpus_filter_keeps_all "$("$PY" -c 'import json; s=json.load(open("f.json")); print(s["documents"], s["kept"])')" "11 11"
ok corpus_shards_verify "$BIN/shard-pack" --verify shards

# bad input: one line naming the file, non-zero exit, no output left behind
mkdir -p bad1/d && cp tree/usr/share/dictd/test.dict.dz bad1/d/
nok corpus_dict_without_index $MC -o b1.jsonl bad1
grep_ok corpus_dict_without_index_msg 'test.dict.dz: no test.index beside it' "$TDIR/.out"
eq corpus_no_partial_output "$(ls b1.jsonl* 2>/dev/null | wc -l)" 0
mkdir -p bad2 && cp tree/usr/share/dictd/test.dict.dz bad2/ && printf 'Apple\tA\tB\nBook\tA?\tB\n' > bad2/test.index
nok corpus_bad_index $MC -o b2.jsonl bad2
grep_ok corpus_bad_index_msg 'test.index:2: .A\?. is not a dictd base64 number' "$TDIR/.out"
mkdir -p bad3 && printf 'Apple\tA\tzzz\n' > bad3/test.index && cp tree/usr/share/dictd/test.dict.dz bad3/
nok corpus_index_past_end $MC -o b3.jsonl bad3
grep_ok corpus_index_past_end_msg 'test.index: entry at offset 0 length [0-9]+ runs past the end' "$TDIR/.out"
mkdir -p empty
nok corpus_no_documents $MC -o b4.jsonl empty
grep_ok corpus_no_documents_msg 'no documents found' "$TDIR/.out"

# ---- 2. bert-train's validation masks: evalmask.py against trainer/model.h
cat > m.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "trainer/model.h"
int main(int argc, char **argv) {  /* eval_seed sample vocab ids... -> "input label" per position */
    uint64_t key = bt_mask_key(strtoull(argv[1], 0, 10), BT_EVAL_STEP, strtoull(argv[2], 0, 10));
    int vocab = atoi(argv[3]);
    for (int t = 0; t + 4 < argc; t++) {
        int id = atoi(argv[t + 4]);
        if (bt_mask_chosen(key, t, id)) printf("%d %d\n", bt_mask_input(key, t, id, vocab), id);
        else printf("%d -100\n", id);
    }
    return 0;
}
EOF
if cc -std=c11 -I"$ROOT" -O1 -o m m.c 2> m.err; then
  ids="101 0 102 $(seq 100 700 | tr '\n' ' ')"
  for spec in "0 0" "0 7" "0 511" "5 3" "123456789 9999"; do
    set -- $spec
    ./m "$1" "$2" 30522 $ids > c.txt
    "$PY" -c "
import sys; sys.path.insert(0, '$E'); import evalmask, numpy as np
ids = np.array([int(x) for x in sys.argv[3:]])
i, l = evalmask.mask_sample(ids, evalmask.bt_key(int(sys.argv[1]), evalmask.RNG_MASK, evalmask.EVAL_STEP, int(sys.argv[2]), 0), 30522)
print('\n'.join('%d %d' % p for p in zip(i, l)))" "$1" "$2" $ids > p.txt
    ok "evalmask_seed$1_sample$2" cmp c.txt p.txt
  done
  eq evalmask_masks_some "$(awk '$2 != -100' c.txt | wc -l | awk '{print ($1 > 50 && $1 < 140)}')" 1
  eq evalmask_specials_never "$(head -n 3 c.txt | awk '{print $2}' | tr '\n' ' ')" "-100 -100 -100 "
else
  fail evalmask_compile "$(head -c 300 m.err)"
fi

# ---- 3. report.py on synthetic metrics
"$PY" - <<'EOF'
import json, os
def run(name, curve, last=None):
    os.makedirs("runs/" + name, exist_ok=True)
    with open("runs/%s/metrics.jsonl" % name, "w") as f:
        for s, l in curve:
            f.write(json.dumps({"step": s, "loss": l + 0.1, "eval_loss": l}) + "\n")
        if last:
            f.write(json.dumps({"step": last, "loss": 1.0}) + "\n")
base = [(0, 10.0), (100, 7.0), (200, 6.0), (300, 5.9), (400, 5.8)]
# pairwise leaves the plateau (6.0 at update 200): 1.0 below it is 5.0, crossed between 300 and 400
for seed, low in ((1, 4.0), (2, 4.5), (3, 4.8)):
    run("bt-pairwise-s%d" % seed, base[:3] + [(300, 5.5), (400, low)])
    run("torch-pairwise-s%d" % seed, base[:3] + [(300, 5.5), (400, low + 0.05)])
for seed in (1, 2, 3):
    run("bt-original-s%d" % seed, [(s, l + 0.01 * seed) for s, l in base])
    run("bt-symmetric-s%d" % seed, [(s, l + 0.02 * seed) for s, l in base])
    run("torch-original-s%d" % seed, [(s, l + 0.5) for s, l in base] if seed < 3 else [(s, l + 0.5) for s, l in base[:3]])
EOF
R="$PY $E/report.py --runs runs --paper $E/paper --steps 400 --warmup 120"
ok report_runs $R --png f.png --md f.md
eq report_png "$(head -c 4 f.png | tail -c 3)" PNG
eq report_png_size "$([ "$(wc -c < f.png)" -gt 20000 ] && echo big)" big
# pairwise: P = 6.0 at update 200; 5.0 is crossed between 300 (5.5) and 400 (4.0 / 4.5 / 4.8):
# at 333.3, 350, 371.4, mean 351.6
grep_ok report_exit_interpolated '^\| bert-train \| pairwise \| 1, 2, 3 \| 6.000 \[6.000, 6.000\] \| 352 \[333, 371\] \(3/3\) \|' f.md
grep_ok report_no_exit '^\| bert-train \| original \| 1, 2, 3 \| 6.020 \[6.010, 6.030\] \| - \(0/3\) \|' f.md
grep_ok report_eval_cell '^\| 400 \| 5.820 \[5.810, 5.830\] \| 5.840 \[5.820, 5.860\] \| 4.433 \[4.000, 4.800\] \|' f.md
grep_ok report_overlap_yes '^\| 400 \| .* \| 4.433 \[4.000, 4.800\] \| 4.483 \[4.050, 4.850\] \| yes \|' f.md
grep_ok report_overlap_no '^\| 400 \| 5.820 \[5.810, 5.830\] \| 6.300 \[6.300, 6.300\] \(n=2\) \| \*\*no\*\* \|' f.md
grep_ok report_unfinished 'PyTorch original seed 3 \(last update 200\)' f.md
grep_ok report_paper_small 'paper BERT-small \| pairwise \| 1 \| 5.936 \| 11760 \| 2.220 at 200,000; 3.566 at 15,000' f.md
nok report_no_paper "$PY" "$E/report.py" --runs runs --paper nowhere --png g.png --md g.md
grep_ok report_no_paper_msg 'nowhere/validation_loss_bert_small.csv' "$TDIR/.out"
echo '{"step": 500, "eval_loss": ' >> runs/bt-original-s1/metrics.jsonl
nok report_bad_metrics $R --png g.png --md g.md
grep_ok report_bad_metrics_msg 'runs/bt-original-s1/metrics.jsonl:6: not JSON' "$TDIR/.out"
eq report_nothing_left "$(ls g.png g.md g.png.tmp 2>/dev/null | wc -l)" 0

# ---- 4. run.sh end to end on the CPU: shards from the tiny corpus, a tiny model, the report
ok runsh_help "$E/run.sh" --help
grep_ok runsh_help_text 'torch-variants' "$TDIR/.out"
nok runsh_bad_option "$E/run.sh" --frobnicate
nok runsh_bad_number "$E/run.sh" report --steps ten
grep_ok runsh_bad_number_msg "'ten' is not a whole number" "$TDIR/.out"
mkdir -p work/corpus && cp c1.jsonl.zst work/corpus/en_meta_part_1.jsonl.zst
# a model smaller than tiny, 64-token samples: seconds under ASan
printf '{"vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64}' > micro.json
# (no vocab given: wordpiece finds the copy that ships with the tools)
FIG2_BIN=$BIN "$E/run.sh" --work work --device cpu --config micro.json --seq-len 64 --steps 2 \
  --batch 2 --warmup 1 --eval-every 1 --eval-samples 2 --val-samples 2 --seeds "1 2" --variants "original pairwise" \
  --torch-variants none > runsh.log 2>&1
eq runsh_exit "$?" 0
grep_ok runsh_corpus_reused 'corpus: .* is there' runsh.log
ok runsh_shards "$BIN/shard-pack" --verify work/shards
eq runsh_runs "$(ls -d work/runs/bt-*-s? | wc -l)" 4
grep_ok runsh_last_step '"step":2,' work/runs/bt-pairwise-s2/metrics.jsonl
grep_ok runsh_table '^\| 2 \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \| [0-9.]+ \[' work/figure2.md
eq runsh_png "$(head -c 4 work/figure2.png | tail -c 3)" PNG
# a second call finds every run done and redoes nothing
FIG2_BIN=$BIN "$E/run.sh" train --work work --device cpu --config micro.json --steps 2 --seeds "1 2" \
  --variants "original pairwise" --torch-variants none > runsh2.log 2>&1
eq runsh_again_exit "$?" 0
eq runsh_again_skips "$(grep -c 'is done' runsh2.log)" 4
# shards of another sequence length are not reused for this run: one line naming both, exit != 0
FIG2_BIN=$BIN "$E/run.sh" shards --work work --seq-len 128 --val-samples 2 > runsh3.log 2>&1
eq runsh_other_seq_exit "$?" 1
grep_ok runsh_other_seq_msg 'holds seq_len and validation samples 64 2, not 128 2' runsh3.log
FIG2_BIN=$BIN "$E/run.sh" shards --work work --seq-len 64 --val-samples 2 > runsh4.log 2>&1
eq runsh_same_seq_reused "$?" 0

# ---- 5. the OSCAR route: HF_TOKEN set, oscar-fetch against a local server, the first N documents
mkdir -p oroot/en_meta && cp c1.jsonl.zst oroot/en_meta/en_meta_part_1.jsonl.zst
(cd oroot/en_meta && sha256sum en_meta_part_1.jsonl.zst > checksum.sha256)
"$PY" "$ROOT/tests/fetch_server.py" --root oroot --port-file o.port --log o.log --token sekret 2> o.err &
SRV_PID=$!
for _ in $(seq 100); do [ -s o.port ] && break; sleep 0.05; done
HOME=$TDIR HF_TOKEN=sekret FIG2_OSCAR_URL="http://127.0.0.1:$(cat o.port)" FIG2_BIN=$BIN \
  "$E/run.sh" corpus --work owork --oscar-docs 4 > orun.log 2>&1
eq oscar_exit "$?" 0
grep_ok oscar_said_so 'OSCAR-2301 en part 1' orun.log
eq oscar_first_docs "$(zstd -dc owork/corpus/en_meta_part_1.jsonl.zst | cmp - <(head -n 4 c1.jsonl) && echo same)" same
eq oscar_token_sent "$("$PY" -c 'import json,sys; print(sorted(set(json.loads(l)["auth"] for l in open("o.log"))))')" "['Bearer sekret']"
# a token the hub refuses: one clear line, no corpus
HOME=$TDIR HF_TOKEN=wrong FIG2_OSCAR_URL="http://127.0.0.1:$(cat o.port)" FIG2_BIN=$BIN \
  "$E/run.sh" corpus --work owork2 > orun2.log 2>&1
eq oscar_refused_exit "$?" 1
kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null
grep_ok oscar_refused_msg 'oscar-fetch failed \(see .*oscar-fetch.log; --source debian' orun2.log
eq oscar_refused_no_corpus "$(ls owork2/corpus/*.zst* 2>/dev/null | wc -l)" 0

# ---- 6. torch_mlm.py, where torch is installed (the GPU machine; not in CI)
if "$PY" -c 'import torch' 2>/dev/null; then
  ok torch_mlm_cpu "$PY" "$E/torch_mlm.py" --data work/shards --out tr --config tiny --attention pairwise --steps 2 \
    --batch 2 --warmup 1 --eval-every 1 --eval-samples 2 --device cpu
  eq torch_mlm_rows "$(grep -c eval_loss tr/metrics.jsonl)" 3
  nok torch_mlm_refuses_old_run "$PY" "$E/torch_mlm.py" --data work/shards --out tr --config tiny --steps 2 --device cpu
else
  echo "note: torch is not installed here: torch_mlm.py not run (checked on the GPU machine)"
fi
