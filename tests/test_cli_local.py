"""The main job, as a user runs it: the CLI in fresh processes, the local executor, the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BELL_QASM, REPO, expected_counts, run_qmio

SLOW_QASM = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\n'
             'measure q[0] -> c[0];\n')


@pytest.fixture
def bell(tmp_path):
    path = tmp_path / "bell.qasm"
    path.write_text(BELL_QASM)
    return path


def submit_json(*args, env=None) -> str:
    out = run_qmio("submit", *args, "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["job_id"]


def wait_status(job_id: str, wanted: set[str], timeout: float = 60, detail: str = "") -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = json.loads(run_qmio("status", job_id, "--json").stdout)
        if rows[0]["status"] in wanted and detail in rows[0]["detail"]:
            return rows[0]
        time.sleep(0.2)
    raise AssertionError(f"{job_id} never reached {wanted}: {rows}")


def test_submit_wait_prints_bell_counts(qmio_env, bell):
    out = run_qmio("submit", str(bell), "--shots", "2000", "--wait")
    assert out.returncode == 0, out.stderr
    assert "Submitted job L1 (local executor" in out.stdout
    counts = dict(line.split()[:2] for line in out.stdout.splitlines()[2:])
    assert set(counts) == {"00", "11"}
    assert sum(map(int, counts.values())) == 2000
    assert 800 < int(counts["00"]) < 1200
    assert "DONE" in out.stderr  # progress was shown while waiting


def test_status_and_result_from_a_new_shell(qmio_env, bell):
    job_id = submit_json(str(bell), "--shots", "500", "--wait")
    status = json.loads(run_qmio("status", job_id, "--json").stdout)
    assert status == [{"job_id": job_id, "status": "DONE", "scheduler_state": "",
                       "detail": "completed"}]
    result = json.loads(run_qmio("result", job_id, "--json").stdout)
    counts = result["results"][0]["counts"]
    assert result["status"] == "DONE" and sum(counts.values()) == 500
    assert set(counts) <= {"00", "11"}
    assert result["results"][0]["reply"]["results"]["c"] == counts  # symmetric for Bell
    table = run_qmio("status", "--all").stdout
    assert job_id in table and "DONE" in table
    assert job_id not in run_qmio("status").stdout  # with no id: what is not final yet


def test_jobs_lists_newest_first_and_filters_by_state_since_and_limit(qmio_env, bell):
    """Issue 10, item 7: 'qmio jobs' newest first, with --state, --since and --limit; 'qmio
    status' with no id shows only the jobs that are not final."""
    done = [submit_json(str(bell), "--shots", "10", "--wait") for _ in range(3)]
    out = run_qmio("--endpoint", "tcp://127.0.0.1:1", "submit", str(bell), "--json")
    held = json.loads(out.stdout)["job_id"]  # nothing listens there: it ends ERROR
    assert wait_status(held, {"ERROR", "DONE", "CANCELLED"}, timeout=30)["status"] == "ERROR"
    rows = json.loads(run_qmio("jobs", "--json").stdout)
    assert [r["job_id"] for r in rows] == [held, *reversed(done)]
    only_done = json.loads(run_qmio("jobs", "--state", "done", "--json").stdout)
    assert [r["job_id"] for r in only_done] == list(reversed(done))
    assert [r["job_id"] for r in json.loads(run_qmio("jobs", "--limit", "2", "--json").stdout)] \
        == [held, done[2]]
    assert json.loads(run_qmio("jobs", "--since", "2999-01-01", "--json").stdout) == []
    assert len(json.loads(run_qmio("jobs", "--since", "2000-01-01", "--json").stdout)) == 4
    refused = run_qmio("jobs", "--since", "yesterday-ish")
    assert refused.returncode == 2 and "--since" in refused.stderr and "Traceback" not in \
        refused.stderr
    assert json.loads(run_qmio("status", "--json").stdout) == []  # all four are final
    assert run_qmio("status").stdout.startswith("no jobs waiting or running")
    assert len(json.loads(run_qmio("status", "--all", "--json").stdout)) == 4


