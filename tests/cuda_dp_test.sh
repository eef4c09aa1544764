# cuda_dp_test.sh - the GPU trainer's data parallelism (NCCL) on one GPU: a
# world of one rank started through each launcher (torchrun --no-python,
# torchrun's variables with the TCP rendezvous, --dist-init file://, mpirun
# -n 1) trains exactly as the plain run; a missing peer is an error naming
# the rank and the address within --dist-timeout, on either side.  Without
# a GPU (CI): the launch fails with one clear line.  Several GPUs: issue 18,
# bench/train_dp_bench.sh.  Sourced helpers: tests/lib.sh.
. "$ROOT/tests/lib.sh"
T=$BIN/bert-train
cat > small.json <<'EOF'
{"vocab_size": 160, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
 "intermediate_size": 64, "max_position_embeddings": 32, "plpi_affinity_function": "pairwise"}
EOF
"$PY" "$ROOT/tests/tiny_shards.py" sh
# a free TCP port (the one above it is free too, for torchrun's rendezvous)
port() { "$PY" -c 'import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; t = socket.socket()
    try: t.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError: pass'; }
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$(port) $T --device cuda --config small.json --data sh --out X --steps 1 >out 2>&1
    eq "no GPU: a rank of torchrun fails with exit 1" "$?" 1
    eq "no GPU: one line" "$(wc -l <out | tr -d ' ')" 1
    grep_ok "no GPU: the line says why" "CUDA" out
    exit 0
fi
C="--device cuda --precision fp32 --config small.json --data sh --batch 6 --micro-batch 2 --lr 1e-3 --warmup 2 --eval-every 2 --eval-samples 9 --save-every 0 --steps 4"
ok plain_run $T $C --out P --quiet
ok plain_run_again $T $C --out P2 --quiet
if cmp -s P/checkpoint-4/model.safetensors P2/checkpoint-4/model.safetensors; then DET=1; else DET=0; fi
echo "# plain runs bit-identical: $DET (1: the launchers must give the same bytes; 0: within 1e-5)"
# same_as_plain NAME DIR: DIR's model and moments are the plain run's
same_as_plain() {
    for f in model optimizer; do
        if [ $DET = 1 ]; then ok "$1_$f" cmp "$2/checkpoint-4/$f.safetensors" P/checkpoint-4/$f.safetensors
        else ok "$1_$f" "$PY" "$ROOT/tests/st_close.py" "$2/checkpoint-4/$f.safetensors" P/checkpoint-4/$f.safetensors; fi
    done
    eq "$1_metrics_rows" "$(grep -c '"step"' "$2/metrics.jsonl")" "$(grep -c '"step"' P/metrics.jsonl)"
}

TR=${TORCHRUN:-$(command -v torchrun || echo /opt/torch/.venv/bin/torchrun)}
if [ -x "$TR" ]; then
    "$TR" --no-python --nproc-per-node 1 --master-port "$(port)" $T $C --out TR > tr.log 2>&1
    eq torchrun_exit "$?" 0
    grep_ok torchrun_nccl 'rank 0 of 1 \(torchrun\), summing over nccl' tr.log
    same_as_plain torchrun TR
else
    fail torchrun_present "no torchrun (set TORCHRUN=)"
fi
RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$(port) $T $C --out EV > ev.log 2>&1
eq env_tcp_exit "$?" 0
grep_ok env_tcp_nccl 'summing over nccl' ev.log
same_as_plain env_tcp EV
RANK=0 WORLD_SIZE=1 $T $C --out FI --dist-init "file://$PWD/rdv" > fi.log 2>&1
eq env_file_exit "$?" 0
grep_ok env_file_nccl 'summing over nccl' fi.log
same_as_plain env_file FI
eq env_file_removed "$(ls rdv* 2>/dev/null | wc -l | tr -d ' ')" 0
if command -v mpirun >/dev/null 2>&1; then
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -n 1 $T $C --out MP > mp.log 2>&1
    eq mpirun_exit "$?" 0
    grep_ok mpirun_nccl 'summing over nccl' mp.log
    same_as_plain mpirun MP
else
    fail mpirun_present "no mpirun"
fi

# a peer that never comes: an error naming the rank and the address, within the timeout
p=$(port)
s=$(date +%s)
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p $T $C --out MS0 --dist-timeout 3 > ms0.log 2>&1
eq missing_rank1_exit "$?" 1
grep_ok missing_rank1_msg "rank 1 of 2.*127.0.0.1:$((p + 1))" ms0.log
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p $T $C --out MS1 --dist-timeout 3 > ms1.log 2>&1
eq missing_rank0_exit "$?" 1
grep_ok missing_rank0_msg "rank 1: no answer from rank 0 at 127.0.0.1:$((p + 1))" ms1.log
ok missing_peer_within_timeouts test $(( $(date +%s) - s )) -lt 30
