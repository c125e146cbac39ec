"""Sessions without Qiskit: start one, submit into it, watch it, close or cancel it.

A session is one allocation that holds the QPU (a Slurm job on the QPU partition, or a local
runner holding the local QPU lock) in which a worker (``worker``) serves many jobs. This module is
the client side, used by ``qmio session ...``, ``qmio submit --session`` and the Qiskit-facing
``Session``. The files of a session are described in ``store.SessionDir``.

Rules that keep a session honest:

* a job is written to the job store (spec, id, queue entry) before ``submit`` returns, under the
  session's lock, and the worker takes the same lock before it stops: no job can be queued into a
  session whose worker has decided to stop;
* a session whose allocation has ended is *dead*: whoever looks first gives each of its unfinished
  jobs its final state (``settle``), claimed so that it never changes again.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .connection import Connection
from .durable import syncer
from .durations import is_zero, parse_duration, slurm_time
from .errors import ConfigError, SessionClosedError
from .fifo import FifoQueue
from .states import TERMINAL, SchedulerState, normalise_state
from .store import QUEUE_ENTRY, JobDir, SessionDir, claim_entry, placeholder

if TYPE_CHECKING:
    from .channel import ChannelClient
    from .jobs import JobManager
    from .protocol import ExecutionOptions

#: A batch releases the QPU once its queue has been empty this long (or at once when closed).
BATCH_LINGER = 3.0
#: After an unanswered channel request, use the files alone for this long before trying again.
CHANNEL_RETRY = 5.0
#: A submitter reads the worker's record (deadline, pace) and counts the queue at most this often.
INFO_MAX_AGE = 0.5
#: Jobs whose session a process remembers having submitted them into (``Sessions.submitted``).
MAX_REMEMBERED = 10_000

STATUS_PENDING = "Pending"
STATUS_ACCEPTING = "In progress, accepting new jobs"
STATUS_NOT_ACCEPTING = "In progress, not accepting new jobs"
STATUS_CLOSED = "Closed"

def ended_before_it_ran(reason: str, job_id: str) -> str:
    return (f"the session ended before it ran ({reason}); 'qmio resubmit {job_id}' sends it "
            f"again")


@contextlib.contextmanager
def session_lock(session: SessionDir, fd: int | None = None) -> Iterator[int]:
    """The session's lock (on its counter file): submitters and the stopping worker take it.
    ``fd``: the counter file, kept open by a submitter (one open and close fewer per job)."""
    own = fd is None
    if fd is None:
        fd = os.open(session.file("counter"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        if own:
            os.close(fd)  # which also unlocks
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _next_number(fd: int) -> int:
    """The next sequence number of the session (the caller holds the lock on ``fd``)."""
    text = os.pread(fd, 64, 0).decode().strip()
    number = int(text) + 1 if text.isdigit() else 1
    os.pwrite(fd, f"{number:020d}".encode(), 0)  # fixed width: no truncation needed
    return number




def _closed_reason(session: SessionDir) -> str:
    """Why a closed session takes no new jobs, in a few words."""
    if session.is_cancelled():
        return "cancelled"
    return str(session.closed_info().get("reason") or "closed")


def _iso(stamp: float | None) -> str | None:
    if not stamp:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat()


@dataclass(frozen=True)
class SessionView:
    """What one look at a session shows: status, details and usage, all from one query."""

    session_id: str
    status: str
    accepting: bool
    reason: str
    details: dict[str, Any]
    usage: dict[str, float]


#: Spare job directories this process made and has not used, by session directory (ids repeat
#: across stores); removed when it exits.
_unused_spares: dict[Path, Path] = {}


@atexit.register
def _remove_unused_spares() -> None:
    for spare in _unused_spares.values():
        shutil.rmtree(spare, ignore_errors=True)


class Sessions:
    """The sessions of one job store, under one manager's settings and executors."""

    def __init__(self, manager: "JobManager") -> None:
        self.manager = manager
        self.store = manager.store
        self._channels: dict[str, ChannelClient] = {}
        self._channel_down: dict[str, float] = {}
        self._session_dirs: dict[str, SessionDir] = {}
        self._worker_info: dict[str, tuple[float, dict[str, Any]]] = {}
        self._queued: dict[str, int] = {}  # per session: jobs queued by us since info was read
        self._submitted: dict[str, tuple[str, JobDir]] = {}  # our jobs: their session and dir
        self._counter_fds: dict[str, int] = {}  # open counter files (the lock), by session

    # -- starting ---------------------------------------------------------------------------------

    def start(self, *, mode: str = "session", max_time: Any = None, idle_timeout: Any = None,
              backend: str = "qpu") -> str:
        """Start an allocation with a worker in it; returns the session id at once (the
        allocation may still be pending)."""
        from .channel import create_keys, require_curve  # noqa: PLC0415 - ZMQ when needed
        require_curve()
        settings = self.manager.settings
        if mode not in ("session", "batch"):
            raise ConfigError(f"unknown session mode {mode!r}: 'session' or 'batch'")
        max_seconds = parse_duration(
            max_time if max_time is not None else settings.get("session.max_time"), "max_time")
        idle = idle_timeout if idle_timeout is not None else settings.get("session.idle_timeout")
        idle = 0.0 if is_zero(idle) else parse_duration(idle, "idle_timeout") or 0.0
        spec = {"mode": mode, "backend": backend, "max_time": max_seconds, "idle_timeout": idle,
                "poll_interval": settings.get("session.poll_interval"),
                "bind": settings.get("session.bind"), "owner": os.getuid(),
                "connection": self.manager.connection.to_dict(), "created": time.time()}
        session = self.store.create_session(spec)
        create_keys(session.file("keys"))
        session.file("queue").mkdir(mode=0o700)
        session.file("jobs").mkdir(mode=0o700)
        session.file("counter").touch(mode=0o600)
        executor = self.manager.executor
        scheduler = self.manager.scheduler(executor)
        if max_seconds is not None and executor == "slurm":
            scheduler = self.manager.scheduler_with(executor, **{
                "slurm.time": slurm_time(max_seconds)})
        try:
            session_id = scheduler.submit_command(["-m", "qmio_hpc.worker",
                                                   str(session.path.absolute())],
                                                  session.path, kind="session")
        except Exception as exc:
            session.mark_closed(f"the allocation could not be started: {exc}")
            raise
        # the record first: once the id is linked, others may look the session up
        session.write_scheduler_record(executor, session_id, **scheduler.record_extra())
        self.store.link_session(session_id, session)
        return session_id

    # -- submitting -------------------------------------------------------------------------------

    def submit(self, session_id: str, programs: list[dict[str, Any]],
               options: "ExecutionOptions", meta: dict[str, Any] | None = None) -> str:
        """Queue one job into the session; its spec is in the store before this returns.

        Everything happens under the session's lock: the sequence number (which is the order the
        worker serves jobs in), the job directory, its id and its queue entry. Only files are
        read to decide that the session takes the job, so this costs no scheduler query."""
        session = self._session_dirs.get(session_id) or self.store.get_session(session_id)
        self._session_dirs[session_id] = session  # a session's directory never moves
        spec = self.manager.build_spec(programs, options, meta)
        spec["session"] = session_id
        self._check_accepting(session_id, session, spec)
        with session_lock(session, self._counter_fd(session_id, session)) as fd:
            if session.is_closed() or session.is_cancelled():
                raise self._closed_error(session_id, session)
            number = _next_number(fd)
            job_id = f"{session_id}.{number}"
            job = session.create_job(number, {**spec, "job_id": job_id},
                                     _unused_spares.pop(session.path, None))
            entry = FifoQueue(session.file("queue")).add(
                session.queue_entry(job_id).name, made=placeholder(job.file(QUEUE_ENTRY)))
        self._queued[session_id] = self._queued.get(session_id, 0) + 1
        self._submitted[job_id] = (session_id, job)
        if len(self._submitted) > MAX_REMEMBERED:
            self._submitted.pop(next(iter(self._submitted)))
        channel = self.channel(session_id, session)
        if channel is not None and not channel.queued(job_id, entry.name):
            self.channel_failed(session_id)
        # Every file is complete and in place (atomic renames) before the worker hears of the
        # job; making them durable overlaps with the worker running it.
        syncer.add(job)
        return job_id

    def _counter_fd(self, session_id: str, session: SessionDir) -> int:
        """The session's counter file, opened once (a few sessions per process at most)."""
        fd = self._counter_fds.get(session_id)
        if fd is None:
            if len(self._counter_fds) >= 16:
                os.close(self._counter_fds.pop(next(iter(self._counter_fds))))
            fd = os.open(session.file("counter"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._counter_fds[session_id] = fd
        return fd

    def submitted(self, job_id: str) -> tuple[str, JobDir] | None:
        """The session and directory of a job this process submitted (no lookup in the store)."""
        return self._submitted.get(job_id)

    def _closed_error(self, session_id: str, session: SessionDir) -> SessionClosedError:
        return SessionClosedError(f"The session is closed: session {session_id} takes no new "
                                  f"jobs ({_closed_reason(session)})")

    def _check_accepting(self, session_id: str, session: SessionDir, spec: dict[str, Any]
                         ) -> None:
        """Refuse a job the session cannot take: its worker has ended, or the job would not fit
        in the time left. (The closed and cancelled marks are checked under the lock.) The
        worker's record is read at most every ``INFO_MAX_AGE`` seconds."""
        seen, info = self._worker_info.get(session_id, (0.0, {}))
        if time.monotonic() - seen > INFO_MAX_AGE:
            info = session.worker_info()
            info["queued"] = len(os.listdir(session.file("queue")))
            self._worker_info[session_id] = (time.monotonic(), info)
            self._queued[session_id] = 0
        if info.get("phase") == "ended":
            raise SessionClosedError(f"The session is closed: session {session_id} has ended "
                                     f"({info.get('end_reason') or 'its worker stopped'})")
        deadline = info.get("deadline")
        if deadline:
            left = deadline - time.time()
            queued = info["queued"] + self._queued.get(session_id, 0)  # as of INFO_MAX_AGE ago
            need = (queued + 1) * self._job_estimate(info, spec)
            if left < need:
                raise SessionClosedError(
                    f"session {session_id} has {max(left, 0):.0f} s left, less than the "
                    f"~{need:.0f} s its queued jobs and this one need; start a new session")

    def _job_estimate(self, info: dict[str, Any], spec: dict[str, Any]) -> float:
        """Seconds one job is expected to take: what jobs took so far (``info``: the worker's
        record), at least its shots."""
        done = info.get("jobs_done") or 0
        average = (info.get("busy_seconds") or 0.0) / done if done else 0.0
        options = spec["options"]
        period = (options.get("repetition_period")
                  or self.manager.connection.assumed_repetition_period)
        return max(average, options["shots"] * period * len(spec["programs"]))

    # -- the channel ------------------------------------------------------------------------------

    def channel(self, session_id: str, session: SessionDir | None = None) -> ChannelClient | None:
        """A channel client to the session's worker, once it is serving and while it answers."""
        if session_id in self._channels:
            return self._channels[session_id]
        if time.monotonic() < self._channel_down.get(session_id, 0.0):
            return None
        session = session or self.store.get_session(session_id)
        info = session.worker_info()
        if info.get("phase") != "serving" or not info.get("address"):
            return None
        try:
            from .channel import ChannelClient  # noqa: PLC0415 - ZMQ when needed
            client = ChannelClient(info["address"], session.file("keys"))
        except Exception:
            self._channel_down[session_id] = time.monotonic() + CHANNEL_RETRY
            return None
        self._channels[session_id] = client
        return client

    def pause(self, session_id: str, job: JobDir, job_id: str, seconds: float) -> None:
        """Wait up to ``seconds`` for ``job`` to have an outcome: on the channel when the worker
        answers there, else by looking at the job's files every 50 ms.

        First, while the worker runs the job, make the directory of the next job this process
        submits into the session (``SessionDir.make_spare``): a loop submits again. (Here, not
        in a thread: a thread that holds the GIL when the answer comes delays it by up to the
        interpreter's switch interval, 5 ms; measured, it made every job slower.)"""
        session = self._session_dirs.get(session_id)
        if session is not None and session.path not in _unused_spares:
            spare = session.make_spare()
            if spare is not None:
                _unused_spares[session.path] = spare
        channel = self.channel(session_id)
        if channel is not None and seconds > 0:
            began = time.monotonic()
            if channel.wait([job_id], seconds) is None:
                self.channel_failed(session_id)
                seconds -= time.monotonic() - began
            else:
                return
        from .channel import poll_until  # noqa: PLC0415
        poll_until(job.has_outcome, max(0.0, seconds), 0.05)

    def channel_failed(self, session_id: str) -> None:
        """The channel did not answer: use the files for a while."""
        client = self._channels.pop(session_id, None)
        if client is not None:
            client.close()
        self._channel_down[session_id] = time.monotonic() + CHANNEL_RETRY

    # -- looking ----------------------------------------------------------------------------------

    def allocation_states(self, sessions: dict[str, SessionDir]
                          ) -> dict[str, SchedulerState | None]:
        """Each session's allocation state, with one query per executor."""
        by_executor: dict[str, list[str]] = {}
        for session_id, session in sessions.items():
            record = session.scheduler_record() or {}
            by_executor.setdefault(record.get("executor", "local"), []).append(session_id)
        out: dict[str, SchedulerState | None] = {}
        for executor, ids in by_executor.items():
            found = self.manager.scheduler(executor).states(ids)
            out.update({session_id: found.get(session_id) for session_id in ids})
        return out

    @staticmethod
    def is_dead(session: SessionDir, alloc: SchedulerState | None) -> bool:
        """The allocation has ended (or the scheduler forgot it): no worker will run again."""
        if alloc is None:
            return True
        return normalise_state(alloc.state) in TERMINAL

    @staticmethod
    def end_reason(session: SessionDir, alloc: SchedulerState | None) -> str:
        info = session.worker_info()
        if info.get("end_reason"):
            return str(info["end_reason"])
        if alloc is None:
            return "the scheduler no longer knows its allocation"
        state = normalise_state(alloc.state)
        words = {"CANCELLED": "its allocation was cancelled",
                 "TIMEOUT": "its allocation reached the time limit",
                 "NODE_FAIL": "the node failed", "COMPLETED": "its worker ended",
                 "FAILED": "its worker failed"}.get(state, f"its allocation ended {state}")
        return f"{words} ({alloc.reason})" if alloc.reason else words

    def view(self, session_id: str, session: SessionDir | None = None,
             alloc: SchedulerState | None | bool = False) -> SessionView:
        session = session or self.store.get_session(session_id)
        if alloc is False:
            alloc = self.allocation_states({session_id: session})[session_id]
        assert alloc is not True
        spec = session.spec()
        info = session.worker_info()
        now = time.time()
        dead = self.is_dead(session, alloc) or info.get("phase") == "ended"
        serving = info.get("phase") == "serving" and not dead
        started = info.get("started_at")
        ended = info.get("ended_at") or ((alloc.ended_at if alloc else None) if dead else None)
        if dead and started and not ended:
            ended = now
        closed = session.is_closed() or session.is_cancelled()
        deadline = info.get("deadline")
        seconds_left = max(0.0, deadline - now) if deadline and serving else None
        if dead:
            status, reason = STATUS_CLOSED, self.end_reason(session, alloc)
        elif closed:
            status = STATUS_NOT_ACCEPTING if serving else STATUS_CLOSED
            reason = _closed_reason(session)
        elif serving:
            status, reason = STATUS_ACCEPTING, "serving jobs"
        else:
            status = STATUS_PENDING
            reason = ("waiting for its allocation" +
                      (f" ({alloc.reason})" if alloc is not None and alloc.reason else ""))
        if seconds_left is not None and status == STATUS_ACCEPTING and seconds_left <= 0:
            status, reason = STATUS_NOT_ACCEPTING, "max_time is reached"
        held = ((ended or now) - started) if started else 0.0
        busy = float(info.get("busy_seconds") or 0.0)
        if serving and info.get("last_job_started") and (
                info.get("last_job_completed") or 0) < info["last_job_started"]:
            busy += now - info["last_job_started"]  # the job running now
        busy = min(busy, held)
        usage = {"held_seconds": held, "busy_seconds": busy, "idle_seconds": held - busy}
        record = session.scheduler_record() or {}
        state_word = {STATUS_PENDING: "open", STATUS_ACCEPTING: "active",
                      STATUS_NOT_ACCEPTING: "inactive", STATUS_CLOSED: "closed"}[status]
        details = {
            "id": session_id,
            "backend_name": spec.get("backend", "qpu"),
            "interactive_timeout": spec.get("idle_timeout"),
            "max_time": spec.get("max_time"),
            "active_timeout": spec.get("max_time"),
            "state": state_word,
            "accepting_jobs": status in (STATUS_PENDING, STATUS_ACCEPTING),
            "last_job_started": _iso(info.get("last_job_started")),
            "last_job_completed": _iso(info.get("last_job_completed")),
            "started_at": _iso(spec.get("created")),
            "closed_at": _iso(ended) if dead else None,
            "activated_at": _iso(started),
            "mode": "batch" if spec.get("mode") == "batch" else "dedicated",
            "usage_time": busy,
            "status": status,
            "reason": reason,
            "executor": record.get("executor"),
            "slurm_job_id": session_id if record.get("executor") == "slurm" else None,
            "allocation_state": alloc.state if alloc is not None else None,
            "seconds_left": seconds_left,
            "endpoint": Connection.from_dict(spec.get("connection", {})).address,
            "channel": info.get("address"),
            "jobs": len(session.job_ids()),
            "jobs_done": info.get("jobs_done") or 0,
        }
        return SessionView(session_id, status, details["accepting_jobs"], reason, details, usage)

    def views(self, session_ids: list[str] | None = None) -> list[SessionView]:
        pairs = (self.store.session_ids() if session_ids is None else
                 [(sid, self.store.get_session(sid)) for sid in session_ids])
        sessions = dict(pairs)
        allocs = self.allocation_states(sessions)
        return [self.view(sid, session, allocs[sid]) for sid, session in sessions.items()]

    # -- ending -----------------------------------------------------------------------------------

    def close(self, session_ids: list[str]) -> None:
        """No new jobs; queued ones finish; then the worker releases the allocation."""
        for session_id in session_ids:
            session = self.store.get_session(session_id)
            session.mark_closed("closed by its owner")
            self._wake(session_id, session, "close")

    def cancel(self, session_ids: list[str]) -> None:
        """Queued jobs end CANCELLED, and the allocation is released now."""
        by_executor: dict[str, list[str]] = {}
        for session_id in session_ids:
            session = self.store.get_session(session_id)
            session.mark_cancelled("the session was cancelled")
            session.mark_closed("cancelled by its owner")
            for job_id in session.job_ids():  # those that have not started (the worker has
                if claim_entry(session.queue_entry(job_id)):  # the running one, if any)
                    self.store.get(job_id).mark_cancelled("the session was cancelled before it ran")
            self._wake(session_id, session, "cancel")
            record = session.scheduler_record() or {}
            by_executor.setdefault(record.get("executor", "local"), []).append(session_id)
        for executor, ids in by_executor.items():
            self.manager.scheduler(executor).cancel(ids)

    def _wake(self, session_id: str, session: SessionDir, op: str) -> None:
        channel = self.channel(session_id, session)
        if channel is not None:
            channel.send({"op": op})

    def settle(self, session_id: str, session: SessionDir, alloc: SchedulerState | None
               ) -> None:
        """The session is dead: every job of it without an outcome gets one, for good."""
        reason = self.end_reason(session, alloc)
        for job_id in session.job_ids():
            job = self.store.get(job_id)
            if job.has_outcome():
                continue
            if claim_entry(session.queue_entry(job_id)):  # it never left the queue
                job.mark_cancelled(ended_before_it_ran(reason, job_id))
            elif not job.has_outcome():
                # Its entry was taken, by the worker (which is gone) or by a cancel that died
                # before writing: it may have been sent to the QPU, so it is not offered again.
                job.write_error("SessionEnded", f"the session ended while this job ran "
                                                f"({reason}); the program may have run on the QPU")

