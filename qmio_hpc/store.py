"""The job store: one directory per job on the shared filesystem.

Layout under the store root (directories 0700, files 0600: a job is its owner's alone)::

    jobs/<key>/spec.json        programs and options, written once at submission
    jobs/<key>/scheduler.json   which executor took the job and its id there
    jobs/<key>/state.json       the batch step's progress (validating, running, ...)
    jobs/<key>/result.json      the complete result; written to a temporary name, fsynced, renamed
    jobs/<key>/error.json       why the step failed, if it did
    jobs/<key>/cancelled        mark left by ``cancel``
    jobs/<key>/step.out|err     the batch step's output
    ids/<job id> -> ../jobs/<key>   index from the id users see to the directory

Directories are created before the scheduler gives the job its id (the batch script must name its
directory), so they carry an internal key and ``ids/`` maps ids to them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import JobNotFoundError, QmioError

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SPEC_VERSION = 1


def validate_job_id(job_id: str) -> str:
    """Job ids become file names: refuse anything that could escape the store."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id) or ".." in job_id:
        raise JobNotFoundError(f"{job_id!r} is not a valid job id (letters, digits, '_', '-', '.')")
    return job_id


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` so readers see either nothing or the whole file, never a part of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def read_json(path: Path) -> Any | None:
    """The file's content, or None if it does not exist (or is not complete JSON yet)."""
    try:
        with path.open() as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class JobDir:
    """One job's directory. Methods read and write its files; none of them talk to a scheduler."""

    path: Path

    @property
    def key(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # spec & scheduler record
    def spec(self) -> dict[str, Any]:
        spec = read_json(self.file("spec.json"))
        if spec is None:
            raise QmioError(f"job directory {self.path} has no readable spec.json")
        return spec

    def scheduler_record(self) -> dict[str, Any] | None:
        return read_json(self.file("scheduler.json"))

    def write_scheduler_record(self, executor: str, job_id: str, **extra: Any) -> None:
        write_json_atomic(self.file("scheduler.json"),
                          {"executor": executor, "job_id": job_id, **extra})

    # step progress
    def state(self) -> dict[str, Any] | None:
        return read_json(self.file("state.json"))

    def set_state(self, phase: str, message: str = "") -> None:
        write_json_atomic(self.file("state.json"),
                          {"phase": phase, "message": message, "time": time.time(),
                           "pid": os.getpid()})

    # outcome
    def result(self) -> dict[str, Any] | None:
        """The result if a complete one exists: JSON that parses and says it is complete."""
        data = read_json(self.file("result.json"))
        if isinstance(data, dict) and data.get("complete") is True:
            return data
        return None

    def write_result(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.file("result.json"), {**data, "complete": True})

    def error(self) -> dict[str, Any] | None:
        return read_json(self.file("error.json"))

    def write_error(self, kind: str, message: str) -> None:
        write_json_atomic(self.file("error.json"),
                          {"kind": kind, "message": message, "time": time.time()})

    def is_cancelled(self) -> bool:
        return self.file("cancelled").exists()

    def mark_cancelled(self, reason: str = "cancelled by user") -> None:
        if not self.is_cancelled():
            write_json_atomic(self.file("cancelled"), {"reason": reason, "time": time.time()})



class JobStore:
    """The store root. Creates job directories and finds them again by id."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _ensure(self) -> None:
        for sub in (self.root, self.root / "jobs", self.root / "ids"):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
            if sub.stat().st_mode & 0o077:
                os.chmod(sub, 0o700)

    def create(self, spec: dict[str, Any]) -> JobDir:
        """A new job directory holding ``spec``; not yet known by any id."""
        self._ensure()
        now = time.time()  # keys sort in creation order, to the microsecond
        key = (time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) +
               f"-{int(now * 1e6) % 1_000_000:06d}-{secrets.token_hex(3)}")
        path = self.root / "jobs" / key
        path.mkdir(mode=0o700)
        job = JobDir(path)
        write_json_atomic(job.file("spec.json"), {"version": SPEC_VERSION, **spec})
        return job

    def link(self, job_id: str, job: JobDir) -> None:
        """Record that ``job_id`` names ``job``. Idempotent: the batch step links too."""
        validate_job_id(job_id)
        self._ensure()
        link = self.root / "ids" / job_id
        target = Path("..") / "jobs" / job.key
        try:
            os.symlink(target, link)
        except FileExistsError:
            if os.readlink(link) != str(target):
                raise QmioError(f"job id {job_id} already names another job in {self.root}"
                                ) from None

    def _follow(self, link: Path) -> JobDir | None:
        """The job directory ``link`` names, if it is a link to a directory inside ``jobs/``."""
        if not link.is_symlink():
            return None
        path = link.resolve()
        if not path.is_dir() or path.parent != (self.root / "jobs").resolve():
            return None
        return JobDir(path)

    def get(self, job_id: str) -> JobDir:
        validate_job_id(job_id)
        job = self._follow(self.root / "ids" / job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id} in the job store {self.root}; "
                                   f"'qmio jobs' lists the jobs there")
        return job

    def ids(self) -> Iterator[tuple[str, JobDir]]:
        """All (id, directory) pairs, oldest first."""
        ids_dir = self.root / "ids"
        if not ids_dir.is_dir():
            return iter(())
        entries = []
        for link in ids_dir.iterdir():
            job = self._follow(link) if JOB_ID_RE.match(link.name) else None
            if job is not None:
                entries.append((link.name, job))
        entries.sort(key=lambda e: e[1].key)
        return iter(entries)
