# train_resume_test.sh - bin/bert-train binds a run to its data (a resume on
# other shards is refused, naming the difference; a moved copy of the same
# folder is accepted) and removes the temporaries that killed runs left in
# the run folder, never those of a live process.
. "$ROOT/tests/lib.sh"
T="$BIN/bert-train"; SP="$BIN/shard-pack"
export PYTHONPATH="$ROOT/tests"
# two token streams of random ids below 160 (tests/tokstream.py), packed at seq_len 16 and 32
$PY - <<'EOF'
import random, tokstream
for name, seed in (("a", 3), ("b", 4)):
    rng = random.Random(seed)
    docs = [[101] + [rng.randrange(104, 160) for _ in range(rng.randrange(5, 40))] + [102] for _ in range(300)]
    open(name + ".tok", "wb").write(tokstream.stream(160, b"\x11" * 32, docs))
EOF
"$SP" a.tok -o d16 --seq-len 16 --val-samples 8 -q && "$SP" a.tok -o d32 --seq-len 32 --val-samples 8 -q \
  && "$SP" b.tok -o e16 --seq-len 16 --val-samples 8 -q || fail shards "shard-pack failed"
cat > small.json <<'EOF'
{"vocab_size": 160, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
 "intermediate_size": 64, "max_position_embeddings": 32, "plpi_affinity_function": "symmetric"}
EOF
COMMON="--config small.json --batch 4 --lr 1e-3 --warmup 1 --eval-every 0 --save-every 2 --device cpu --quiet"

# ---- the data's identity is recorded, and a resume on other data is refused
ok fresh_run "$T" $COMMON --data d16 --out R --steps 8 --stop-at 2
grep_ok state_has_manifest_sha '"data_manifest_sha256": "[0-9a-f]{64}"' R/checkpoint-2/trainer_state.json
grep_ok state_has_seq_len '"data_seq_len": 16' R/checkpoint-2/trainer_state.json
nok resume_other_seq_len "$T" --resume R --data d32 --stop-at 4 --quiet
grep_ok resume_other_seq_len_msg 'd32 is not the data this run trained on: seq_len 32, the run.s 16' "$TDIR/.out"
nok resume_other_shards "$T" --resume R --data e16 --stop-at 4 --quiet
grep_ok resume_other_shards_msg 'e16 is not the data.*manifest.json sha256 .*other shards' "$TDIR/.out"
eq refused_resume_trained_nothing "$(cat R/latest)" checkpoint-2
# the run's own folder, moved: accepted
mv d16 moved16
nok resume_data_gone "$T" --resume R --stop-at 4 --quiet
ok resume_moved_copy "$T" --resume R --data moved16 --stop-at 4 --quiet
eq resumed_to "$(cat R/latest)" checkpoint-4

# ---- stale temporaries: removed at start or resume unless their process lives
sh -c 'exit 0' & dead=$!; wait $dead
sleep 60 & live=$!
mkdir R/.tmp-checkpoint-6.$dead R/.tmp-checkpoint-6.$live R/.old-checkpoint-2.$dead
echo x > R/.tmp-checkpoint-6.$dead/model.safetensors
echo x > R/.old-checkpoint-2.$dead/model.safetensors
echo checkpoint-6 > R/.latest.tmp.$dead; echo x > R/.metrics.jsonl.tmp.$dead; echo x > R/.latest.tmp.$live
# a kill between the two renames of a replace: checkpoint-4 moved aside, not yet replaced
mv R/checkpoint-4 R/.old-checkpoint-4.$dead
ok resume_cleans "$T" --resume R --data moved16 --stop-at 6 --quiet
eq stale_removed "$(ls -A R | grep -c "\.$dead\$")" 0
eq live_kept "$(ls -A R | grep -c "\.$live\$")" 2
ok old_checkpoint_restored test -f R/checkpoint-4/model.safetensors
eq resumed_after_clean "$(cat R/latest)" checkpoint-6
kill $live 2>/dev/null; wait $live 2>/dev/null
# a fresh run in a folder that holds only leftovers (no latest) cleans them too
mkdir -p F/.tmp-checkpoint-2.$dead; echo x > F/.latest.tmp.$dead
ok fresh_run_cleans "$T" $COMMON --data moved16 --out F --steps 2
eq fresh_stale_removed "$(ls -A F | grep -c "\.$dead\$")" 0
