#!/usr/bin/env bash
# Smoke check of the HTML evidence report in a real browser: renders the example estate's report
# and prints it to PNG and PDF with headless Chromium (Debian: apt-get install chromium).
# Usage: scripts/render-report.sh [OUTDIR]   (default: target/report-smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/report-smoke}"
mkdir -p "$out"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
    echo "no Chromium found: apt-get install chromium" >&2
    exit 2
fi
cargo run --quiet -- scan --snapshot examples/estate.snapshot.json --config examples/xscan.yaml \
    --format html --output "$out/report.html" || [ $? -le 3 ]
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)")
"$browser" "${flags[@]}" --window-size=1280,2000 --screenshot="$out/report.png" "file://$(realpath "$out")/report.html" 2>/dev/null
"$browser" "${flags[@]}" --print-to-pdf="$out/report.pdf" --no-pdf-header-footer "file://$(realpath "$out")/report.html" 2>/dev/null
for f in report.png report.pdf; do
    [ -s "$out/$f" ] || { echo "Chromium did not write $out/$f" >&2; exit 1; }
done
echo "wrote $out/report.png and $out/report.pdf"
