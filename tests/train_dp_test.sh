# train_dp_test.sh - data parallelism of the CPU trainer over MPI (mpirun):
# 2 and 3 ranks compute the update of 1 rank with the same --batch (every
# tensor of model.safetensors within 1e-5 relative after 4 updates; 1 rank
# under mpirun: the same bytes), rank 0 alone writes, --resume with another
# number of ranks, SIGTERM to one rank (saved once, every rank exits 3), a
# killed rank and ranks that disagree are clear errors.  GPU ranks (NCCL):
# tests/cuda_dp_test.sh, on a machine with a GPU.  Sourced helpers: tests/lib.sh.
. "$ROOT/tests/lib.sh"
T="$BIN/bert-train"
if ! command -v mpirun >/dev/null 2>&1; then
  fail mpirun_present "no mpirun: install Debian's openmpi-bin and libopenmpi-dev (mk/deps.sh), then rebuild"
  exit 0
fi
# as root (containers, CI) OpenMPI needs these; two cores run three ranks
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# OpenMPI's own allocations are not freed at exit: no leak reports from it under ASan
[ "${VARIANT:-opt}" = asan ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MPI="mpirun --oversubscribe"

cat > small.json <<'EOF'
{"vocab_size": 160, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
 "intermediate_size": 64, "max_position_embeddings": 32, "plpi_affinity_function": "pairwise"}
EOF
"$PY" "$ROOT/tests/tiny_shards.py" sh
close() { "$PY" "$ROOT/tests/st_close.py" "$@"; }
# 4 updates, dropout on, micro-batches of 2 (3 ranks: one micro-batch each), evaluation split over the ranks
C="--config small.json --data sh --batch 6 --micro-batch 2 --lr 1e-3 --warmup 2 --eval-every 2 --eval-samples 9 --save-every 2 --device cpu --threads 1"

ok one_process "$T" $C --out A --steps 4 --quiet
ok mpi_1_rank $MPI -n 1 "$T" $C --out M1 --steps 4 --quiet
ok mpi_1_rank_same_model cmp A/checkpoint-4/model.safetensors M1/checkpoint-4/model.safetensors
ok mpi_1_rank_same_optimizer cmp A/checkpoint-4/optimizer.safetensors M1/checkpoint-4/optimizer.safetensors
for k in 2 3; do
  $MPI -n $k "$T" $C --out M$k --steps 4 > m$k.log 2>&1
  eq mpi_${k}_ranks_exit "$?" 0
  ok mpi_${k}_ranks_model_equals_1_rank close M$k/checkpoint-4/model.safetensors A/checkpoint-4/model.safetensors
  ok mpi_${k}_ranks_moments_equal_1_rank close M$k/checkpoint-4/optimizer.safetensors A/checkpoint-4/optimizer.safetensors
  eq mpi_${k}_ranks_one_metrics_row_a_step "$(grep -c '"step"' M$k/metrics.jsonl)" "$(grep -c '"step"' A/metrics.jsonl)"
  ok mpi_${k}_ranks_eval_loss sh -c "grep -o '\"eval_loss\":[0-9.]\{6\}' A/metrics.jsonl > a.e; grep -o '\"eval_loss\":[0-9.]\{6\}' M$k/metrics.jsonl > m.e; cmp a.e m.e"
  # rank 0 alone speaks and writes: one progress line, one "saved" line per checkpoint
  eq mpi_${k}_ranks_rank0_progress "$(grep -c '^step 4/4' m$k.log)" 1
  eq mpi_${k}_ranks_saved_once "$(grep -c 'saved M'$k'/checkpoint-4' m$k.log)" 1
  eq mpi_${k}_ranks_no_temporaries "$(ls -A M$k | grep -c '^\.')" 0
done

# --resume with another number of ranks: 2 -> 3, and 1 -> 2
ok resume_2_first_half $MPI -n 2 "$T" $C --out R2 --steps 4 --stop-at 2 --quiet
ok resume_2_then_3 $MPI -n 3 "$T" --resume R2 --device cpu --threads 1 --quiet
ok resume_2_then_3_equals close R2/checkpoint-4/model.safetensors A/checkpoint-4/model.safetensors
ok resume_1_first_half "$T" $C --out R1 --steps 4 --stop-at 2 --quiet
ok resume_1_then_2 $MPI -n 2 "$T" --resume R1 --device cpu --threads 1 --quiet
ok resume_1_then_2_equals close R1/checkpoint-4/model.safetensors A/checkpoint-4/model.safetensors

# ranks given different runs: refused, not silently averaged
$MPI -n 1 "$T" $C --out D --steps 4 --quiet : -n 1 "$T" $C --out D --steps 4 --seed 7 --quiet > dis.log 2>&1
rc=$?
if [ $rc -ne 0 ]; then pass disagree_fails; else fail disagree_fails "exit 0"; fi
grep_ok disagree_msg 'ranks disagree' dis.log
# ... nor another model, or another place to stop (one rank would leave the others waiting)
sed 's/pairwise/original/' small.json > small_orig.json
$MPI -n 1 "$T" $C --out D2 --steps 4 --quiet : -n 1 "$T" $C --config small_orig.json --out D2 --steps 4 --quiet > dis2.log 2>&1
eq disagree_model_exit "$?" 1
grep_ok disagree_model_msg 'ranks disagree' dis2.log
$MPI -n 1 "$T" $C --out D3 --steps 4 --stop-at 2 --quiet : -n 1 "$T" $C --out D3 --steps 4 --quiet > dis3.log 2>&1
eq disagree_stop_at_exit "$?" 1
grep_ok disagree_stop_at_msg 'ranks disagree' dis3.log
# a copy of the shards at another path on one rank (a copy per node) is the same data
cp -r sh sh_copy
ok copy_per_rank $MPI -n 1 "$T" $C --out CP --steps 4 --quiet : -n 1 "$T" $C --data sh_copy --out CP --steps 4 --quiet
ok copy_per_rank_equals close CP/checkpoint-4/model.safetensors A/checkpoint-4/model.safetensors

# the CPU trainer under torchrun's variables (no MPI): one clear line
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$T" $C --out X --steps 1 > tr.log 2>&1
eq cpu_torchrun_exit "$?" 1
grep_ok cpu_torchrun_msg 'rank 0 of 2.*mpirun' tr.log
RANK=0 WORLD_SIZE=1 "$T" $C --out W1 --steps 2 --quiet
eq cpu_world_of_one_plain "$?" 0

# the pid of rank $2 of the mpirun $1 (its children carry OMPI_COMM_WORLD_RANK)
rank_pid() {
  for p in $(ps -o pid= --ppid "$1"); do
    if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo $p; return; fi
  done
}
# a long run of 2 ranks; waits for its first metrics row; sets LONG (mpirun's pid) and R1 (rank 1's pid)
start_long() {
  $MPI -n 2 "$T" $C --out $1 --steps 1000000 --eval-every 0 --save-every 0 > $1.log 2>&1 &
  LONG=$!
  w=0; while [ ! -s $1/metrics.jsonl ] && [ $w -lt 600 ]; do sleep 0.1; w=$((w + 1)); done
  R1=$(rank_pid $LONG 1)
}
# SIGTERM to rank 1 alone (Slurm preemption): the last whole step saved once, both ranks exit 3
start_long ST
if [ -z "$R1" ]; then fail sigterm_rank1_found "no rank 1 under mpirun $LONG"; kill $LONG; wait $LONG
else
  kill -TERM "$R1"
  wait $LONG; rc=$?
  eq sigterm_rank1_exit_3 "$rc" 3
  eq sigterm_saved_once "$(grep -c 'saved ST/checkpoint' ST.log)" 1
  if [ -f ST/latest ]; then
    step=$(sed 's/checkpoint-//' ST/latest)
    ok sigterm_resume_on_1 "$T" --resume ST --stop-at $((step + 1)) --device cpu --threads 1 --quiet
  else fail sigterm_checkpoint "no ST/latest: $(tail -n 3 ST.log)"; fi
fi
# kill -9 of rank 1: rank 0 does not hang; the error names the rank
start_long KL
if [ -z "$R1" ]; then fail kill_rank1_found "no rank 1 under mpirun $LONG"; kill $LONG; wait $LONG
else
  kill -KILL "$R1"
  w=0; while kill -0 $LONG 2>/dev/null && [ $w -lt 300 ]; do sleep 0.1; w=$((w + 1)); done
  if kill -0 $LONG 2>/dev/null; then fail killed_rank_stops_the_others "still running 30 s after kill -9 of rank 1"; kill -KILL $LONG
  else pass killed_rank_stops_the_others; fi
  wait $LONG; rc=$?
  if [ $rc -ne 0 ]; then pass killed_rank_exit_nonzero; else fail killed_rank_exit_nonzero "exit 0"; fi
  grep_ok killed_rank_named 'rank 1.*(signal 9|Killed)' KL.log
fi
