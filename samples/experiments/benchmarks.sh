#!/usr/bin/env bash
# Every figure of docs/benchmarks.md in one run: ours and the anchors' side by side, same machine, same work, same threads.
#   inference  ours, ONNX Runtime (CPU, graph optimisation ALL), the TorchSharp backend (TorchSharp-cpu), PyTorch:
#              vit_tiny / vit_small / vit_base at 224 and vit_tiny at 112, each with peak memory and the fraction of the GEMM
#              peak measured in the same run
#   GEMM       the four linear-layer shapes of each size, ours against OpenBLAS (PyTorch)
#   training   memory-token step (m = 5) and full fine-tuning step per size, against PyTorch (and TorchSharp where
#              `mmt bench train` has --backend torchsharp)
#   VQT, multi-task, end to end (files to predictions vs forward-only, our JPEG decode vs djpeg)
# Needs Debian's python3-torch and libopenblas0-openmp (PyTorch is only the reference, and exports the ONNX model), and
# libjpeg-turbo-progs (djpeg). Whatever is missing is skipped with a line saying so. Run on an otherwise idle machine: every
# side uses 2 threads, and PyTorch's OpenMP threads collapse when the cores are shared. About 20 minutes on 2 cores.
#
#   samples/experiments/benchmarks.sh [checkpoint]            writes docs/benchmarks.raw.txt (through a temp file)
#   SMOKE=1 samples/experiments/benchmarks.sh                 every command once with tiny settings (a minute or two): checks
#                                                             the script end to end; writes /tmp/mmt-benchmarks.smoke.txt
# Knobs: SECONDS_PER_FIGURE (default 5), ROUNDS (training rounds at vit_tiny, default 3), OUT (the raw output file),
#        IMAGES (JPEG folder for e2e, default $MMT_SHARED_DIR or ../shared, then testdata/imagenet), PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${MMT_SHARED_DIR:-../shared}   # the real checkpoint and photos (../shared beside the repo; MMT_SHARED_DIR in a worktree)
MODEL=${1:-$SHARED/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors}
[ -f "$MODEL" ] && WITH_MODEL=(--model "$MODEL") || WITH_MODEL=()
IMAGES=${IMAGES:-$SHARED/testdata/imagenet}
PYTHON=${PYTHON:-/usr/bin/python3}
if [ "${SMOKE:-0}" = 1 ]; then
  SEC=${SECONDS_PER_FIGURE:-0.2}; ROUNDS=${ROUNDS:-1}; OUT=${OUT:-/tmp/mmt-benchmarks.smoke.txt}
  B=4; B_BASE=2; B_TRAIN_BASE=2; REPEAT=16; STEPS=5
else
  SEC=${SECONDS_PER_FIGURE:-5}; ROUNDS=${ROUNDS:-3}; OUT=${OUT:-docs/benchmarks.raw.txt}
  B=32; B_BASE=32; B_TRAIN_BASE=8; REPEAT=200; STEPS=500
fi

dotnet build src/MLNet.MemoryTokens.Cli -c Release -v q -nologo >/dev/null
MMT=(dotnet src/MLNet.MemoryTokens.Cli/bin/Release/net10.0/mmt.dll)

# the anchors this machine has
ANCHORS=()
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then ANCHORS+=(--no-torch); NO_TORCH=1; else NO_TORCH=0; fi
ORT=(); [ "$NO_TORCH" = 1 ] && ORT=(--no-ort)   # the ONNX model is exported by PyTorch
has_option() { "${MMT[@]}" bench "$1" --help 2>/dev/null | grep -q -- "$2"; }
TS_INFER=0; has_option infer '--backend' && TS_INFER=1
TS_TRAIN=0; has_option train '--backend' && TS_TRAIN=1
TS_I=(); [ "$TS_INFER" = 1 ] && TS_I=(--backend torchsharp --device cpu)   # TorchSharp-cpu (LibTorch 2.10) in the same process
TS_T=(); [ "$TS_TRAIN" = 1 ] && TS_T=(--backend torchsharp --device cpu)
DJPEG=(); command -v djpeg >/dev/null || DJPEG=(--no-djpeg)

