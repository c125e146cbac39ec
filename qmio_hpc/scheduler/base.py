"""The one interface every executor fills in: run a command in an allocation that holds the QPU,
the states of many allocations in one call, cancel.

An *allocation* is capacity: a Slurm job (or, on the local executor, a detached runner holding
the local QPU lock) that holds the QPU while a command runs in it. The command is the batch step
of one job (``submit``) or a session's worker, which serves many jobs (``submit_command``).

Adapters report Slurm's state names (``states.SLURM_STATES``) so that one table turns them into
``JobStatus`` for every executor. An adapter never decides DONE: ``states.resolve`` does, from the
job directory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from ..states import Allocation, QueueEntry, SchedulerState
from ..store import JobDir, JobStore

if TYPE_CHECKING:
    from ..config import Settings


def step_command(job: JobDir) -> list[str]:
    """The Python arguments of one job's batch step."""
    return ["-m", "qmio_hpc.step", str(job.path.absolute())]


class Scheduler(ABC):
    """An executor. ``name`` is what ``qmio config`` and ``scheduler.json`` show."""

    name: str = ""
    #: Files ``submit`` writes into a job's directory (besides ``scheduler.json``) that a job
    #: directory made ahead of time holds placeholders for (``JobStore.prepare_spare``).
    job_files: tuple[str, ...] = ()

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store

    def submit(self, job: JobDir, *, durable: bool = True) -> str:
        """Run ``job``'s batch step in an allocation of its own; return the id users will see.
        ``durable=False`` leaves the record's fsync to the caller."""
        job_id = self.submit_command(step_command(job), job.path, kind="job")
        # The record first: an id that can be looked up always says which executor has it
        # (a lookup in between would otherwise ask the wrong one and call the job lost).
        job.write_scheduler_record(self.name, job_id, durable=durable, **self.record_extra())
        self.store.link(job_id, job)
        return job_id

    @abstractmethod
    def submit_command(self, args: Sequence[str], directory: Path, *, kind: str = "job") -> str:
        """Start an allocation that holds the QPU and run ``python ARG...`` in it.

        ``args`` are the interpreter's arguments (``-m module ...``): the executor runs them with
        the Python that belongs where they run (``slurm.python`` on a compute node). The command
        runs in ``directory``, which also receives the allocation's own files (logs, records).
        ``kind`` is ``job`` or ``session``; executors may name the allocation after it.
        Returns the allocation's id."""

    @abstractmethod
    def states(self, ids: Iterable[str]) -> dict[str, SchedulerState]:
        """The states of all allocations ``ids`` in one query. Ids no longer known are absent."""

    @abstractmethod
    def cancel(self, ids: Iterable[str]) -> None:
        """Ask the executor to end these allocations. The caller has already marked them."""

    def prepare_next(self) -> None:
        """Get ready for another submission from this process, which is submitting in a loop:
        called on a background thread once a submission has returned. Nothing by default."""

    def queue(self) -> list[QueueEntry]:
        """The QPU's queue: the allocations holding it, then those waiting, in the order they
        are expected to get it. Empty where the executor cannot tell."""
        return []

    def history(self, since: float) -> list[Allocation]:
        """This user's allocations on the QPU that started since ``since`` (Unix time)."""
        return []

    def record_extra(self) -> dict[str, str]:
        """Extra fields for a job's ``scheduler.json``."""
        return {}

    def describe(self) -> str:
        """One line for ``qmio config`` / ``qmio submit``."""
        return self.name
