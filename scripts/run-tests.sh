#!/usr/bin/env bash
# Run the whole test suite on this machine, installing what it needs first.
#
#   scripts/run-tests.sh [pytest arguments...]
#
# 1. a virtual environment .venv with qmio-hpc and its test extras;
# 2. the interop peers, each in its own virtual environment (scripts/interop-venvs.sh):
#    OQC's real qat_server (qat-rpc) and CESGA's client (qmio 0.1.3);
# 3. the single-node Slurm test cluster (scripts/slurm-cluster/start.sh, needs root);
# then pytest over tests/, and the cluster is stopped again if this script started it.
# Nothing is skipped: a test whose component is missing fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
say() { printf '== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
fi
say "installing qmio-hpc into .venv"
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import qmio_hpc, qiskit, zmq, click' # fail here, not in the tests

say "interop virtual environments"
scripts/interop-venvs.sh .venv-interop

say "Slurm test cluster"
cluster_started=0
if ! scontrol ping >/dev/null 2>&1; then
    scripts/slurm-cluster/start.sh
    cluster_started=1
fi
cleanup() {
    if ((cluster_started)); then
        say "stopping the Slurm test cluster"
        scripts/slurm-cluster/stop.sh || true
    fi
}
trap cleanup EXIT

say "pytest"
export QMIO_INTEROP_VENVS="$PWD/.venv-interop"
.venv/bin/python -m pytest -ra "$@"
