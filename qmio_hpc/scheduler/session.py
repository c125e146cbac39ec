"""The states of jobs inside sessions, for ``JobManager.statuses``: the session adapter.

A job in a session has no allocation of its own: its state follows from its session's allocation
(one query for all the sessions involved, through their executors) and from its own files:

* the session's allocation is pending: PENDING, "waiting for session S to start";
* it runs, and the job waits its turn (its queue entry is there): PENDING, "queued in session S";
* it runs, and the worker has taken the job (its entry is gone): RUNNING (VALIDATING while its
  programs are checked);
* it has ended: the job gets its final state now, for good (``Sessions.settle``), and is reported
  as absent, so the job directory decides (``states.resolve``).

Jobs that have an outcome on disk (result, error, cancel mark) are absent too, for the same reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..errors import QmioError
from ..states import SchedulerState
from ..store import SessionDir, claim_entry

if TYPE_CHECKING:
    from ..sessions import Sessions


class SessionJobs:
    """Answers ``states`` and ``cancel`` for jobs whose ``scheduler.json`` says ``session``."""

    name = "session"

    def __init__(self, sessions: "Sessions") -> None:
        self.sessions = sessions

    def states(self, job_ids: Iterable[str]) -> dict[str, SchedulerState]:
        store = self.sessions.store
        jobs = {job_id: store.get(job_id) for job_id in job_ids}
        open_jobs = {job_id: job for job_id, job in jobs.items()
                     if job.result() is None and job.error() is None and not job.is_cancelled()}
        session_of: dict[str, str] = {}
        sessions: dict[str, SessionDir] = {}
        for job_id, job in open_jobs.items():
            session_id = str((job.scheduler_record() or {}).get("session", ""))
            try:
                sessions.setdefault(session_id, store.get_session(session_id))
            except QmioError:
                continue  # no such session: the job directory decides ("lost")
            session_of[job_id] = session_id
        allocs = self.sessions.allocation_states(sessions) if sessions else {}
        out: dict[str, SchedulerState] = {}
        settled: set[str] = set()
        for job_id, session_id in session_of.items():
            alloc, session = allocs[session_id], sessions[session_id]
            if self.sessions.is_dead(session, alloc):
                if session_id not in settled:
                    self.sessions.settle(session_id, session, alloc)
                    settled.add(session_id)
                continue
            if not session.queue_entry(job_id).exists():  # the worker has it
                out[job_id] = SchedulerState(job_id, "RUNNING")
            elif alloc is not None and alloc.state in ("PENDING", "CONFIGURING"):
                why = f": {alloc.reason}" if alloc.reason else ""
                out[job_id] = SchedulerState(job_id, "PENDING",
                                             f"waiting for session {session_id} to start{why}")
            else:
                out[job_id] = SchedulerState(job_id, "PENDING", f"queued in session {session_id}")
        return out

    def cancel(self, job_ids: Iterable[str]) -> None:
        """A job that has not started is CANCELLED at once (its queue entry, claimed here, is
        gone, so the worker skips it); a running one is asked to stop at its next execution,
        and its worker writes its end, so it reads RUNNING until then."""
        store = self.sessions.store
        for job_id in job_ids:
            job = store.get(job_id)
            session_id = str((job.scheduler_record() or {}).get("session", ""))
            if claim_entry(store.get_session(session_id).queue_entry(job_id)):
                job.mark_cancelled()
            elif not job.has_outcome():
                job.request_cancel()
