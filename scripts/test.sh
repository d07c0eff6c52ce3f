#!/usr/bin/env bash
# The whole test suite, with its own set-up: formatting, lints, then every test — including the
# live-collection tests, which run against a moto server this script installs (in a venv),
# starts on 127.0.0.1 and stops again, also when the tests fail.
# Usage: ./scripts/test.sh   (CI runs exactly this through .ci/run)
# Last, the example SARIF goes through Microsoft's SARIF Multitool when npm is available.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}"
# The clone's own target/ by default, so the README's two commands share one build (CI sets
# CARGO_TARGET_DIR to a directory outside the clone that later clean clones reuse).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
venv="${XSCAN_VENV:-$cache/xscan-venv}"
moto_version="5.2.5"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test --no-run"
cargo test --locked --no-run

echo "== moto $moto_version (venv: $venv)"
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t xscan-moto.XXXXXX.log)"
"$venv/bin/python" tests/emulator/moto_server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() {
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 60); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "moto server exited:"; cat "$log"; exit 1
    fi
    sleep 0.5
done
echo "moto listening on 127.0.0.1:$port"

export XSCAN_TEST_ENDPOINT="http://127.0.0.1:$port"
export XSCAN_TEST_PYTHON="$venv/bin/python"
echo "== cargo test (with the emulator tests, which are #[ignore]d without it)"
cargo test --locked -- --include-ignored

# ASFF against AWS's own model of Security Hub's BatchImportFindings (botocore, which moto
# brings), in batches of 100 as the import takes them; JUnit through a real consumer
# (junitparser). OCSF is validated against its schema by `cargo test` (tests/it/formats.rs).
echo "== ASFF and JUnit consumers"
if ! "$venv/bin/python" -c "import junitparser" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "junitparser==3.2.0"
fi
formats_dir="$(mktemp -d -t xscan-formats.XXXXXX)"
for format in asff junit; do
    "$CARGO_TARGET_DIR/debug/xscan" scan --snapshot examples/estate.snapshot.json --config examples/xscan.yaml \
        --format "$format" --output "$formats_dir/example.$format" || [ $? -le 3 ]
done
"$venv/bin/python" - "$formats_dir" <<'PY'
import json, sys
import botocore.session
from botocore.validate import ParamValidator
from junitparser import JUnitXml
d = sys.argv[1]
shape = botocore.session.get_session().get_service_model("securityhub").operation_model("BatchImportFindings").input_shape
findings = json.load(open(f"{d}/example.asff"))
for i in range(0, len(findings), 100):
    report = ParamValidator().validate({"Findings": findings[i:i + 100]}, shape)
    if report.has_errors():
        print(report.generate_report()); sys.exit(1)
cases = [case for suite in JUnitXml.fromfile(f"{d}/example.junit") for case in suite]
if not cases:
    sys.exit("JUnit: no test case")
print(f"ASFF: {len(findings)} finding(s) valid for BatchImportFindings; JUnit: {len(cases)} test case(s) parsed")
PY

# The HTML evidence report seen in a real browser: headless Chromium (Debian's package, installed
# here when it can be) loads the example estate's report; the perimeter diagram must be in the
# page and the page must log no Content-Security-Policy violation.
echo "== HTML report in Chromium"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || true
    browser="$(command -v chromium || true)"
fi
if [ -z "$browser" ]; then
    echo "skipped: Chromium is not installed and could not be installed (apt-get install chromium)"
else
    page_dir="$(mktemp -d -t xscan-page.XXXXXX)"
    "$CARGO_TARGET_DIR/debug/xscan" scan --snapshot examples/estate.snapshot.json --config examples/xscan.yaml \
        --format html --output "$page_dir/report.html" || [ $? -le 3 ]
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$page_dir/profile" --enable-logging=stderr --v=0 \
        --dump-dom "file://$page_dir/report.html" >"$page_dir/dom.html" 2>"$page_dir/console.log" || true
    if ! grep -q '<svg[^>]*class="perimeter"' "$page_dir/dom.html"; then
        echo "the perimeter diagram is not in the rendered page"; exit 1
    fi
    if grep -qi "Content Security Policy" "$page_dir/console.log"; then
        grep -i "Content Security Policy" "$page_dir/console.log"; exit 1
    fi
    echo "Chromium: the report renders with its perimeter diagram and no CSP violation"
fi

# Every rule's test cases must tell every single-point mutant of its check from the rule.
echo "== xscan rules test --mutants"
"$CARGO_TARGET_DIR/debug/xscan" rules test --mutants

# Microsoft's SARIF Multitool (the reference validator) with GitHub's ingestion rules, on the
# example estate's SARIF. Needs npm (on every machine of this project's kind); skipped without.
echo "== SARIF Multitool"
if command -v npm >/dev/null 2>&1; then
    tools="$cache/xscan-sarif-multitool"
    if [ ! -x "$tools/node_modules/.bin/sarif-multitool" ]; then
        npm install --silent --no-audit --no-fund --prefix "$tools" @microsoft/sarif-multitool@5.7.0
    fi
    sarif_dir="$(mktemp -d -t xscan-sarif.XXXXXX)"
    "$CARGO_TARGET_DIR/debug/xscan" scan --snapshot examples/estate.snapshot.json --config examples/xscan.yaml \
        --format sarif --output "$sarif_dir/example.sarif" || [ $? -le 3 ]
    for kind in Sarif Ghas; do
        "$tools/node_modules/.bin/sarif-multitool" validate "$sarif_dir/example.sarif" \
            -c tests/data/sarif-multitool-github.config.xml --rule-kind "$kind" \
            -o "$sarif_dir/validation-$kind.sarif" >/dev/null
        "$venv/bin/python" - "$sarif_dir/validation-$kind.sarif" "$kind" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["runs"][0].get("results", [])
for r in results:
    print(f"  {r.get('level', 'warning')} {r['ruleId']}: {json.dumps(r['message'])[:300]}")
print(f"SARIF Multitool ({sys.argv[2]} rules): {len(results)} finding(s)")
sys.exit(1 if results else 0)
PY
    done
else
    echo "skipped: npm is not installed"
fi
