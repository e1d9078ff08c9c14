#!/usr/bin/env bash
# Renders a Quantize HTML report in headless Chromium (Debian's `chromium` package) and saves a screenshot.
# Fails when Chromium cannot render it or the page logs console errors.
#   build/render-report.sh <report.html> <screenshot.png> [width,height]
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 <report.html> <screenshot.png> [width,height]" >&2
  exit 2
fi
html="$(realpath "$1")"
png="$(realpath -m "$2")"
size="${3:-1280,2000}"
[[ -f "$html" ]] || { echo "$0: no such file: $html" >&2; exit 2; }
browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[[ -n "$browser" ]] || { echo "$0: chromium is not installed (apt-get install -y chromium)" >&2; exit 3; }

profile="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$profile" "$log"' EXIT
mkdir -p "$(dirname "$png")"
rm -f "$png"

status=0
timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --enable-logging=stderr --v=0 --hide-scrollbars --screenshot="$png" --window-size="$size" \
  "file://$html" >/dev/null 2>"$log" || status=$?

# Console messages of the page are logged as "CONSOLE(...)" / "CONSOLE:" lines.
errors="$(grep -E 'CONSOLE' "$log" | grep -Ei 'Uncaught|error' || true)"
if [[ -n "$errors" ]]; then
  echo "$0: the page logged console errors:" >&2
  echo "$errors" >&2
  exit 1
fi

if [[ $status -ne 0 || ! -s "$png" ]]; then
  echo "$0: chromium failed (exit $status) or wrote no screenshot; its log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi

echo "$png"
