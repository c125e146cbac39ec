"""DESIGN section 4 as data: every Slurm state -> the Qiskit ``JobStatus`` name it means.

Statuses are kept as names (``"DONE"``) so that ``qmio status`` need not import Qiskit; ``job``
turns them into ``JobStatus`` members. The local executor reports Slurm's state names too, so one
table serves every executor. The records are NamedTuples, immutable like frozen dataclasses but
without their import and class-building cost, which every ``qmio`` command would pay.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .store import JobDir

FINAL_STATUSES = frozenset({"CANCELLED", "DONE", "ERROR"})
#: Every status a job can show, in the order a job moves through them (Qiskit's JobStatus names).
ALL_STATUSES = ("QUEUED", "INITIALIZING", "VALIDATING", "RUNNING", "DONE", "CANCELLED", "ERROR")
#: Scheduler states after which Slurm will not change its mind: no need to ask again.
TERMINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL",
                      "OUT_OF_MEMORY", "DEADLINE", "REVOKED", "SPECIAL_EXIT", "PREEMPTED"})

#: Slurm state -> (JobStatus name, words for a user). COMPLETED is decided by the result file,
#: PREEMPTED by whether the job will be requeued; both are handled in ``resolve``.
SLURM_STATES: dict[str, tuple[str, str]] = {
    "PENDING": ("QUEUED", "waiting in the queue"),
    "CONFIGURING": ("INITIALIZING", "nodes are being configured"),
    "RUNNING": ("RUNNING", "running"),
    "COMPLETING": ("RUNNING", "finishing"),
    "SUSPENDED": ("RUNNING", "suspended by the scheduler"),
    "STOPPED": ("RUNNING", "stopped by a signal; it keeps its allocation"),
    "RESIZING": ("RUNNING", "being resized"),
    "SIGNALING": ("RUNNING", "being signalled"),
    "STAGE_OUT": ("RUNNING", "staging out"),
    "REQUEUED": ("QUEUED", "requeued; it will run again"),
    "REQUEUE_HOLD": ("QUEUED", "requeued and held"),
    "REQUEUE_FED": ("QUEUED", "requeued by the federation"),
    "RESV_DEL_HOLD": ("QUEUED", "held because its reservation was deleted"),
    "COMPLETED": ("DONE", "completed"),
    "CANCELLED": ("CANCELLED", "cancelled"),
    "FAILED": ("ERROR", "the batch step exited with an error"),
    "TIMEOUT": ("ERROR", "the time limit was reached"),
    "NODE_FAIL": ("ERROR", "the node failed"),
    "BOOT_FAIL": ("ERROR", "the node failed to boot"),
    "OUT_OF_MEMORY": ("ERROR", "the job ran out of memory"),
    "DEADLINE": ("ERROR", "the job's deadline passed"),
    "REVOKED": ("ERROR", "revoked by the federation"),
    "SPECIAL_EXIT": ("ERROR", "ended with a special exit"),
    "PREEMPTED": ("ERROR", "preempted and not requeued"),
}

#: Seconds a COMPLETED job may go without a visible result before it counts as ERROR:
#: the shared filesystem may show the result file a little after Slurm reports completion.
RESULT_GRACE_SECONDS = 10.0


class SchedulerState(NamedTuple):
    """What a scheduler says of one job. ``state`` is a Slurm state name."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""
    ended_at: float | None = None
    will_requeue: bool = False


class QueueEntry(NamedTuple):
    """One allocation in the QPU's queue, as ``qmio queue`` and ``qmio status`` show it: whose it
    is (another user's shows as a count only), whether it holds the QPU, and when the scheduler
    expects it to start."""

    alloc_id: str
    mine: bool
    holding: bool
    kind: str = "job"  # or "session"
    expected_start: float | None = None


class Allocation(NamedTuple):
    """One allocation that held (or holds) the QPU, for ``qmio usage``: when it started and
    for how many seconds it has held the QPU so far."""

    alloc_id: str
    kind: str  # "job" or "session"
    started: float
    held_seconds: float


