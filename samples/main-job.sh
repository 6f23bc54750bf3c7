#!/usr/bin/env bash
# The main job: fine-tune memory tokens on a real pretrained ViT and evaluate them on real data, end to end.
#   samples/main-job.sh [checkpoint path or timm model id]
# Data: samples/data/fashion-mnist-2k (2,000 train / 1,000 test Fashion-MNIST images, shipped in the repo).
# Checkpoint: the argument, else ../shared's ViT-Ti/16 when present, else the timm id (downloaded once into ~/.cache/mlnet-memorytokens).
set -euo pipefail
cd "$(dirname "$0")/.."
ID=vit_tiny_patch16_224.augreg_in21k_ft_in1k
MODEL=${1:-}
if [ -z "$MODEL" ]; then
  if [ -f "../shared/models/$ID.safetensors" ]; then MODEL="../shared/models/$ID.safetensors"; else MODEL=$ID; fi
fi
DATA=samples/data/fashion-mnist-2k
OUT=${OUT:-runs/main-job}
dotnet build src/MLNet.MemoryTokens.Cli -c Release -v q -nologo
MMT="dotnet src/MLNet.MemoryTokens.Cli/bin/Release/net10.0/mmt.dll"
echo "== train: memory tokens (m = 5) on $DATA, ViT $MODEL at 112x112"
$MMT train --model "$MODEL" --data "$DATA" --method memory --tokens 5 --image-size 112 --epochs 5 --lr 1e-3 --plot true --out "$OUT/memory5"
echo "== evaluate on the held-out test split"
$MMT evaluate --model "$MODEL" --adapter "$OUT/memory5" --data "$DATA:test"
