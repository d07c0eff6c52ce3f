#!/usr/bin/env bash
# Collection benchmark: xscan against Cloud Custodian (c7n-org) over one emulated estate, in the
# same run, against the emulator (moto) as it is and behind a loopback proxy that adds a fixed
# latency to every call, as AWS's APIs have. Prints a Markdown report (see bench/RESULTS.md).
#
# Estate: 4 consumer accounts with 50 notebooks, 50 security groups and 13 S3 gateway endpoints
# each, and 4 data accounts with 13 access points each; one drift per account pair
# (direct internet, open endpoint policy, open egress, public access point) so that both tools
# have something to find.
#
# Usage: bench/collect.sh [LATENCY_MS] [REPEAT]     (defaults: 50 ms, 3 runs per setting)
#        XSCAN_BENCH_PER_ACCOUNT=N XSCAN_BENCH_PER_SERVICE=M bench/collect.sh ... runs xscan with
#        per_account_concurrency N and per_service_concurrency M instead of the defaults (8, 4).
set -euo pipefail
cd "$(dirname "$0")/.."
latency_ms="${1:-50}"
repeat="${2:-3}"
. bench/lib.sh
need_moto
need_c7n
cargo build --release --quiet
xscan="$CARGO_TARGET_DIR/release/xscan"
work="$(mktemp -d -t xscan-bench.XXXXXX)"
moto_port="$(free_port)"
proxy_port="$(free_port)"
start_moto "$moto_port" "$work/moto.log"
python3 bench/latency_proxy.py --listen "$proxy_port" --upstream "http://127.0.0.1:$moto_port" \
    --latency-ms "$latency_ms" &
proxy_pid=$!
trap 'kill $moto_pid $proxy_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 2
endpoint="http://127.0.0.1:$moto_port"

{
    echo "scope: bench"
    echo "regions: [us-east-1]"
    # XSCAN_BENCH_PER_ACCOUNT / XSCAN_BENCH_PER_SERVICE override per_account_concurrency (8) and
    # per_service_concurrency (4), to show what those limits cost under latency.
    echo "collection: {concurrency: 64${XSCAN_BENCH_PER_ACCOUNT:+, per_account_concurrency: $XSCAN_BENCH_PER_ACCOUNT}${XSCAN_BENCH_PER_SERVICE:+, per_service_concurrency: $XSCAN_BENCH_PER_SERVICE}}"
    echo "accounts:"
} >"$work/xscan.yaml"
echo "accounts:" >"$work/c7n-accounts.yml"
drifts=(direct-internet endpoint-open egress-open ap-public)
buckets=""
consumers=""
for i in 1 2 3 4; do
    consumer="70000000001$i"; data="70000000002$i"
    "$venv/bin/python" tests/emulator/seed.py --endpoint "$endpoint" --consumer "$consumer" --data "$data" \
        --bucket "bench-bucket-$i" --notebooks 50 --endpoints 13 --access-points 13 --drift "${drifts[$((i - 1))]}"
    for pair in "$consumer consumer" "$data data"; do
        set -- $pair
        echo "  - {id: \"$1\", role: $2, assume_role: \"arn:aws:iam::$1:role/xscan-audit\"}" >>"$work/xscan.yaml"
        cat >>"$work/c7n-accounts.yml" <<YAML
  - account_id: "$1"
    name: "$2-$1"
    regions: [us-east-1]
    role: "arn:aws:iam::$1:role/xscan-audit"
    tags: [$2]
YAML
    done
    buckets="$buckets bench-bucket-$i,"
    consumers="$consumers \"$consumer\","
done
cat >>"$work/xscan.yaml" <<YAML
perimeter:
  data_account: "700000000021"
  dataset_buckets: [${buckets%,}]
  access_points: ["arn:aws:s3:us-east-1:700000000021:accesspoint/test-ap-1"]
YAML

# Cloud Custodian's version of the same four checks (bench/c7n-policies.yml), with these
# consumers; bench/c7n-site makes its S3 Control requests reach the emulator as xscan's do.
sed "s/CONSUMERS/${consumers%,}/" bench/c7n-policies.yml >"$work/c7n-policies.yml"
printf '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n' >"$work/aws-config"

echo "Machine: $(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(date -u +%F)."
"$venv/bin/python" bench/collect_compare.py --xscan "$xscan" --c7n-org "$c7n_venv/bin/c7n-org" \
    --work "$work" --emulator "$endpoint" --proxy "http://127.0.0.1:$proxy_port" \
    --latency-ms "$latency_ms" --moto-pid "$moto_pid" --moto-log "$work/moto.log" --repeat "$repeat"
