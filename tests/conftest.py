"""Shared fixtures: every test gets its own job store, settings and ports; nothing is mocked.

Emulators are real processes on loopback; the local executor really detaches runners. Anything a
test starts is stopped at the end of that test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from qmio_hpc.channel import client_keys
from qmio_hpc.config import Settings
from qmio_hpc.jobs import JobManager
from qmio_hpc.transport import QPUClient

REPO = Path(__file__).resolve().parents[1]
BELL_QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[32];
creg c[2];
h q[0];
cx q[0],q[1];
measure q[0] -> c[0];
measure q[1] -> c[1];
"""


def expected_counts(program: str, shots: int) -> dict[str, int]:
    """The oracle for a deterministic OpenQASM 2 program: Qiskit's own parser and Statevector
    give its one outcome, in Qiskit's bit order."""
    from qiskit import qasm2
    from qiskit.quantum_info import Statevector

    circuit = qasm2.loads(program).remove_final_measurements(inplace=False)
    (bits,) = [b for b, p in Statevector(circuit).probabilities_dict().items() if p > 1e-9]
    return {bits: shots}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def qmio_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings isolated from the machine: own store, own emulator port, local executor."""
    port = free_port()
    env = {
        "QMIO_STORE": str(tmp_path / "store"),
        "QMIO_EMULATOR_PORT": str(port),
        "QMIO_EXECUTOR": "local",
        "QMIO_SITE_CONFIG": str(tmp_path / "site.toml"),
        "QMIO_USER_CONFIG": str(tmp_path / "user.toml"),
        "QMIO_EMULATOR_IDLE_EXIT": "60",
        "QMIO_CONNECT_TIMEOUT": "3",
        "QMIO_REPLY_TIMEOUT": "30",
    }
    for name in list(os.environ):
        if name.startswith("QMIO_") or name in ("ZMQ_SERVER", "SLURM_JOB_ID"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    _stop_on_demand_emulators(Path(env["QMIO_STORE"]))
    _wait_runners_idle(Path(env["QMIO_STORE"]))


def _stop_on_demand_emulators(store: Path) -> None:
    for pid_file in (store / "emulator").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _wait_runners_idle(store: Path, timeout: float = 10.0) -> None:
    """Let detached runners of this test finish (their emulator is gone, so they fail fast)."""
    queue = store / "local" / "queue"
    deadline = time.monotonic() + timeout
    while queue.is_dir() and any(queue.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def slurm_env(qmio_env, monkeypatch):
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0:
        pytest.fail("the Slurm test cluster is not running: start it with "
                    "scripts/slurm-cluster/start.sh")
    env = {"QMIO_EXECUTOR": "slurm", "QMIO_SLURM_QPU_HOLD": "gres",
           "QMIO_SLURM_PARTITION": "qpu"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield {**qmio_env, **env}
    # leave no job of this test behind
    for job_id in JobManager(Settings.load()).job_ids():
        subprocess.run(["scancel", job_id], capture_output=True)


class Emulator:
    """A real ``qmio emulator`` process on loopback. ``private``: the store's own (``--private``,
    in the store of QMIO_STORE), as the built-in endpoint 'emulator' requires."""

    def __init__(self, port: int, *args: str, private: bool = False) -> None:
        self.port = port
        self.endpoint = f"tcp://127.0.0.1:{port}"
        # its log goes to a file: a pipe nobody reads would block it once full
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qmio_hpc", "emulator", "--bind", self.endpoint, *args]
            + (["--private"] if private else []),
            stdout=self.log, stderr=subprocess.STDOUT)
        keys = Path(os.environ.get("QMIO_STORE", "")) / "emulator" / "keys"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"emulator exited: {self.log.read().decode(errors='replace')}")
            try:
                curve = client_keys(keys) if private else None
                with QPUClient(self.endpoint, connect_timeout=0.5, reply_timeout=2,
                               retries=0, curve=curve) as client:
                    client.version()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("emulator did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def emulator_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    started: list[Emulator] = []

    def start(*args: str, port: int | None = None) -> Emulator:
        """An emulator; on ``port`` (the settings' emulator_port), the store's private one, and
        the settings then say --time-model when it has it (a job uses no emulator whose options
        differ from its own): managers built after this call, and every CLI run, see it."""
        emu = Emulator(port or free_port(), *args, private=port is not None)
        if port is not None and "--time-model" in args:
            monkeypatch.setenv("QMIO_EMULATOR_TIME_MODEL", "1")
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop(signal.SIGKILL)


@pytest.fixture
def emulator(emulator_factory) -> Emulator:
    return emulator_factory("--seed", "7")


def run_qmio(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a new process, as a user in a new shell would."""
    return subprocess.run([sys.executable, "-m", "qmio_hpc", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          input=input)
