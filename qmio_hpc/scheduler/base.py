"""The one interface every executor fills in: submit, the states of many jobs in one call, cancel.

Adapters report Slurm's state names (``states.SLURM_STATES``) so that one table turns them into
``JobStatus`` for every executor. An adapter never decides DONE: ``states.resolve`` does, from the
job directory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable

from ..config import Settings
from ..states import SchedulerState
from ..store import JobDir, JobStore


class Scheduler(ABC):
    """An executor of batch steps. ``name`` is what ``qmio config`` and ``scheduler.json`` show."""

    name: str = ""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store

    @abstractmethod
    def submit(self, job: JobDir) -> str:
        """Start the batch step for ``job``; return the id users will see. Links the id."""

    @abstractmethod
    def states(self, job_ids: Iterable[str]) -> dict[str, SchedulerState]:
        """The states of all ``job_ids`` in one query. Ids the scheduler no longer knows are absent."""

    @abstractmethod
    def cancel(self, job_ids: Iterable[str]) -> None:
        """Ask the scheduler to stop these jobs. The caller has already marked them cancelled."""

    def describe(self) -> str:
        """One line for ``qmio config`` / ``qmio submit``."""
        return self.name