def test_big_endian_wire_becomes_qiskit_order_in_the_cli(qmio_env, tmp_path):
    prog = tmp_path / "x0.qasm"
    prog.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\nx q[0];\n'
                    'measure q[0] -> c[0];\nmeasure q[1] -> c[1];\nmeasure q[2] -> c[2];\n')
    job_id = submit_json(str(prog), "--shots", "10", "--wait")
    result = json.loads(run_qmio("result", job_id, "--json").stdout)["results"][0]
    assert result["reply"]["results"] == {"c": {"100": 10}}
    assert result["counts"] == {"001": 10}


def test_cancel_of_a_queued_job_leaves_it_cancelled(qmio_env, emulator_factory, tmp_path):
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    first = submit_json(str(prog), "--shots", "1000", "--repetition-period", "0.004")
    second = submit_json(str(prog), "--shots", "10")
    wait_status(first, {"RUNNING"})
    queued = wait_status(second, {"QUEUED"})
    assert "waiting for the QPU" in queued["detail"]
    out = run_qmio("cancel", second)
    assert out.returncode == 0 and "cancel requested (was QUEUED)" in out.stdout
    assert wait_status(second, {"CANCELLED"}, timeout=10)["status"] == "CANCELLED"
    assert wait_status(first, {"DONE"})["status"] == "DONE"  # the running job is untouched
    result = run_qmio("result", second)
    assert result.returncode == 1 and "CANCELLED" in result.stderr
    again = run_qmio("cancel", first)
    assert "already DONE" in again.stdout


def test_cancel_while_running(qmio_env, emulator_factory, tmp_path):
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    job_id = submit_json(str(prog), "--shots", "1000", "--repetition-period", "0.01")
    wait_status(job_id, {"RUNNING"}, detail="program 1 of 1")
    run_qmio("cancel", job_id)
    assert wait_status(job_id, {"CANCELLED", "ERROR", "DONE"}, 15)["status"] == "CANCELLED"


def test_jobs_are_served_first_come_first_served(qmio_env, emulator_factory, tmp_path):
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    ids = [submit_json(str(prog), "--shots", "100", "--repetition-period", "0.003")
           for _ in range(4)]
    for job_id in ids:
        wait_status(job_id, {"DONE"})
    store = qmio_env["QMIO_STORE"]
    starts = []
    for job_id in ids:
        from qmio_hpc.store import JobStore
        started = JobStore(store).get(job_id).result()["started"]
        starts.append(started)
    assert starts == sorted(starts)


def test_emulator_stopped_while_job_waits_ends_in_error_naming_the_endpoint(
        qmio_env, emulator_factory, tmp_path):
    emu = emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    job_id = submit_json(str(prog), "--shots", "1000", "--repetition-period", "0.05")
    wait_status(job_id, {"RUNNING"}, detail="program 1 of 1")  # the request is on the server
    time.sleep(0.5)
    emu.stop()
    began = time.monotonic()
    out = run_qmio("result", job_id, "--wait", "--timeout", "30")
    assert time.monotonic() - began < 15  # connect_timeout is 3 s here; nowhere near 50 s
    assert out.returncode == 4  # the endpoint failed
    assert "ERROR" in out.stderr and emu.endpoint in out.stderr


def test_unreachable_endpoint_ends_in_error(qmio_env, bell):
    out = run_qmio("--endpoint", "tcp://127.0.0.1:9", "submit", str(bell), "--wait",
                   env={"QMIO_CONNECT_TIMEOUT": "1"})
    assert out.returncode == 4
    assert "cannot reach the QPU control server at tcp://127.0.0.1:9" in out.stderr


