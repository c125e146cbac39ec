"""The job store: owner-only permissions, whole-or-nothing results, ids that cannot escape."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from qmio_hpc.durable import Syncer
from qmio_hpc.errors import JobNotFoundError
from qmio_hpc.fifo import FifoQueue
from qmio_hpc.store import (QUEUE_ENTRY, JobDir, JobStore, placeholder, validate_job_id,
                             write_json_atomic)
from tests.conftest import BELL_QASM


@pytest.fixture
def umask_022():
    """A permissive umask, as many users have, restored after the test."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_directories_are_0700_and_files_0600(tmp_path, umask_022):
    store = JobStore(tmp_path / "store")
    job = store.create({"programs": []})
    store.link("L1", job)
    job.set_state("running")
    job.write_result({"results": []})
    job.write_error("X", "y")
    job.mark_cancelled()
    for d in (store.root, store.root / "jobs", store.root / "ids", job.path):
        assert mode(d) == 0o700, d
    for f in job.path.iterdir():
        assert mode(f) == 0o600, f


def test_result_is_complete_or_absent(tmp_path):
    job = JobStore(tmp_path).create({})
    assert job.result() is None
    (job.path / "result.json").write_text('{"results": [1, 2')  # a torn write
    assert job.result() is None
    (job.path / "result.json").write_text('{"results": []}')  # parses but not marked complete
    assert job.result() is None
    job.write_result({"results": [3]})
    assert job.result() == {"results": [3], "complete": True}
    assert not [p for p in job.path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path):
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "x.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 65, "a..b", "é", "a b"])
def test_path_tricks_are_refused(bad):
    with pytest.raises(JobNotFoundError):
        validate_job_id(bad)


def test_ids_resolve_and_cannot_be_pointed_outside(tmp_path):
    store = JobStore(tmp_path / "store")
    job = store.create({"a": 1})
    store.link("4242", job)
    store.link("4242", job)  # idempotent
    assert store.get("4242").path == job.path.resolve()
    assert job.spec()["a"] == 1 and job.spec()["version"] == 1
    os.symlink(tmp_path, store.root / "ids" / "evil")
    with pytest.raises(JobNotFoundError):
        store.get("evil")
    with pytest.raises(JobNotFoundError, match="qmio jobs"):
        store.get("4243")
    assert [i for i, _ in store.ids()] == ["4242"]
    other = store.create({})
    with pytest.raises(Exception, match="another job"):
        store.link("4242", other)


def test_spec_is_json(tmp_path):
    job = JobStore(tmp_path).create({"programs": [{"name": "bell"}]})
    assert json.loads((job.path / "spec.json").read_text())["programs"][0]["name"] == "bell"


def test_a_spare_directory_becomes_a_job_whole_and_its_placeholders_are_used(tmp_path):
    """A session's submitter makes the next job's directory ahead of time: the job appears by a
    rename with its spec in it, and the spec and the result fill placeholders made then, so no
    file is created when the job is submitted or its result written."""
    store = JobStore(tmp_path / "store")
    session = store.create_session({"mode": "session"})
    (session.path / "jobs").mkdir(mode=0o700)
    (session.path / "queue").mkdir(mode=0o700)
    spare = session.make_spare()
    assert spare is not None and spare.name.startswith(".spare-")
    inodes = {p.name: p.stat().st_ino for p in spare.iterdir()}
    assert set(inodes) == {".spec.json.pre", ".result.json.pre", ".queue-entry.pre"}
    assert session.job_ids() == []  # a spare is nobody's job
    job = session.create_job(1, {"programs": []}, spare)
    assert not spare.exists() and job.path.name == "1"
    assert job.spec()["programs"] == [] and os.stat(job.file("spec.json")).st_ino == \
        inodes[".spec.json.pre"]
    job.write_result({"results": []}, durable=False)
    assert os.stat(job.file("result.json")).st_ino == inodes[".result.json.pre"]
    assert job.result() == {"results": [], "complete": True}
    entry = FifoQueue(session.file("queue")).add("000000001-x.1",
                                                 made=placeholder(job.file(QUEUE_ENTRY)))
    assert entry.stat().st_ino == inodes[".queue-entry.pre"]
    assert sorted(os.listdir(job.path)) == ["result.json", "spec.json"]
    assert mode(job.path) == 0o700 and mode(job.file("result.json")) == 0o600
    # a spare removed meanwhile: the job gets a directory of its own
    gone = session.make_spare()
    session.remove_spares()
    assert not gone.exists()
    assert session.create_job(2, {"programs": []}, gone).spec()["programs"] == []
    assert [n for n in os.listdir(session.path / "jobs") if n.startswith(".")] == []