tmp=$(mktemp "${OUT}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
run() {   # run <subcommand and options…>: prints the command, then its output; a failing figure is reported, not fatal
  echo; echo "\$ mmt bench $*"
  "${MMT[@]}" bench "$@" --threads 2 --seconds "$SEC" 2>&1 || echo "(failed with exit $?)"
}
note() { echo; echo "# $*"; }
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(dotnet --version), commit $(git rev-parse --short HEAD)$([ "${SMOKE:-0}" = 1 ] && echo ', SMOKE RUN (tiny settings: not figures)')"
  [ "$NO_TORCH" = 1 ] && note "no PyTorch at $PYTHON: PyTorch and ONNX Runtime skipped"
  [ "$TS_INFER" = 0 ] && note "TorchSharp inference: this CLI has no 'bench infer --backend'; skipped"
  [ "$TS_TRAIN" = 0 ] && note "TorchSharp training: this CLI has no 'bench train --backend'; skipped"
  [ ${#DJPEG[@]} -gt 0 ] && note "no djpeg (libjpeg-turbo-progs): the decode comparison is skipped"

  note "GEMM: each size's linear-layer shapes, ours against OpenBLAS"
  for arch in vit_tiny vit_small vit_base; do
    run gemm --arch "$arch" --batch "$B" "${ANCHORS[@]}"
  done

  note "Inference: ours, ONNX Runtime, PyTorch (peak memory and GEMM-peak fraction in each)"
  run infer "${WITH_MODEL[@]}" --batch "$B" --rounds "$ROUNDS" "${ANCHORS[@]}" "${ORT[@]}" "${TS_I[@]}"
  run infer --arch vit_tiny --image-size 112 --batch "$B" "${ANCHORS[@]}" "${ORT[@]}" "${TS_I[@]}"
  run infer --arch vit_small --batch "$B" "${ANCHORS[@]}" "${ORT[@]}" "${TS_I[@]}"
  run infer --arch vit_base --batch "$B_BASE" "${ANCHORS[@]}" "${ORT[@]}" "${TS_I[@]}"

  note "Training steps: memory tokens (m = 5) and full fine-tuning"
  for method in memory full; do
    run train --method "$method" --tokens 5 --batch "$B" --rounds "$ROUNDS" "${ANCHORS[@]}" "${TS_T[@]}"
    run train --method "$method" --tokens 5 --arch vit_small --batch "$B" "${ANCHORS[@]}" "${TS_T[@]}"
    run train --method "$method" --tokens 5 --arch vit_base --batch "$B_TRAIN_BASE" "${ANCHORS[@]}" "${TS_T[@]}"
  done

  note "VQT and the multi-task pass"
  run vqt --mode cached --batch "$B" --torch-modes cached,recompute "${ANCHORS[@]}" "${TS_T[@]}"
  run vqt --mode first --batch "$B" --torch-modes detached "${ANCHORS[@]}"
  run multitask --tasks 5 --tokens 5 --batch "$B" "${ANCHORS[@]}"

  if [ "$TS_TRAIN" = 1 ]; then
    note "Host memory over $STEPS training steps on each backend (flat = no per-step leak)"
    for method in memory full; do
      echo; echo "\$ mmt bench memory --method $method --tokens 5 --batch 16 --image-size 112 --steps $STEPS --backend torchsharp --device cpu"
      "${MMT[@]}" bench memory "${WITH_MODEL[@]}" --method "$method" --tokens 5 --batch 16 --image-size 112 --steps "$STEPS" --backend torchsharp --device cpu --threads 2 --no-torch 2>&1 || echo "(failed with exit $?)"
    done
  fi

  note "End to end: files to predictions against the forward alone; JPEG decode per core against djpeg"
  if [ -d "$IMAGES" ]; then
    run e2e --images "$IMAGES" --repeat-to "$REPEAT" "${WITH_MODEL[@]}" --batch "$B" "${DJPEG[@]}" --no-torch
  else
    note "no image folder at $IMAGES: e2e skipped"
  fi
} | tee "$tmp"
mv "$tmp" "$OUT"
trap - EXIT
echo "wrote $OUT" >&2
