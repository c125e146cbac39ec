"""Making job files durable without making anyone wait for the disk: a submitter's specs, a
session worker's results."""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from typing import Callable

from .store import JobDir, sync_directory


class Syncer:
    """fsyncs job files in a background thread: a submission returns, and a worker tells its
    client, as soon as the files are complete and in place (atomic renames); they are durable a
    moment later.

    The thread wakes on its own every ``GROUP_SECONDS`` rather than when a job is added: a
    submission wakes no thread (on a small node, every thread woken delays the messages that
    carry the job), and the jobs of one period share the fsync of their parent directory (a
    group commit); nor does the disk, however slow, hold up the next job. It ends after
    ``IDLE_SECONDS`` without work. Pending syncs are finished before the process exits.

    ``soon`` is the exception that wakes it: a task handed off by a submitter about to wait for
    sbatch (a subprocess of milliseconds), which the thread does meanwhile."""

    GROUP_SECONDS = 0.02
    IDLE_SECONDS = 2.0

    def __init__(self, *names: str) -> None:
        self.names = names or ("spec.json",)  # the files of each job to fsync
        self._pending: list[JobDir] = []
        self._tasks: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # held for a whole flush, its fsyncs included
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def add(self, job: JobDir) -> None:
        with self._lock:
            self._pending.append(job)
            self._start()

    def soon(self, task: Callable[[], object]) -> None:
        """Run ``task`` on the background thread now (this one wakes it): work a submitter hands
        off while it waits for sbatch anyway, such as making the next job's directory."""
        with self._lock:
            self._tasks.append(task)
            self._start()
        self._woken.set()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="qmio-fsync", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < self.IDLE_SECONDS:
            self._woken.wait(self.GROUP_SECONDS)
            self._woken.clear()
            with self._lock:
                tasks, self._tasks = self._tasks, []
            for task in tasks:
                with contextlib.suppress(Exception):  # what a task did not do is done on demand
                    task()
            if self.flush() or tasks:
                idle_since = time.monotonic()

    def flush(self) -> bool:
        """fsync what is pending now; True if there was anything. Waits for a flush under way
        on the background thread: at exit, every file handed over is durable when this returns."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            for job in batch:
                job.sync(*self.names, directory=False)
            for directory in {job.path for job in batch} | {job.path.parent for job in batch}:
                sync_directory(directory)
        return bool(batch)


#: A submitter's: the spec of every job it submits, and a plain job's scheduler record.
syncer = Syncer("spec.json", "scheduler.json")