# -- what a command imports (issue 9: the QPU's time goes to circuits, not to imports) ------------

@pytest.mark.parametrize("module, never", [
    # --help and shell completion: click and the option tables, not the job machinery
    ("qmio_hpc.cli", {"qiskit", "zmq", "qmio_hpc.jobs", "qmio_hpc.store", "qmio_hpc.config",
                      "qmio_hpc.sessions", "numpy"}),
    # the batch step on the QPU node: the client and the store, no validation parsers
    ("qmio_hpc.step", {"qiskit", "numpy", "openqasm3", "asyncio", "click", "dataclasses",
                       "logging", "subprocess", "tempfile", "qmio_hpc.config"}),
    # ... and what it loads to reach the built-in emulator, when that is the endpoint
    ("qmio_hpc.emulator.launcher", {"qiskit", "numpy", "dataclasses", "logging", "subprocess",
                                    "tempfile", "socket"}),
    # the console script decides which door before it loads anything (status and submit: no
    # click), and what both doors print with needs no click either
    ("qmio_hpc.fast_cli", {"click", "qiskit", "zmq", "qmio_hpc.config", "qmio_hpc.jobs",
                           "shutil"}),
    ("qmio_hpc.console", {"click", "qiskit", "zmq", "qmio_hpc.jobs", "shutil", "subprocess"}),
    # the batch script: rendered in every backend.run, with no importlib.resources
    ("qmio_hpc.scheduler.script", {"qiskit", "zmq", "click", "importlib.resources"}),
    # every command reads the store
    ("qmio_hpc.store", {"qiskit", "zmq", "secrets", "shutil", "click"}),
    ("qmio_hpc.jobs", {"qiskit", "numpy", "hashlib", "tomllib", "asyncio"}),
])
def test_light_modules_import_only_what_they_use(module, never):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in {sorted(never)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} loads {out.stdout.strip()}"


