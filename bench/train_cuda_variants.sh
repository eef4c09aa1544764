#!/bin/sh
# bench/train_cuda_variants.sh - the CUDA trainer's kernel variants side by
# side on one GPU (run on the device machine after `make test-cuda`):
# the attention micro-benchmark and a BERT-base update (each variant of the
# paper) for each attention kernel family, and the last layer dense vs at
# the masked rows only.  Selection is by bert-train-cuda-bench's options:
#   --attn-impl mma | wgmma              (attention kernels; wgmma: H100/H200)
#   --dense-last                         (the last layer over every row)
# Usage: sh bench/train_cuda_variants.sh [BUILDROOT] [STEPS]   (build, 20)
set -u
R=${1:-build}
S=${2:-20}
B=$R/opt/bin/bert-train-cuda-bench
for m in mma wgmma; do
  echo "== attention kernels, --attn-impl $m"
  $B --attn-impl $m --kernels 2>&1 | grep '"attention"'
done
for a in original symmetric pairwise; do
  for m in mma wgmma; do
    echo "== BERT-base $a, --attn-impl $m"
    $B --attn-impl $m --config base --attention $a --steps "$S" 2>&1 | grep '"model"'
  done
done
echo "== BERT-base original, --dense-last"
$B --dense-last --config base --attention original --steps "$S" 2>&1 | grep '"model"'
