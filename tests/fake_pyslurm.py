"""A FAKE pyslurm for tests. It is not pyslurm and it is not Slurm: an in-memory stand-in.

Why a fake: pyslurm's version must equal the running Slurm's (22.5.x for the Slurm 22.05 test
cluster here), and PyPI only carries pyslurm 25.11.x, which refuses to build against 22.05. So
``qmio_hpc.scheduler.slurm_pyslurm`` cannot run against the real cluster on this machine. This
fake lets the contract tests run the CLI adapter's scenarios against it instead. A pass here shows
that the adapter uses the documented API the way the docs describe. It does not show that the real
pyslurm behaves the same: run the adapter once on a machine where pyslurm 22.5.x builds.

It follows the pyslurm 22.5 documentation (https://pyslurm.github.io/22.5/reference/job/ and
https://pyslurm.github.io/22.5/reference/jobsubmitdescription/, i.e. pyslurm 22.5.2/22.5.3). The
22.5 source in PySlurm/pyslurm settles what the docs leave open; each such point is noted below.
It has only the part of that API the adapter uses:

- ``__version__``, ``PyslurmError``, ``RPCError`` (``errno`` and ``msg`` as in pyslurm);
- ``JobSubmitDescription(**attributes)`` and ``.submit() -> int``. Only documented attributes are
  accepted; anything else raises AttributeError, as pyslurm's cdef class does. Numbers must be ints
  (TypeError otherwise, as Cython's conversion does). The script must start with ``#!`` (ValueError,
  as pyslurm checks). ``script`` may be a path or the text. ``#SBATCH`` lines are NOT read, as in
  ``slurm_submit_batch_job``. Unknown partitions and GRES are refused with RPCError;
- ``Jobs.load() -> Jobs``: a dict of id -> ``Job`` snapshot, as in 22.5.2 (22.5.3 returns a
  ``MultiClusterMap``; both have ``values()``, the only method the adapter uses);
- ``Job(id).cancel()``. As in the source (``send_signal(9)``), cancelling a job that has ended or
  that slurmctld has forgotten is not an error. A ``Job`` has ``id``, ``state``, ``state_reason``
  ("None" when there is none, as ``slurm_job_reason_string`` gives), ``exit_code``,
  ``exit_code_signal`` and ``end_time`` (the expected end while a job runs, None before it starts).

The queue it simulates is the test cluster's: one node with one QPU. A job that holds the QPU
(``gres_per_node`` qpu:1, or ``resource_sharing`` "no" for --exclusive) runs only when no other job
holds it. Jobs start in submission order; the others stay PENDING with reason "Resources". Priority
0 (sbatch --hold) is PENDING "JobHeldUser" until released. The test side stands in for slurmd,
scontrol and MinJobAge with ``complete``, ``fail``, ``time_out``, ``release`` and ``purge``.
``down = True`` makes slurmctld stop answering. ``calls`` counts every API call the adapter makes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

#: The JobSubmitDescription attributes of the 22.5 docs that the fake accepts.
DOCUMENTED_ATTRIBUTES = frozenset({
    "name", "account", "priority", "nice", "partitions", "reservations", "qos", "nodes", "ntasks",
    "cpus_per_task", "gres_per_node", "resource_sharing", "time_limit", "working_directory",
    "standard_output", "standard_error", "script", "script_args", "environment",
    "get_user_environment", "memory_per_node", "memory_per_cpu", "constraints", "required_nodes",
    "excluded_nodes", "comment", "dependencies", "begin_time", "licenses", "mail_types",
    "mail_user", "is_requeueable", "wckey",
})
INT_ATTRIBUTES = ("priority", "nice", "ntasks", "cpus_per_task")
PARTITIONS = ("qpu", "compute")
GRES = {"qpu": 1}


@dataclass
class FakeJobRecord:
    """What the fake slurmctld holds for one job; ``description`` is what submit() was given."""

    id: int
    description: dict[str, Any]
    script_text: str
    holds_qpu: bool
    time_limit_minutes: int
    submit_time: int
    state: str = "PENDING"
    reason: str = "None"
    exit_code: int = 0
    exit_code_signal: int = 0
    start_time: int = 0
    end_time: int = 0
    held: bool = False


def _minutes(limit: Any) -> int:
    """Slurm's time formats that a qmio script can hold: MM, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]."""
    if limit is None:
        return 60 * 24 * 365
    text = str(limit)
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        parts += [0] * (3 - len(parts))
        return int(days) * 1440 + parts[0] * 60 + parts[1] + (parts[2] > 0)
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[0] + (parts[1] > 0)
    return parts[0] * 60 + parts[1] + (parts[2] > 0)