def test_submitting_an_openqasm2_file_imports_no_qiskit(qmio_env, tmp_path):
    """The check runs in the submitting process, and for OpenQASM 2 it needs no Qiskit."""
    code = ("import sys\nfrom qmio_hpc.cli import cli\n"
            "cli.main(['submit', sys.argv[1]], prog_name='qmio', standalone_mode=False)\n"
            "print('QISKIT' if 'qiskit' in sys.modules else 'NO QISKIT')\n")
    program = tmp_path / "bell.qasm"
    program.write_text(BELL_QASM)
    out = subprocess.run([sys.executable, "-c", code, str(program)], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "NO QISKIT", out.stdout + out.stderr
    assert "Submitted job" in out.stdout


def test_a_submitter_in_a_loop_gets_each_next_job_directory_made_ahead(qmio_env):
    """From its second submission on, a process makes the next job's directory (with its
    placeholders) on its background thread while the current submission goes on; the next job
    takes it whole (same inode), and the one left at exit is removed."""
    code = textwrap.dedent("""
        import json, os, sys, time
        from qmio_hpc.jobs import JobManager
        from qmio_hpc.protocol import ExecutionOptions
        manager = JobManager()
        def submit():
            return manager.submit([{"name": "b", "program": sys.argv[1]}],
                                  ExecutionOptions(shots=10))
        submit()
        assert "next" not in manager.store._spare  # one submission: no loop yet
        submit()
        deadline = time.time() + 10
        while "next" not in manager.store._spare and time.time() < deadline:
            time.sleep(0.005)
        pid, spare = manager.store._spare["next"]
        made = {"pid": pid == os.getpid(), "names": sorted(os.listdir(spare)),
                "inode": os.stat(spare).st_ino}
        third = manager.store.get(submit()).path
        print(json.dumps({**made, "taken": os.stat(third).st_ino == made["inode"],
                          "spare_left": spare.exists(), "files": sorted(os.listdir(third))}))
    """)
    out = subprocess.run([sys.executable, "-c", code, BELL_QASM], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["pid"] and seen["taken"] and not seen["spare_left"]
    assert seen["names"] == [".scheduler.json.pre", ".spec.json.pre"]  # local: no job.sbatch
    assert ".spec.json.pre" not in seen["files"] and "spec.json" in seen["files"]
    jobs = os.listdir(os.path.join(qmio_env["QMIO_STORE"], "jobs"))
    assert len(jobs) == 3 and not [n for n in jobs if n.startswith(".")]  # the last spare: gone


def test_a_spare_made_by_another_process_is_not_taken(tmp_path):
    """A forked child must not fill its parent's spare (both would write one spec there)."""
    store = JobStore(tmp_path / "store")
    store.create({"programs": []})  # the folders
    store.prepare_spare()
    pid, spare = store._spare["next"]
    store._spare["next"] = (pid + 1, spare)  # as the child of a fork sees it
    job = store.create({"programs": [1]})
    assert spare.exists() and job.path != spare and job.spec()["programs"] == [1]
    store.prepare_spare()  # the next one is this process's own, and is taken
    own = store._spare["next"][1]
    inode = own.stat().st_ino
    assert store.create({"programs": [2]}).path.stat().st_ino == inode and not own.exists()


def test_a_submission_is_made_durable_before_the_process_exits(qmio_env, tmp_path):
    """The submitter leaves spec.json and scheduler.json to a background fsync (a loop of
    backend.run calls does not wait for the disk); they are still fsynced, by exit at the
    latest. os.fsync is wrapped to record what it syncs (a fault cannot show it otherwise)."""
    code = textwrap.dedent("""
        import atexit, os, sys
        synced = []
        real_fsync = os.fsync
        def fsync(fd):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)
        os.fsync = fsync
        atexit.register(lambda: print("SYNCED", *sorted(set(synced))))  # runs after the flush
        from qmio_hpc.jobs import JobManager
        from qmio_hpc.protocol import ExecutionOptions
        job_id = JobManager().submit([{"name": "b", "program": sys.argv[1]}],
                                     ExecutionOptions(shots=10))
        print("JOB", job_id, JobManager().store.get(job_id).path)
    """)
    out = subprocess.run([sys.executable, "-c", code, BELL_QASM], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    job_dir = lines["JOB"].split()[1]
    synced = lines["SYNCED"].split()
    for name in ("spec.json", "scheduler.json"):
        assert f"{job_dir}/{name}" in synced, (name, synced)
    assert job_dir in synced  # and the directory that holds them


class SlowDiskJob(JobDir):
    """Stand-in for a job on a disk whose fsync takes as long as the test says (a slow disk
    cannot be caused here at will): ``sync`` blocks until ``disk`` is set."""

    def __init__(self, path: Path, disk: threading.Event, syncing: threading.Event) -> None:
        super().__init__(path)
        object.__setattr__(self, "disk", disk)
        object.__setattr__(self, "syncing", syncing)

    def sync(self, *names: str, directory: bool = True) -> None:
        self.syncing.set()
        self.disk.wait(30)


def test_a_flush_at_exit_waits_for_the_one_under_way_in_the_background(tmp_path):
    """What the background thread took from the pending list is still being fsynced when the
    process exits: the flush at exit returns only when that is done too, so no file handed to
    the syncer is left not durable."""
    disk, syncing = threading.Event(), threading.Event()
    syncer = Syncer("spec.json")
    syncer.add(SlowDiskJob(tmp_path, disk, syncing))
    assert syncing.wait(10)  # the background thread is fsyncing it
    exit_flush = threading.Thread(target=syncer.flush)
    exit_flush.start()
    exit_flush.join(0.5)
    assert exit_flush.is_alive()  # still waiting for the disk
    disk.set()
    exit_flush.join(10)
    assert not exit_flush.is_alive()
