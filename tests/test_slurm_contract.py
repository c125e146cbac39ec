"""The contract every Slurm adapter keeps, with the same scenarios for each adapter.

``pyslurm``: the pyslurm adapter against tests/fake_pyslurm.py, a FAKE of pyslurm's 22.5 API (the
real pyslurm cannot be built here for Slurm 22.05). The fake is installed as ``sys.modules
["pyslurm"]``. These runs show the adapter uses the documented API as documented, and nothing more.

``cli``: the command-line adapter against the real Slurm test cluster (marked ``slurm``: it fails,
never skips, when the cluster is down). Its jobs run a site template whose body waits for the test
to write an exit code into the job directory, so that a test decides how each job ends.

Scenarios that cannot be provoked quickly on the real cluster (a time limit, a forgotten job,
slurmctld down, counting RPCs over 200 jobs) are checked on the fake only; test_slurm.py provokes
the real ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from qmio_hpc.config import Settings
from qmio_hpc.errors import SchedulerError
import qmio_hpc.scheduler as slurm_module
from qmio_hpc.scheduler import make_slurm_scheduler
from qmio_hpc.scheduler.slurm import SlurmScheduler
from qmio_hpc.scheduler.slurm_cli import SlurmCLIScheduler
from qmio_hpc.scheduler.slurm_pyslurm import PySlurmScheduler, sbatch_options
from qmio_hpc.states import RESULT_GRACE_SECONDS, SchedulerState, resolve
from qmio_hpc.store import JobDir, JobStore
from tests.fake_pyslurm import FakeSlurmctld

REPO = Path(__file__).resolve().parents[1]

#: A site template for the real cluster: the job ends with the code the test writes to ``ctl``.
CONTROLLED_TEMPLATE = """#!/bin/bash
${sbatch_directives}
# qmio-hpc contract test: this job ends with the exit code the test writes to ctl,
# instead of running ${command}
for _ in $$(seq 1200); do
    if [ -s ${job_dir}/ctl ]; then exit "$$(cat ${job_dir}/ctl)"; fi
    sleep 0.1
