"""The local executor: the embedded default where there is no Slurm.

Allocations (one job's batch step, or a session's worker) queue first come first served as
tickets in ``<store>/local/queue``, named by their submission time. One resident process per
store, the queue owner (``local_runner``), serves them one at a time while holding
``<store>/local/qpu.lock``; a submission starts it when none is running, and it exits after a
while without work. So a job costs a fork of a process that is already warm, and nobody polls.
It reports Slurm's state names, so the one state table serves both executors.

Ids are ``L1``, ``L2``, ... for jobs and ``S3``, ... for sessions (one counter), so they cannot be
taken for Slurm ids in a shared store. ``<store>/local/alloc/<id>`` links each id to its directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import SchedulerError
from ..fifo import FifoQueue, pid_alive
from ..states import Allocation, QueueEntry, SchedulerState
from ..store import JobDir, read_json, validate_job_id, write_json_atomic
from .base import Scheduler
from .local_runner import queue_lock, wake

#: Id prefix for each kind of allocation.
PREFIXES = {"job": "L", "session": "S"}


class LocalScheduler(Scheduler):
    name = "local"

    @property
    def local_dir(self) -> Path:
        path = self.store.root / "local"
        for sub in (path / "queue", path / "alloc"):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _next_id(self, prefix: str) -> str:
        counter = self.local_dir / "counter"
        fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.read(fd, 64).decode().strip()
            number = int(text) + 1 if text.isdigit() else 1
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(number).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return f"{prefix}{number}"

    def _directory(self, alloc_id: str) -> Path | None:
        try:
            validate_job_id(alloc_id)
        except Exception:
            return None
        link = self.local_dir / "alloc" / alloc_id
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    def submit_command(self, args: Sequence[str], directory: Path, *, kind: str = "job") -> str:
        local_dir = self.local_dir
        alloc_id = self._next_id(PREFIXES.get(kind, "L"))
        directory = directory.absolute()
        os.symlink(directory, local_dir / "alloc" / alloc_id)
        name = f"{time.time_ns():020d}-{alloc_id}"
        write_json_atomic(directory / "local.json",
                          {"id": alloc_id, "phase": "queued", "ticket": name,
                           "submitted": time.time()})
        order = json.dumps({"id": alloc_id, "dir": str(directory), "args": list(args)})
        with queue_lock(local_dir):
            FifoQueue(local_dir / "queue").add(name, order)
            running = wake(local_dir)
        if not running:
            self._start_owner()
        return alloc_id

    def _start_owner(self) -> None:
        """Start the queue owner, detached. (If two submitters both start one, the second
        finds the first holding ``owner.lock`` and exits at once.)"""
        log = self.local_dir / "runner.log"
        owner = [sys.executable, "-m", "qmio_hpc.scheduler.local_runner", str(self.local_dir)]
        import subprocess  # noqa: PLC0415 - only to start the queue owner

        with open(log, "ab") as out:
            os.chmod(log, 0o600)
            # The shell starts the owner in its background and exits at once (we reap it): the
            # owner is nobody's child, so it is never a zombie of a long-lived submitter. Its
            # words are the shell's arguments ("$@"), never part of its script.
            proc = subprocess.Popen(["/bin/sh", "-c", 'exec 0</dev/null; "$@" &', "sh", *owner],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True, close_fds=True)
        if proc.wait(timeout=60) != 0:
            raise SchedulerError(f"the local queue owner failed to start; see {log}")

    def states(self, ids: Iterable[str]) -> dict[str, SchedulerState]:
        out: dict[str, SchedulerState] = {}
        owner: list[bool] = []  # [True] once the queue owner was seen to (or made to) run
        for alloc_id in ids:
            directory = self._directory(alloc_id)
            if directory is not None:
                out[alloc_id] = self._state_of(alloc_id, directory, owner)
        return out

    def _ensure_owner(self) -> bool:
        """If the queue owner does not run while tickets wait (it was killed), start one:
        queued allocations are never left without an owner."""
        with queue_lock(self.local_dir):
            if wake(self.local_dir) or not FifoQueue(self.local_dir / "queue").entries():
                return True
        self._start_owner()
        return True

    def _state_of(self, alloc_id: str, directory: Path, owner: list[bool]) -> SchedulerState:
        info: dict[str, Any] = read_json(directory / "local.json") or {}
        phase = info.get("phase")
        cancelled = (directory / "cancelled").exists()
        if phase == "finished":
            code = int(info.get("exit_code", 1))
            ended = info.get("ended")
            exit_code = f"0:{-code}" if code < 0 else f"{code}:0"
            if cancelled and JobDir(directory).result() is None:
                # Whatever the exit code: a SIGTERM can land as the step starts.
                return SchedulerState(alloc_id, "CANCELLED", "cancelled by user", exit_code, ended)
            if code == 0:
                return SchedulerState(alloc_id, "COMPLETED", "", exit_code, ended)
            return SchedulerState(alloc_id, "FAILED", "NonZeroExitCode", exit_code, ended)
        if phase == "running":
            if pid_alive(info.get("pid")):
                return SchedulerState(alloc_id, "RUNNING")
            if cancelled:
                return SchedulerState(alloc_id, "CANCELLED", "cancelled by user")
            return SchedulerState(alloc_id, "NODE_FAIL", "the local runner process died")
        if cancelled:  # queued: the owner will skip it
            return SchedulerState(alloc_id, "CANCELLED", "cancelled by user")
        if not (self.local_dir / "queue" / str(info.get("ticket"))).exists():
            return SchedulerState(alloc_id, "NODE_FAIL", "its ticket left the local queue")
        if not owner:
            owner.append(self._ensure_owner())
        return SchedulerState(alloc_id, "PENDING", "Resources: waiting for the QPU")

    def queue(self) -> list[QueueEntry]:
        """The tickets, oldest first: the first one the owner runs holds the QPU. (A store is
        one user's, so every entry is the user's own.)"""
        entries = []
        for ticket in FifoQueue(self.local_dir / "queue").entries():
            alloc_id = ticket.name.rsplit("-", 1)[-1]
            directory = self._directory(alloc_id)
            info = (read_json(directory / "local.json") if directory else None) or {}
            entries.append(QueueEntry(alloc_id, True, info.get("phase") == "running",
                                      "session" if alloc_id.startswith("S") else "job"))
        return sorted(entries, key=lambda e: not e.holding)  # stable: tickets stay in order

    def history(self, since: float) -> list[Allocation]:
        """From each allocation's ``local.json``: when it started, and until when it ran."""
        out = []
        for link in (self.local_dir / "alloc").iterdir():
            directory = self._directory(link.name)
            info = (read_json(directory / "local.json") if directory else None) or {}
            started = info.get("started")
            if not isinstance(started, (int, float)) or started < since:
                continue
            ended = info.get("ended") if info.get("phase") == "finished" else time.time()
            out.append(Allocation(link.name, "session" if link.name.startswith("S") else "job",
                                  started, max(0.0, float(ended or started) - started)))
        return sorted(out, key=lambda a: a.started)

    def cancel(self, ids: Iterable[str]) -> None:
        """A queued allocation needs nothing more than its ``cancelled`` mark (the owner skips
        it); a running one is sent SIGTERM, in its own process group."""
        for alloc_id in ids:
            directory = self._directory(alloc_id)
            info = (read_json(directory / "local.json") if directory else None) or {}
            pgid = info.get("pgid")
            if info.get("phase") != "running" or not pgid or not pid_alive(info.get("pid")):
                continue
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def describe(self) -> str:
        return f"local (runs jobs on this host, one at a time; queue in {self.local_dir})"
