#!/usr/bin/env bash
# The TorchSharp backend check on an NVIDIA GPU (samples/gpu/README.md), in one command (needs the .NET 10 SDK, an NVIDIA driver for CUDA 12, and nuget.org):
#   samples/gpu/check.sh                      # ViT-B/16-shaped weights, batch 64, float32 and bf16
#   samples/gpu/check.sh --batch 128 --quick  # options: --help
# It restores TorchSharp-cuda-linux 0.107.0 (LibTorch 2.10 with CUDA; about 2 GB) the first time, trains memory tokens for a
# moment, and prints images/s for inference and the memory-token, VQT and full fine-tuning steps. On a machine without a GPU:
#   TORCH_PACKAGE=TorchSharp-cpu samples/gpu/check.sh --device cpu --batch 8 --quick
set -euo pipefail
cd "$(dirname "$0")/../.."
exec dotnet run --project samples/gpu/GpuCheck -c Release -p:TorchPackage="${TORCH_PACKAGE:-TorchSharp-cuda-linux}" -- "$@"
