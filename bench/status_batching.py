"""How much one batched status query saves over one query per job, on the real Slurm cluster.

    scripts/slurm-cluster/start.sh && .venv/bin/python bench/status_batching.py [N]

Submits N held jobs (they never run), then, side by side in one run, times
  batched:  JobManager.statuses(all ids)      -> one squeue call
  per job:  a fresh manager per id, status(id) -> N squeue calls (what a naive poller does)
and prints both and their ratio. Cancels the jobs at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from qmio_hpc.config import Settings
from qmio_hpc.jobs import JobManager
from qmio_hpc.protocol import ExecutionOptions

PROGRAM = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\n'
           'measure q[0] -> c[0];\n')


def settings(store: str) -> Settings:
    return Settings.load({"store": store, "executor": "slurm", "slurm.qpu_hold": "gres",
                          "slurm.extra_directives": ["--hold"]})


def main(n: int) -> None:
    if subprocess.run(["scontrol", "ping"], capture_output=True).returncode != 0:
        sys.exit("the Slurm test cluster is not running: scripts/slurm-cluster/start.sh")
    store = tempfile.mkdtemp(prefix="qmio-bench-")
    manager = JobManager(settings(store))
    began = time.perf_counter()
    ids = [manager.submit([{"name": "x", "program": PROGRAM}], ExecutionOptions(shots=10))
           for _ in range(n)]
    submit_s = time.perf_counter() - began
    try:
        fresh = JobManager(settings(store))
        began = time.perf_counter()
        batched = fresh.statuses(ids)
        batched_s = time.perf_counter() - began
        began = time.perf_counter()
        single = {job_id: JobManager(settings(store)).status(job_id) for job_id in ids}
        single_s = time.perf_counter() - began
        assert {k: v.name for k, v in batched.items()} == {k: v.name for k, v in single.items()}
        print(f"jobs: {n}; submit: {submit_s * 1000 / n:.1f} ms/job (sbatch)")
        print(f"status, one batched query : {batched_s * 1000:8.1f} ms")
        print(f"status, one query per job : {single_s * 1000:8.1f} ms")
        print(f"ratio per-job / batched   : {single_s / batched_s:8.1f}x")
    finally:
        subprocess.run(["scancel", *ids], capture_output=True)


if __name__ == "__main__":
    os.environ.pop("QMIO_EXECUTOR", None)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
