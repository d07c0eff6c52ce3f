# Sourced by the collection benchmarks (collect.sh, record.sh, scale.sh) from the repository
# root: the shared build directory, the virtualenvs with moto and Cloud Custodian (installed
# from PyPI on first use), and a free loopback port.
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
venv="${XSCAN_VENV:-$cache/xscan-venv}"
c7n_venv="${XSCAN_C7N_VENV:-$cache/xscan-c7n-venv}"

need_moto() {
    if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '5.2.5')" 2>/dev/null; then
        python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "moto[server]==5.2.5"
    fi
}

need_c7n() {
    if ! "$c7n_venv/bin/python" -c "import c7n, c7n_org" 2>/dev/null; then
        python3 -m venv "$c7n_venv" && "$c7n_venv/bin/pip" install --quiet "c7n==0.9.53" "c7n-org==0.6.52"
    fi
}

# start_moto PORT LOG: moto in the background on 127.0.0.1:PORT, its output in LOG; sets moto_pid.
start_moto() {
    "$venv/bin/python" tests/emulator/moto_server.py -H 127.0.0.1 -p "$1" >"$2" 2>&1 &
    moto_pid=$!
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
