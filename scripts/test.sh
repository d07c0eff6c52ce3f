#!/usr/bin/env bash
# The whole test suite, with its own set-up: formatting, lints, then every test — including the
# live-collection tests, which run against a moto server this script installs (in a venv),
# starts on 127.0.0.1 and stops again, also when the tests fail.
# Usage: ./scripts/test.sh   (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}"
# Builds and the venv live outside the clone so fresh clones on the same machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/xscan-target}"
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
export XSCAN_REQUIRE_EMULATOR=1
echo "== cargo test"
cargo test --locked
