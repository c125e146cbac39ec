"""Against the real Slurm test cluster (scripts/slurm-cluster/start.sh): every state that can be
provoked here is provoked for real. These tests fail, never skip, when the cluster is down."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qmio_hpc.config import Settings
from qmio_hpc.jobs import JobManager
from qmio_hpc.protocol import ExecutionOptions
from qmio_hpc.states import RESULT_GRACE_SECONDS
from tests.conftest import BELL_QASM, REPO, run_qmio

pytestmark = pytest.mark.slurm

SLOW_QASM = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\n'
             'measure q[0] -> c[0];\n')


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def submit(*args: str, env: dict | None = None) -> str:
    out = run_qmio("submit", *args, "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["job_id"]


def status_of(job_id: str) -> dict:
    out = run_qmio("status", job_id, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]


def wait_for(job_id: str, wanted: set[str], timeout: float = 60, detail: str = "") -> dict:
    deadline = time.monotonic() + timeout
    row: dict = {}
    while time.monotonic() < deadline:
        row = status_of(job_id)
        if row["status"] in wanted and detail in row["detail"]:
            return row
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not reach {wanted} ({detail!r}); last: {row}")


def squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def sacct_row(job_id: str, timeout: float = 30) -> dict[str, str]:
    """sacct's view, once it has caught up with the job's end (it lags by a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o",
                              "JobID,State,ExitCode,Partition,AllocTRES"],
                             capture_output=True, text=True)
        rows = [line.split("|") for line in out.stdout.splitlines() if line]
        if rows and rows[0][1] not in ("PENDING", "RUNNING") and rows[0][3] and rows[0][4]:
            return dict(zip(["JobID", "State", "ExitCode", "Partition", "AllocTRES"], rows[0]))
        if time.monotonic() > deadline:
            raise AssertionError(f"sacct never showed job {job_id} finished: {out.stdout!r}")
        time.sleep(0.5)


def test_submit_wait_runs_as_a_slurm_job_on_qpu_holding_the_gres(slurm_env, tmp_path):
    out = run_qmio("submit", write(tmp_path, "bell.qasm", BELL_QASM), "--shots", "1000",
                   "--wait")
    assert out.returncode == 0, out.stderr
    assert "(slurm executor" in out.stdout
    job_id = out.stdout.split()[2]
    assert job_id.isdigit()  # the id users see is Slurm's
    counts = dict(line.split()[:2] for line in out.stdout.splitlines()[2:])
    assert set(counts) == {"00", "11"} and sum(map(int, counts.values())) == 1000
    row = sacct_row(job_id)
    assert row["State"] == "COMPLETED" and row["Partition"] == "qpu"
    assert "gres/qpu=1" in row["AllocTRES"]
    assert status_of(job_id)["status"] == "DONE"
    # the job files are the user's alone, Slurm's own output files included
    job_dir = Path(slurm_env["QMIO_STORE"]) / "ids" / job_id
    for f in job_dir.resolve().iterdir():
        assert f.stat().st_mode & 0o077 == 0, f


def test_status_agrees_with_squeue(slurm_env, tmp_path, emulator_factory):
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    job_id = submit(write(tmp_path, "slow.qasm", SLOW_QASM), "--shots", "500",
                    "--repetition-period", "0.01")
    row = wait_for(job_id, {"RUNNING"}, detail="program 1 of 1")
    assert squeue_state(job_id) == "RUNNING" and row["scheduler_state"] == "RUNNING"
    wait_for(job_id, {"DONE"})  # the result is written just before the step exits, so
    deadline = time.monotonic() + 10  # squeue may say RUNNING/COMPLETING for a moment more
    while squeue_state(job_id) != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert squeue_state(job_id) == "COMPLETED"
    assert status_of(job_id)["status"] == "DONE"