def test_invalid_program_fails_in_validation(qmio_env, tmp_path):
    bad = tmp_path / "bad.qasm"
    bad.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nfrob q[0];\n')
    out = run_qmio("submit", str(bad), "--wait")
    assert out.returncode == 2 and "not valid OpenQASM 2" in out.stderr and "frob" in out.stderr


@pytest.mark.parametrize("args,code,words", [
    (("submit", "nope.qasm"), 2, "no such file"),
    (("submit", "x.qasm", "--shots", "0"), 2, "--shots"),
    (("status", "L999"), 3, "no job L999"),
    (("status", "../../etc"), 3, "not a valid job id"),
    (("result", "L999"), 3, "no job"),
    (("--executor", "cloud", "status"), 2, "cloud"),
])
def test_bad_input_gets_one_line_and_an_exit_code(qmio_env, args, code, words):
    out = run_qmio(*args)
    assert out.returncode == code, out.stderr
    assert words in out.stderr and "Traceback" not in out.stderr


def test_bad_setting_is_one_line(qmio_env):
    out = run_qmio("status", env={"QMIO_SHOTS": "lots"})
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "QMIO_SHOTS" in out.stderr


def test_stdin_program(qmio_env):
    out = run_qmio("submit", "-", "--shots", "100", "--wait", input=BELL_QASM)
    assert out.returncode == 0 and "stdin: 100 shots" in out.stdout


def test_config_shows_values_and_origins(qmio_env):
    out = run_qmio("config", "--json", env={"QMIO_SLURM_PARTITION": "ilk"})
    data = json.loads(out.stdout)
    rows = {r["name"]: r for r in data["settings"]}
    partition = {k: v for k, v in rows["slurm.partition"].items() if k != "help"}
    assert partition == {"name": "slurm.partition", "value": "ilk",
                         "origin": "environment QMIO_SLURM_PARTITION"}
    assert rows["store"]["value"] == qmio_env["QMIO_STORE"]
    assert data["executor"] == "local"
    text = run_qmio("config").stdout
    assert "executor in use: local" in text and "(default)" in text


@pytest.mark.parametrize("args", [("--help",), ("status",), ("jobs",), ("backends",),
                                  ("calibration",)])
def test_help_and_status_do_not_import_qiskit(qmio_env, args):
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "qmio_hpc", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines()
                if line.startswith("import time:")}
    assert "qmio_hpc.fast_cli" in imported  # the measurement works
    assert not [m for m in imported if m == "qiskit" or m.startswith("qiskit.")]


