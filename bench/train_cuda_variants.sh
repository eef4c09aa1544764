#!/bin/sh
# bench/train_cuda_variants.sh - the CUDA trainer's kernel variants side by
# side on one GPU (run on the device machine after `make test-cuda`):
# the attention micro-benchmark and a BERT-base update (each variant of the
# paper) for each attention-backward implementation, and the last layer
# dense vs at the masked rows only.  Selection is by environment variable:
#   SYMBERT_FLASH = mma | wgmma          (attention kernels; wgmma: H100/H200)
#   SYMBERT_DENSE_LAST = 1               (the last layer over every row)
# Usage: sh bench/train_cuda_variants.sh [BUILDROOT] [STEPS]   (build, 20)
set -u
R=${1:-build}
S=${2:-20}
B=$R/opt/bin/bert-train-cuda-bench
for m in mma wgmma; do
  echo "== attention kernels, SYMBERT_FLASH=$m"
  SYMBERT_FLASH=$m $B --kernels 2>&1 | grep '"attention"'
done
for a in original symmetric pairwise; do
  for m in mma wgmma; do
    echo "== BERT-base $a, SYMBERT_FLASH=$m"
    SYMBERT_FLASH=$m $B --config base --attention $a --steps "$S" 2>&1 | grep '"model"'
  done
done
echo "== BERT-base original, SYMBERT_DENSE_LAST=1"
SYMBERT_DENSE_LAST=1 $B --config base --attention original --steps "$S" 2>&1 | grep '"model"'
