"""Slurm executors: what both adapters share, and the choice between them.

A ``SlurmScheduler`` renders the batch script, keeps one short-lived cache of job states for
every job this process has asked about, and refreshes it with one query for all of them at most
once per ``min_interval`` (backing off when Slurm does not answer), so a thousand waiting jobs
cost one squeue call a second, not a thousand. The adapters fill in three hooks:
``_submit_script``, ``_query`` and ``_cancel`` (the CLI in ``slurm_cli``, pyslurm in
``slurm_pyslurm``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from abc import abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

from ..config import Settings
from ..errors import SchedulerError
from ..states import TERMINAL, Allocation, QueueEntry, SchedulerState, normalise_state
from ..store import JobDir, JobStore, write_bytes_atomic
from .base import Scheduler
from .script import render_batch_script


def _user() -> str:
    """The user's name, as squeue and sacct know it (``getpass`` imported only here)."""
    import getpass  # noqa: PLC0415

    return getpass.getuser()


def slurm_installed() -> bool:
    """sbatch and scontrol are on the PATH: this machine submits to a Slurm cluster."""
    import shutil  # noqa: PLC0415 - with zlib, bz2, lzma: ~2 ms every submission need not pay

    return shutil.which("sbatch") is not None and shutil.which("scontrol") is not None