def test_second_job_waits_for_the_qpu_then_runs(slurm_env, tmp_path, emulator_factory):
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    prog = write(tmp_path, "slow.qasm", SLOW_QASM)
    first = submit(prog, "--shots", "1000", "--repetition-period", "0.004")
    second = submit(prog, "--shots", "100")
    wait_for(first, {"RUNNING"})
    queued = status_of(second)
    assert queued["status"] == "QUEUED" and queued["scheduler_state"] == "PENDING"
    assert squeue_state(second) == "PENDING"
    # Slurm names the reason at its next scheduling pass (sched_interval=2): until then, none
    deadline = time.monotonic() + 10
    while (not any(word in queued["detail"] for word in ("Resources", "Priority"))
           and time.monotonic() < deadline and queued["status"] == "QUEUED"):
        time.sleep(0.3)
        queued = status_of(second)
    assert any(word in queued["detail"] for word in ("Resources", "Priority")), queued
    wait_for(first, {"DONE"})
    wait_for(second, {"DONE"})


def test_cancel_while_pending(slurm_env, tmp_path, emulator_factory):
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    prog = write(tmp_path, "slow.qasm", SLOW_QASM)
    first = submit(prog, "--shots", "1000", "--repetition-period", "0.004")
    second = submit(prog, "--shots", "10")
    wait_for(first, {"RUNNING"})
    assert run_qmio("cancel", second).returncode == 0
    row = wait_for(second, {"CANCELLED"}, timeout=20)
    assert row["scheduler_state"] == "CANCELLED"
    assert run_qmio("result", second).returncode == 1
    wait_for(first, {"DONE"})


def test_cancel_while_running(slurm_env, tmp_path, emulator_factory):
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    job_id = submit(write(tmp_path, "slow.qasm", SLOW_QASM), "--shots", "1000",
                    "--repetition-period", "0.02")
    wait_for(job_id, {"RUNNING"}, detail="program 1 of 1")
    assert run_qmio("cancel", job_id).returncode == 0
    row = wait_for(job_id, {"CANCELLED"}, timeout=20)
    assert "cancel" in row["detail"].lower()
    assert sacct_row(job_id)["State"].startswith("CANCELLED")


def test_failing_step_is_error_with_the_reason(slurm_env, tmp_path):
    bad_text = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nfrob q[0];\n'
    bad = write(tmp_path, "bad.qasm", bad_text)
    refused = run_qmio("submit", bad)  # the submitter refuses it: nothing reaches Slurm
    assert refused.returncode == 2 and "frob" in refused.stderr
    assert not JobManager(Settings.load()).job_ids()
    # A program that arrives by another door (a spec written without the submitter's check)
    # meets the batch step's own check, on the node.
    manager = JobManager(Settings.load())
    spec = manager.build_spec([{"name": "bad", "program": BELL_QASM}], ExecutionOptions(shots=10))
    spec["programs"][0].update(program=bad_text, checked=False)
    job_id = manager.scheduler().submit(manager.store.create(spec))
    row = wait_for(job_id, {"ERROR"})
    assert row["scheduler_state"] == "FAILED"
    assert "not valid OpenQASM 2" in row["detail"] and "frob" in row["detail"]
    table = run_qmio("status", job_id).stdout
    assert "ERROR" in table and "frob" in table
    assert sacct_row(job_id)["ExitCode"] == "2:0"


def test_a_job_id_is_never_visible_before_its_executor_record(slurm_env, monkeypatch):
    """CI once saw a job declared lost 0.13 s after its submission: a 'qmio status' found the
    new id before its scheduler.json, asked the local executor, which did not know it. The
    store's link is observed (not replaced) at the moment it makes the id visible."""
    manager = JobManager(Settings.load())
    seen: list[dict | None] = []
    real_link = manager.store.link

    def observed_link(job_id, job):  # noqa: ANN001, ANN202
        seen.append(job.scheduler_record())
        real_link(job_id, job)

    monkeypatch.setattr(manager.store, "link", observed_link)
    job_id = manager.submit([{"name": "bell", "program": BELL_QASM}], ExecutionOptions(shots=10))
    assert seen and seen[0] is not None, "the id was linked before its scheduler record"
    assert seen[0]["executor"] == "slurm" and seen[0]["job_id"] == job_id
    wait_for(job_id, {"DONE"})


