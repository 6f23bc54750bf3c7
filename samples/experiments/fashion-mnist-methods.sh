#!/usr/bin/env bash
# Every tuning method on the same protocol, for docs/results.md: the real ViT-Ti/16 (ImageNet-21k→1k AugReg) at 112×112
# (position embedding resampled), trained on the first 5,000 Fashion-MNIST training images and tested on all 10,000 test images.
#   usage: samples/experiments/fashion-mnist-methods.sh [checkpoint] [fashion-mnist folder] [output folder] [methods...]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-../shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors}
DATA=${2:-/usr/share/datasets/fashion-mnist}
OUT=${3:-runs/fashion-mnist}
shift $(( $# > 3 ? 3 : $# ))
METHODS=${*:-"head head-class memory1 memory5 memory10 full vqt1 vqt4 vqt-memory vqt-memory-skip"}
[ -d "$DATA" ] || { echo "Fashion-MNIST not found at $DATA (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
dotnet build src/MLNet.MemoryTokens.Cli -c Release -v q -nologo >/dev/null
MMT="dotnet src/MLNet.MemoryTokens.Cli/bin/Release/net10.0/mmt.dll"
COMMON=(--model "$MODEL" --data "$DATA" --limit 5000 --image-size 112 --epochs 10 --batch 32 --seed 0 --validation-fraction 0 --json)
mkdir -p "$OUT"
for name in $METHODS; do
  case $name in
    head)        args=(--method head --lr 3e-3) ;;
    head-class)  args=(--method head-class --lr 1e-3) ;;
    memory1)     args=(--method memory --tokens 1 --lr 1e-3) ;;
    memory5)     args=(--method memory --tokens 5 --lr 1e-3) ;;
    memory10)    args=(--method memory --tokens 10 --lr 1e-3) ;;
    full)        args=(--method full --lr 1e-4 --weight-decay 0.05) ;;
    vqt1)        args=(--method vqt --queries 1 --lr 1e-3) ;;
    vqt4)        args=(--method vqt --queries 4 --lr 1e-3) ;;
    vqt-memory)  args=(--method vqt-memory --queries 1 --tokens 5 --lr 1e-3) ;;                          # queries read the memory too
    vqt-memory-skip) args=(--method vqt-memory --queries 1 --tokens 5 --lr 1e-3 --queries-skip-memory) ;; # the original tokens only
    *) echo "unknown method $name" >&2; exit 1 ;;
  esac
  start=$(date +%s)
  $MMT train "${COMMON[@]}" "${args[@]}" --out "$OUT/$name" > "$OUT/$name.train.json"
  trained=$(date +%s)
  $MMT evaluate --model "$MODEL" --adapter "$OUT/$name" --data "$DATA:test" --json > "$OUT/$name.eval.json"
  echo "$name: $(python3 -c "import json;print('test accuracy %.4f' % json.load(open('$OUT/$name.eval.json'))['accuracy'])") (train $((trained-start)) s, evaluate $(( $(date +%s) - trained )) s)"
done