def test_backends_and_calibration_show_the_device(qmio_env, tmp_path):
    rows = json.loads(run_qmio("backends", "--json").stdout)
    assert rows[0]["name"] == "qpu" and rows[0]["num_qubits"] == 32
    assert rows[0]["calibration"]["source"] == "built-in default"
    assert "ecr" in rows[0]["native_gates"] and rows[0]["couplings"] > 0
    text = run_qmio("calibration").stdout
    assert "built-in default" in text and "ECR pairs" in text
    # a calibration directory: the newest file wins, and its age is shown
    cal_dir = tmp_path / "cals"
    cal_dir.mkdir()
    from importlib import resources
    default = resources.files("qmio_hpc").joinpath(
        "data/calibrations/qmio_default_calibration.json").read_text()
    (cal_dir / "2026_01_01__00_00_00.json").write_text(default)
    (cal_dir / "2026_02_01__00_00_00.json").write_text(default)
    info = json.loads(run_qmio("calibration", "--json",
                               env={"QMIO_CALIBRATION_DIR": str(cal_dir)}).stdout)
    assert info["calibration"]["source"].endswith("2026_02_01__00_00_00.json")
    assert info["calibration"]["age_seconds"] > 0
    bad = run_qmio("calibration", env={"QMIO_CALIBRATION_DIR": str(tmp_path / "none")})
    assert bad.returncode == 2 and "none" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("env,words", [
    ({"QMIO_CONNECT_TIMEOUT": "nan"}, "'connect_timeout' (environment QMIO_CONNECT_TIMEOUT)"),
    ({"QMIO_REPLY_TIMEOUT": "inf"}, "'reply_timeout'"),
    ({"QMIO_REPLY_TIMEOUT": "-3"}, "'reply_timeout'"),
    ({"QMIO_EMULATOR_PORT": "70000"}, "'emulator_port'"),
    ({"QMIO_EMULATOR_PORT": "0"}, "'emulator_port'"),
    ({"QMIO_RETRIES": "-1"}, "'retries'"),
    ({"QMIO_SHOTS": "20000000"}, "'shots'"),
    ({"QMIO_ASSUMED_REPETITION_PERIOD": "0"}, "'assumed_repetition_period'"),
    ({"ZMQ_SERVER": "tcp://qpu"}, "'endpoint' (environment ZMQ_SERVER)"),
    ({"ZMQ_SERVER": "tcp://qpu:99999"}, "'endpoint'"),
    ({"ZMQ_SERVER": "http://qpu:5556"}, "'endpoint'"),
])
def test_every_deadline_and_address_is_checked_when_settings_load(qmio_env, env, words):
    out = run_qmio("status", env=env)
    assert out.returncode == 2 and words in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("args,words", [
    (("--repetition-period", "inf"), "repetition-period"),
    (("--repetition-period", "nan"), "repetition-period"),
    (("--shots", "10000001"), "shots"),
])
def test_bad_options_are_refused_before_anything_is_submitted(qmio_env, bell, args, words):
    out = run_qmio("submit", str(bell), *args)
    assert out.returncode == 2 and words in out.stderr, out.stderr
    assert not (Path(qmio_env["QMIO_STORE"]) / "jobs").exists() or not any(
        (Path(qmio_env["QMIO_STORE"]) / "jobs").iterdir())


def test_bad_files_and_ids_are_bad_input(qmio_env, tmp_path):
    directory = run_qmio("submit", str(tmp_path))
    assert directory.returncode == 2 and "is a directory" in directory.stderr
    binary = subprocess.run([sys.executable, "-m", "qmio_hpc", "submit", "-"],
                            input=b"\xff\xfe\x00", capture_output=True, timeout=60)
    assert binary.returncode == 2 and b"standard input is not UTF-8" in binary.stderr
    newline = run_qmio("status", "L1\n")
    assert newline.returncode == 3 and "not a valid job id" in newline.stderr
    config = tmp_path / "user.toml"
    config.write_bytes(b"shots = \xff\n")
    bad_config = run_qmio("status", env={"QMIO_USER_CONFIG": str(config)})
    assert bad_config.returncode == 2 and "cannot read config file" in bad_config.stderr


