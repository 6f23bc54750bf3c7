#!/usr/bin/env bash
# Every side-by-side benchmark behind docs/benchmarks.md: ours and PyTorch's from the same run, with ratios.
# Needs Debian's python3-torch and libopenblas0-openmp (PyTorch is only the reference). Run on an otherwise idle machine:
# both sides use 2 threads, and PyTorch's OpenMP threads collapse when the cores are shared with anything else.
#   samples/experiments/benchmarks.sh [checkpoint] > docs/benchmarks.raw.txt
# With TORCHSHARP=1 the infer, train and vqt figures also carry the TorchSharp backend's (TorchSharp-cpu / LibTorch 2.10, in
# the same process, same threads), and host memory over 500 training steps is traced on both backends (docs/torchsharp.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-../shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors}
[ -f "$MODEL" ] && WITH_MODEL=(--model "$MODEL") || WITH_MODEL=()
dotnet build src/MLNet.MemoryTokens.Cli -c Release -v q -nologo >/dev/null
MMT="dotnet src/MLNet.MemoryTokens.Cli/bin/Release/net10.0/mmt.dll"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
for cmd in "gemm" "infer ${WITH_MODEL[*]}" "train --method memory --tokens 5 --rounds 3" "train --method full --rounds 3" \
           "vqt --mode cached --torch-modes cached,recompute" "vqt --mode first --torch-modes detached" "multitask --tasks 5 --tokens 5"; do
  case "${TORCHSHARP:-0}:$cmd" in 1:infer*|1:train*|"1:vqt --mode cached"*) cmd="$cmd --backend torchsharp --device cpu" ;; esac
  echo; echo "\$ mmt bench $cmd"
  $MMT bench $cmd --threads 2 --seconds 8
done
if [ "${TORCHSHARP:-0}" = 1 ]; then
  for cmd in "memory --method memory --tokens 5 --batch 16 --image-size 112 --steps 500 ${WITH_MODEL[*]}" "memory --method full --batch 16 --image-size 112 --steps 500"; do
    echo; echo "\$ mmt bench $cmd --backend torchsharp --device cpu"
    $MMT bench $cmd --backend torchsharp --device cpu --threads 2 --no-torch
  done
fi
