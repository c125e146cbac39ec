"""Submit, track, cancel and read jobs, without Qiskit.

``JobManager`` is the machinery behind every door: ``QmioJob`` and ``QmioRuntimeService`` wrap it
for Qiskit users, the CLI uses it directly so that ``qmio status`` stays fast. It writes the spec
into the job store, hands the directory to the executor that the settings choose, and resolves
status from the executor's word plus the job directory (``states.resolve``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .config import Settings
from .connection import Connection
from .errors import (FAILURE_KINDS, JobFailedError, JobTimeoutError, ProgramError, QmioError,
                     SchedulerError)
from .programs import check_program
from .protocol import ExecutionOptions, language_of
from .scheduler import Scheduler, choose_executor, get_scheduler
from .states import (RESULT_GRACE_SECONDS, SchedulerState, Status, resolve,
                     without_scheduler)
from .store import JobDir, JobStore

if TYPE_CHECKING:
    from .sessions import Sessions

#: Characters below which an OpenQASM 2 program is checked again rather than looked up.
SHORT_PROGRAM = 4_000  # checked in under ~1 ms; hashlib alone costs a process ~2.5 ms
_QASM2_CREG = re.compile(r"^\s*creg\s+([A-Za-z_][\w]*)\s*\[\s*(\d+)\s*\]", re.MULTILINE)
_QASM3_BIT = re.compile(r"^\s*(?:output\s+)?bit\s*(?:\[\s*(\d+)\s*\])?\s+([A-Za-z_][\w]*)\s*[;=]",
                        re.MULTILINE)


def classical_registers(program: str) -> list[tuple[str, int]]:
    """(name, size) of each classical register a QASM program declares, in order."""
    regs = [(m.group(1), int(m.group(2))) for m in _QASM2_CREG.finditer(program)]
    regs += [(m.group(2), int(m.group(1) or 1)) for m in _QASM3_BIT.finditer(program)]
    return regs


#: A complete result always wins (states.resolve): the status of every job that has one.
DONE = Status("DONE", "completed")


#: Who claims a job's outcome when a status lookup records its end (``JobDir.claim_outcome``).
STATUS_CLAIM = "status"


class JobManager:
    """Jobs in one store, under one set of settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load()
        self.store = JobStore(self.settings.store)
        self.connection = Connection.from_settings(self.settings)
        self._connection_record = self.connection.to_dict()
        self._schedulers: dict[str, Scheduler] = {}
        self._executor: str | None = None
        self._sessions: "Sessions | None" = None
        self._results: dict[str, dict[str, Any]] = {}  # the last results wait() read
        self._submitted = 0  # plain jobs this manager submitted

    # -- executors --------------------------------------------------------------------------------

    @property
    def executor(self) -> str:
        """The executor new jobs go to (``executor = auto`` resolved once)."""
        if self._executor is None:
            self._executor = choose_executor(self.settings)
        return self._executor

    def scheduler(self, name: str | None = None) -> Scheduler:
        """The executor ``name`` (default: where new jobs go). ``session`` answers for jobs in
        sessions (``scheduler.session``)."""
        name = name or self.executor
        if name not in self._schedulers:
            if name == "session":
                from .scheduler.session import SessionJobs  # noqa: PLC0415
                self._schedulers[name] = SessionJobs(self.sessions)  # type: ignore[assignment]
            else:
                self._schedulers[name] = get_scheduler(name, self.settings, self.store)
        return self._schedulers[name]

    def scheduler_with(self, name: str, **settings: Any) -> Scheduler:
        """A new executor ``name`` whose settings differ (a session's own time limit)."""
        return get_scheduler(name, self.settings.replace(**settings), self.store)

    @property
    def sessions(self) -> "Sessions":
        """The sessions of this store (``sessions.Sessions``)."""
        if self._sessions is None:
            from .sessions import Sessions  # noqa: PLC0415 - imports ZMQ
            self._sessions = Sessions(self)
        return self._sessions

    # -- submission -------------------------------------------------------------------------------

    def build_spec(self, programs: list[dict[str, Any]], options: ExecutionOptions,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The job's spec. Programs nobody checked yet are checked here, in the submitting
        process, so that an invalid one creates no job (``programs.check_program``)."""
        if not programs:
            raise ProgramError("nothing to run: give at least one program")
        for entry in programs:
            if not entry.get("checked"):
                self._check(str(entry.get("name", "?")), entry.get("program"))
                entry["checked"] = True
            entry.setdefault("registers", classical_registers(entry["program"]))
        if options.res_format == "binary_count" and any(len(e["registers"]) > 1 for e in programs):
            # Counts of separate registers are marginals; joint counts need per-shot values.
            options = options.replace(res_format="raw")
        return {
            "programs": programs,
            "options": options.to_dict(),
            "connection": self._connection_record,
            "max_shots": self.settings.max_shots,
            "store": str(self.store.root),
            "submitted": time.time(),
            "meta": meta or {},
        }

    def submit(self, programs: list[dict[str, Any]], options: ExecutionOptions,
               meta: dict[str, Any] | None = None, session: str | None = None) -> str:
        """Create the job directory and hand it to the executor (or queue it into ``session``);
        returns the job id."""
        if session is not None:
            return self.sessions.submit(session, programs, options, meta)
        from .durable import syncer  # noqa: PLC0415 - a thread module; status needs none

        spec = self.build_spec(programs, options, meta)
        # Every file is complete and in place (atomic renames) before the executor hears of the
        # job, which is all the batch step needs to read it, on this node or another; they are
        # made durable in the background (and before this process exits): a loop of
        # backend.run calls does not wait for the disk four times per job.
        job = self.store.create(spec, durable=False)
        scheduler = self.scheduler()
        self._submitted += 1
        # A process that submits twice is in a loop (backend.run over parameters): the next
        # job's directory is made on the background thread while this one's sbatch runs, and
        # the executor gets ready for the next submission once this one has returned.
        looping = self._submitted > 1
        if looping:
            names = ("spec.json", "scheduler.json", *scheduler.job_files)
            syncer.soon(lambda: self.store.prepare_spare(names))
        try:
            job_id = scheduler.submit(job, durable=False)
        except QmioError as exc:
            job.write_error(type(exc).__name__, f"submission failed: {exc}")
            raise
        finally:
            syncer.add(job)
        if looping:
            syncer.soon(scheduler.prepare_next)
        return job_id

    def _check(self, name: str, program: Any) -> None:
        """``check_program``, once per program text in this store: OpenQASM 3's parsers need
        Qiskit, whose import costs a second per submitting process, and a loop that submits the
        same file again should not pay it each time (nor re-check a long OpenQASM 2 program). A
        short OpenQASM 2 program is checked in less time than its mark takes to look up. The
        marks (``checked/<sha256>``) are in the user's own store, so nobody else can vouch for
        a program."""
        if not isinstance(program, str) or (len(program) < SHORT_PROGRAM
                                            and language_of(program) == "qasm2"):
            check_program(name, program)  # raises if it is not a program, or not valid
            return
        import hashlib  # noqa: PLC0415 - only a submission needs it, not status

        mark = self.store.root / "checked" / hashlib.sha256(program.encode()).hexdigest()
        if mark.exists():
            return
        check_program(name, program)
        with contextlib.suppress(OSError):  # a mark that cannot be written costs a re-check
            mark.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(mark, os.O_WRONLY | os.O_CREAT, 0o600))

    def dry_run(self, programs: list[dict[str, Any]], options: ExecutionOptions) -> str:
        """What ``submit`` would hand the executor, without creating anything."""
        spec = self.build_spec(programs, options)
        scheduler = self.scheduler()
        job = JobDir(self.store.root / "jobs" / "DRY-RUN")
        render = getattr(scheduler, "render", None)
        if render is None:
            return (f"# {scheduler.describe()}\n# would run: python -m qmio_hpc.step {job.path}\n"
                    f"# with {len(spec['programs'])} program(s), {options.shots} shots, "
                    f"endpoint {self.connection.address}\n")
        return render(job)

    # -- status -----------------------------------------------------------------------------------

    def statuses(self, job_ids: Iterable[str]) -> dict[str, Status]:
        """Status of many jobs: one scheduler query per executor, not one per job."""
        dirs: dict[str, JobDir] = {job_id: self.store.get(job_id) for job_id in job_ids}
        by_executor: dict[str, list[str]] = {}
        out: dict[str, Status] = {}
        for job_id, job in dirs.items():
            if job.result() is not None and job.declared() is None:  # final, no query needed
                out[job_id] = DONE
                continue
            record = job.scheduler_record() or {}
            by_executor.setdefault(record.get("executor", "local"), []).append(job_id)
        for executor, ids in by_executor.items():
            try:
                states = self.scheduler(executor).states(ids)
            except SchedulerError as exc:  # slurmctld down, say: the job directories alone
                out.update({job_id: without_scheduler(dirs[job_id], str(exc)) for job_id in ids})
                continue
            for job_id in ids:
                status = resolve(states.get(job_id), dirs[job_id])
                if status.final and status.name != "DONE" and executor != "session":
                    status = self._record_end(dirs[job_id], status, states.get(job_id))
                out[job_id] = status
        return {job_id: out[job_id] for job_id in dirs}

    @staticmethod
    def _record_end(job: JobDir, status: Status, sched: SchedulerState | None) -> Status:
        """The scheduler says the job ended without a result: make that its end for good.

        Unless its step wrote its end itself, the lookup claims the job's outcome, so that no
        result can land after ERROR or CANCELLED was shown, and writes the status down
        (``final.json``). If the step claimed it first, its outcome may be on its way: that is
        awaited for the result grace period, then the scheduler's word is written down all the
        same. (A session's jobs have their own claims: ``sessions``.)"""
        if job.result() is not None or job.error() is not None or job.declared() is not None:
            return status  # the step's own end, or one written down before
        if not (job.claim_outcome(STATUS_CLAIM) or job.claimed_by() == STATUS_CLAIM):
            # The step claimed it first: its outcome may be on its way.
            if job.result() is not None or job.error() is not None:
                return resolve(sched, job)  # it has just landed
            ended = sched.ended_at if sched is not None else None
            if ended is not None and time.time() - ended < RESULT_GRACE_SECONDS:
                return Status("RUNNING", "ended; waiting for its step's outcome file to appear",
                              status.scheduler_state)
        job.declare(status.name, status.detail)
        return status

    def places(self, statuses: dict[str, Status]) -> dict[str, dict[str, Any]]:
        """Where each QUEUED job stands in the QPU's queue: its place among the allocations
        waiting (a job in a session that has not started: its session's place), how many wait
        and hold the QPU, jobs and sessions, and the scheduler's expected start where it has
        one. One queue query per executor involved, none when nothing is queued."""
        allocs: dict[str, tuple[str, str]] = {}  # job id -> (executor, allocation id)
        for job_id, status in statuses.items():
            if status.name != "QUEUED":
                continue
            record = self.store.get(job_id).scheduler_record() or {}
            if record.get("executor") == "session":
                with contextlib.suppress(QmioError):
                    record = self.store.get_session(str(record.get("session"))
                                                    ).scheduler_record() or {}
            if record.get("executor") in ("slurm", "local") and record.get("job_id"):
                allocs[job_id] = (record["executor"], str(record["job_id"]))
        out: dict[str, dict[str, Any]] = {}
        for executor in {e for e, _ in allocs.values()}:
            try:
                queue = self.scheduler(executor).queue()
            except SchedulerError:
                continue  # the place is a nicety; the status stands without it
            waiting = [e for e in queue if not e.holding]
            summary = {"waiting": len(waiting), "holding": sum(e.holding for e in queue),
                       "sessions": sum(e.kind == "session" for e in queue)}
            where = {e.alloc_id: i for i, e in enumerate(waiting, 1)}
            for job_id, (ex, alloc) in allocs.items():
                if ex == executor and alloc in where:
                    entry = waiting[where[alloc] - 1]
                    out[job_id] = {"place": where[alloc], **summary,
                                   "expected_start": entry.expected_start}
        return out

    def usage(self, since: float) -> list[dict[str, Any]]:
        """Per allocation since ``since``: the seconds it held the QPU (the executor's own
        accounting: sacct under Slurm) and the seconds the QPU worked for it, from the job store
        (a job's result says when its step started and finished; a session's worker counts its
        busy seconds). An allocation of another store has no 'used' figure (None)."""
        rows = []
        for alloc in self.scheduler().history(since):
            used: float | None = None
            with contextlib.suppress(QmioError, OSError):
                if alloc.kind == "session":
                    used = float(self.store.get_session(alloc.alloc_id).worker_info()
                                 .get("busy_seconds") or 0.0)
                else:
                    data = self.store.get(alloc.alloc_id).result() or {}
                    began, ended = data.get("started"), data.get("finished")
                    used = float(ended - began) if began and ended else 0.0
            rows.append({"id": alloc.alloc_id, "kind": alloc.kind, "started": alloc.started,
                         "held_seconds": alloc.held_seconds, "used_seconds": used})
        return rows

    def status(self, job_id: str) -> Status:
        return self.statuses([job_id])[job_id]

    def wait(self, job_id: str, timeout: float | None = None,
             on_status: Callable[[Status], None] | None = None) -> Status:
        """Wait until the job is final.

        A job in a session is waited for on the session's channel, which says at once when it
        is final, with the scheduler asked at most once a second (to notice a session that
        died). Other jobs: their files are looked at often (a few stat calls, every 2 ms at
        first, backing off to 0.1 s after some seconds), so a short job's result is seen within
        a few ms of landing, a long one's within 0.1 s; the scheduler is asked once a second at
        most, backing off to every 10 s, for the states files cannot show (QUEUED, RUNNING, a
        job that died without a word)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ours = self._sessions.submitted(job_id) if self._sessions is not None else None
        if ours is not None:  # submitted by this process: no lookups in the store
            session, job = ours
        else:
            job = self.store.get(job_id)
            session = (job.scheduler_record() or {}).get("session")
        # A session's job is not looked up with the scheduler before its first second: the
        # channel says when it is final, and a session that died is noticed within a second.
        # (One with an outcome already is looked up at once: see the loop.)
        next_query = 0.0 if session is None else time.monotonic() + 1.0
        query_every, look_every, last_query = 1.0, 0.002, -1.0
        status = Status("QUEUED", "submitted")
        # A job this process submitted has its channel answer coming: no need to look first.
        look = ours is None
        while True:
            now = time.monotonic()
            data = job.result() if session is not None and look else None
            look = True
            if data is not None:  # the common end of a session's job: no lookups needed
                self._results[job_id] = data
                if len(self._results) > 64:
                    self._results.pop(next(iter(self._results)))
                if on_status is not None:
                    on_status(DONE)
                return DONE
            outcome = job.has_outcome()
            if now >= next_query or (outcome and now - last_query >= 0.1):
                status = self.status(job_id)
                # The 0.1 s gate only spaces out queries while an outcome is being finished
                # (result written, record not yet): a result that lands after a query that saw
                # none is looked at on the next pass, not 0.1 s later.
                last_query = now if outcome else -1.0
                if on_status is not None:
                    on_status(status)
                if status.final:
                    return status
                next_query = now + query_every
                if session is None:
                    query_every = min(query_every * 1.5, 10.0)
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeoutError(f"job {job_id} is still {status.name} after {timeout:g} s "
                                      f"({status.detail}); it keeps running")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            pause = max(0.0, next_query - time.monotonic())
            if session is not None:
                self.sessions.pause(session, job, job_id, pause if left is None
                                    else min(pause, left))
                continue
            time.sleep(min(look_every, pause, left if left is not None else look_every))
            look_every = min(look_every * 1.02, 0.1)  # a few stat calls: cheap to do often

    # -- outcome ----------------------------------------------------------------------------------

    def result(self, job_id: str) -> dict[str, Any]:
        """The complete result file; raises JobFailedError if the job ended without one."""
        if job_id in self._results:  # read by wait() just now; a complete result never changes
            return self._results[job_id]
        job = self.store.get(job_id)
        data = job.result()
        if data is not None and job.declared() is None:
            return data
        status = self.status(job_id)
        if status.name in ("ERROR", "CANCELLED"):
            raise self.failure(job_id, status)
        raise JobFailedError(f"job {job_id} has no result yet: it is {status.name} "
                             f"({status.detail})")

    def failure(self, job_id: str, status: Status) -> JobFailedError:
        """The error for a job that ended without a result: its class (and so the CLI's exit
        code) says what failed, from the kind its error file records."""
        kind = str((self.store.get(job_id).error() or {}).get("kind", ""))
        cls = FAILURE_KINDS.get(kind, JobFailedError) if status.name == "ERROR" else JobFailedError
        return cls(f"job {job_id} ended {status.name}: {status.detail}")

    def cancel(self, job_ids: Iterable[str]) -> dict[str, Status]:
        """Cancel jobs that are not final yet; returns each job's status before the cancel."""
        before = self.statuses(list(job_ids))
        by_executor: dict[str, list[str]] = {}
        for job_id, status in before.items():
            if status.final:
                continue
            job = self.store.get(job_id)
            record = job.scheduler_record() or {}
            if record.get("executor") != "session":  # a session's job: see SessionJobs.cancel
                job.mark_cancelled()
            by_executor.setdefault(record.get("executor", "local"), []).append(job_id)
        for executor, ids in by_executor.items():
            self.scheduler(executor).cancel(ids)
        return before

    def job_ids(self) -> list[str]:
        """Every job's id, oldest first."""
        return [job_id for job_id, _ in self.store.ids()]

    def submitted_at(self, job_id: str) -> float:
        """When the job was submitted (Unix time; 0 if its spec does not say)."""
        try:
            spec = self.store.get(job_id).spec()
        except QmioError:
            return 0.0
        stamp = spec.get("submitted")
        return float(stamp) if isinstance(stamp, (int, float)) else 0.0

    def spec(self, job_id: str) -> dict[str, Any]:
        return self.store.get(job_id).spec()
