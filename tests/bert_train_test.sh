# bert_train_test.sh - bin/bert-train end to end: parameter counts, flags,
# bad input, exact resume through the CLI, SIGINT/SIGTERM, and learning on a
# small real corpus (Debian's license texts, tokenized by bin/wordpiece and
# packed by bin/shard-pack).  Sourced helpers: tests/lib.sh.
. "$ROOT/tests/lib.sh"
T="$BIN/bert-train"

# ---- Table 2 of the paper
for spec in "small original 28795194" "small symmetric 27744570" "small pairwise 27875642" \
            "base original 109514298" "base symmetric 102427194" "base pairwise 103017018"; do
  set -- $spec
  eq "count_$1_$2" "$("$T" --count-params --config "$1" --attention "$2")" "$3"
done
eq count_vanilla_alias "$("$T" --count-params --config base --attention vanilla)" 109514298
ok help "$T" --help
grep_ok help_mentions_resume '--resume' "$TDIR/.out"

# ---- flags and bad input: one clear line, non-zero exit, no crash
nok bad_attention "$T" --count-params --attention sideways
grep_ok bad_attention_msg 'sideways' "$TDIR/.out"
nok unknown_option "$T" --frobnicate
nok missing_data "$T" --out r0
grep_ok missing_data_msg 'data' "$TDIR/.out"
nok bad_number "$T" --data x --out y --batch 0
nok device_cuda "$T" --device cuda --data x --out y
printf '{"hidden_size": 100, "num_attention_heads": 3}' > bad.json
nok bad_config_heads "$T" --count-params --config bad.json
grep_ok bad_config_heads_msg 'bad.json.*multiple' "$TDIR/.out"
printf '{"hidden_size": 64,' > trunc.json
nok bad_config_json "$T" --count-params --config trunc.json
grep_ok bad_config_json_msg 'trunc.json' "$TDIR/.out"
nok no_shards "$T" --config tiny --data nowhere --out r1
grep_ok no_shards_msg 'nowhere' "$TDIR/.out"

# ---- a small model on generated shards (vocab 160, 16 tokens)
cat > small.json <<'EOF'
{"vocab_size": 160, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
 "intermediate_size": 64, "max_position_embeddings": 32, "plpi_affinity_function": "pairwise"}
EOF
"$PY" - <<'EOF'
# shards written from the format in docs/shard-pack.md ("Output") with numpy, not by shard-pack
import hashlib, json, os
import numpy as np
os.makedirs("sh", exist_ok=True)
rng = np.random.default_rng(5)
def shard(name, n):
    a = rng.integers(104, 160, size=(n, 16), dtype=np.uint16)
    a[:, 0] = 101; a[:, -1] = 102
    np.save("sh/" + name, a)
    return {"name": name, "split": name.split("-")[0], "samples": n,
            "sha256": hashlib.sha256(open("sh/" + name, "rb").read()).hexdigest()}
s = [shard("train-00000.npy", 96), shard("validation-00000.npy", 8)]
m = {"format": "symbert-shards", "version": 1, "seq_len": 16, "vocab_size": 160, "vocab_sha256": "0" * 64,
     "shards": s, "totals": {"documents": 104, "tokens": 104 * 16, "samples": 104, "train_samples": 96,
                             "validation_samples": 8, "dropped_tail_tokens": 0}}
json.dump(m, open("sh/manifest.json", "w"))
EOF
COMMON="--config small.json --data sh --batch 4 --micro-batch 2 --lr 1e-3 --warmup 2 --eval-every 3 --eval-samples 8 --save-every 2 --quiet"
ok run_a "$T" $COMMON --out A --steps 6
ok run_b_first_half "$T" $COMMON --out B --steps 6 --stop-at 3
eq run_b_latest "$(cat B/latest)" checkpoint-3
nok resume_refuses_fixed_option "$T" --resume B --lr 0.5
grep_ok resume_refuses_fixed_option_msg 'lr' "$TDIR/.out"
nok fresh_run_refuses_existing "$T" $COMMON --out B --steps 6
grep_ok fresh_run_refuses_existing_msg 'resume' "$TDIR/.out"
ok run_b_resume "$T" --resume B --quiet
ok resume_exact_model cmp A/checkpoint-6/model.safetensors B/checkpoint-6/model.safetensors
ok resume_exact_optimizer cmp A/checkpoint-6/optimizer.safetensors B/checkpoint-6/optimizer.safetensors
eq metrics_rows_once "$(grep -c '"step"' B/metrics.jsonl)" "$(grep -c '"step"' A/metrics.jsonl)"
ok metrics_same_losses sh -c "grep -o '\"loss\":[^,]*' A/metrics.jsonl > a.l; grep -o '\"loss\":[^,]*' B/metrics.jsonl > b.l; cmp a.l b.l"
grep_ok config_plpi '"plpi_affinity_function": "pairwise"' A/checkpoint-6/config.json
grep_ok config_model_type '"model_type": "plpi/bert"' A/checkpoint-6/config.json
grep_ok state_step '"step": 6' A/checkpoint-6/trainer_state.json
nok resume_done_needs_steps "$T" --resume A
grep_ok resume_done_needs_steps_msg 'steps' "$TDIR/.out"
ok resume_longer "$T" --resume A --steps 8 --quiet
eq resume_longer_latest "$(cat A/latest)" checkpoint-8
ok keep_prunes "$T" $COMMON --out K --steps 6 --keep 2
eq keep_prunes_left "$(ls -d K/checkpoint-* | wc -l | tr -d ' ')" 2
ok no_dropout_run "$T" $COMMON --out ND --steps 2 --no-dropout
# without --out: runs/<config>-<attention>, said on stderr
"$T" --config small.json --data sh --batch 4 --steps 1 --eval-every 0 --device cpu >dflt.log 2>&1
eq default_out_exit "$?" 0
eq default_out_folder "$(cat runs/small-pairwise/latest 2>/dev/null)" checkpoint-1
grep_ok default_out_said 'run folder runs/small-pairwise' dflt.log

