#!/usr/bin/env bash
# One large estate in one run (issue "Hardening", "Scale of a single run"): a snapshot of N
# notebooks and N security groups in one consumer account (the compliant fixture's pattern,
# repeated), scanned to a table, to JSON and (up to N = 50,000) to HTML, and diffed with
# itself, on a release build.
# Prints the snapshot size, each command's wall time and peak RSS (GNU time).
# Usage: bench/single-run.sh [N]   (default 227000: the 200 MB estate of the issue)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-227000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked --quiet --bin xscan
xscan="$CARGO_TARGET_DIR/release/xscan"
work="$(mktemp -d -t xscan-single-run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work/estate.json" <<'PY'
import copy, json, sys
n, out = int(sys.argv[1]), sys.argv[2]
d = json.load(open("rules/fixtures/compliant.snapshot.json"))
region = d["accounts"]["111111111111"]["regions"]["us-east-1"]
nb = region["sagemaker_notebooks"]["ml-notebook-1"]
sg = region["security_groups"]["sg-0c0ffee0000000a01"]
for i in range(n):
    name, group = f"nb-{i}", f"sg-{i:017x}"
    notebook = copy.deepcopy(nb)
    notebook.update(name=name, arn=nb["arn"].replace("ml-notebook-1", name), security_groups=[group])
    region["sagemaker_notebooks"][name] = notebook
    security_group = copy.deepcopy(sg)
    security_group["id"] = group
    region["security_groups"][group] = security_group
json.dump(d, open(out, "w"), indent=1)
PY
size="$(du -m "$work/estate.json" | cut -f1)"
echo "snapshot: $n notebooks + $n security groups, ${size} MB"
measure() {
    local label="$1"; shift
    /usr/bin/time -q -o "$work/time" -f "%e %M" "$@" >/dev/null || [ $? -le 3 ]
    # Peak RSS against the snapshot's size: the issue's target is at most 2 (one snapshot read).
    read -r seconds peak_kb <"$work/time"
    awk -v l="$label" -v s="$seconds" -v k="$peak_kb" -v b="$bytes" \
        'BEGIN { printf "%s: %s s, peak %d KB, %.2fx the snapshot\n", l, s, k, k * 1024 / b }'
}
bytes="$(stat -c %s "$work/estate.json")"
measure "scan --format table" "$xscan" scan --snapshot "$work/estate.json" --config examples/xscan.yaml --format table -o "$work/report.txt"
measure "scan --format json" "$xscan" scan --snapshot "$work/estate.json" --config examples/xscan.yaml --format json -o "$work/report.json"
echo "JSON report: $(du -m "$work/report.json" | cut -f1) MB"
# diff reads two snapshots: its ratio is against one of them.
measure "diff (same snapshot twice)" "$xscan" diff "$work/estate.json" "$work/estate.json"
# The HTML page holds every result's evidence twice (shown and in its JSON island): about 18 KB
# of page and 80 KB of memory per notebook, so only for the smaller estates.
if [ "$n" -le 50000 ]; then
    measure "scan --format html" "$xscan" scan --snapshot "$work/estate.json" --config examples/xscan.yaml --format html -o "$work/report.html"
    echo "HTML report: $(du -m "$work/report.html" | cut -f1) MB"
fi
