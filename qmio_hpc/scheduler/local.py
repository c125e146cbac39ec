"""The local executor: the embedded default where there is no Slurm.

Each allocation (one job's batch step, or a session's worker) runs under a detached runner process
(``local_runner``) so it outlives the shell or Python session that started it. Runners queue for
the QPU first come first served (``fifo``): each takes a ticket named by its submission time in
``<store>/local/queue``, waits until its ticket is the oldest whose runner is alive, then holds
``<store>/local/qpu.lock`` while its command runs. It reports Slurm's state names, so the one state
table serves both executors.

Ids are ``L1``, ``L2``, ... for jobs and ``S3``, ... for sessions (one counter), so they cannot be
taken for Slurm ids in a shared store. ``<store>/local/alloc/<id>`` links each id to its directory.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import SchedulerError
from ..fifo import START_GRACE, pid_alive
from ..states import SchedulerState
from ..store import JobDir, read_json, validate_job_id, write_json_atomic
from .base import Scheduler

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
        alloc_id = self._next_id(PREFIXES.get(kind, "L"))
        directory = directory.absolute()
        os.symlink(directory, self.local_dir / "alloc" / alloc_id)
        ticket = self.local_dir / "queue" / f"{time.time_ns():020d}-{alloc_id}"
        ticket.touch(mode=0o600)
        write_json_atomic(directory / "local.json",
                          {"id": alloc_id, "phase": "queued", "ticket": str(ticket),
                           "submitted": time.time()})
        log = directory / "runner.log"
        runner = [sys.executable, "-m", "qmio_hpc.scheduler.local_runner", str(directory),
                  str(ticket), str(self.local_dir / "qpu.lock"), "--", *args]
        with open(log, "ab") as out:
            os.chmod(log, 0o600)
            # The shell starts the runner in its background and exits at once (we reap it): the
            # runner is nobody's child, so it is never a zombie of a long-lived submitter. The
            # runner's words are the shell's arguments ("$@"), never part of its script.
            proc = subprocess.Popen(["/bin/sh", "-c", 'exec 0</dev/null; "$@" &', "sh", *runner],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True, close_fds=True)
        if proc.wait(timeout=60) != 0:
            raise SchedulerError(f"the local runner for {alloc_id} failed to start; see {log}")
        return alloc_id

    def states(self, ids: Iterable[str]) -> dict[str, SchedulerState]:
        out: dict[str, SchedulerState] = {}
        for alloc_id in ids:
            directory = self._directory(alloc_id)
            if directory is not None:
                out[alloc_id] = self._state_of(alloc_id, directory)
        return out

    def _state_of(self, alloc_id: str, directory: Path) -> SchedulerState:
        info: dict[str, Any] = read_json(directory / "local.json") or {}
        phase = info.get("phase")
        cancelled = (directory / "cancelled").exists()
        if phase == "finished":
            code = int(info.get("exit_code", 1))
            ended = info.get("ended")
            exit_code = f"0:{-code}" if code < 0 else f"{code}:0"
            if cancelled and JobDir(directory).result() is None:
                # Whatever the exit code: a SIGTERM can land between fork and exec of the step.
                return SchedulerState(alloc_id, "CANCELLED", "cancelled by user", exit_code, ended)
            if code == 0:
                return SchedulerState(alloc_id, "COMPLETED", "", exit_code, ended)
            return SchedulerState(alloc_id, "FAILED", "NonZeroExitCode", exit_code, ended)
        pid = info.get("pid")
        started = info.get("submitted", 0.0)
        alive = pid_alive(pid) if pid else time.time() - started < START_GRACE
        if not alive:
            if cancelled:
                return SchedulerState(alloc_id, "CANCELLED", "cancelled by user")
            return SchedulerState(alloc_id, "NODE_FAIL", "the local runner process died")
        if phase == "running":
            return SchedulerState(alloc_id, "RUNNING")
        return SchedulerState(alloc_id, "PENDING", "Resources: waiting for the QPU")

    def cancel(self, ids: Iterable[str]) -> None:
        for alloc_id in ids:
            directory = self._directory(alloc_id)
            info = read_json(directory / "local.json") if directory else None
            info = info or {}
            pgid = info.get("pgid")
            if info.get("phase") == "finished" or not pgid or not pid_alive(info.get("pid")):
                continue
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def describe(self) -> str:
        return f"local (runs jobs on this host, one at a time; queue in {self.local_dir})"
