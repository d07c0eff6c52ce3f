#!/usr/bin/env bash
# Evaluation benchmark: the built-in rule pack over generated estates of ~1k, ~10k and ~100k
# resources (benches/evaluate.rs), each size in its own process so that its peak RSS is its own.
# Prints a Markdown table: time (best, median of 5), time per resource, peak RSS.
# Usage: bench/evaluate.sh [SIZE...]   (default: 320 5400 56700, i.e. 1.1k, 10.2k, 99.8k resources)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "Machine: $(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(date -u +%F)."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(320 5400 56700)
cargo bench --bench evaluate --quiet --no-run 2>/dev/null
first=1
for size in "${sizes[@]}"; do
    # The bench binary prints a table header, then one row per size.
    if [ $first = 1 ]; then
        cargo bench --bench evaluate --quiet -- "$size" 2>/dev/null
        first=0
    else
        cargo bench --bench evaluate --quiet -- "$size" 2>/dev/null | tail -1
    fi
done
