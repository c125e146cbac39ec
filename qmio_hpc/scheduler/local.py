"""The local executor: the embedded default where there is no Slurm.

Each job's batch step runs under a detached runner process (``local_runner``) so the job outlives
the shell or Python session that submitted it. Runners queue for the QPU first come first served:
each takes a ticket named by its submission time in ``<store>/local/queue``, waits until its
ticket is the oldest whose runner is alive, then holds ``<store>/local/qpu.lock`` while its step
runs. It reports Slurm's state names, so the one state table serves both executors.

Ids are ``L1``, ``L2``, ... so they cannot be taken for Slurm ids in a shared store.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from ..errors import SchedulerError
from ..states import SchedulerState
from ..store import JobDir, read_json, write_json_atomic
from .base import Scheduler

#: A runner that has not written its pid after this long is taken as dead.
RUNNER_START_GRACE = 30.0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class LocalScheduler(Scheduler):
    name = "local"

    @property
    def local_dir(self) -> Path:
        path = self.store.root / "local"
        (path / "queue").mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _next_id(self) -> str:
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
        return f"L{number}"

    def submit(self, job: JobDir) -> str:
        job_id = self._next_id()
        self.store.link(job_id, job)
        ticket = self.local_dir / "queue" / f"{time.time_ns():020d}-{job.key}"
        ticket.touch(mode=0o600)
        write_json_atomic(job.file("local.json"),
                          {"phase": "queued", "ticket": str(ticket), "submitted": time.time()})
        job.write_scheduler_record("local", job_id)
        log = job.file("runner.log")
        with open(log, "ab") as out:
            os.chmod(log, 0o600)
            proc = subprocess.Popen(
                [sys.executable, "-m", "qmio_hpc.scheduler.local_runner", str(job.path),
                 str(ticket), str(self.local_dir / "qpu.lock")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                close_fds=True)
        # The runner forks and its first process exits at once; reap it so it is no zombie.
        if proc.wait(timeout=60) != 0:
            raise SchedulerError(f"the local runner for job {job_id} failed to start; see {log}")
        return job_id

    def states(self, job_ids: Iterable[str]) -> dict[str, SchedulerState]:
        out: dict[str, SchedulerState] = {}
        for job_id in job_ids:
            try:
                job = self.store.get(job_id)
            except Exception:
                continue
            out[job_id] = self._state_of(job_id, job)
        return out

    def _state_of(self, job_id: str, job: JobDir) -> SchedulerState:
        info: dict[str, Any] = read_json(job.file("local.json")) or {}
        phase = info.get("phase")
        cancelled = job.is_cancelled()
        if phase == "finished":
            code = int(info.get("exit_code", 1))
            ended = info.get("ended")
            exit_code = f"0:{-code}" if code < 0 else f"{code}:0"
            if cancelled and job.result() is None:
                # Whatever the exit code: a SIGTERM can land between fork and exec of the step.
                return SchedulerState(job_id, "CANCELLED", "cancelled by user", exit_code, ended)
            if code == 0:
                return SchedulerState(job_id, "COMPLETED", "", exit_code, ended)
            return SchedulerState(job_id, "FAILED", "NonZeroExitCode", exit_code, ended)
        pid = info.get("pid")
        started = info.get("submitted", 0.0)
        alive = pid_alive(pid) if pid else time.time() - started < RUNNER_START_GRACE
        if not alive:
            if cancelled:
                return SchedulerState(job_id, "CANCELLED", "cancelled by user")
            return SchedulerState(job_id, "NODE_FAIL", "the local runner process died")
        if phase == "running":
            return SchedulerState(job_id, "RUNNING")
        return SchedulerState(job_id, "PENDING", "Resources: waiting for the QPU")

    def cancel(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            job = self.store.get(job_id)
            info = read_json(job.file("local.json")) or {}
            pgid = info.get("pgid")
            if info.get("phase") == "finished" or not pgid or not pid_alive(info.get("pid")):
                continue
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def describe(self) -> str:
        return f"local (runs jobs on this host, one at a time; queue in {self.local_dir})"
