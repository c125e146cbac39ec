#!/usr/bin/env bash
# Create the virtual environments of the interop peers, each in its own venv:
#
#   scripts/interop-venvs.sh [DIR]        (DIR defaults to .venv-interop in the repo root)
#
#   DIR/qat/   qat-rpc==1.0.0  OQC's real QPU control server, console script bin/qat_server
#              (brings qat-compiler 3.x, qiskit, qiskit-aer, pytket, qutip, numpy: about 1.3 GB,
#              ~3 min). Without QAT_CONFIG_PATH it echoes (all-zero results, 32 qubits). With
#              QAT_CONFIG_PATH naming a QAT config whose default pipeline is QAT's real-time chip
#              simulator, it simulates for real (2 qubits, pulse level, physics noise):
#                  PIPELINES:
#                    - name: legacy_rtcs2
#                      pipeline: qat.pipelines.legacy.rtcs.legacy_rtcs2
#                      default: true
#              (tests/test_interop.py writes that file for its simulating server; no extra
#              package: qat-compiler 3.x depends on qutip, which the simulator integrates with)
#   DIR/qmio/  qmio==0.1.3     CESGA's own client library (needs only pyzmq)
#
# Idempotent: a venv whose marker file (DIR/<name>/.interop-complete) names the same package
# spec, and whose check still passes, is left alone; otherwise it is removed and rebuilt.
# Prints how long each step took. Environment:
#   PYTHON   interpreter to build the venvs with (must be >=3.10,<3.13, qat-rpc's range);
#            by default the first of python3.12, python3.11, python3.10, python3 that fits.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/.venv-interop}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

t_start=$(date +%s)
now() { date +%s; }
say() { printf '[interop-venvs %3ss] %s\n' "$(($(now) - t_start))" "$*"; }

# --- one run at a time on the same directory -------------------------------------------------
if command -v flock >/dev/null 2>&1; then
    exec 9>"$dir/.lock"
    if ! flock -n 9; then
        say "another run holds $dir/.lock; waiting"
        flock 9
    fi
fi

# --- an interpreter qat-rpc accepts (Requires-Python >=3.10,<3.13) ----------------------------
python_fits() {
    "$1" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 13) else 1)' \
        >/dev/null 2>&1
}
pick_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        if python_fits "$PYTHON"; then
            echo "$PYTHON"
            return 0
        fi
        echo "PYTHON=$PYTHON is not a Python >=3.10,<3.13 (qat-rpc 1.0.0 needs that)" >&2
        return 1
    fi
    local candidate
    for candidate in python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_fits "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "no Python >=3.10,<3.13 found (set PYTHON=...)" >&2
    return 1
}
python="$(pick_python)"
py_version="$("$python" -c 'import platform; print(platform.python_version())')"
say "using $python (Python $py_version), target $dir"

# --- checks: each takes the venv path and exits 0 when it is fine -----------------------------
# The installed version, read from the metadata (no import: importing qat takes ~10 s).
has_version() { # VENV DIST VERSION
    "$1/bin/python" -c 'import sys, importlib.metadata as m
sys.exit(0 if m.version(sys.argv[1]) == sys.argv[2] else 1)' "$2" "$3"
}
qat_quick() { [[ -x "$1/bin/qat_server" ]] && has_version "$1" qat-rpc 1.0.0; }
# qat_server must exist and its server module must import (that pulls in qat-compiler), and so
# must the simulating mode's pipeline, with the qutip its engine needs.
qat_full() {
    [[ -x "$1/bin/qat_server" ]] && "$1/bin/python" -c 'import qat_rpc.zmq.server
import qat.pipelines.legacy.rtcs
from qat.purr.backends.realtime_chip_simulator import qutip_available
assert qutip_available, "qutip is missing: QAT real-time chip simulator cannot run"'
}
qmio_quick() { has_version "$1" qmio 0.1.3; }
# qmio reads ZMQ_SERVER from the environment at import time (KeyError without it).
qmio_full() { ZMQ_SERVER=tcp://127.0.0.1:5556 "$1/bin/python" -c 'import qmio, qmio.backends'; }

# --- one venv --------------------------------------------------------------------------------
# build_venv NAME SPEC QUICK_CHECK FULL_CHECK: the checks are function names. QUICK_CHECK
# decides whether a venv whose marker matches can be skipped (it must be fast); FULL_CHECK runs
# once after an install.
build_venv() {
    local name="$1" spec="$2" quick_check="$3" full_check="$4"
    local venv="$dir/$name"
    local marker="$venv/.interop-complete"
    local expected="spec=$spec python=$py_version"
    local t0
    t0=$(now)

    if [[ -f "$marker" ]] && [[ "$(head -n 1 "$marker")" == "$expected" ]] \
        && "$quick_check" "$venv" >/dev/null 2>&1; then
        say "$name: already complete ($spec), skipped"
        return 0
    fi

    say "$name: creating venv with $spec"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    local log="$venv/install.log"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
        "$spec" >"$log" 2>&1; then
        grep -v '^WARNING: Location' "$log" | tail -n 40 >&2 || true
        say "$name: pip install $spec FAILED (full log: $log)"
        return 1
    fi
    if ! "$full_check" "$venv"; then
        say "$name: installed, but the check $full_check failed"
        return 1
    fi
    {
        echo "$expected"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$(($(now) - t0))"
        "$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null || true
    } >"$marker"
    say "$name: done in $(($(now) - t0))s"
}

build_venv qat "qat-rpc==1.0.0" qat_quick qat_full
build_venv qmio "qmio==0.1.3" qmio_quick qmio_full

say "all interop venvs ready in $dir (total $(($(now) - t_start))s)"
