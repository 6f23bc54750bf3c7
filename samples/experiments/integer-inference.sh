#!/usr/bin/env bash
# The reduced-precision figures of docs/benchmarks.md in one run: our int16 and int8 backbones against our fp32, ONNX Runtime's
# fp32 model and ONNX Runtime's dynamically quantised model of the same weights (speed, peak memory), and top-1 agreement
# with fp32 on real images (Fashion-MNIST's test set through a memory-token adapter trained on the real checkpoint; the
# shared photos through the checkpoint's own head), ONNX Runtime's int8 export measured the same way.
# Needs what benchmarks.sh needs (python3-torch exports ONNX Runtime's fp32 model); dataset-fashion-mnist for the 10,000 test
# images (else the repo's 1,000-image sample). Run on an otherwise idle machine. About 15 minutes on 2 cores.
#
#   samples/experiments/integer-inference.sh [checkpoint]      writes docs/benchmarks.integer.raw.txt (through a temp file)
# Knobs: SECONDS_PER_FIGURE (default 5), OUT, PYTHON (default /usr/bin/python3), RUNS (default runs/integer-inference).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${MMT_SHARED_DIR:-../shared}
MODEL=${1:-$SHARED/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors}
PHOTOS=$SHARED/testdata/imagenet
PYTHON=${PYTHON:-/usr/bin/python3}
SEC=${SECONDS_PER_FIGURE:-5}
OUT=${OUT:-docs/benchmarks.integer.raw.txt}
RUNS=${RUNS:-runs/integer-inference}
FASHION=/usr/share/datasets/fashion-mnist
[ -f "$FASHION/t10k-images-idx3-ubyte.gz" ] && TEST="$FASHION:test" || TEST="samples/data/fashion-mnist-2k:test"

dotnet build src/MLNet.MemoryTokens.Cli -c Release -v q -nologo >/dev/null
dotnet build samples/OnnxRuntime -c Release -v q -nologo >/dev/null
MMT=(dotnet src/MLNet.MemoryTokens.Cli/bin/Release/net10.0/mmt.dll)
ORT_RUNNER=(dotnet samples/OnnxRuntime/bin/Release/net10.0/OnnxRuntime.dll)

tmp=$(mktemp "${OUT}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
show() { echo; echo "\$ $*"; "$@" 2>&1 || echo "(failed with exit $?)"; }
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(dotnet --version), commit $(git rev-parse --short HEAD)"

  echo; echo "# Speed and peak memory: ours int16 / int8 against our fp32, ONNX Runtime fp32 and ONNX Runtime int8 (same weights)"
  for precision in int16 int8; do
    show "${MMT[@]}" bench infer --model "$MODEL" --precision "$precision" --batch 32 --no-torch --threads 2 --seconds "$SEC"
    for arch in vit_small vit_base; do
      show "${MMT[@]}" bench infer --arch "$arch" --precision "$precision" --batch 32 --no-torch --threads 2 --seconds "$SEC"
    done
  done

  echo; echo "# Top-1 agreement with fp32 on real images"
  if [ ! -d "$RUNS/memory5" ]; then
    show "${MMT[@]}" train --model "$MODEL" --data samples/data/fashion-mnist-2k --method memory --tokens 5 --image-size 112 --epochs 5 --lr 1e-3 --plot false --out "$RUNS/memory5"
  fi
  for precision in int16 int8; do
    show "${MMT[@]}" bench agreement --precision "$precision" --model "$MODEL" --adapter "$RUNS/memory5" --data "$TEST" --threads 2
    show "${MMT[@]}" bench agreement --precision "$precision" --model "$MODEL" --batch 8 --threads 2 "$PHOTOS"/*.JPEG
  done
  show "${ORT_RUNNER[@]}" agreement --model "$MODEL" --adapter "$RUNS/memory5" --data "$TEST" --threads 2
} | tee "$tmp"
mv "$tmp" "$OUT"
trap - EXIT
echo "wrote $OUT" >&2