# corrupt shards: clear errors naming the file
cp -r sh shbad
printf 'garbage' > shbad/train-00000.npy
nok corrupt_shard_run "$T" --config small.json --data shbad --out C1 --steps 2 --quiet
grep_ok corrupt_shard_msg 'train-00000.npy' "$TDIR/.out"
cp -r sh shbad2
sed 's/"vocab_size": 160/"vocab_size": 170/' sh/manifest.json > shbad2/manifest.json
nok vocab_mismatch "$T" --config small.json --data shbad2 --out C2 --steps 2 --quiet
grep_ok vocab_mismatch_msg 'vocab_size' "$TDIR/.out"

# ---- SIGINT and SIGTERM: the last whole step is saved, exit status 3, resume continues
for sig in INT TERM; do
  "$T" --config small.json --data sh --batch 4 --out S$sig --steps 1000000 --eval-every 0 --save-every 0 --quiet &
  pid=$!
  n=0; while [ ! -s S$sig/metrics.jsonl ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
  sleep 0.3
  kill -$sig $pid
  wait $pid; rc=$?
  eq sig${sig}_exit_3 "$rc" 3
  if [ -f S$sig/latest ]; then
    step=$(sed 's/checkpoint-//' S$sig/latest)
    pass sig${sig}_checkpoint_saved
    ok sig${sig}_resume "$T" --resume S$sig --stop-at $((step + 2)) --quiet
    eq sig${sig}_resumed_to "$(cat S$sig/latest)" "checkpoint-$((step + 2))"
  else
    fail sig${sig}_checkpoint_saved "no S$sig/latest"
  fi
done

# ---- a small real corpus: Debian's license texts (base-files), one paragraph a document
LIC=/usr/share/common-licenses
if [ ! -f "$LIC/GPL-3" ] || [ ! -x "$BIN/wordpiece" ] || [ ! -x "$BIN/shard-pack" ] || [ ! -f "$VOCAB" ]; then
  fail real_corpus "needs $LIC, bin/wordpiece, bin/shard-pack and $VOCAB"
else
  cat "$LIC/Apache-2.0" "$LIC/Artistic" "$LIC/BSD" "$LIC/GFDL-1.3" "$LIC/GPL-2" "$LIC/GPL-3" \
      "$LIC/LGPL-2.1" "$LIC/LGPL-3" "$LIC/MPL-1.1" "$LIC/MPL-2.0" |
    awk 'BEGIN { RS = ""; ORS = "\n" } { gsub(/\n/, " "); print }' > lic.txt
  ok real_tokenize "$BIN/wordpiece" --vocab "$VOCAB" --input text lic.txt -o lic.tok
  ok real_pack "$BIN/shard-pack" lic.tok -o lic --seq-len 64 --val-samples 32 --quiet
  # full run on the optimised build; a short one under the sanitizers (about 25x slower)
  if [ "${VARIANT:-opt}" = asan ]; then STEPS=5; BATCH=8; WARM=1; ES=8; else STEPS=60; BATCH=16; WARM=5; ES=32; fi
  ok real_train "$T" --config tiny --attention pairwise --data lic --out L --steps $STEPS --batch $BATCH \
     --lr 2e-3 --warmup $WARM --eval-every $STEPS --eval-samples $ES --save-every 0 --quiet
  first=$(grep -m1 eval_loss L/metrics.jsonl | sed 's/.*"eval_loss":\([0-9.e+-]*\).*/\1/')
  last=$(grep eval_loss L/metrics.jsonl | tail -n 1 | sed 's/.*"eval_loss":\([0-9.e+-]*\).*/\1/')
  echo "# real corpus: eval loss $first -> $last after $STEPS steps (ln 30522 = 10.33)"
  ok real_initial_near_uniform awk -v x="$first" 'BEGIN { exit !(x > 9.8 && x < 10.9) }'
  if [ "${VARIANT:-opt}" = asan ]; then
    ok real_loss_falls awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }'
  else
    ok real_loss_well_below_uniform awk -v x="$last" 'BEGIN { exit !(x < 7.0) }'
  fi
fi

# ---- bench/plot: several runs in one PNG (gnuplot)
ok plot_runs sh "$ROOT/bench/plot" -o curves.png -t "test runs" A B
ok plot_is_png sh -c 'head -c 8 curves.png | od -An -c | grep -q "P   N   G"'
nok plot_missing_run sh "$ROOT/bench/plot" -o x.png nowhere