def slurm_available() -> bool:
    """sbatch is installed and slurmctld answers."""
    if not slurm_installed():
        return False
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class SlurmScheduler(Scheduler):
    """Submit batch scripts; answer states from a shared, batched, backed-off cache."""

    name = "slurm"
    job_files = ("job.sbatch",)
    adapter = ""
    min_interval = 1.0
    max_interval = 30.0

    def __init__(self, settings: Settings, store: JobStore) -> None:
        super().__init__(settings, store)
        self._cache: dict[str, SchedulerState] = {}
        self._watched: set[str] = set()
        self._last_query = 0.0
        self._interval = self.min_interval
        self.queries = 0  # how many times Slurm was asked, for tests and benchmarks

    # -- hooks ------------------------------------------------------------------------------------

    @abstractmethod
    def _submit_script(self, script: str, job: JobDir) -> str:
        """Submit ``script``; return the Slurm job id."""

    @abstractmethod
    def _query(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        """States of ``job_ids`` in as few calls as the adapter can (ids Slurm forgot are absent)."""

    @abstractmethod
    def _cancel(self, job_ids: list[str]) -> None:
        """Cancel ``job_ids`` in one call."""

    # -- the interface ----------------------------------------------------------------------------

    def render(self, job: JobDir, args: Sequence[str] | None = None, name: str = "qmio") -> str:
        return render_batch_script(self.settings, job, python=sys.executable, args=args,
                                   name=name)

    def submit_command(self, args: Sequence[str], directory: Path, *, kind: str = "job") -> str:
        # job.sbatch is written before the hook runs: the pyslurm adapter submits that file.
        where = JobDir(directory)
        script = self.render(where, args, name="qmio" if kind == "job" else f"qmio-{kind}")
        # The user's alone (0600), whole or not there, into its placeholder if the directory
        # was made ahead of time (JobStore.prepare_spare); made durable with the spec.
        write_bytes_atomic(where.file("job.sbatch"), script.encode(), durable=False)
        slurm_id = self._submit_script(script, where)
        self._watched.add(slurm_id)
        return slurm_id

    def record_extra(self) -> dict[str, str]:
        return {"adapter": self.adapter}

    def states(self, job_ids: Iterable[str]) -> dict[str, SchedulerState]:
        wanted = list(job_ids)
        self._watched.update(wanted)
        now = time.monotonic()
        stale = any(job_id not in self._cache for job_id in wanted)
        if stale or now - self._last_query >= self._interval:
            self._refresh(now, wanted)
        return {job_id: self._cache[job_id] for job_id in wanted if job_id in self._cache}

    def _refresh(self, now: float, wanted: list[str]) -> None:
        ask = sorted(job_id for job_id in self._watched
                     if job_id not in self._cache or
                     normalise_state(self._cache[job_id].state) not in TERMINAL)
        self._last_query = now
        if not ask:
            return
        try:
            found = self._query(ask)
            self.queries += 1
        except SchedulerError:
            self._interval = min(self._interval * 2, self.max_interval)
            if all(job_id in self._cache for job_id in wanted):
                import logging  # noqa: PLC0415 - rare; every qmio command imports this module

                logging.getLogger(__name__).warning("Slurm did not answer; using states %.0f s "
                                                    "old", self._interval)
                return
            raise
        self._interval = self.min_interval
        for job_id in ask:
            if job_id in found:
                self._cache[job_id] = found[job_id]
            else:
                self._cache.pop(job_id, None)
                self._watched.discard(job_id)  # Slurm forgot it: the job directory decides

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if ids:
            self._cancel(ids)
            for job_id in ids:
                self._cache.pop(job_id, None)

    def queue(self) -> list[QueueEntry]:
        """One squeue of the QPU partition (the command-line tool, whichever adapter: a read)."""
        partition = str(self.settings.get("slurm.partition"))
        try:
            out = subprocess.run(["squeue", "-h", "-p", partition, "-t", "PD,CF,R,CG",
                                  "-o", QUEUE_FORMAT], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchedulerError(f"squeue of partition {partition} failed: {exc}") from None
        if out.returncode != 0:
            raise SchedulerError(f"squeue failed: {' '.join(out.stderr.split())}")
        return parse_queue(out.stdout, _user())

    def history(self, since: float) -> list[Allocation]:
        """One sacct of this user's allocations in the QPU partition (its own accounting: what
        ``qmio usage`` reports is what sacct says)."""
        partition = str(self.settings.get("slurm.partition"))
        start = datetime.fromtimestamp(since).isoformat(timespec="seconds")
        try:
            out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", start, "-u", _user(),
                                  "-r", partition, "-o", HISTORY_FIELDS],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchedulerError(f"sacct failed: {exc}") from None
        if out.returncode != 0:
            raise SchedulerError(f"sacct failed: {' '.join(out.stderr.split())} (qmio usage "
                                 f"needs Slurm's accounting)")
        return parse_history(out.stdout)

    def describe(self) -> str:
        return f"slurm ({self.adapter}; partition {self.settings.get('slurm.partition')})"


#: sacct fields for ``parse_history``.
HISTORY_FIELDS = "JobIDRaw,JobName,Start,ElapsedRaw"


def parse_history(text: str) -> list[Allocation]:
    """sacct's ``HISTORY_FIELDS`` lines -> allocations that started (pure)."""
    out = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 4:
            continue
        job_id, name, start, elapsed = parts
        started = _epoch(start)
        if started is None or not elapsed.isdigit():
            continue  # never started
        out.append(Allocation(job_id, "session" if name.startswith("qmio-session") else "job",
                              started, float(elapsed)))
    return out


#: squeue fields for ``parse_queue``: id, user, state, start (expected, for a pending job),
#: name, priority.
QUEUE_FORMAT = "%i|%u|%T|%S|%j|%Q"


def parse_queue(text: str, me: str) -> list[QueueEntry]:
    """squeue's ``QUEUE_FORMAT`` lines -> the queue: holders first, then waiters by priority
    (highest first) and, at equal priority, by id (submission order). Pure: tested without a
    cluster."""
    rows = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 6:
            continue
        job_id, user, state, start, name, priority = parts
        holding = normalise_state(state) in ("RUNNING", "COMPLETING")
        stamp = None if holding else _epoch(start)
        entry = QueueEntry(job_id, user == me, holding,
                           "session" if name.startswith("qmio-session") else "job", stamp)
        order = (0 if holding else 1, -int(priority) if priority.isdigit() else 0,
                 int(job_id) if job_id.isdigit() else 0)
        rows.append((order, entry))
    return [entry for _, entry in sorted(rows, key=lambda r: r[0])]


def _epoch(text: str) -> float | None:
    """A Slurm time (local, ISO) as a Unix time; None for "N/A", "Unknown", "None"."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
