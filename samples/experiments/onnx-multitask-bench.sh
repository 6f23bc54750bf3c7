#!/usr/bin/env bash
# ONNX Runtime against the engine on the masked multi-task pass (original head + 3 tasks, m = 5), ViT-Ti/16 at 224,
# batch 32, 2 threads: the exported graph and MultiTaskVit timed in turn, call by call, with the median per-pair ratio.
# Run on an otherwise idle machine (both sides use 2 threads).
#   samples/experiments/onnx-multitask-bench.sh [checkpoint] [extra args, e.g. --seconds 20]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-../shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors}
shift || true
[ -f "$MODEL" ] && WITH_MODEL=(--model "$MODEL") || WITH_MODEL=()
dotnet build samples/OnnxRuntime -c Release -v q -nologo >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "\$ dotnet samples/OnnxRuntime/bin/Release/net10.0/OnnxRuntime.dll bench-multitask --tasks 3 --tokens 5 --batch 32 --image-size 224 --threads 2 ${WITH_MODEL[*]} $*"
dotnet samples/OnnxRuntime/bin/Release/net10.0/OnnxRuntime.dll bench-multitask --tasks 3 --tokens 5 --batch 32 --image-size 224 --threads 2 "${WITH_MODEL[@]}" "$@"
