#!/usr/bin/env bash
# Collection benchmark against the emulator: seeds 4 consumer accounts with 50 notebooks (and 50
# security groups) each and 4 data accounts with 13 access points each, then times
# `xscan collect` (release build) over the 8 accounts: wall time, API calls, peak RSS.
# Usage: bench/collect.sh [CONCURRENCY...]   (default: 16)
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/xscan-target}"
venv="${XSCAN_VENV:-$cache/xscan-venv}"
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '5.2.5')" 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "moto[server]==5.2.5"
fi
cargo build --release --quiet
xscan="$CARGO_TARGET_DIR/release/xscan"
work="$(mktemp -d -t xscan-bench.XXXXXX)"
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" tests/emulator/moto_server.py -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT
sleep 2
endpoint="http://127.0.0.1:$port"

{
    echo "scope: bench"
    echo "regions: [us-east-1]"
    echo "accounts:"
} >"$work/xscan.yaml"
buckets=""
for i in 1 2 3 4; do
    consumer="70000000001$i"; data="70000000002$i"
    "$venv/bin/python" tests/emulator/seed.py --endpoint "$endpoint" --consumer "$consumer" --data "$data" \
        --bucket "bench-bucket-$i" --notebooks 50 --access-points 13
    echo "  - {id: \"$consumer\", role: consumer, assume_role: \"arn:aws:iam::$consumer:role/xscan-audit\"}" >>"$work/xscan.yaml"
    echo "  - {id: \"$data\", role: data, assume_role: \"arn:aws:iam::$data:role/xscan-audit\"}" >>"$work/xscan.yaml"
    buckets="$buckets bench-bucket-$i,"
done
cat >>"$work/xscan.yaml" <<YAML
perimeter:
  data_account: "700000000021"
  dataset_buckets: [${buckets%,}]
  access_points: ["arn:aws:s3:us-east-1:700000000021:accesspoint/test-ap-1"]
YAML

echo "| concurrency | accounts | notebooks | security groups | access points | API calls | wall time | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for concurrency in "${@:-16}"; do
    env -i PATH="$PATH" HOME="$work" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
        AWS_EC2_METADATA_DISABLED=true "$venv/bin/python" - "$xscan" "$work" "$endpoint" "$concurrency" <<'PY'
import json, os, resource, subprocess, sys, time
xscan, work, endpoint, concurrency = sys.argv[1:]
start = time.monotonic()
subprocess.run([xscan, "collect", "--config", f"{work}/xscan.yaml", "--endpoint-url", endpoint,
                "--concurrency", concurrency, "--output", f"{work}/snapshot.json"], check=True, env=os.environ)
wall = time.monotonic() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
s = json.load(open(f"{work}/snapshot.json"))
regions = [r for a in s["accounts"].values() for r in a["regions"].values()]
count = lambda key: sum(len(r.get(key, {})) for r in regions)
calls = sum(s["metadata"]["api_calls"].values())
gaps = len(s["metadata"]["collection_gaps"])
print(f"| {concurrency} | {len(s['accounts'])} | {count('sagemaker_notebooks')} | {count('security_groups')} | "
      f"{count('s3_access_points')} | {calls} | {wall:.2f} s | {rss:.0f} MiB |" + (f" ({gaps} gaps)" if gaps else ""))
PY
done
