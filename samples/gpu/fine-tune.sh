#!/usr/bin/env bash
# Memory tokens trained through ML.NET on the TorchSharp backend (a GPU when there is one), then served by the managed engine
# from the same adapter folder (samples/gpu/FineTuneOnGpu). Needs the .NET 10 SDK and nuget.org (TorchSharp-cuda-linux 0.107.0).
#   samples/gpu/fine-tune.sh [--device cuda] [--bf16] [--epochs 2] …     (--help lists them)
# Without a GPU: TORCH_PACKAGE=TorchSharp-cpu samples/gpu/fine-tune.sh --device cpu --train 480 --test 500
set -euo pipefail
cd "$(dirname "$0")/../.."
exec dotnet run --project samples/gpu/FineTuneOnGpu -c Release -p:TorchPackage="${TORCH_PACKAGE:-TorchSharp-cuda-linux}" -- "$@"