def test_a_batch_step_whose_submitter_died_after_sbatch_records_itself(slurm_env):
    """sbatch accepted the job, then the submitter died before it linked the id or wrote the
    record: the batch step does both, so the job is found by its Slurm id and ends DONE, not
    lost to a lookup that asks the wrong executor."""
    manager = JobManager(Settings.load())
    spec = manager.build_spec([{"name": "bell", "program": BELL_QASM}], ExecutionOptions(shots=10))
    job = manager.store.create(spec)
    scheduler = manager.scheduler()
    slurm_id = scheduler.submit_command(["-m", "qmio_hpc.step", str(job.path)], job.path)
    deadline = time.monotonic() + 60
    while not (manager.store.root / "ids" / slurm_id).is_symlink():  # the step links it
        assert time.monotonic() < deadline, "the batch step never linked its Slurm id"
        time.sleep(0.2)
    row = wait_for(slurm_id, {"DONE"}, timeout=60)  # 'qmio status ID' finds it by the id
    assert row["job_id"] == slurm_id
    assert job.scheduler_record()["executor"] == "slurm"
    assert job.scheduler_record()["job_id"] == slurm_id


def test_held_then_released(slurm_env, tmp_path):
    job_id = submit(write(tmp_path, "bell.qasm", BELL_QASM),
                    env={"QMIO_SLURM_EXTRA_DIRECTIVES": "--hold"})
    row = status_of(job_id)
    assert row["status"] == "QUEUED" and "JobHeldUser" in row["detail"]
    subprocess.run(["scontrol", "release", job_id], check=True)
    wait_for(job_id, {"DONE"})


def test_time_limit_reached_is_error(slurm_env, tmp_path, emulator_factory):
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    job_id = submit(write(tmp_path, "slow.qasm", SLOW_QASM), "--shots", "1000",
                    "--repetition-period", "0.2",
                    env={"QMIO_SLURM_TIME": "00:01:00", "QMIO_REPLY_TIMEOUT": "600"})
    row = wait_for(job_id, {"ERROR"}, timeout=180)
    assert row["scheduler_state"] == "TIMEOUT" and "time limit" in row["detail"]


