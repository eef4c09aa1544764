#!/bin/sh
# bench/train_cuda_variants.sh - the CUDA trainer's kernel variants side by
# side on one GPU (run on the device machine after `make test-cuda`):
# the GPU tests again under each attention-backward variant, the attention
# micro-benchmark and a BERT-base update for each.  Selection is by
# environment variable:
#   SYMBERT_FLASH_BWD = split | split3 | fused | fused3   (attention backward)
# Usage: sh bench/train_cuda_variants.sh [BUILDROOT]   (build by default)
set -u
R=${1:-build}
T=$R/opt/cuda/tests
B=$R/opt/bin/bert-train-cuda-bench
for m in split3 fused fused3; do
  echo "== GPU tests, SYMBERT_FLASH_BWD=$m"
  SYMBERT_FLASH_BWD=$m $T/cuda_kernels_test 2>&1 | grep -E "PASS|FAIL|passed|failed" | tail -4
  SYMBERT_FLASH_BWD=$m $T/cuda_model_test 2>&1 | grep -E "FAIL|passed|failed" | tail -4
done
for m in split split3 fused fused3; do
  echo "== attention kernels, SYMBERT_FLASH_BWD=$m"
  SYMBERT_FLASH_BWD=$m $B --kernels 2>&1 | grep -i -E "attn|attention|flash"
done
for m in split split3 fused fused3; do
  echo "== BERT-base original, SYMBERT_FLASH_BWD=$m"
  SYMBERT_FLASH_BWD=$m $B --config base --attention original --steps 20 2>&1 | grep '"model"'
done
