#!/usr/bin/env bash
# Records the exchanges the simulated AWS (tests/awssim) replays: seeds the template estate into
# moto (consumer 111111111111: 5 notebooks with their security groups, 2 S3 gateway endpoints,
# an execution role with an inline and a customer managed policy;
# data 222222222222: the bucket and one access point), then runs xscan and Cloud Custodian
# (c7n-org) over it through a recording proxy (bench/latency_proxy.py --record). The recording
# is committed; run this again when the collector starts making a call the simulator answers
# with SimulatorUnrecordedCall.
#
# Usage: bench/record.sh [OUTPUT]     (default tests/data/awssim/recording.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-tests/data/awssim/recording.jsonl}"
. bench/lib.sh
need_moto
need_c7n
cargo build --release --quiet
xscan="$CARGO_TARGET_DIR/release/xscan"
work="$(mktemp -d -t xscan-record.XXXXXX)"
moto_port="$(free_port)"
proxy_port="$(free_port)"
start_moto "$moto_port" "$work/moto.log"
trap 'kill $moto_pid ${proxy_pid:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 2
consumer=111111111111
data=222222222222
"$venv/bin/python" tests/emulator/seed.py --endpoint "http://127.0.0.1:$moto_port" \
    --consumer "$consumer" --data "$data" --bucket test-bucket-1 --notebooks 5 --endpoints 2 --managed-policy
mkdir -p "$(dirname "$out")"
: >"$work/recording.jsonl"
python3 bench/latency_proxy.py --listen "$proxy_port" --upstream "http://127.0.0.1:$moto_port" \
    --latency-ms 0 --record "$work/recording.jsonl" &
proxy_pid=$!
sleep 1
cat >"$work/xscan.yaml" <<YAML
scope: record
regions: [us-east-1]
accounts:
  - {id: "$consumer", role: consumer, assume_role: "arn:aws:iam::$consumer:role/xscan-audit"}
  - {id: "$data", role: data, assume_role: "arn:aws:iam::$data:role/xscan-audit"}
perimeter:
  data_account: "$data"
  dataset_buckets: [test-bucket-1]
  access_points: ["arn:aws:s3:us-east-1:$data:accesspoint/test-ap-1"]
YAML
cat >"$work/c7n-accounts.yml" <<YAML
accounts:
  - {account_id: "$consumer", name: consumer, regions: [us-east-1], role: "arn:aws:iam::$consumer:role/xscan-audit"}
  - {account_id: "$data", name: data, regions: [us-east-1], role: "arn:aws:iam::$data:role/xscan-audit"}
YAML
sed "s/CONSUMERS/\"$consumer\"/" bench/c7n-policies.yml >"$work/c7n-policies.yml"
printf '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n' >"$work/aws-config"
env -i PATH="$PATH" HOME="$work" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    "$xscan" scan --config "$work/xscan.yaml" --endpoint-url "http://127.0.0.1:$proxy_port" \
    --format json --output "$work/report.json" --exit-zero
env -i PATH="$PATH" HOME="$work" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_ENDPOINT_URL="http://127.0.0.1:$proxy_port" AWS_CONFIG_FILE="$work/aws-config" \
    PYTHONPATH="$PWD/bench/c7n-site" \
    "$c7n_venv/bin/c7n-org" run -c "$work/c7n-accounts.yml" -u "$work/c7n-policies.yml" \
    -s "$work/c7n-out" --cache-period 0 >"$work/c7n.log" 2>&1 || { cat "$work/c7n.log"; exit 1; }
cp "$work/recording.jsonl" "$out"
echo "recorded $(wc -l <"$out") exchanges into $out"