class Status(NamedTuple):
    """The resolved status of a job: a JobStatus name and words that explain it."""

    name: str
    detail: str
    scheduler_state: str = ""

    @property
    def final(self) -> bool:
        return self.name in FINAL_STATUSES


def normalise_state(raw: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``cancelled+`` -> ``CANCELLED``."""
    return raw.strip().split(" ")[0].rstrip("+").upper()


def _error_detail(job: JobDir, fallback: str) -> str:
    error = job.error()
    return str(error["message"]) if error and error.get("message") else fallback


def resolve(sched: SchedulerState | None, job: JobDir, now: float | None = None) -> Status:
    """Combine the scheduler's word with the job directory (DESIGN section 4)."""
    written = _written_end(job, sched.state if sched else "")
    if written is not None:
        return written
    if sched is None:
        return _from_directory(job)
    state = normalise_state(sched.state)
    if state not in SLURM_STATES:
        return Status("ERROR", f"unknown scheduler state {state!r}; qmio-hpc does not map it", state)
    name, words = SLURM_STATES[state]
    if state == "PREEMPTED" and sched.will_requeue:
        return Status("QUEUED", "preempted; it will be requeued", state)
    if name == "QUEUED" and sched.reason:
        words = f"{words} ({sched.reason})"
    if name == "RUNNING":
        progress = job.state() or {}
        # Progress only moves forward: INITIALIZING until the step (or worker) says where it is,
        # VALIDATING while it checks programs, then RUNNING.
        if not progress.get("phase") and state == "RUNNING":
            return Status("INITIALIZING", "started; the batch step is starting up", state)
        if progress.get("phase") == "validating":
            return Status("VALIDATING", "checking the program before the QPU sees it", state)
        if progress.get("message"):
            words = f"{words}: {progress['message']}"
    if state == "COMPLETED":
        ended = sched.ended_at or (now or time.time())
        if (now or time.time()) - ended < RESULT_GRACE_SECONDS:
            return Status("RUNNING", "completed; waiting for the result file to appear", state)
        return Status("ERROR", _error_detail(job, "the job completed but wrote no result"), state)
    if name == "ERROR":
        reason = f"{words} (exit code {sched.exit_code})" if sched.exit_code else words
        step_error = job.error()
        if step_error and step_error.get("message"):
            reason = f"{reason}: {step_error['message']}"
        return Status("ERROR", reason, state)
    if name == "CANCELLED":
        return Status("CANCELLED", sched.reason or words, state)
    return Status(name, words, state)


def _written_end(job: JobDir, state: str = "") -> Status | None:
    """The end the job directory settles for good, whatever the scheduler says: one a status
    lookup wrote down (``JobManager.statuses``), else a complete result."""
    declared = job.declared()
    if declared is not None:
        return Status(declared["status"], declared["detail"], state)
    if job.result() is not None:
        return Status("DONE", "completed", state)
    return None


def without_scheduler(job: JobDir, why: str) -> Status:
    """The scheduler does not answer (slurmctld down): what the job directory alone can say,
    and that it is only that. Only a complete result or an end written down before is final;
    anything else may still change when the scheduler answers again, so it is never shown as
    an end now (a final status never changes)."""
    written = _written_end(job)
    if written is not None:
        return written
    progress = job.state() or {}
    name = "RUNNING" if progress.get("phase") or job.error() is not None else "QUEUED"
    words = str(progress.get("message") or ("started" if name == "RUNNING" else "submitted"))
    return Status(name, f"{words} (from the job directory alone: the scheduler does not "
                        f"answer: {why})")


def _from_directory(job: JobDir) -> Status:
    """The scheduler no longer knows the job: the directory is the last word. Never assume DONE."""
    if job.is_cancelled():  # before the error: a cancelled step records why it stopped, too
        return Status("CANCELLED", job.cancel_reason())
    error = job.error()
    if error:
        return Status("ERROR", str(error.get("message", "failed")))
    return Status("ERROR", "lost: the scheduler no longer knows this job and it left no result")