done
exit 3
"""


def load_settings(tmp_path: Path, **overrides: object) -> Settings:
    values = {"store": str(tmp_path / "store"), "slurm.partition": "qpu",
              "slurm.qpu_hold": "gres", **overrides}
    return Settings.load(values, environ={"QMIO_SITE_CONFIG": "/nonexistent",
                                          "QMIO_USER_CONFIG": "/nonexistent",
                                          "HOME": str(tmp_path)})


class Cluster:
    """What a scenario needs from a cluster, whichever adapter talks to it."""

    adapter_class: type[SlurmScheduler]
    adapter_name: str
    poll = 0.0
    timeout = 0.0  # the fake answers at once: a state that is not there now will never be

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.store = JobStore(tmp_path / "store")
        self.submitted: list[str] = []
        # every states() call asks Slurm, so a scenario need not sleep through the cache interval
        monkeypatch.setattr(self.adapter_class, "min_interval", 0.0)

    def settings(self, **overrides: object) -> Settings:
        return load_settings(self.tmp_path, **overrides)

    def scheduler(self, **overrides: object) -> SlurmScheduler:
        return self.adapter_class(self.settings(**overrides), self.store)

    def submit(self, scheduler: SlurmScheduler) -> tuple[str, JobDir]:
        job = self.store.create({})
        job_id = scheduler.submit(job)
        self.submitted.append(job_id)
        return job_id, job

    def wait(self, scheduler: SlurmScheduler, job_id: str,
             wanted: Callable[[SchedulerState], bool], what: str) -> SchedulerState:
        deadline = time.monotonic() + self.timeout
        while True:
            state = scheduler.states([job_id]).get(job_id)
            if state is not None and wanted(state):
                return state
            if time.monotonic() >= deadline:
                raise AssertionError(f"job {job_id} never became {what}; last: {state}")
            time.sleep(self.poll)

    def end(self, job_id: str, exit_code: int) -> None:
        raise NotImplementedError

    def release(self, job_id: str) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class FakePySlurmCluster(Cluster):
    adapter_class = PySlurmScheduler
    adapter_name = "pyslurm"

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(tmp_path, monkeypatch)
        self.slurmctld = FakeSlurmctld()
        monkeypatch.setitem(sys.modules, "pyslurm", self.slurmctld.module)

    def end(self, job_id: str, exit_code: int) -> None:
        if exit_code == 0:
            self.slurmctld.complete(job_id)
        else:
            self.slurmctld.fail(job_id, exit_code)

    def release(self, job_id: str) -> None:
        self.slurmctld.release(job_id)


class RealCLICluster(Cluster):
    adapter_class = SlurmCLIScheduler
    adapter_name = "command-line tools"
    poll = 0.2
    timeout = 240.0  # other test runs may hold the one QPU (test_slurm.py: up to ~90 s)

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
        if ping.returncode != 0:
            pytest.fail("the Slurm test cluster is not running: start it with "
                        "scripts/slurm-cluster/start.sh")
        super().__init__(tmp_path, monkeypatch)
        templates = tmp_path / "site-templates"
        templates.mkdir()
        (templates / "qmio_job.sbatch").write_text(CONTROLLED_TEMPLATE)
        self.template_dir = str(templates)

    def settings(self, **overrides: object) -> Settings:
        return load_settings(self.tmp_path, **{"slurm.template_dir": self.template_dir,
                                               **overrides})

    def end(self, job_id: str, exit_code: int) -> None:
        ctl = self.store.get(job_id).file("ctl")
        ctl.with_suffix(".tmp").write_text(f"{exit_code}\n")
        ctl.with_suffix(".tmp").rename(ctl)

    def release(self, job_id: str) -> None:
        subprocess.run(["scontrol", "release", job_id], check=True, capture_output=True)

    def cleanup(self) -> None:
        if self.submitted:
            subprocess.run(["scancel", *self.submitted], capture_output=True)


@pytest.fixture(params=["pyslurm", pytest.param("cli", marks=pytest.mark.slurm)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    kind = FakePySlurmCluster if request.param == "pyslurm" else RealCLICluster
    cluster = kind(tmp_path, monkeypatch)
    yield cluster
    cluster.cleanup()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePySlurmCluster:
    return FakePySlurmCluster(tmp_path, monkeypatch)


def is_(state: str, reason: str | None = None) -> Callable[[SchedulerState], bool]:
    return lambda s: s.state == state and (reason is None or s.reason == reason)


def running_and_waiting(cluster: Cluster, scheduler: SlurmScheduler) -> tuple[str, str]:
    """One job that holds the QPU and one that waits behind it."""
    first, _ = cluster.submit(scheduler)
    cluster.wait(scheduler, first, is_("RUNNING"), "RUNNING")
    second, _ = cluster.submit(scheduler)
    cluster.wait(scheduler, second,
                 lambda s: s.state == "PENDING" and s.reason in ("Resources", "Priority"),
                 "PENDING behind the QPU")
    return first, second


# -- scenarios every adapter keeps -----------------------------------------------------------------

def test_submit_returns_the_id_links_it_and_records_the_adapter(cluster: Cluster) -> None:
    scheduler = cluster.scheduler()
    job_id, job = cluster.submit(scheduler)
    assert job_id.isdigit()
    assert cluster.store.get(job_id).path == job.path
    assert job.scheduler_record() == {"executor": "slurm", "job_id": job_id,
                                      "adapter": cluster.adapter_name}
    assert job.file("job.sbatch").stat().st_mode & 0o077 == 0
    cluster.wait(scheduler, job_id, is_("RUNNING"), "RUNNING")
    cluster.end(job_id, 0)


def test_a_job_behind_the_qpu_is_pending_with_the_reason(cluster: Cluster) -> None:
    scheduler = cluster.scheduler()
    first, second = running_and_waiting(cluster, scheduler)
    job = cluster.store.get(second)
    status = resolve(scheduler.states([second])[second], job)
    assert status.name == "QUEUED" and status.scheduler_state == "PENDING"
    assert any(word in status.detail for word in ("Resources", "Priority"))
    # Slurm runs it; its stand-in step writes no progress note: INITIALIZING until one does
    assert resolve(scheduler.states([first])[first],
                   cluster.store.get(first)).name == "INITIALIZING"
    cluster.end(first, 0)
    cluster.wait(scheduler, second, is_("RUNNING"), "RUNNING once the QPU is free")
    cluster.end(second, 0)


def test_completed_has_exit_code_and_end_time_and_is_done_only_with_a_result(
        cluster: Cluster) -> None:
    scheduler = cluster.scheduler()
    job_id, job = cluster.submit(scheduler)
    cluster.wait(scheduler, job_id, is_("RUNNING"), "RUNNING")
    cluster.end(job_id, 0)
    state = cluster.wait(scheduler, job_id, is_("COMPLETED"), "COMPLETED")
    assert state.exit_code == "0:0"
    assert state.ended_at is not None and abs(state.ended_at - time.time()) < 120
    # DESIGN section 4: COMPLETED is DONE only with a complete result, after a grace for lag
    assert resolve(state, job, now=state.ended_at).name == "RUNNING"
    late = state.ended_at + RESULT_GRACE_SECONDS + 1
    assert resolve(state, job, now=late).name == "ERROR"
    job.write_result({"results": []})
    assert resolve(state, job, now=late).name == "DONE"


def test_failed_has_the_exit_code_and_is_error(cluster: Cluster) -> None:
    scheduler = cluster.scheduler()
    job_id, job = cluster.submit(scheduler)
    cluster.wait(scheduler, job_id, is_("RUNNING"), "RUNNING")
    cluster.end(job_id, 2)
    state = cluster.wait(scheduler, job_id, is_("FAILED"), "FAILED")
    assert state.exit_code == "2:0" and state.ended_at is not None
    status = resolve(state, job)
    assert status.name == "ERROR" and "exit code 2:0" in status.detail


def test_cancel_while_pending_and_while_running(cluster: Cluster) -> None:
    scheduler = cluster.scheduler()
    first, second = running_and_waiting(cluster, scheduler)
    for job_id in (second, first):
        cluster.store.get(job_id).mark_cancelled()  # as the caller of cancel() does
        scheduler.cancel([job_id])
        state = cluster.wait(scheduler, job_id, is_("CANCELLED"), "CANCELLED")
        assert resolve(state, cluster.store.get(job_id)).name == "CANCELLED"
    assert scheduler.states([first])[first].ended_at is not None


def test_held_is_pending_job_held_user_until_released(cluster: Cluster) -> None:
    scheduler = cluster.scheduler(**{"slurm.extra_directives": ["--hold"]})
    job_id, job = cluster.submit(scheduler)
    state = cluster.wait(scheduler, job_id, is_("PENDING", "JobHeldUser"), "held")
    status = resolve(state, job)
    assert status.name == "QUEUED" and "JobHeldUser" in status.detail
    cluster.release(job_id)
    cluster.wait(scheduler, job_id, is_("RUNNING"), "RUNNING after release")
    cluster.end(job_id, 0)
    cluster.wait(scheduler, job_id, is_("COMPLETED"), "COMPLETED")


def test_unknown_ids_are_absent(cluster: Cluster) -> None:
    scheduler = cluster.scheduler(**{"slurm.extra_directives": ["--hold"]})
    assert scheduler.states(["999999990"]) == {}
    job_id, _ = cluster.submit(scheduler)
    assert set(scheduler.states([job_id, "999999991"])) == {job_id}
    scheduler.cancel([job_id])


def test_states_of_many_jobs_cost_one_query(cluster: Cluster) -> None:
    many = 200 if isinstance(cluster, FakePySlurmCluster) else 5
    submitter = cluster.scheduler(**{"slurm.extra_directives": ["--hold"]})
    ids = [cluster.submit(submitter)[0] for _ in range(many)]
    if isinstance(cluster, FakePySlurmCluster):
        cluster.slurmctld.calls.clear()
    scheduler = cluster.scheduler()  # a new process: nothing cached
    states = scheduler.states(ids)
    assert scheduler.queries == 1
    assert set(states) == set(ids)
    assert {(s.state, s.reason) for s in states.values()} == {("PENDING", "JobHeldUser")}
    if isinstance(cluster, FakePySlurmCluster):
        assert cluster.slurmctld.calls == {"Jobs.load": 1}
    else:
        assert isinstance(scheduler, SlurmCLIScheduler)
        assert scheduler.calls.count("squeue") == 1 and scheduler.calls.count("sacct") <= 1
    submitter.cancel(ids)


# -- the pyslurm adapter and its fake only ---------------------------------------------------------

def test_timeout_is_error_with_the_time_limit(fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler()
    job_id, job = fake.submit(scheduler)
    fake.slurmctld.time_out(job_id)
    state = scheduler.states([job_id])[job_id]
    assert state.state == "TIMEOUT" and state.ended_at is not None
    status = resolve(state, job)
    assert status.name == "ERROR" and "time limit" in status.detail


def test_running_and_pending_jobs_have_no_exit_code_or_end_time(
        fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler()
    first, second = running_and_waiting(fake, scheduler)
    states = scheduler.states([first, second])
    assert fake.slurmctld.record(first).end_time  # pyslurm's expected end, not an end
    assert all(s.ended_at is None and s.exit_code == "" for s in states.values())


def test_cancelled_exit_codes_follow_slurm(fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler()
    first, second = running_and_waiting(fake, scheduler)
    scheduler.cancel([second, first])
    states = scheduler.states([first, second])
    assert states[second].exit_code == "0:0"   # DESIGN section 3: pending -> CANCELLED 0:0
    assert states[first].exit_code == "0:15"   # running -> CANCELLED 0:15
    assert fake.slurmctld.calls["Job.cancel"] == 2


def test_the_submission_is_the_scripts_directives(fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler(**{"slurm.time": "00:05:00", "slurm.reservation": "qmio",
                                  "slurm.extra_directives": ["--mem=4G", "-wlocalhost",
                                                             "--requeue"]})
    job_id, job = fake.submit(scheduler)
    record = fake.slurmctld.record(job_id)
    directory = str(job.path.absolute())
    assert record.description["working_directory"] == directory
    assert record.description["standard_output"] == directory + "/slurm.out"
    assert record.description["standard_error"] == directory + "/slurm.err"
    assert record.description["script"] == str(job.file("job.sbatch"))
    assert record.script_text == job.file("job.sbatch").read_text()
    assert record.description["environment"]["SLURM_UMASK"] == "0077"
    assert {k: record.description[k] for k in
            ("name", "partitions", "nodes", "ntasks", "gres_per_node", "time_limit",
             "reservations", "memory_per_node", "required_nodes", "is_requeueable")} == {
        "name": "qmio", "partitions": "qpu", "nodes": "1", "ntasks": 1,
        "gres_per_node": "qpu:1", "time_limit": "00:05:00", "reservations": "qmio",
        "memory_per_node": "4G", "required_nodes": "localhost", "is_requeueable": True}
    assert record.time_limit_minutes == 5


def test_a_job_directory_with_a_space_survives_the_quoting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePySlurmCluster(tmp_path / "with space", monkeypatch)
    scheduler = fake.scheduler()
    job_id, job = fake.submit(scheduler)
    assert '"' in job.file("job.sbatch").read_text()  # script.py quoted the path
    assert fake.slurmctld.record(job_id).description["standard_output"] == str(
        job.path.absolute() / "slurm.out")


def test_exclusive_holds_the_qpu_too(fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler(**{"slurm.qpu_hold": "exclusive"})
    first, second = running_and_waiting(fake, scheduler)
    assert fake.slurmctld.record(first).description["resource_sharing"] == "no"
    assert "gres_per_node" not in fake.slurmctld.record(first).description


def test_an_option_the_adapter_does_not_know_is_refused_not_dropped(
        fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler(**{"slurm.extra_directives": ["--mem-bind=local"]})
    job = fake.store.create({})
    with pytest.raises(SchedulerError, match="--mem-bind"):
        scheduler.submit(job)
    assert fake.slurmctld.calls["JobSubmitDescription.submit"] == 0
    assert job.scheduler_record() is None


def test_slurm_refusing_the_job_is_a_scheduler_error(fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler(**{"slurm.partition": "nosuch"})
    with pytest.raises(SchedulerError, match="Invalid partition"):
        scheduler.submit(fake.store.create({}))


def test_sbatch_options_are_read_as_sbatch_reads_them() -> None:
    script = ("#!/bin/bash\n#SBATCH -p qpu --time 5  # five minutes\n"
              '#SBATCH --output="/a b/slurm.out" -H\n# a comment\n\n'
              "#SBATCH -J=x\necho hi\n#SBATCH --gres=qpu:2\n")
    assert sbatch_options(script) == [("partition", "qpu"), ("time", "5"),
                                      ("output", "/a b/slurm.out"), ("hold", None),
                                      ("job-name", "x")]


def test_a_job_slurm_forgot_is_absent_and_the_directory_decides(
        fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler()
    job_id, job = fake.submit(scheduler)
    fake.slurmctld.complete(job_id)
    assert scheduler.states([job_id])[job_id].state == "COMPLETED"
    fresh = fake.scheduler()
    fake.slurmctld.purge(job_id)
    assert fresh.states([job_id]) == {}
    assert resolve(None, job).name == "ERROR"  # never assumed DONE
    job.write_result({"results": []})
    assert resolve(None, job).name == "DONE"


def test_slurmctld_down_keeps_known_states_and_fails_for_new_ones(
        fake: FakePySlurmCluster) -> None:
    scheduler = fake.scheduler()
    job_id, _ = fake.submit(scheduler)
    assert scheduler.states([job_id])[job_id].state == "RUNNING"
    fake.slurmctld.down = True
    assert scheduler.states([job_id])[job_id].state == "RUNNING"  # the last answer, logged
    with pytest.raises(SchedulerError, match="did not answer"):
        scheduler.states(["4242"])
    with pytest.raises(SchedulerError, match="connect failure"):
        scheduler.submit(fake.store.create({}))
    with pytest.raises(SchedulerError, match=job_id):
        scheduler.cancel([job_id])


def test_the_module_imports_without_pyslurm_and_says_what_is_missing(
        fake: FakePySlurmCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    code = ("import sys; sys.modules['pyslurm'] = None\n"
            "import qmio_hpc.scheduler.slurm_pyslurm as m\n"
            "assert 'pyslurm' not in [k for k, v in sys.modules.items() if v is not None]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    scheduler = fake.scheduler()
    monkeypatch.setitem(sys.modules, "pyslurm", None)  # import pyslurm -> ImportError
    with pytest.raises(SchedulerError, match="pyslurm is not installed"):
        scheduler.states(["1"])
    with pytest.raises(SchedulerError, match="pyslurm is not installed"):
        scheduler.submit(fake.store.create({}))


def test_a_pyslurm_without_the_job_api_is_refused(fake: FakePySlurmCluster,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    old = FakeSlurmctld(version="22.5.1").module  # 22.5.0/22.5.1 have only pyslurm.job
    for name in ("Jobs", "Job", "JobSubmitDescription"):
        delattr(old, name)
    monkeypatch.setitem(sys.modules, "pyslurm", old)
    with pytest.raises(SchedulerError, match=r"22\.5\.1 lacks .*>= 22\.5\.2"):
        fake.scheduler().states(["1"])


# -- choosing the adapter --------------------------------------------------------------------------

def running_slurm() -> str:
    out = subprocess.run(["sinfo", "--version"], capture_output=True, text=True, timeout=10)
    version = out.stdout.split()[-1]
    assert version.startswith("22.05."), f"this machine's Slurm is {out.stdout!r}, not 22.05"
    return version


def test_make_slurm_scheduler_picks_pyslurm_when_it_matches_the_running_slurm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    running_slurm()
    monkeypatch.setitem(sys.modules, "pyslurm", FakeSlurmctld(version="22.5.3").module)
    scheduler = make_slurm_scheduler(load_settings(tmp_path), JobStore(tmp_path / "store"))
    assert type(scheduler) is PySlurmScheduler and scheduler.adapter == "pyslurm"
    assert capsys.readouterr().err == ""


def test_make_slurm_scheduler_falls_back_to_the_cli_with_one_notice_on_a_mismatch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    running = running_slurm()
    monkeypatch.setitem(sys.modules, "pyslurm", FakeSlurmctld(version="25.11.0").module)
    monkeypatch.setattr(slurm_module, "_notice_given", False)
    settings, store = load_settings(tmp_path), JobStore(tmp_path / "store")
    scheduler = make_slurm_scheduler(settings, store)
    assert type(scheduler) is SlurmCLIScheduler
    assert "pyslurm 25.11.0 does not match" in scheduler.adapter
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qmio: notice: ")
    assert "25.11.0" in err and running in err
    make_slurm_scheduler(settings, store)
    assert capsys.readouterr().err == ""  # once a process


def test_slurm_adapter_setting_forces_the_choice(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    running_slurm()
    store = JobStore(tmp_path / "store")
    monkeypatch.setitem(sys.modules, "pyslurm", FakeSlurmctld(version="22.5.3").module)
    forced_cli = make_slurm_scheduler(load_settings(tmp_path, **{"slurm.adapter": "cli"}), store)
    assert type(forced_cli) is SlurmCLIScheduler
    monkeypatch.setitem(sys.modules, "pyslurm", FakeSlurmctld(version="25.11.0").module)
    with pytest.raises(SchedulerError, match="slurm.adapter is 'pyslurm' but pyslurm 25.11.0"):
        make_slurm_scheduler(load_settings(tmp_path, **{"slurm.adapter": "pyslurm"}), store)
