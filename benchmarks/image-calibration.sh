#!/usr/bin/env bash
# Calibrating from images vs from the corpus's .npy tensors: the same models quantized by `onnx-quantize`
# from the corpus's PNGs (waifu2x lr.png, PaddleOCR cls line.png) and from its .npy tensors, each checked on
# the same validation ground truth, given once as images (expected/output.png = hr.png; class folders + classes.txt)
# and once as .npy tensors. Prints one summary line per run (docs/benchmarks.md, "Calibration from images").
# Usage: benchmarks/image-calibration.sh [corpus folder]   (default: ../shared/corpus above the repo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpus="${1:-$root/../shared/corpus}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build "$root/src/Quantize.Cli" -c Release -v:quiet >/dev/null
cli="$root/src/Quantize.Cli/bin/Release/net10.0/Quantize.Cli.dll"

# A little-endian int64 .npy of shape (1,) holding $2 (a class index < 256).
label_npy() {
  local dict="{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"
  local pad=$(( 64 - (10 + ${#dict} + 1) % 64 ))
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#dict} + pad + 1) % 256 )))\\x$(printf %02x $(( (${#dict} + pad + 1) / 256 )))";
    printf '%s%*s\n' "$dict" "$pad" ''; printf "\\x$(printf %02x "$2")\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; } > "$1"
}

sr="$corpus/waifu2x_vgg7_scale2x"; cls="$corpus/ppocr_cls_mobile_v2"
mkdir -p "$work/sr/cal" "$work/cls/cal" "$work/cls/val"
for d in "$sr"/calib/*/; do cp "$d/lr.png" "$work/sr/cal/$(basename "$d").png"; done
for d in "$sr"/val/*/; do n=$(basename "$d")
  mkdir -p "$work/sr/val/$n/expected" "$work/sr/valnpy/$n/expected"
  cp "$d/lr.png" "$work/sr/val/$n/input.png"; cp "$d/hr.png" "$work/sr/val/$n/expected/output.png"
  cp "$d/input.npy" "$work/sr/valnpy/$n/input.npy"; cp "$d/hr.png" "$work/sr/valnpy/$n/expected/output.png"
done
for d in "$cls"/calib/*/; do cp "$d/line.png" "$work/cls/cal/$(basename "$d").png"; done
printf '0\n180\n' > "$work/cls/val/classes.txt"
for d in "$cls"/val/*/; do n=$(basename "$d"); label=$(cat "$d/label.txt")
  mkdir -p "$work/cls/val/$label" "$work/cls/valnpy/$n/expected"
  cp "$d/line.png" "$work/cls/val/$label/$n.png"; cp "$d/x.npy" "$work/cls/valnpy/$n/x.npy"
  label_npy "$work/cls/valnpy/$n/expected/softmax_0.tmp_0.npy" "$([ "$label" = 180 ] && echo 1 || echo 0)"
done

run() { # name, model, calibration, validation, options...
  local name="$1" model="$2" cal="$3" val="$4"; shift 4
  printf '%-34s ' "$name"
  dotnet "$cli" quantize "$model" -c "$cal" --validation "$val" -o "$work/out.onnx" "$@" 2>&1 | grep -E '^Quantize summary|error' | sed 's/^Quantize summary: //'
}
srimg=(--image-size 96x96 --image-interpolation nearest --check 'drop:psnr<=10')
clsimg=(--image-size 192x48 --image-resize fit-height --image-channels bgr --image-mean 0.5 --image-std 0.5 --check 'drop:top1<=50' --check 'sqnr>=0' --keep-float-if-slower false)
run "waifu2x: calib .npy, val images" "$sr/waifu2x_vgg7_scale2x.onnx" "$sr/calib" "$work/sr/val" "${srimg[@]}"
run "waifu2x: calib PNG,  val images" "$sr/waifu2x_vgg7_scale2x.onnx" "$work/sr/cal" "$work/sr/val" "${srimg[@]}"
run "waifu2x: calib .npy, val .npy" "$sr/waifu2x_vgg7_scale2x.onnx" "$sr/calib" "$work/sr/valnpy" "${srimg[@]}"
run "waifu2x: calib PNG,  val .npy" "$sr/waifu2x_vgg7_scale2x.onnx" "$work/sr/cal" "$work/sr/valnpy" "${srimg[@]}"
run "cls: calib .npy, val images" "$cls/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$cls/calib" "$work/cls/val" "${clsimg[@]}"
run "cls: calib PNG,  val images" "$cls/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$work/cls/cal" "$work/cls/val" "${clsimg[@]}"
run "cls: calib .npy, val .npy" "$cls/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$cls/calib" "$work/cls/valnpy" "${clsimg[@]}"
run "cls: calib PNG,  val .npy" "$cls/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$work/cls/cal" "$work/cls/valnpy" "${clsimg[@]}"