def test_status_of_200_jobs_is_one_squeue_and_at_most_one_sacct(slurm_env, tmp_path):
    """Counted with a shim on PATH that logs each call and runs the real command: one squeue
    of the 200 ids for their states, one of the QPU partition for the queued ones' places, at
    most one sacct: a constant, not one a job."""
    manager = JobManager(Settings.load({"slurm.extra_directives": ["--hold"]}))
    programs = [{"name": "bell", "program": BELL_QASM}]
    ids = [manager.submit([dict(p) for p in programs], ExecutionOptions(shots=10))
           for _ in range(200)]
    subprocess.run(["scontrol", "release", ids[0]], check=True)
    done = JobManager(Settings.load())
    done.wait(ids[0], timeout=60)
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("squeue", "sacct", "scontrol", "sinfo"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (shims / tool).write_text(f'#!/bin/sh\necho {tool} "$1$2$3$4" >> "{log}"\n'
                                  f'exec {real} "$@"\n')
        (shims / tool).chmod(0o755)
    out = run_qmio("status", "--all", "--json", env={"PATH": f"{shims}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stderr
    rows = {r["job_id"]: r for r in json.loads(out.stdout)}
    assert set(rows) == set(ids)
    assert rows[ids[0]]["status"] == "DONE"
    assert all(rows[i]["status"] == "QUEUED" and "JobHeldUser" in rows[i]["detail"]
               for i in ids[1:])
    calls = log.read_text().splitlines() if log.exists() else []
    tools = [call.split()[0] for call in calls]
    assert tools.count("squeue") == 2, calls
    assert sum(call.startswith("squeue -h-tall-j") for call in calls) == 1, calls  # states
    assert sum(call.startswith("squeue -h-pqpu") for call in calls) == 1, calls  # places
    assert tools.count("sacct") <= 1, calls
    assert all("place" in rows[i]["detail"] for i in ids[1:])
    subprocess.run(["scancel", *ids], capture_output=True)


def test_dry_run_prints_the_script_and_submits_nothing(slurm_env, tmp_path):
    out = run_qmio("submit", write(tmp_path, "bell.qasm", BELL_QASM), "--dry-run",
                   env={"QMIO_SLURM_RESERVATION": "qmio-resv"})
    assert out.returncode == 0, out.stderr
    assert "#SBATCH --partition=qpu" in out.stdout and "--gres=qpu:1" in out.stdout
    assert "#SBATCH --reservation=qmio-resv" in out.stdout
    assert "python" in out.stdout and "qmio_hpc.step" in out.stdout
    assert run_qmio("jobs", "--json").stdout.strip() == "[]"


def test_executor_is_chosen_automatically_and_can_be_forced(slurm_env, tmp_path, monkeypatch):
    monkeypatch.setenv("QMIO_EXECUTOR", "auto")
    assert json.loads(run_qmio("config", "--json").stdout)["executor"] == "slurm"
    out = run_qmio("submit", write(tmp_path, "bell.qasm", BELL_QASM), "--executor", "local",
                   "--wait")
    assert out.returncode == 0 and "(local executor" in out.stdout
    inside = json.loads(run_qmio("config", "--json", env={
        "SLURM_JOB_ID": "1", "ZMQ_SERVER": "tcp://127.0.0.1:1"}).stdout)
    assert inside["executor"] == "local"  # inside an allocation: no second Slurm job


def test_another_process_picks_the_job_up_by_slurm_id(slurm_env, tmp_path):
    job_id = submit(write(tmp_path, "bell.qasm", BELL_QASM), "--shots", "64")
    code = ("from qmio_hpc import QmioRuntimeService\n"
            f"job = QmioRuntimeService().job({job_id!r})\n"
            "counts = job.result(timeout=60).get_counts()\n"
            "print(job.status().name, sum(counts.values()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["DONE", "64"]


def test_users_own_sbatch_script_talks_to_the_endpoint_directly(slurm_env, tmp_path,
                                                                emulator_factory):
    """examples/my_qpu_job.sbatch inside a real allocation: no second Slurm job, direct ZMQ."""
    from tests.conftest import REPO
    emu = emulator_factory("--seed", "3")
    out_file = tmp_path / "job.out"
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--partition=qpu", "--gres=qpu:1", "--no-requeue",
         f"--output={out_file}", f"--chdir={tmp_path}",
         "--export=ALL", str(REPO / "examples" / "my_qpu_job.sbatch")],
        capture_output=True, text=True,
        env={**os.environ, "ZMQ_SERVER": emu.endpoint, "QMIO_PYTHON": sys.executable})
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 90
    while squeue_state(job_id) not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
        assert time.monotonic() < deadline, "the user's job did not finish"
        time.sleep(0.5)
    text = out_file.read_text()
    assert squeue_state(job_id) == "COMPLETED", text
    lines = [line for line in text.splitlines() if line.split(" ")[0] in ("100", "1000")]
    assert len(lines) == 2, text
    for line in lines:
        shots, _, rest = line.partition(" ")
        counts = ast.literal_eval(rest)["c"]  # the reply dict as the seed API prints it
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == int(shots)
    # it went straight to the endpoint: nothing was submitted through qmio-hpc
    assert JobManager(Settings.load()).job_ids() == []


def test_a_late_result_is_done_within_the_grace_and_error_for_good_after_it(slurm_env, tmp_path):
    """Issue 8, item 1. A shared filesystem may show result.json after Slurm says COMPLETED.
    That lateness is emulated (the one stand-in here): the test moves each real job's result
    aside as soon as Slurm reports the job COMPLETED, and back later. Within the grace window
    the job reads RUNNING and then DONE; after it, ERROR, and ERROR it stays."""
    program = write(tmp_path, "bell.qasm", BELL_QASM)
    early, late = (submit(program, "--shots", "100") for _ in range(2))
    store = Path(slurm_env["QMIO_STORE"])
    hidden = {}
    for job_id in (early, late):
        row = sacct_row(job_id)  # no qmio lookup has seen the job yet
        assert row["State"] == "COMPLETED", row
        result = (store / "ids" / job_id).resolve() / "result.json"
        hidden[job_id] = (result, result.with_name(".late-result.json"))
        result.rename(hidden[job_id][1])
    row = status_of(early)
    assert row["status"] == "RUNNING" and "waiting for the result" in row["detail"], row
    hidden[early][1].rename(hidden[early][0])  # it shows up within the grace
    assert status_of(early)["status"] == "DONE"
    ended = float(subprocess.run(["sacct", "-n", "-X", "-P", "-j", late, "-o", "End"],
                                 capture_output=True, text=True,
                                 env={**os.environ, "SLURM_TIME_FORMAT": "%s"}).stdout.strip())
    time.sleep(max(0.0, ended + RESULT_GRACE_SECONDS + 1 - time.time()))
    row = status_of(late)
    assert row["status"] == "ERROR" and "no result" in row["detail"], row
    hidden[late][1].rename(hidden[late][0])  # too late: it shows up after the grace
    for _ in range(3):
        assert status_of(late) == row
    out = run_qmio("result", late)
    assert out.returncode != 0 and "ERROR" in out.stderr


def test_slurmctld_down_status_falls_back_to_the_job_directory_and_recovers(
        slurm_env, tmp_path, emulator_factory):
    """Issue 8, item 9: slurmctld stops (killed for real) while one job runs and one waits.
    'qmio status' answers from the job directories and says so, shows nothing final that is not,
    and both jobs end DONE once slurmctld is back (the project's own start script)."""
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    slow = write(tmp_path, "slow.qasm", SLOW_QASM)
    running = submit(slow, "--shots", "1000", "--repetition-period", "0.02")  # ~20 s
    waiting = submit(slow, "--shots", "10")  # waits for the QPU
    wait_for(running, {"RUNNING"}, detail="program 1 of 1")
    subprocess.run(["pkill", "-x", "slurmctld"], check=True)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "slurmctld did not stop"
            time.sleep(0.2)
        out = run_qmio("status", running, waiting, "--json")
        assert out.returncode == 0, out.stderr
        rows = {row["job_id"]: row for row in json.loads(out.stdout)}
        assert rows[running]["status"] == "RUNNING", rows
        assert rows[waiting]["status"] == "QUEUED", rows
        assert all("the scheduler does not answer" in row["detail"] for row in rows.values())
    finally:
        subprocess.run([str(REPO / "scripts" / "slurm-cluster" / "start.sh")], check=True,
                       capture_output=True, timeout=300)
    assert wait_for(running, {"DONE", "ERROR", "CANCELLED"}, 90)["status"] == "DONE"
    assert wait_for(waiting, {"DONE", "ERROR", "CANCELLED"}, 90)["status"] == "DONE"


def test_a_queued_job_shows_its_place_and_expected_start_and_qmio_queue_lists_ours(
        slurm_env, tmp_path, emulator_factory):
    """Issue 10, item 4, on the real cluster: one job holds the QPU (3 s on the time-model
    emulator, a time limit of 5 minutes), two wait. The last is 'place 2 of 2', with Slurm's
    own expected start (what squeue --start says), in 'qmio status' and its JSON; 'qmio queue'
    lists all three, holder first."""
    emulator_factory("--time-model", port=int(slurm_env["QMIO_EMULATOR_PORT"]))
    slow = write(tmp_path, "slow.qasm", SLOW_QASM)
    env = {"QMIO_SLURM_TIME": "00:05:00"}
    first = submit(slow, "--shots", "1000", "--repetition-period", "0.003", env=env)
    wait_for(first, {"RUNNING"}, detail="program 1 of 1")
    second = submit(slow, "--shots", "10", env=env)
    third = submit(slow, "--shots", "10", env=env)
    deadline = time.monotonic() + 30
    while True:  # the backfill scheduler sets the expected start within a few seconds
        row = status_of(third)
        if row["status"] == "QUEUED" and row.get("queue", {}).get("expected_start"):
            break
        assert time.monotonic() < deadline, f"no expected start shown: {row}"
        time.sleep(0.5)
    assert row["queue"]["place"] == 2 and row["queue"]["waiting"] == 2
    assert row["queue"]["holding"] == 1
    assert "place 2 of 2 waiting for the QPU" in row["detail"]
    start = subprocess.run(["squeue", "-h", "--start", "-j", third, "-o", "%S"],
                           capture_output=True, text=True).stdout.strip()
    assert row["queue"]["expected_start"] == start  # Slurm's own estimate, as squeue says it
    table = run_qmio("status", third).stdout
    assert "place 2 of 2" in table and "expected to start" in table
    out = json.loads(run_qmio("queue", "--json").stdout)
    assert [r["id"] for r in out["yours"]] == [first, second, third]
    assert [r["place"] for r in out["yours"]] == [None, 1, 2]
    assert out["holding"] == 1 and out["waiting"] == 2
    assert "HOLDING" in run_qmio("queue").stdout
    for job_id in (first, second, third):
        wait_for(job_id, {"DONE"}, timeout=60)


def test_usage_agrees_with_sacct(slurm_env, tmp_path):
    """Issue 10, item 6: 'qmio usage' reports what sacct says each allocation held (jobs and a
    session), and what the QPU worked for them, per day and in total."""
    bell = write(tmp_path, "bell.qasm", BELL_QASM)
    jobs = [submit(bell, "--shots", "50") for _ in range(2)]
    for job_id in jobs:
        wait_for(job_id, {"DONE"})
    started = run_qmio("session", "start", "--idle-timeout", "2", "-q")
    assert started.returncode == 0, started.stderr
    sid = started.stdout.strip()
    assert run_qmio("submit", bell, "--session", sid, "--wait").returncode == 0
    deadline = time.monotonic() + 60
    while squeue_state(sid) not in ("", "COMPLETED"):
        assert time.monotonic() < deadline, "the session did not end by its idle timeout"
        time.sleep(0.5)
    ids = [*jobs, sid]
    for job_id in ids:
        sacct_row(job_id)  # sacct has caught up with every end
    out = run_qmio("usage", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    ours = {r["id"]: r for r in report["allocations"] if r["id"] in ids}
    assert set(ours) == set(ids)
    sacct = {i: int(subprocess.run(["sacct", "-n", "-X", "-P", "-j", i, "-o", "ElapsedRaw"],
                                   capture_output=True, text=True).stdout.split()[0])
             for i in ids}
    assert {i: ours[i]["held_seconds"] for i in ids} == sacct
    assert ours[sid]["kind"] == "session" and ours[jobs[0]]["kind"] == "job"
    for job_id in ids:
        assert 0 < ours[job_id]["used_seconds"] <= ours[job_id]["held_seconds"] + 1
    everything = report["allocations"]
    assert report["total"]["held_seconds"] == sum(r["held_seconds"] for r in everything)
    assert "total" in run_qmio("usage").stdout
