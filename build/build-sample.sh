#!/usr/bin/env bash
# Packs the solution into artifacts/packages/ (Quantize.MSBuild, and the onnx-quantize .NET tool from the same pack)
# and builds the samples with Quantize.MSBuild, exactly as a user's project would consume it (PackageReference from
# a feed), then runs each once:
#   samples/SuperResolution  waifu2x 2x, calibrated from PNG photos, gated on PSNR against high-resolution photos
#   samples/TextDirection    PaddleOCR's text direction classifier, calibrated from PNG text lines (BGR, mean/std),
#                            gated on top-1 accuracy against labelled lines (class sub-folders)
# Extra arguments go to `dotnet build` (e.g. -bl, -v:n).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet pack "$root/Quantize.MSBuild.sln" -c Release -v:minimal
# NuGet caches a package by id+version: drop the previous copy so this pack is the one used.
rm -rf "$root/artifacts/sample-packages/quantize.msbuild"
dotnet build "$root/samples/SuperResolution/SuperResolution.csproj" -c Release "$@"
dotnet run --project "$root/samples/SuperResolution/SuperResolution.csproj" -c Release --no-build -- \
  "$root/samples/SuperResolution/bin/Release/net10.0/sample-input.npy" "$root/artifacts/upscaled.ppm"
dotnet build "$root/samples/TextDirection/TextDirection.csproj" -c Release "$@"
dotnet run --project "$root/samples/TextDirection/TextDirection.csproj" -c Release --no-build
