"""Sessions on the real Slurm test cluster: one Slurm job on the qpu partition holds the QPU GRES
while its worker serves many jobs. Faults are caused for real: scancel, the idle timeout, the time
limit. These tests fail, never skip, when the cluster is down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qiskit import QuantumCircuit

from qmio_hpc import QmioRuntimeService, Session
from qmio_hpc.jobs import JobManager
from qmio_hpc.protocol import ExecutionOptions
from qmio_hpc.sessions import STATUS_ACCEPTING, STATUS_CLOSED
from qmio_hpc.states import SchedulerState
from tests.conftest import run_qmio
from tests.test_sessions_local import wait_until
from tests.test_slurm import SLOW_QASM, sacct_row, squeue_state, write

pytestmark = pytest.mark.slurm


@pytest.fixture
def slurm_sessions(slurm_env):
    manager = JobManager()
    yield manager
    ids = [view.session_id for view in manager.sessions.views()]
    for session_id in ids:
        subprocess.run(["scancel", session_id], capture_output=True)
    # the next test may need the QPU GRES: wait until these allocations have let go of it
    wait_until(lambda: all(squeue_state(i) not in ("PENDING", "RUNNING", "COMPLETING")
                           for i in ids), 30, "the sessions' allocations gone")


def basis_circuit(index: int, width: int = 4) -> tuple[QuantumCircuit, str]:
    bits = format(index % (2 ** width), f"0{width}b")
    qc = QuantumCircuit(width, width, name=f"c{index}")
    for i, bit in enumerate(reversed(bits)):
        if bit == "1":
            qc.x(i)
    qc.measure(range(width), range(width))
    return qc, bits


def test_200_circuits_in_one_allocation_in_order_and_a_second_process_attaches(slurm_sessions):
    manager = slurm_sessions
    service = QmioRuntimeService()
    backend = service.backend("qpu")
    session = Session(backend, max_time=600, idle_timeout=120)
    sid = session.session_id
    assert sid.isdigit()  # the session id is the Slurm job id
    wait_until(lambda: session.status() == STATUS_ACCEPTING, 60, "session serving")
    assert squeue_state(sid) == "RUNNING"
    jobs, expected = [], []
    for index in range(200):  # a variational loop: each job waits for the one before
        qc, bits = basis_circuit(index)
        job = session.run(qc, shots=16)
        assert job.result(timeout=60).get_counts() == {bits: 16}
        jobs.append(job)
        expected.append(bits)
    starts = [manager.store.get(j.job_id()).result()["started"] for j in jobs]
    assert starts == sorted(starts)
    assert [j.job_id() for j in jobs] == [f"{sid}.{n}" for n in range(1, 201)]
    # a second process attaches by id and submits into the same allocation
    script = ("import sys\nfrom qmio_hpc import Session\nfrom qiskit import QuantumCircuit\n"
              "s = Session.from_id(sys.argv[1])\nqc = QuantumCircuit(2, 2); qc.x(0)\n"
              "qc.measure([0, 1], [0, 1])\nj = s.run(qc, shots=8)\n"
              "print(j.job_id(), j.result(timeout=60).get_counts())\n")
    out = subprocess.run([sys.executable, "-c", script, sid], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"{sid}.201", "{'01':", "8}"]
    result = manager.store.get(f"{sid}.201").result()
    assert result["job_id"] == sid  # it ran inside the session's Slurm job
    # no other Slurm job was ever submitted for these 201 jobs
    listed = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %j"], capture_output=True,
                            text=True).stdout
    assert f"{sid} qmio-session" in listed
    session.close()
    wait_until(lambda: squeue_state(sid) in ("COMPLETED", ""), 20, "allocation released")
    row = sacct_row(sid)
    assert row["State"] == "COMPLETED" and row["Partition"] == "qpu"
    assert "gres/qpu=1" in row["AllocTRES"]
    assert session.usage()["busy_seconds"] > 0


def test_scancel_with_50_jobs_queued_ends_every_job_within_five_seconds(slurm_sessions,
                                                                        emulator_factory):
    manager = slurm_sessions
    emulator_factory("--time-model", port=manager.connection.emulator_port)
    manager = JobManager()  # its settings now say --time-model, as the emulator's
    sid = manager.sessions.start(idle_timeout=120, max_time=600)
    wait_until(lambda: manager.sessions.view(sid).status == STATUS_ACCEPTING, 60, "serving")
    slow = ExecutionOptions(shots=1000, repetition_period=0.002)
    ids = [manager.submit([{"name": "s", "program": SLOW_QASM}], slow, session=sid)
           for _ in range(50)]
    wait_until(lambda: manager.status(ids[0]).name == "RUNNING", 30, "first job running")
    began = time.monotonic()
    subprocess.run(["scancel", sid], check=True)
    # another client, in another process, sees every job final
    script = ("import sys, time, json\nfrom qmio_hpc.jobs import JobManager\n"
              "ids = sys.argv[1:]\nm = JobManager()\n"
              "while True:\n    s = m.statuses(ids)\n"
              "    if all(v.final for v in s.values()):\n"
              "        print(json.dumps({k: [v.name, v.detail] for k, v in s.items()})); break\n"
              "    time.sleep(0.1)\n")
    out = subprocess.run([sys.executable, "-c", script, *ids], capture_output=True, text=True,
                         timeout=30)
    elapsed = time.monotonic() - began
    assert out.returncode == 0, out.stderr
    assert elapsed < 5 + 1.5, elapsed  # 5 s, plus the client's own Python start-up
    final = json.loads(out.stdout)
    assert final[ids[0]][0] in ("ERROR", "DONE")
    cancelled = [i for i in ids if final[i][0] == "CANCELLED"]
    assert len(cancelled) >= 45
    for job_id in cancelled:
        assert "the session ended before it ran" in final[job_id][1]
    assert all(final[i][0] in ("CANCELLED", "ERROR", "DONE") for i in ids)
    view = manager.sessions.view(sid)
    assert view.status == STATUS_CLOSED


def test_idle_timeout_releases_the_slurm_job(slurm_sessions, tmp_path):
    out = run_qmio("session", "start", "--idle-timeout", "3", "--json", "--wait")
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["session_id"]
    prog = write(tmp_path, "x.qasm", SLOW_QASM)
    sub = run_qmio("submit", prog, "--session", sid, "--shots", "10", "--wait")
    assert sub.returncode == 0 and "1  10" in sub.stdout, sub.stderr
    began = time.monotonic()
    wait_until(lambda: squeue_state(sid) in ("COMPLETED", ""), 3 + 5,
               "the Slurm job gone within the idle timeout plus 5 s")
    assert time.monotonic() - began < 8
    view = slurm_sessions.sessions.view(sid)
    assert view.status == STATUS_CLOSED and "idle" in view.reason


def test_max_time_is_a_normal_end(slurm_sessions):
    manager = slurm_sessions
    sid = manager.sessions.start(idle_timeout=0, max_time=8)
    script = Path(manager.store.get_session(sid).file("job.sbatch")).read_text()
    assert "#SBATCH --time=0-00:01:00" in script  # Slurm counts minutes: rounded up
    wait_until(lambda: manager.sessions.view(sid).status == STATUS_CLOSED, 40,
               "closed at max_time")
    view = manager.sessions.view(sid)
    assert "max_time" in view.reason
    wait_until(lambda: squeue_state(sid) in ("COMPLETED", ""), 10, "released")
    # and should Slurm's own time limit strike first, the session reads closed, not failed
    timeout = SchedulerState(sid, "TIMEOUT", "TimeLimit", "0:0", time.time())
    seen = manager.sessions.view(sid, alloc=timeout)
    assert seen.status == STATUS_CLOSED
