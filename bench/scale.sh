#!/usr/bin/env bash
# Scale benchmark (issue #16): one size end to end over the simulated AWS (tests/awssim) with
# latency and AWS's throttling — simulator up, xscan, c7n-org, simulator down — ending with
#   accounts=N xscan_s=S bound_s=B c7n_s=C gaps=G
#
# Usage: bench/scale.sh ACCOUNTS [LATENCY_MS] [--no-c7n]     (default 50 ms)
#   ACCOUNTS consumer accounts, one data account per ten; each consumer has the seed pattern
#   with 5 notebooks and their security groups and 2 S3 gateway endpoints (bench/record.sh).
#   XSCAN_SCALE_THROTTLE=SERVICE=BURST/REFILL,... replaces AWS's limits (tests/awssim aws_limits);
#   XSCAN_SCALE_JITTER_MS=J adds 0..J ms of seeded jitter to each call.
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:?usage: bench/scale.sh ACCOUNTS [LATENCY_MS] [--no-c7n]}"
latency_ms=50
c7n=yes
for arg in "${@:2}"; do
    case "$arg" in
        --no-c7n) c7n=no ;;
        *) latency_ms="$arg" ;;
    esac
done
. bench/lib.sh
if [ "$c7n" = yes ]; then need_c7n; fi
cargo build --release --quiet
awssim="$(cargo bench --bench awssim --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "awssim" and m.get("executable"):
        print(m["executable"])')"
work="$(mktemp -d -t xscan-scale.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "Machine: $(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(date -u +%F)."
c7n_args=()
[ "$c7n" = yes ] && c7n_args=(--c7n-org "$c7n_venv/bin/c7n-org")
python3 bench/scale.py --accounts "$accounts" --latency-ms "$latency_ms" --throttle "${XSCAN_SCALE_THROTTLE:-aws}" \
    --jitter-ms "${XSCAN_SCALE_JITTER_MS:-0}" \
    --xscan "$CARGO_TARGET_DIR/release/xscan" --awssim "$awssim" --work "$work" "${c7n_args[@]}"
