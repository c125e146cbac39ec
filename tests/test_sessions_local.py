"""Sessions on the embedded default: a real detached worker holding the local QPU lock, a real
emulator, the real CURVE channel, the CLI in fresh processes. Faults are caused for real (the
worker killed, the published channel address made unreachable), not mocked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qiskit import QuantumCircuit

from qmio_hpc import Batch, QmioRuntimeService, Session, SessionClosedError
from qmio_hpc.channel import ChannelClient, create_keys
from qmio_hpc.config import Settings
from qmio_hpc.durations import parse_duration, slurm_time
from qmio_hpc.errors import ProgramError, SessionNotFoundError
from qmio_hpc.fifo import FifoQueue
from qmio_hpc.jobs import JobManager
from qmio_hpc.primitives import EstimatorV2, SamplerV2
from qmio_hpc.protocol import ExecutionOptions
from qmio_hpc.sessions import STATUS_ACCEPTING, STATUS_CLOSED, STATUS_PENDING
from qmio_hpc.store import read_json
from tests.conftest import BELL_QASM, run_qmio

SLOW_QASM = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\n'
             'measure q[0] -> c[0];\n')


def x_circuit(bits: str) -> QuantumCircuit:
    """A circuit whose only outcome is ``bits`` (Qiskit order): an oracle for correct counts."""
    qc = QuantumCircuit(len(bits), len(bits), name=f"x{bits}")
    for i, bit in enumerate(reversed(bits)):
        if bit == "1":
            qc.x(i)
    qc.measure(range(len(bits)), range(len(bits)))
    return qc


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")


def serving(manager: JobManager, session_id: str, timeout: float = 60) -> None:
    wait_until(lambda: manager.sessions.view(session_id).status == STATUS_ACCEPTING, timeout,
               f"session {session_id} serving")


@pytest.fixture
def manager(qmio_env):
    m = JobManager()
    yield m
    # leave no worker behind: cancel what is still open
    for view in m.sessions.views():
        if view.status != STATUS_CLOSED:
            m.sessions.cancel([view.session_id])


def test_durations_are_seconds_or_slurm_times():
    assert parse_duration(90, "t") == 90 and parse_duration("90", "t") == 90
    assert parse_duration("1:30", "t") == 90 and parse_duration("1:00:00", "t") == 3600
    assert parse_duration("1-02:00:00", "t") == 93600 and parse_duration(None, "t") is None
    for bad in ("abc", "-5", "0", float("nan"), float("inf"), True):
        with pytest.raises(Exception, match="duration"):
            parse_duration(bad, "t")
    assert slurm_time(61) == "0-00:02:00" and slurm_time(3600) == "0-01:00:00"


def test_a_session_serves_many_jobs_in_order_with_correct_counts(manager):
    service = QmioRuntimeService()
    backend = service.backend("qpu")
    patterns = [format(i, "03b") for i in range(8)] * 3
    with Session(backend, idle_timeout=60) as session:
        assert session.session_id.startswith("S")
        jobs = [backend.run(x_circuit(bits), shots=20) for bits in patterns]
        results = [job.result(timeout=60) for job in jobs]
        assert session.status() == STATUS_ACCEPTING
        # an open session's usage counts the jobs just done, once the worker is idle a moment
        wait_until(lambda: session.usage()["busy_seconds"] > 0, 2,
                   "usage() counting the jobs done while the session is open")
        assert session.details()["last_job_completed"] is not None
        details = session.details()
    for bits, job, result in zip(patterns, jobs, results):
        assert job.job_id().startswith(session.session_id + ".")
        assert result.get_counts() == {bits: 20}
    starts = [manager.store.get(j.job_id()).result()["started"] for j in jobs]
    assert starts == sorted(starts)  # served in submission order
    numbers = [int(j.job_id().rsplit(".", 1)[1]) for j in jobs]
    assert numbers == list(range(1, len(jobs) + 1))
    for key in ("id", "backend_name", "interactive_timeout", "max_time", "active_timeout",
                "state", "accepting_jobs", "last_job_started", "last_job_completed",
                "started_at", "closed_at", "activated_at", "mode", "usage_time",
                "slurm_job_id", "seconds_left", "endpoint"):
        assert key in details, key
    assert details["interactive_timeout"] == 60 and details["mode"] == "dedicated"
    # the with block closed it: the worker drains and releases the QPU
    wait_until(lambda: session.status() == STATUS_CLOSED, 15, "closed after the with block")
    # the spare directories made ahead for the next jobs are gone with the session
    jobs_dir = manager.store.get_session(session.session_id).path / "jobs"
    wait_until(lambda: not [n for n in os.listdir(jobs_dir) if n.startswith(".")], 10,
               "no spare job directory left")
    assert sorted(os.listdir(jobs_dir), key=int) == [str(n) for n in numbers]
    usage = session.usage()
    assert usage["held_seconds"] > 0 and 0 < usage["busy_seconds"] <= usage["held_seconds"]
    assert abs(usage["held_seconds"] - usage["busy_seconds"] - usage["idle_seconds"]) < 1e-6
    with pytest.raises(SessionClosedError, match="The session is closed"):
        session.run(x_circuit("1"))
    # every job is a full QmioJob: found again by id in a new process
    out = subprocess.run([sys.executable, "-c", (
        "import sys; from qmio_hpc import QmioRuntimeService; "
        "j = QmioRuntimeService().job(sys.argv[1]); print(j.status().name, "
        "j.result().get_counts())"), jobs[5].job_id()], capture_output=True, text=True,
        timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 1) == ["DONE", f"{{'{patterns[5]}': 20}}\n"]


def test_from_id_in_another_process_attaches_without_side_effects(manager):
    service = QmioRuntimeService()
    session = Session(service.backend("qpu"), idle_timeout=60)
    serving(manager, session.session_id)
    before = sorted(p.name for p in manager.store.get_session(session.session_id).path.iterdir())
    script = (
        "import sys\n"
        "from qmio_hpc import QmioRuntimeService, Session\n"
        "from qiskit import QuantumCircuit\n"
        "s = Session.from_id(sys.argv[1])\n"
        "qc = QuantumCircuit(2, 2); qc.x(1); qc.measure([0, 1], [0, 1])\n"
        "job = s.run(qc, shots=30)\n"
        "print(job.job_id(), job.result(timeout=60).get_counts(), s.status())\n")
    out = subprocess.run([sys.executable, "-c", script, session.session_id],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    job_id, rest = out.stdout.split(" ", 1)
    assert job_id == f"{session.session_id}.1" and rest.startswith("{'10': 30}")
    assert "accepting new jobs" in rest
    # attaching made no file of its own (the job it submitted lives in jobs/)
    after = sorted(p.name for p in manager.store.get_session(session.session_id).path.iterdir())
    assert after == before
    session.close()
    wait_until(lambda: session.status() == STATUS_CLOSED, 15, "closed")
    again = Session.from_id(session.session_id)
    assert again.status() == STATUS_CLOSED and again.details()["closed_at"] is not None
    assert again.status() == STATUS_CLOSED  # looking does not change it
    with pytest.raises(SessionNotFoundError):
        Session.from_id("S999999")
    assert [s.session_id for s in service.sessions()] == [session.session_id]


def test_primitives_take_a_session_or_the_one_of_the_with_block(manager):
    service = QmioRuntimeService()
    backend = service.backend("qpu")
    qc = x_circuit("01")
    with pytest.raises(ProgramError, match="mode is required outside a session"):
        SamplerV2()
    with Session(backend, idle_timeout=60) as session:
        by_mode = SamplerV2(mode=session).run([qc], shots=40).result()
        implicit = SamplerV2().run([qc], shots=40).result()
        from qiskit.quantum_info import SparsePauliOp
        ev = EstimatorV2(mode=session).run([(x_circuit("01").remove_final_measurements(
            inplace=False), SparsePauliOp("ZI"))]).result()
        ids = session.job_ids()
    assert by_mode[0].data.c.get_counts() == {"01": 40}
    assert implicit[0].data.c.get_counts() == {"01": 40}
    # <ZI> on |01> (qubit 1 in |0>): +1 exactly, the emulator being noiseless
    assert float(ev[0].data.evs) == pytest.approx(1.0)
    assert len(ids) >= 3 and all(i.startswith(session.session_id + ".") for i in ids)


def test_cli_session_lifecycle(qmio_env, tmp_path):
    prog = tmp_path / "bell.qasm"
    prog.write_text(BELL_QASM)
    out = run_qmio("session", "start", "--idle-timeout", "60", "--json", "--wait")
    assert out.returncode == 0, out.stderr
    session_id = json.loads(out.stdout)["session_id"]
    sub = run_qmio("submit", str(prog), "--session", session_id, "--wait", "--shots", "200")
    assert sub.returncode == 0, sub.stderr
    assert f"Submitted job {session_id}.1 (session {session_id}" in sub.stdout
    counts = {line.split()[0]: int(line.split()[1]) for line in sub.stdout.splitlines()[2:]}
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200
    status = json.loads(run_qmio("session", "status", session_id, "--json").stdout)[0]
    assert status["status"] == STATUS_ACCEPTING and status["details"]["jobs"] == 1
    listing = run_qmio("session", "list")
    assert session_id in listing.stdout and "accepting new jobs" in listing.stdout
    assert run_qmio("session", "close", session_id).returncode == 0
    manager = JobManager()
    wait_until(lambda: manager.sessions.view(session_id).status == STATUS_CLOSED, 15, "closed")
    late = run_qmio("submit", str(prog), "--session", session_id)
    assert late.returncode == 7 and "The session is closed" in late.stderr
    assert late.stderr.count("\n") == 1
    missing = run_qmio("submit", str(prog), "--session", "S12345")
    assert missing.returncode == 3 and "no session S12345" in missing.stderr
    both = run_qmio("session", "close", session_id, "--all")
    assert both.returncode == 2


def test_cancel_ends_queued_jobs_cancelled_and_releases_the_qpu(manager, emulator_factory):
    emulator_factory("--time-model", port=manager.connection.emulator_port)
    manager = JobManager()  # its settings now say --time-model, as the emulator's
    sid = manager.sessions.start(idle_timeout=60)
    serving(manager, sid)
    slow = ExecutionOptions(shots=1000, repetition_period=0.002)  # 2 s each
    ids = [manager.submit([{"name": "s", "program": SLOW_QASM}], slow, session=sid)
           for _ in range(6)]
    wait_until(lambda: manager.status(ids[0]).name == "RUNNING", 20, "first job running")
    assert manager.status(ids[3]).name == "QUEUED"
    assert "queued in session" in manager.status(ids[3]).detail
    began = time.monotonic()
    manager.sessions.cancel([sid])
    statuses = wait_until(lambda: (lambda s: s if all(v.final for v in s.values()) else None)(
        JobManager().statuses(ids)), 5, "every job final after cancel")
    assert time.monotonic() - began < 5
    assert all(statuses[i].name == "CANCELLED" for i in ids[1:])
    assert statuses[ids[0]].name in ("CANCELLED", "ERROR")
    wait_until(lambda: manager.sessions.view(sid).status == STATUS_CLOSED, 5, "closed")
    local = manager.store.get_session(sid).file("local.json")
    wait_until(lambda: read_json(local)["phase"] == "finished", 5,
               "the runner let go of the local QPU lock")


def test_the_worker_killed_ends_every_job_within_five_seconds(manager, emulator_factory):
    emulator_factory("--time-model", port=manager.connection.emulator_port)
    manager = JobManager()  # its settings now say --time-model, as the emulator's
    sid = manager.sessions.start(idle_timeout=60)
    serving(manager, sid)
    slow = ExecutionOptions(shots=1000, repetition_period=0.003)
    ids = [manager.submit([{"name": "s", "program": SLOW_QASM}], slow, session=sid)
           for _ in range(5)]
    wait_until(lambda: manager.status(ids[0]).name == "RUNNING", 20, "first job running")
    worker_pid = manager.store.get_session(sid).worker_info()["pid"]
    os.kill(worker_pid, signal.SIGKILL)  # no chance to clean up: as a lost node
    began = time.monotonic()
    statuses = wait_until(lambda: (lambda s: s if all(v.final for v in s.values()) else None)(
        JobManager().statuses(ids)), 5, "every job final after the worker died")
    assert time.monotonic() - began < 5
    assert statuses[ids[0]].name == "ERROR" and "may have run" in statuses[ids[0]].detail
    for job_id in ids[1:]:
        assert statuses[job_id].name == "CANCELLED"
        assert "the session ended before it ran" in statuses[job_id].detail
        assert f"qmio resubmit {job_id}" in statuses[job_id].detail
    # a final state never changes, and the job can be sent again
    assert JobManager().statuses(ids) == statuses
    out = run_qmio("resubmit", ids[2], "--wait")
    assert out.returncode == 0, out.stderr
    assert "1  1000" in out.stdout  # the x program, all 1000 shots
    assert manager.sessions.view(sid).status == STATUS_CLOSED


def test_idle_timeout_releases_the_qpu(manager):
    sid = manager.sessions.start(idle_timeout=2)
    serving(manager, sid)
    job = manager.submit([{"name": "b", "program": BELL_QASM}], ExecutionOptions(shots=10),
                         session=sid)
    assert manager.wait(job, timeout=30).name == "DONE"
    began = time.monotonic()
    wait_until(lambda: manager.sessions.view(sid).status == STATUS_CLOSED, 2 + 5,
               "released within the idle timeout plus 5 s")
    view = manager.sessions.view(sid)
    assert "idle" in view.reason and time.monotonic() - began < 7
    # the QPU is free: a job of its own runs now
    plain = manager.submit([{"name": "b", "program": BELL_QASM}], ExecutionOptions(shots=10))
    assert manager.wait(plain, timeout=30).name == "DONE"


def test_jobs_submitted_before_the_allocation_starts_wait_queued(manager, emulator_factory):
    emulator_factory("--time-model", port=manager.connection.emulator_port)
    manager = JobManager()  # its settings now say --time-model, as the emulator's
    blocker = manager.submit([{"name": "s", "program": SLOW_QASM}],
                             ExecutionOptions(shots=1000, repetition_period=0.003))
    wait_until(lambda: manager.status(blocker).name == "RUNNING", 20, "blocker running")
    sid = manager.sessions.start(idle_timeout=30)
    assert manager.sessions.view(sid).status == STATUS_PENDING
    early = manager.submit([{"name": "b", "program": SLOW_QASM}], ExecutionOptions(shots=10),
                           session=sid)
    status = manager.status(early)
    assert status.name == "QUEUED" and f"waiting for session {sid} to start" in status.detail
    assert manager.wait(early, timeout=60).name == "DONE"
    assert manager.store.get(early).result()["started"] > manager.store.get(
        blocker).result()["finished"]


def test_batch_releases_the_qpu_when_its_queue_is_empty(manager):
    service = QmioRuntimeService()
    backend = service.backend("qpu")
    with Batch(backend, idle_timeout=600) as batch:
        jobs = [backend.run(x_circuit("10"), shots=5) for _ in range(3)]
        assert all(j.result(timeout=60).get_counts() == {"10": 5} for j in jobs)
        assert batch.details()["mode"] == "batch"
        # not closed by hand, yet released well before its idle timeout
        wait_until(lambda: batch.status() == STATUS_CLOSED, 10, "batch released")
    assert "queue is empty" in batch._view().reason


def test_channel_refuses_other_keys_and_survives_garbage(manager, tmp_path):
    sid = manager.sessions.start(idle_timeout=60)
    serving(manager, sid)
    session = manager.store.get_session(sid)
    address = session.worker_info()["address"]
    assert address.startswith("tcp://127.0.0.1:")  # loopback on the local executor
    for name in os.listdir(session.file("keys")):
        assert (os.stat(session.file("keys") / name).st_mode & 0o777) == 0o600
    # an intruder who knows the worker's public key but holds its own client key
    intruder = tmp_path / "intruder"
    create_keys(intruder)
    (intruder / "worker.key").unlink()
    (intruder / "worker.key").write_bytes(session.file("keys/worker.key").read_bytes())
    os.chmod(intruder / "worker.key", 0o600)
    try:
        client = ChannelClient(address, intruder)
    except Exception as exc:  # the handshake is refused before anything is sent
        assert "no connection" in str(exc)
    else:
        assert client.wait(["whatever"], 0.5) is None
        client.close()
    # the owner's client still works, and garbage does not hurt the worker
    owner = ChannelClient(address, session.file("keys"))
    owner.socket.send(b"\x80\x04not json")
    owner.socket.send(b"[1, 2]")
    assert owner.wait([f"{sid}.1"], 0.2) == {f"{sid}.1": "final"}  # no such job: nothing to wait
    job = manager.submit([{"name": "b", "program": BELL_QASM}], ExecutionOptions(shots=10),
                         session=sid)
    assert manager.wait(job, timeout=30).name == "DONE"
    manager.sessions.close([sid])
    wait_until(lambda: manager.sessions.view(sid).status == STATUS_CLOSED, 10, "closed")
    assert session.worker_info()["refused_handshakes"] >= 1


def test_clients_fall_back_to_the_files_when_the_channel_is_unreachable(qmio_env, monkeypatch):
    monkeypatch.setenv("QMIO_SESSION_POLL_INTERVAL", "0.3")
    manager = JobManager()
    sid = manager.sessions.start(idle_timeout=60)
    serving(manager, sid)
    session = manager.store.get_session(sid)
    # A firewall between login and compute node: the published address leads nowhere.
    info = session.worker_info()
    session.write_worker_info({**info, "address": "tcp://127.0.0.1:1"})
    try:
        fresh = JobManager()
        began = time.monotonic()
        job = fresh.submit([{"name": "b", "program": BELL_QASM}], ExecutionOptions(shots=50),
                           session=sid)
        assert fresh.wait(job, timeout=30).name == "DONE"
        assert time.monotonic() - began < 10
        counts = fresh.result(job)["results"][0]["reply"]["results"]["c"]
        assert sum(counts.values()) == 50
    finally:
        manager.sessions.cancel([sid])


def test_max_time_stops_accepting_work_that_would_not_fit(manager):
    sid = manager.sessions.start(idle_timeout=60, max_time=20)
    serving(manager, sid)
    view = manager.sessions.view(sid)
    assert 0 < view.details["seconds_left"] <= 20
    # 10000 shots x 5 ms = 50 s of QPU time: more than the session has left
    with pytest.raises(SessionClosedError, match="s left, less than"):
        manager.submit([{"name": "s", "program": SLOW_QASM}],
                       ExecutionOptions(shots=10000, repetition_period=0.005), session=sid)
    small = manager.submit([{"name": "s", "program": SLOW_QASM}], ExecutionOptions(shots=10),
                           session=sid)
    assert manager.wait(small, timeout=30).name == "DONE"


OTHER_USER = "qmio-other"


def _other_user() -> str:
    if os.geteuid() != 0:
        pytest.fail("this test creates a second Unix user and needs root (CI runs as root)")
    if subprocess.run(["id", OTHER_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        OTHER_USER], check=True, capture_output=True)
    return OTHER_USER


def test_another_unix_user_can_neither_submit_into_a_session_nor_read_its_jobs(qmio_env):
    """The other user runs plain shell commands: this project's Python lives under /root here,
    which it cannot run. What bars it is the store's modes (and, for the channel, CURVE: see
    test_channel_refuses_other_keys_and_survives_garbage)."""
    user = _other_user()
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="qmio-sec-"))
    os.chmod(base, 0o755)  # only qmio's own permissions stand between the two users
    manager = JobManager(Settings.load({"store": str(base / "store")}))
    sid = manager.sessions.start(idle_timeout=60)
    try:
        serving(manager, sid)
        job_id = manager.submit([{"name": "b", "program": BELL_QASM}],
                                ExecutionOptions(shots=10), session=sid)
        assert manager.wait(job_id, timeout=30).name == "DONE"
        session, job = manager.store.get_session(sid), manager.store.get(job_id)

        def as_other(command: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                  user=user, cwd="/", timeout=30)

        for command in (f"ls {base / 'store'}",
                        f"cat {session.file('keys/client.key_secret')}",
                        f"cat {session.file('keys/worker.key_secret')}",
                        f"echo {sid}.99 > {session.file('queue')}/000000099",
                        f"cat {job.file('result.json')}",
                        f"cat {job.file('spec.json')}"):
            out = as_other(command)
            assert out.returncode != 0 and "Permission denied" in out.stderr, command
        assert as_other(f"ls {base}").returncode == 0  # the test itself is sound
        assert [p.name for p in FifoQueue(session.file("queue")).entries()] == []
    finally:
        manager.sessions.cancel([sid])


def test_cancel_one_queued_job_of_a_session(manager, emulator_factory, tmp_path):
    emulator_factory("--time-model", port=manager.connection.emulator_port)
    manager = JobManager()  # its settings now say --time-model, as the emulator's
    sid = manager.sessions.start(idle_timeout=60)
    serving(manager, sid)
    slow = ExecutionOptions(shots=1000, repetition_period=0.002)
    first, second, third = (manager.submit([{"name": "s", "program": SLOW_QASM}], slow,
                                           session=sid) for _ in range(3))
    wait_until(lambda: manager.status(first).name == "RUNNING", 20, "first job running")
    out = run_qmio("cancel", second)
    assert out.returncode == 0 and "cancel requested (was QUEUED)" in out.stdout
    assert manager.status(second).name == "CANCELLED"  # at once: it had not started
    assert manager.wait(first, timeout=30).name == "DONE"
    assert manager.wait(third, timeout=30).name == "DONE"  # the session goes on
    assert manager.status(second).name == "CANCELLED" and manager.store.get(second).result() is None


def test_cancel_a_running_job_of_a_session_ends_it_cancelled_for_good(manager, emulator_factory):
    """A running job is asked to stop; it reads RUNNING until its worker ends it, then CANCELLED,
    and that never changes (no result lands after it)."""
    emulator_factory("--time-model", port=manager.connection.emulator_port)
    manager = JobManager()  # its settings now say --time-model, as the emulator's
    sid = manager.sessions.start(idle_timeout=60)
    serving(manager, sid)
    slow = ExecutionOptions(shots=500, repetition_period=0.002)  # 1 s per program
    programs = [{"name": f"p{i}", "program": SLOW_QASM} for i in range(3)]
    running, after = (manager.submit(programs, slow, session=sid) for _ in range(2))
    wait_until(lambda: manager.status(running).name == "RUNNING", 20, "first job running")
    manager.cancel([running])
    assert manager.status(running).name == "RUNNING"  # its worker ends it, at the next program
    final = manager.wait(running, timeout=10)
    assert final.name == "CANCELLED" and "while it ran" in final.detail, final
    assert manager.wait(after, timeout=30).name == "DONE"  # the session goes on
    job = manager.store.get(running)
    assert job.result() is None and job.error() is None
    assert JobManager().status(running) == final
