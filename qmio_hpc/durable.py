"""Making a submitter's job files durable without making the submitter wait for the disk."""

from __future__ import annotations

import atexit
import queue
import threading
import time

from .store import JobDir, sync_directory


class Syncer:
    """fsyncs job files in a background thread, so that a submission returns as soon as its
    files are complete and in place (atomic renames), and is durable a moment later. Jobs that
    arrive within ``GROUP_SECONDS`` of each other share the fsync of their parent directory.
    Pending syncs are finished before the process exits."""

    GROUP_SECONDS = 0.02

    def __init__(self) -> None:
        self._queue: "queue.Queue[JobDir]" = queue.Queue()
        self._thread: threading.Thread | None = None

    def add(self, job: JobDir) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qmio-fsync", daemon=True)
            self._thread.start()
            atexit.register(self.flush)
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            time.sleep(self.GROUP_SECONDS)
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                for job in batch:
                    job.sync("spec.json", directory=False)
                for directory in {job.path for job in batch} | {job.path.parent for job in batch}:
                    sync_directory(directory)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def flush(self) -> None:
        if self._thread is not None:
            self._queue.join()


syncer = Syncer()