class FakeSlurmctld:
    """The in-memory controller behind one FAKE pyslurm module (``.module``)."""

    def __init__(self, version: str = "22.5.3", *, first_id: int = 1000,
                 clock: Callable[[], float] = time.time) -> None:
        self.version = version
        self.records: dict[int, FakeJobRecord] = {}
        self.calls: Counter[str] = Counter()
        self.down = False
        self.clock = clock
        self._next_id = first_id
        self.module = self._build_module()

    # -- the test side: what slurmd, scontrol and MinJobAge would do ---------------------------

    def record(self, job_id: int | str) -> FakeJobRecord:
        return self.records[int(job_id)]

    def complete(self, job_id: int | str) -> None:
        self._end(self._running(job_id), "COMPLETED", 0, 0, "None")

    def fail(self, job_id: int | str, exit_code: int = 1) -> None:
        self._end(self._running(job_id), "FAILED", exit_code, 0, "NonZeroExitCode")

    def time_out(self, job_id: int | str) -> None:
        self._end(self._running(job_id), "TIMEOUT", 0, 0, "TimeLimit")

    def release(self, job_id: int | str) -> None:
        """``scontrol release``: a held job may be scheduled again."""
        record = self.record(job_id)
        assert record.held, f"job {job_id} is not held"
        record.held = False
        record.reason = "None"
        self._schedule()

    def purge(self, job_id: int | str) -> None:
        """MinJobAge has passed: slurmctld forgets a finished job."""
        assert self.record(job_id).state not in ("PENDING", "RUNNING")
        del self.records[int(job_id)]

    # -- the controller ------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock())

    def _running(self, job_id: int | str) -> FakeJobRecord:
        record = self.record(job_id)
        assert record.state == "RUNNING", f"job {job_id} is {record.state}, not RUNNING"
        return record

    def _end(self, record: FakeJobRecord, state: str, code: int, signal: int,
             reason: str) -> None:
        record.state, record.exit_code, record.exit_code_signal = state, code, signal
        record.reason = reason
        record.end_time = self._now()
        self._schedule()

    def _schedule(self) -> None:
        busy = any(r.holds_qpu and r.state == "RUNNING" for r in self.records.values())
        for record in sorted(self.records.values(), key=lambda r: r.id):
            if record.state != "PENDING" or record.held:
                continue
            if record.holds_qpu and busy:
                record.reason = "Resources"
                continue
            now = self._now()
            record.state, record.reason, record.start_time = "RUNNING", "None", now
            record.end_time = now + 60 * record.time_limit_minutes  # the expected end
            busy = busy or record.holds_qpu

    def _submit(self, attributes: dict[str, Any]) -> int:
        if self.down:
            raise self.module.RPCError(msg="Unable to contact slurm controller (connect failure)")
        script = attributes.get("script")
        if not script:
            raise ValueError("You need to provide a batch script.")
        text = Path(script).read_text() if Path(script).is_file() else str(script)
        if not text.startswith("#!"):
            raise ValueError("Not a valid Batch script. First line must start with '#!',"
                             "followed by the path to an interpreter")
        if "\0" in text or "\r\n" in text:
            raise ValueError("Batch script contains a NUL character or DOS line breaks")
        for name in INT_ATTRIBUTES:
            if attributes.get(name) is not None and not isinstance(attributes[name], int):
                raise TypeError(f"an integer is required for {name}")
        partition = attributes.get("partitions") or PARTITIONS[0]
        partition = partition if isinstance(partition, str) else ",".join(partition)
        if partition not in PARTITIONS:
            raise self.module.RPCError(msg="Invalid partition name specified")
        holds_qpu = str(attributes.get("resource_sharing")) in ("no", "exclusive")
        if attributes.get("gres_per_node"):
            name, _, count = str(attributes["gres_per_node"]).removeprefix("gres:").rpartition(":")
            if name not in GRES:
                raise self.module.RPCError(msg="Invalid generic resource (gres) specification")
            if int(count) > GRES[name]:
                raise self.module.RPCError(msg="Requested node configuration is not available")
            holds_qpu = True
        job_id = self._next_id
        self._next_id += 1
        record = FakeJobRecord(job_id, dict(attributes), text, holds_qpu,
                               _minutes(attributes.get("time_limit")), self._now())
        if attributes.get("priority") == 0:  # what sbatch --hold sends
            record.held, record.reason = True, "JobHeldUser"
        self.records[job_id] = record
        self._schedule()
        return job_id

    def _cancel(self, job_id: int) -> None:
        if self.down:
            raise self.module.RPCError(msg="Unable to contact slurm controller (connect failure)")
        record = self.records.get(job_id)
        if record is None or record.state not in ("PENDING", "RUNNING"):
            return  # ESLURM_INVALID_JOB_ID / ESLURM_ALREADY_DONE are ignored for SIGKILL
        was_running = record.state == "RUNNING"
        record.held = False
        self._end(record, "CANCELLED", 0, 15 if was_running else 0, "None")

    def _build_module(self) -> ModuleType:
        """A module object that looks like ``import pyslurm`` for the adapter."""
        slurmctld = self
        module = ModuleType("pyslurm", "FAKE pyslurm (tests/fake_pyslurm.py); not pyslurm.")
        module.__version__ = self.version  # type: ignore[attr-defined]

        class PyslurmError(Exception):
            pass

        class RPCError(PyslurmError):
            def __init__(self, errno: int = 1, msg: str | None = None) -> None:
                self.errno = errno
                self.msg = msg or f"Slurm error {errno}"
                super().__init__(self.msg)

        class JobSubmitDescription:
            def __init__(self, **kwargs: Any) -> None:
                object.__setattr__(self, "_attributes", {})
                for name, value in kwargs.items():
                    setattr(self, name, value)

            def __setattr__(self, name: str, value: Any) -> None:
                if name not in DOCUMENTED_ATTRIBUTES:
                    raise AttributeError(f"'pyslurm.JobSubmitDescription' object has no "
                                         f"attribute '{name}'")
                self._attributes[name] = value

            def __getattr__(self, name: str) -> Any:
                if name in DOCUMENTED_ATTRIBUTES:
                    return self.__dict__["_attributes"].get(name)
                raise AttributeError(name)

            def submit(self) -> int:
                slurmctld.calls["JobSubmitDescription.submit"] += 1
                return slurmctld._submit(dict(self._attributes))

        class Job:
            def __init__(self, job_id: int) -> None:
                self._id = int(job_id)
                self._snapshot: FakeJobRecord | None = None

            @classmethod
            def _from(cls, record: FakeJobRecord) -> "Job":
                job = cls(record.id)
                job._snapshot = FakeJobRecord(**{k: getattr(record, k) for k in
                                                 record.__dataclass_fields__})
                return job

            def __repr__(self) -> str:
                return f"pyslurm.Job({self._id})"

            def cancel(self) -> None:
                slurmctld.calls["Job.cancel"] += 1
                slurmctld._cancel(self._id)

            def _field(self, name: str) -> Any:
                if self._snapshot is None:
                    return None  # a Job(id) that was not loaded holds no data
                return getattr(self._snapshot, name)

            id = property(lambda self: self._id)
            state = property(lambda self: self._field("state"))
            state_reason = property(lambda self: self._field("reason"))
            exit_code = property(lambda self: self._field("exit_code"))
            exit_code_signal = property(lambda self: self._field("exit_code_signal"))
            end_time = property(lambda self: self._field("end_time") or None)

        class Jobs(dict):  # type: ignore[type-arg]
            @staticmethod
            def load(preload_passwd_info: bool = False, frozen: bool = False) -> "Jobs":
                slurmctld.calls["Jobs.load"] += 1
                if slurmctld.down:
                    raise RPCError(msg="Unable to contact slurm controller (connect failure)")
                return Jobs({job_id: Job._from(record)
                             for job_id, record in slurmctld.records.items()})

        for cls in (PyslurmError, RPCError, JobSubmitDescription, Job, Jobs):
            cls.__module__ = "pyslurm"
            setattr(module, cls.__name__, cls)
        return module