def test_a_killed_runner_takes_its_step_with_it_and_the_error_stays(qmio_env, emulator_factory,
                                                                     tmp_path):
    """A runner gone is a failed allocation (NODE_FAIL, ERROR): its step must not live on and
    write a result that would turn the job DONE afterwards."""
    import os
    import signal

    from qmio_hpc.fifo import pid_alive
    from qmio_hpc.store import JobStore, read_json
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    job_id = submit_json(str(prog), "--shots", "1000", "--repetition-period", "0.003")
    wait_status(job_id, {"RUNNING"}, detail="program 1 of 1")
    job = JobStore(qmio_env["QMIO_STORE"]).get(job_id)
    runner, step = read_json(job.file("local.json"))["pid"], job.state()["pid"]
    os.kill(runner, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(step) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(step)
    assert wait_status(job_id, {"ERROR"}, timeout=10)["status"] == "ERROR"
    time.sleep(4)  # the 3 s program would have ended by now, had the step lived on
    assert wait_status(job_id, {"ERROR", "DONE"}, timeout=5)["status"] == "ERROR"
    assert job.result() is None


def _owner_pids(store: Path) -> list[int]:
    """The pids of every queue owner process of ``store`` (from /proc: what really runs)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"qmio_hpc.scheduler.local_runner" in argv and str(store / "local").encode() in argv:
                pids.append(int(proc.name))
    # the allocations it runs are forks of it (same command line): leave them out
    parents = {pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
               for pid in pids if Path(f"/proc/{pid}").exists()}
    return [pid for pid, parent in parents.items() if parent not in parents]


def test_queued_jobs_hold_no_process_and_outlive_a_killed_queue_owner(qmio_env, emulator_factory,
                                                                      tmp_path):
    """One resident queue owner serves the store: ten queued jobs are ten tickets, not ten
    processes polling. SIGKILL it while one job runs and four wait: the running one ends ERROR
    (its step dies with the owner), and the waiting ones are not lost: the next status lookup
    starts a new owner, and they end DONE with Qiskit's counts."""
    import signal

    from qmio_hpc.fifo import pid_alive
    from qmio_hpc.store import JobStore
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    store = Path(qmio_env["QMIO_STORE"])
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    first = submit_json(str(prog), "--shots", "1000", "--repetition-period", "0.003")
    waiting = [submit_json(str(prog), "--shots", "10") for _ in range(4)]
    wait_status(first, {"RUNNING"}, detail="program 1 of 1")
    owners = _owner_pids(store)
    assert len(owners) == 1, owners
    tickets = list((store / "local" / "queue").iterdir())
    assert len(tickets) == 5  # the running one's and four waiting
    os.kill(owners[0], signal.SIGKILL)
    step = JobStore(store).get(first).state()["pid"]
    deadline = time.monotonic() + 5
    while pid_alive(step) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(step), "the running step outlived its owner"
    assert wait_status(first, {"ERROR"}, timeout=10)["status"] == "ERROR"
    for job_id in waiting:
        row = wait_status(job_id, {"DONE", "ERROR", "CANCELLED"}, timeout=60)
        assert row["status"] == "DONE", row
        out = run_qmio("result", job_id, "--json")
        assert json.loads(out.stdout)["results"][0]["reply"]["results"]["c"] == \
            expected_counts(SLOW_QASM, 10)
    assert len(_owner_pids(store)) == 1  # the new owner, alone
    assert wait_status(first, {"ERROR", "DONE"})["status"] == "ERROR"  # and still ERROR


def test_the_queue_owner_leaves_when_idle_and_a_new_one_comes_with_the_next_job(qmio_env, bell):
    """Nothing is left running: the owner exits LINGER seconds after its last job, and the
    next submission starts another."""
    from qmio_hpc.scheduler.local_runner import LINGER
    store = Path(qmio_env["QMIO_STORE"])
    wait_status(submit_json(bell), {"DONE"})
    assert len(_owner_pids(store)) == 1
    deadline = time.monotonic() + LINGER + 5
    while _owner_pids(store) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _owner_pids(store), f"the owner was still there {LINGER + 5:g} s after its job"
    assert wait_status(submit_json(bell), {"DONE"})["status"] == "DONE"


def test_a_forged_ticket_is_never_run(qmio_env, bell, tmp_path):
    """A ticket is data: the owner runs only ``-m qmio_hpc.step|worker``. One that asks for
    anything else (here the standard library's json.tool, which would write a file) is dropped
    unrun."""
    store = Path(qmio_env["QMIO_STORE"])
    wait_status(submit_json(bell), {"DONE"})  # the queue and its owner exist
    source, proof = tmp_path / "in.json", tmp_path / "ran"
    source.write_text("{}")
    forged = store / "local" / "queue" / f"{time.time_ns():020d}-L999"
    forged.write_text(json.dumps({"id": "L999", "dir": str(tmp_path),
                                  "args": ["-m", "json.tool", str(source), str(proof)]}))
    after = submit_json(bell)  # queued behind the forged ticket
    assert wait_status(after, {"DONE"})["status"] == "DONE"
    assert not forged.exists() and not proof.exists()


FORGER = r"""
import pickle, sys, zmq
sock = zmq.Context().socket(zmq.REP)
sock.bind(sys.argv[1])
print("listening", flush=True)
while True:
    sock.recv()
    sock.send(pickle.dumps({"results": {"c": {"11": int(sys.argv[2])}}, "execution_metrics": {}}))
"""


def test_another_users_listener_on_the_emulator_port_is_never_used(qmio_env, tmp_path):
    """Issue 8, item 6. Another Unix user starts a qat-rpc server on this user's emulator port
    first, answering every program with forged counts. The user's job must refuse it (it cannot
    prove it holds the store's emulator key) and end with the reason, never with its counts.
    The other user runs the system's Python with a copy of pyzmq (this venv is under /root)."""
    import shutil
    import tempfile

    from tests.test_sessions_local import _other_user
    user = _other_user()
    site = Path(tempfile.mkdtemp(prefix="qmio-zmq-"))
    os.chmod(site, 0o755)
    packages = Path(__import__("zmq").__file__).parent.parent
    for name in ("zmq", "pyzmq.libs"):
        shutil.copytree(packages / name, site / name)
    subprocess.run(["chmod", "-R", "a+rX", str(site)], check=True)
    port = qmio_env["QMIO_EMULATOR_PORT"]
    forger = subprocess.Popen(["/usr/bin/python3", "-c", FORGER, f"tcp://127.0.0.1:{port}",
                               "1000"], user=user, cwd="/", env={"PYTHONPATH": str(site)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert forger.stdout.readline().strip() == "listening"
        prog = tmp_path / "bell.qasm"
        prog.write_text(BELL_QASM)
        out = run_qmio("submit", str(prog), "--wait")
        assert out.returncode == 4, (out.stdout, out.stderr)
        assert "not your built-in emulator" in out.stderr and "Traceback" not in out.stderr
        assert "11  1000" not in out.stdout  # the forged counts never show
        jobs = list((Path(qmio_env["QMIO_STORE"]) / "jobs").iterdir())
        assert not (jobs[0] / "result.json").exists()
    finally:
        forger.kill()
        forger.wait()
        shutil.rmtree(site, ignore_errors=True)


def test_an_emulator_with_other_options_is_not_silently_reused(qmio_env, emulator_factory,
                                                               tmp_path):
    """Issue 8, item 6: the store's own emulator runs with --time-model on the port; a job that
    asks for none is refused with the reason (exit 4), and runs once the settings agree."""
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "bell.qasm"
    prog.write_text(BELL_QASM)
    out = run_qmio("submit", str(prog), "--shots", "10", "--wait",
                   env={"QMIO_EMULATOR_TIME_MODEL": "0"})
    assert out.returncode == 4, (out.stdout, out.stderr)
    assert "runs with --time-model" in out.stderr and "asks for no --time-model" in out.stderr
    same = run_qmio("submit", str(prog), "--shots", "10", "--wait")  # the factory's setting
    assert same.returncode == 0, same.stderr


def test_four_shells_submitting_while_status_loops_all_end_done(qmio_env, tmp_path):
    """Issue 8, item 8, as a test (the speed is bench/local_load.py's): 4 shells submit 10 jobs
    each through the CLI while 'qmio status' runs in a loop. Every job ends DONE with Qiskit's
    counts, no id is handed out twice, and no status query fails."""
    import threading

    program = tmp_path / "x.qasm"
    program.write_text(SLOW_QASM)
    expected = expected_counts(SLOW_QASM, 20)
    ids: list[list[str]] = [[] for _ in range(4)]
    stop, failures = threading.Event(), []

    def shell(index: int) -> None:
        for _ in range(10):
            ids[index].append(submit_json(str(program), "--shots", "20"))

    def status_loop() -> None:
        while not stop.is_set():
            out = run_qmio("status")
            if out.returncode != 0:
                failures.append(out.stderr)

    watcher = threading.Thread(target=status_loop)
    watcher.start()
    try:
        shells = [threading.Thread(target=shell, args=(i,)) for i in range(4)]
        for thread in shells:
            thread.start()
        for thread in shells:
            thread.join()
        all_ids = [job for shell_ids in ids for job in shell_ids]
        assert len(all_ids) == 40 and len(set(all_ids)) == 40, all_ids
        deadline = time.monotonic() + 180
        while True:
            rows = json.loads(run_qmio("status", *all_ids, "--json").stdout)
            if all(row["status"] in ("DONE", "ERROR", "CANCELLED") for row in rows):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.5)
    finally:
        stop.set()
        watcher.join()
    assert [row["status"] for row in rows] == ["DONE"] * 40, rows
    for job_id in all_ids:
        out = run_qmio("result", job_id, "--json")
        assert json.loads(out.stdout)["results"][0]["counts"] == expected, job_id
    assert not failures, failures[:2]


def test_config_shows_each_settings_help_and_completion_works(qmio_env):
    """Issue 10, item 8: 'qmio config' says what each setting does; the shell completion that
    'qmio --help' documents really completes (click's protocol, as bash calls it)."""
    from qmio_hpc.config import FIELDS
    out = run_qmio("config")
    assert out.returncode == 0, out.stderr
    for field in FIELDS:
        assert field.help in out.stdout, field.name
    rows = json.loads(run_qmio("config", "--json").stdout)["settings"]
    assert all(row["help"] for row in rows)
    assert "_QMIO_COMPLETE=bash_source" in run_qmio("--help").stdout
    qmio = str(Path(sys.executable).parent / "qmio")
    script = subprocess.run([qmio], env={**os.environ, "_QMIO_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60)
    assert "complete " in script.stdout and "_qmio_completion" in script.stdout
    words = subprocess.run([qmio], capture_output=True, text=True, timeout=60, env={
        **os.environ, "_QMIO_COMPLETE": "bash_complete", "COMP_WORDS": "qmio sub",
        "COMP_CWORD": "1"})
    assert "plain,submit" in words.stdout.split(), words.stdout


def test_a_reader_that_stops_early_is_no_error(qmio_env):
    """'qmio config | head -1': no 'Broken pipe' error, exit 0."""
    out = subprocess.run(f"{sys.executable} -m qmio_hpc config | head -1", shell=True,
                         capture_output=True, text=True, timeout=60,
                         executable="/bin/bash", env={**os.environ, "SHELLOPTS": ""})
    assert out.stdout.startswith("store") and out.stderr == "", out.stderr


def test_result_is_a_histogram_and_plot_writes_a_picture(qmio_env, tmp_path):
    """Issue 10, item 5: bars most frequent first, scaled, the rest summed past --top; --plot
    writes a picture of every program's counts with Qiskit's plot_histogram."""
    job_id = submit_json(str(REPO / "examples" / "bell.qasm"), str(REPO / "examples" / "ghz.qasm"),
                         "--shots", "400", "--wait")
    out = run_qmio("result", job_id)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    bell = lines[1:3]
    counts = [int(line.split()[1]) for line in bell]
    bars = [len(line.split()[2]) for line in bell]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 400
    assert bars[0] >= bars[1] >= 1 and abs(bars[1] / bars[0] - counts[1] / counts[0]) < 0.05
    percents = [float(line.split()[3].rstrip("%")) for line in bell]
    assert abs(sum(percents) - 100) < 0.2
    top = run_qmio("result", job_id, "--top", "1").stdout
    assert "1 more outcome(s)" in top and top.count("%") == 4  # 2 bars, 2 summed lines
    picture = tmp_path / "h.png"
    drawn = run_qmio("result", job_id, "--plot", str(picture))
    assert drawn.returncode == 0, drawn.stderr
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    import matplotlib.image
    height, width, _ = matplotlib.image.imread(picture).shape
    assert width > 500 and height > 300
    wrong = run_qmio("result", job_id, "--plot", str(tmp_path / "h.txt"))
    assert wrong.returncode == 2 and ".png" in wrong.stderr


def test_plot_without_matplotlib_names_the_extra(qmio_env, tmp_path):
    """Stand-in for a machine without matplotlib (a mock, named as such: a package on
    PYTHONPATH that refuses to import, as a missing one does)."""
    shim = tmp_path / "shim" / "matplotlib"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    out = run_qmio("result", "L1", "--plot", str(tmp_path / "h.png"),
                   env={"PYTHONPATH": str(shim.parent)})
    assert out.returncode == 2 and "pip install 'qmio-hpc[plot]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_local_queue_is_in_view(qmio_env, emulator_factory, tmp_path):
    """Issue 10, item 4, on the local executor: the same facts from its own queue."""
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    prog = tmp_path / "slow.qasm"
    prog.write_text(SLOW_QASM)
    first = submit_json(str(prog), "--shots", "1000", "--repetition-period", "0.002")
    waiting = [submit_json(str(prog), "--shots", "10") for _ in range(2)]
    wait_status(first, {"RUNNING"}, detail="program 1 of 1")
    row = json.loads(run_qmio("status", waiting[1], "--json").stdout)[0]
    assert row["status"] == "QUEUED" and row["queue"]["place"] == 2, row
    assert row["queue"]["holding"] == 1 and "place 2 of 2 waiting for the QPU" in row["detail"]
    out = json.loads(run_qmio("queue", "--json").stdout)
    assert [r["id"] for r in out["yours"]] == [first, *waiting]
    assert [r["state"] for r in out["yours"]] == ["HOLDING", "WAITING", "WAITING"]
    for job_id in waiting:
        assert wait_status(job_id, {"DONE"}, timeout=60)["status"] == "DONE"


def test_usage_on_the_local_executor_comes_from_the_store(qmio_env, bell):
    ids = [submit_json(str(bell), "--shots", "20", "--wait") for _ in range(2)]
    report = json.loads(run_qmio("usage", "--json").stdout)
    rows = {r["id"]: r for r in report["allocations"]}
    assert set(rows) == set(ids)
    for job_id in ids:
        assert 0 < rows[job_id]["used_seconds"] <= rows[job_id]["held_seconds"]
    assert report["total"]["jobs"] == 2
    assert report["total"]["held_seconds"] == sum(r["held_seconds"] for r in rows.values())
    future = json.loads(run_qmio("usage", "--since", "2999-01-01", "--json").stdout)
    assert future["allocations"] == [] and future["total"]["jobs"] == 0


def test_auto_does_not_fall_back_to_local_when_slurm_is_installed_but_down(qmio_env, tmp_path):
    """MOCK (a fault not caused for real here: stopping slurmctld would stop every other test):
    sbatch and scontrol on the PATH that fail like a dead controller. On a login node that means
    'try later', not 'run on the login node'."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("sbatch", "scontrol"):
        (fake / name).write_text("#!/bin/sh\necho 'slurm_load_ctl_conf error' >&2\nexit 1\n")
        (fake / name).chmod(0o755)
    env = {"QMIO_EXECUTOR": "auto", "PATH": f"{fake}:{os.environ['PATH']}"}
    out = run_qmio("submit", str(REPO / "examples" / "bell.qasm"), env=env)
    assert out.returncode == 5, out.stderr
    assert "controller does not answer" in out.stderr and "--executor local" in out.stderr
    assert "Traceback" not in out.stderr
    assert run_qmio("jobs", "--json", env=env).stdout.strip() == "[]"  # nothing submitted
    shown = run_qmio("config", "--json", env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["executor"].startswith("none (")
