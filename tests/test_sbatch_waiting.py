"""The sbatch started ahead of time for a loop of submissions (``slurm_cli.start_waiting``),
against the real Slurm test cluster: what it submits is what Slurm holds, it submits nothing
unless given a whole script, and no other process can hold it back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qiskit import QuantumCircuit, transpile

from qmio_hpc import QmioRuntimeService
from qmio_hpc.config import Settings
from qmio_hpc.scheduler import slurm_cli
from tests.conftest import REPO

pytestmark = pytest.mark.slurm


def our_jobs() -> set[str]:
    """The ids of every job of ours Slurm still knows (tests run one at a time)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-u", str(os.getuid()), "-o", "%i"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def held_script(tmp_path: Path) -> bytes:
    return (f"#!/bin/bash\n#SBATCH --partition=qpu\n#SBATCH --hold\n"
            f"#SBATCH --output={tmp_path}/held-%j.out\ntrue\n").encode()


def slurms_copy(job_id: str) -> str:
    """The batch script Slurm holds for ``job_id`` (an oracle nobody here wrote)."""
    out = subprocess.run(["scontrol", "write", "batch_script", job_id, "-"],
                         capture_output=True, text=True, check=True)
    return out.stdout


def bell(backend) -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return transpile(circuit, backend)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def no_waiting():
    """No waiting sbatch before or after the test."""
    slurm_cli.stop_waiting()
    yield
    slurm_cli.stop_waiting()


def test_a_loop_of_backend_run_goes_through_the_waiting_sbatch_and_every_job_ends_done(
        slurm_env, no_waiting):
    backend = QmioRuntimeService(Settings.load()).backend("qpu")
    circuit = bell(backend)
    jobs = [backend.run(circuit, shots=200), backend.run(circuit, shots=200)]
    wait_until(lambda: "next" in slurm_cli._waiting)  # started after the second submission
    waiting = slurm_cli._waiting["next"]
    jobs.append(backend.run(circuit, shots=200))
    assert waiting.process.returncode == 0  # the third job was submitted by it
    third = jobs[-1].job_id()
    assert third.isdigit()
    job_dir = Path(slurm_env["QMIO_STORE"]) / "ids" / third
    assert slurms_copy(third) == (job_dir / "job.sbatch").read_text()
    for job in jobs:
        counts = job.result(timeout=120).get_counts()
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200


def test_a_waiting_sbatch_ended_unused_submits_nothing(slurm_env, no_waiting):
    before = our_jobs()
    slurm_cli.start_waiting()
    waiting = slurm_cli._waiting["next"]
    time.sleep(0.5)  # long enough to have read its configuration and be waiting for the script
    assert waiting.process.poll() is None
    slurm_cli.stop_waiting()
    assert waiting.process.returncode == -signal.SIGKILL
    assert our_jobs() == before


def test_a_submitter_killed_while_its_sbatch_waits_submits_nothing(slurm_env, tmp_path):
    before = our_jobs()
    code = ("import os, signal, time\n"
            "from qmio_hpc.scheduler import slurm_cli\n"
            "slurm_cli.start_waiting()\n"
            "print(slurm_cli._waiting['next'].process.pid, flush=True)\n"
            "time.sleep(0.5)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == -signal.SIGKILL
    sbatch_pid = int(out.stdout)
    # the end of its input comes with the submitter's death: sbatch stops, "script is empty"
    wait_until(lambda: not Path(f"/proc/{sbatch_pid}").exists()
               or b"sbatch" not in Path(f"/proc/{sbatch_pid}/cmdline").read_bytes())
    assert our_jobs() == before


def test_a_forked_child_does_not_hold_the_waiting_sbatch_back(slurm_env, tmp_path, no_waiting):
    slurm_cli.start_waiting()
    child = os.fork()
    if child == 0:  # holds every descriptor it inherited, for longer than sbatch's timeout
        time.sleep(60)
        os._exit(0)
    try:
        waiting = slurm_cli._waiting["next"]
        began = time.monotonic()
        job_id = slurm_cli.submit_waiting(held_script(tmp_path)).strip()
        assert time.monotonic() - began < 10
        assert waiting.process.returncode == 0  # it was the waiting one that submitted
        assert job_id.isdigit() and job_id in our_jobs()
        subprocess.run(["scancel", job_id], check=True)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


@pytest.mark.parametrize("change", ["environment", "directory", "directory removed"])
def test_a_waiting_sbatch_started_elsewhere_is_not_used(slurm_env, tmp_path, monkeypatch,
                                                        no_waiting, change):
    """sbatch hands its environment and its directory to the job: one started before either
    changed would submit with the old ones."""
    before = our_jobs()
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    slurm_cli.start_waiting()
    waiting = slurm_cli._waiting["next"]
    if change == "environment":
        monkeypatch.setenv("QMIO_TEST_CHANGED", "1")
    elif change == "directory":
        monkeypatch.chdir(tmp_path)
    else:
        gone.rmdir()
    assert slurm_cli.submit_waiting(held_script(tmp_path)) is None
    assert waiting.process.returncode == -signal.SIGKILL  # ended, having read no script
    assert our_jobs() == before


def test_a_script_longer_than_one_pipe_write_is_submitted_from_its_file(slurm_env, tmp_path,
                                                                         monkeypatch, no_waiting):
    """Only a script that reaches sbatch in one write goes through the waiting one (whole or
    not at all); a longer one (a site template with much in it) is submitted from job.sbatch."""
    default = (REPO / "qmio_hpc" / "templates" / "qmio_job.sbatch").read_text()
    site = tmp_path / "templates"
    site.mkdir()
    padding = "".join(f"# site note {n:04d}: {'x' * 60}\n" for n in range(80))
    (site / "qmio_job.sbatch").write_text(default + padding)
    monkeypatch.setenv("QMIO_SLURM_TEMPLATE_DIR", str(site))
    backend = QmioRuntimeService(Settings.load()).backend("qpu")
    circuit = bell(backend)
    backend.run(circuit, shots=10)
    backend.run(circuit, shots=10)
    wait_until(lambda: "next" in slurm_cli._waiting)
    waiting = slurm_cli._waiting["next"]
    job = backend.run(circuit, shots=10)
    script = (Path(slurm_env["QMIO_STORE"]) / "ids" / job.job_id() / "job.sbatch").read_text()
    assert len(script.encode()) > 4096 and "site note 0079" in script
    assert slurm_cli._waiting.get("next") is waiting and waiting.process.poll() is None
    assert slurms_copy(job.job_id()) == script
    counts = job.result(timeout=120).get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 10
