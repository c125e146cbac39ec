"""The job store: one directory per job on the shared filesystem.

Layout under the store root (directories 0700, files 0600: a job is its owner's alone)::

    jobs/<key>/spec.json        programs and options, written once at submission
    jobs/<key>/scheduler.json   which executor took the job and its id there
    jobs/<key>/state.json       the batch step's progress (validating, running, ...)
    jobs/<key>/result.json      the complete result; written to a temporary name, fsynced, renamed
    jobs/<key>/error.json       why the step failed, if it did
    jobs/<key>/cancelled        mark left by ``cancel``
    jobs/<key>/cancel-request   a running session job is asked to stop (its worker ends it)
    jobs/<key>/outcome          who claimed the right to write the outcome (``claim_outcome``)
    jobs/<key>/final.json       the end a status lookup wrote down for a job that wrote none
    jobs/<key>/local.out|err    the batch step's output (slurm.out|err under Slurm)
    ids/<job id> -> ../jobs/<key>   index from the id users see to the directory
    sessions/<key>/...          one session's directory (see ``SessionDir``), its jobs inside
    session-ids/<session id> -> ../sessions/<key>
    checked/<sha256>            a program text that passed the submission check (``JobManager``)

Directories are created before the scheduler gives the job its id (the batch script must name its
directory), so they carry an internal key and ``ids/`` maps ids to them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from .errors import JobNotFoundError, QmioError, SessionNotFoundError

JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: "L1\n" is no id
SPEC_VERSION = 1


def validate_job_id(job_id: str) -> str:
    """Job ids become file names: refuse anything that could escape the store."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id) or ".." in job_id:
        raise JobNotFoundError(f"{job_id!r} is not a valid job id (letters, digits, '_', '-', '.')")
    return job_id


#: Temporary names: pid, a random tag (pids repeat across nodes) and a counter; O_EXCL guards.
_TMP_TAG = os.urandom(4).hex()  # os.urandom: secrets costs an import


def _rmtree(path: Path) -> None:
    """``shutil.rmtree`` for the rare clean-up, imported then: every command imports the store."""
    import shutil  # noqa: PLC0415

    shutil.rmtree(path, ignore_errors=True)
_tmp_numbers = itertools.count()


#: The placeholder in a spare job directory that becomes the job's queue entry (``FifoQueue.add``).
QUEUE_ENTRY = "queue-entry"


def placeholder(path: Path) -> Path:
    """The empty file made ahead of time that ``write_json_atomic`` fills and renames to ``path``
    (``SessionDir.make_spare``)."""
    return path.with_name(f".{path.name}.pre")


def make_spare(parent: Path, names: tuple[str, ...]) -> Path | None:
    """A directory made ahead of time in ``parent``, not yet anybody's: ``.spare-<pid>-<tag>/``
    holding the placeholders of the files ``names``. Creating a directory and files is what a
    submission costs most on a node that was idle (here ~1 ms each for a directory and a file
    after a few ms idle, 30 µs when busy; on Lustre, metadata server round trips), so a
    submitter makes the next job's directory while it waits anyway. None if it cannot be made
    (the next submission then makes its own). Scans of ids never see it (a dot name)."""
    path = parent / f".spare-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        path.mkdir(mode=0o700)
        for name in names:
            os.close(os.open(placeholder(path / name), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600))
    except OSError:
        _rmtree(path)
        return None
    return path


def write_json_atomic(path: Path, data: Any, *, durable: bool = True,
                      sync_dir: bool = True) -> None:
    """Write ``data`` so readers see either nothing or the whole file, never a part of it.

    ``durable`` also fsyncs the file and (with ``sync_dir``) its directory, so it survives a crash
    of the node: for specs and results. Progress notes that the next write replaces anyway skip
    it; a caller that writes several files syncs their directory once (``sync_directory``).

    The temporary file is the path's ``placeholder`` where one was made ahead of time: then no
    file is created here, the slowest step on a node that was idle (and on Lustre, a round trip
    to the metadata server). Whoever writes a file owns its placeholder: one writer each."""
    write_bytes_atomic(path, json.dumps(data, separators=(",", ":")).encode(), durable=durable,
                       sync_dir=sync_dir)  # (the dump fails before any file exists)


def write_bytes_atomic(path: Path, text: bytes, *, durable: bool = True,
                       sync_dir: bool = True) -> None:
    """``write_json_atomic`` for bytes already made (a batch script)."""
    tmp = str(placeholder(path))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:
        tmp = f"{path.parent}/.{path.name}.{os.getpid()}.{_TMP_TAG}{next(_tmp_numbers)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable and sync_dir:
        sync_directory(path.parent)  # make the rename itself durable


def sync_directory(path: Path) -> None:
    """fsync a directory, so the names just created or renamed in it survive a crash."""
    try:
        dfd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def read_json(path: Path | str) -> Any | None:
    """The file's content, or None if it does not exist (or is not complete JSON yet). Plain
    reads, no file object: this is on every session job's path, twice."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class JobDir:
    """One job's directory. Methods read and write its files; none of them talk to a scheduler.

    Immutable, equal to another of the same kind with the same path. (Not a dataclass: that
    import costs every batch step ~6 ms while it holds the QPU.) Made from a Path or from a
    normalised string, whose Path is made only if asked for: a status lookup over a thousand
    jobs makes their directories from the links it reads, and building a Path costs more than
    reading a small file."""

    _where: str
    _path: Path | None

    def __init__(self, path: Path | str) -> None:
        object.__setattr__(self, "_where", str(path))
        object.__setattr__(self, "_path", path if isinstance(path, Path) else None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} cannot be changed")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._where == self._where  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._where)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path,)

    @property
    def path(self) -> Path:
        if self._path is None:
            object.__setattr__(self, "_path", Path(self._where))
        return self._path  # type: ignore[return-value]

    @property
    def key(self) -> str:
        return self._where.rsplit("/", 1)[-1]

    def file(self, name: str) -> Path:
        return self.path / name

    def _at(self, name: str) -> str:
        """``file(name)`` as a string, for the reads every status lookup makes (a pathlib join
        costs more than the read of a small file)."""
        return f"{self._where}/{name}"

    # spec & scheduler record
    def spec(self) -> dict[str, Any]:
        spec = read_json(self._at("spec.json"))
        if spec is None:
            raise QmioError(f"job directory {self.path} has no readable spec.json")
        return spec

    def scheduler_record(self) -> dict[str, Any] | None:
        """Which executor has the job, and its id there. A job in a session carries this in its
        spec (one file fewer to create on the session's fast path)."""
        record = read_json(self._at("scheduler.json"))
        if record is None:
            spec = read_json(self._at("spec.json"))
            if isinstance(spec, dict) and spec.get("session"):
                return {"executor": "session", "job_id": spec.get("job_id"),
                        "session": spec["session"]}
        return record

    def write_scheduler_record(self, executor: str, job_id: str, *, durable: bool = True,
                               **extra: Any) -> None:
        write_json_atomic(self.file("scheduler.json"),
                          {"executor": executor, "job_id": job_id, **extra}, durable=durable)

    # step progress
    def state(self) -> dict[str, Any] | None:
        return read_json(self._at("state.json"))

    def set_state(self, phase: str, message: str = "") -> None:
        write_json_atomic(self.file("state.json"),
                          {"phase": phase, "message": message, "time": time.time(),
                           "pid": os.getpid()}, durable=False)

    # outcome
    def result(self) -> dict[str, Any] | None:
        """The result if a complete one exists: JSON that parses and says it is complete."""
        data = read_json(self._at("result.json"))
        if isinstance(data, dict) and data.get("complete") is True:
            return data
        return None

    def write_result(self, data: dict[str, Any], *, durable: bool = True) -> None:
        """Write the complete result. ``durable=False`` leaves the fsync to a later ``sync``
        (a session's worker tells the waiting client first, then syncs)."""
        write_json_atomic(self.file("result.json"), {**data, "complete": True}, durable=durable)

    def sync(self, *names: str, directory: bool = True) -> None:
        """fsync these files (those that exist) and the directory: make earlier writes durable."""
        for name in names:
            try:
                fd = os.open(self.file(name), os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if directory:
            sync_directory(self.path)

    def error(self) -> dict[str, Any] | None:
        return read_json(self._at("error.json"))

    def write_error(self, kind: str, message: str) -> None:
        write_json_atomic(self.file("error.json"),
                          {"kind": kind, "message": message, "time": time.time()})

    def is_cancelled(self) -> bool:
        return os.path.exists(self._at("cancelled"))  # (a batch step asks before each program)

    def cancel_requested(self) -> bool:
        """Should the step stop at its next execution? A batch job's cancel mark asks it; a
        running session job is asked with ``cancel-request`` (its worker writes the outcome)."""
        return self.is_cancelled() or self.has_cancel_request()

    def has_cancel_request(self) -> bool:
        return os.path.exists(self._at("cancel-request"))

    def request_cancel(self, reason: str = "cancelled by user") -> None:
        write_json_atomic(self.file("cancel-request"), {"reason": reason, "time": time.time()})

    def mark_cancelled(self, reason: str = "cancelled by user") -> None:
        if not self.is_cancelled():
            write_json_atomic(self.file("cancelled"), {"reason": reason, "time": time.time()})

    def cancel_reason(self) -> str:
        data = read_json(self._at("cancelled"))
        return str(data.get("reason", "cancelled")) if isinstance(data, dict) else "cancelled"

    def has_outcome(self) -> bool:
        """A cheap look (no parsing): is there a result, an error or a cancel mark?"""
        return any(os.path.exists(self._at(name))
                   for name in ("result.json", "error.json", "cancelled"))

    def claim_outcome(self, by: str) -> bool:
        """Become the one writer of this job's outcome (result, error or cancel mark).

        How a batch step claims its job: whoever creates ``outcome`` first writes the outcome, so
        a final status never changes. A job with an outcome already cannot be claimed. (A job in
        a session is claimed by removing its queue entry instead: ``claim_entry``.)"""
        if self.result() is not None or self.error() is not None:
            return False
        try:
            fd = os.open(self.file("outcome"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        os.write(fd, f"{by} {os.getpid()} {time.time()}".encode())
        os.close(fd)
        return True

    def declared(self) -> dict[str, str] | None:
        """The final status a status lookup wrote down for a job that ended without writing its
        own outcome (``JobManager.statuses``); it is the job's end for good."""
        data = read_json(self._at("final.json"))
        if isinstance(data, dict) and data.get("status") in ("CANCELLED", "ERROR"):
            return {"status": str(data["status"]), "detail": str(data.get("detail", ""))}
        return None

    def declare(self, status: str, detail: str) -> None:
        write_json_atomic(self.file("final.json"),
                          {"status": status, "detail": detail, "time": time.time()})

    def claimed_by(self) -> str | None:
        """Who claimed the job's outcome (``claim_outcome``'s ``by``), if anyone did."""
        try:
            with open(self.file("outcome"), "rb") as fh:
                return fh.read(64).split(b" ", 1)[0].decode(errors="replace")
        except FileNotFoundError:
            return None


class SessionDir(JobDir):
    """One session's directory: its spec, its worker's record, its queue of jobs, its keys.

    Layout (the same ``spec.json``, ``scheduler.json`` and ``cancelled`` as a job's)::

        spec.json      mode, max_time, idle_timeout, the connection record
        scheduler.json executor and allocation id (the session id)
        worker.json    what the worker reports: phase, channel address, usage, why it ended
        closed         mark: no new jobs (close(), the idle timeout, max_time)
        counter        sequence numbers of the session's jobs; its lock orders submissions
        jobs/<n>/      job <session id>.<n>: a job directory like any other
        jobs/.spare-*/ a job directory made ahead of time by a submitter (``make_spare``)
        queue/<n>-<id> jobs not yet ended (``fifo``); removing an entry claims the job's end
        keys/          CURVE keys of the channel, the owner's alone
    """

    def worker_info(self) -> dict[str, Any]:
        data = read_json(self._at("worker.json"))
        return data if isinstance(data, dict) else {}

    def write_worker_info(self, info: dict[str, Any], *, durable: bool = False) -> None:
        write_json_atomic(self.file("worker.json"), info, durable=durable)

    def is_closed(self) -> bool:
        return self.file("closed").exists()

    def closed_info(self) -> dict[str, Any]:
        data = read_json(self._at("closed"))
        return data if isinstance(data, dict) else {}

    def mark_closed(self, reason: str) -> None:
        if not self.is_closed():
            write_json_atomic(self.file("closed"), {"reason": reason, "time": time.time()})

    def job_ids(self) -> list[str]:
        """The session's job ids, in submission order (from the numbers in ``jobs/``)."""
        record = self.scheduler_record() or {}
        try:
            numbers = sorted(int(n) for n in os.listdir(self.path / "jobs") if n.isdigit())
        except FileNotFoundError:
            return []
        return [f"{record.get('job_id')}.{n}" for n in numbers]

    def job(self, number: int | str) -> JobDir:
        """The directory of the session's job ``number`` (its id is ``<session id>.<number>``)."""
        return JobDir(self.path / "jobs" / str(number))

    def create_job(self, number: int, spec: dict[str, Any], spare: Path | None = None
                   ) -> JobDir:
        """Job ``number``'s directory holding ``spec`` (not fsynced: see ``JobDir.sync``).

        With ``spare`` (``make_spare``), the spec is written there and the directory renamed into
        place: no directory or file is created while the submitter holds the session's lock.
        (The rename cannot replace another job: a job's directory is never empty.)"""
        job = self.job(number)
        content = {"version": SPEC_VERSION, **spec}
        if spare is not None:
            try:
                write_json_atomic(spare / "spec.json", content, durable=False)
                os.rename(spare, job.path)
                return job
            except FileNotFoundError:  # the spare was removed meanwhile: make the directory
                pass
        job.path.mkdir(mode=0o700)
        write_json_atomic(job.file("spec.json"), content, durable=False)
        return job

    def make_spare(self) -> Path | None:
        """The next job's directory, made ahead of time (``make_spare``) with the placeholders
        of its spec, its result and its queue entry: a submitter makes it while the worker runs
        the current job. None if it cannot be made."""
        return make_spare(self.path / "jobs", ("spec.json", "result.json", QUEUE_ENTRY))

    def remove_spares(self) -> None:
        """Remove the spare directories left (once the session takes no more jobs)."""
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.path / "jobs"):
                if name.startswith(".spare-"):
                    _rmtree(self.path / "jobs" / name)

    def queue_entry(self, job_id: str) -> Path:
        """The queue entry of job ``job_id``, whether or not it is still there. Removing it is
        how whoever ends the job claims that right (``claim_entry``)."""
        number = int(job_id.rsplit(".", 1)[1])
        return self.path / "queue" / f"{number:09d}-{job_id}"


def claim_entry(entry: Path) -> bool:
    """Remove ``entry``; True for the one process whose removal succeeded."""
    try:
        os.unlink(entry)
    except FileNotFoundError:
        return False
    return True


class JobStore:
    """The store root. Creates job and session directories and finds them again by id."""

    #: directory kind -> the folder of directories and the folder of id links
    KINDS = {"job": ("jobs", "ids"), "session": ("sessions", "session-ids")}

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._ensured: set[str] = set()  # folders made (and checked 0700) by this process
        # Job id -> directory, as the last scan of ids/ found it. A link never changes what it
        # names (``_link`` refuses), so get() need not read it again.
        self._seen: dict[str, str] = {}
        # "next" -> (pid, the next job's directory made ahead of time): prepare_spare, _create.
        # A dict, so that taking it is one step (pop) while the background thread may be adding.
        self._spare: dict[str, tuple[int, Path]] = {}
        self._spare_cleanup = False

    def _ensure(self, kind: str = "job") -> None:
        if kind in self._ensured:
            return
        self._ensured.add(kind)
        folders = self.KINDS[kind]
        for sub in (self.root, *(self.root / f for f in folders)):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
            if sub.stat().st_mode & 0o077:
                os.chmod(sub, 0o700)

    def _create(self, kind: str, spec: dict[str, Any], durable: bool = True) -> Path:
        self._ensure(kind)
        now = time.time()  # keys sort in creation order, to the microsecond
        key = (time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) +
               f"-{int(now * 1e6) % 1_000_000:06d}-{os.urandom(3).hex()}")
        path = self.root / self.KINDS[kind][0] / key
        content = {"version": SPEC_VERSION, **spec}
        spare = self._take_spare() if kind == "job" else None
        if spare is not None:
            try:
                write_json_atomic(spare / "spec.json", content, durable=durable)
                os.rename(spare, path)
                return path
            except FileNotFoundError:  # removed meanwhile: make the directory after all
                pass
        path.mkdir(mode=0o700)
        write_json_atomic(path / "spec.json", content, durable=durable)
        return path

    def prepare_spare(self, names: tuple[str, ...] = ("spec.json", "scheduler.json")) -> None:
        """Make the next job's directory ahead of time (``make_spare``), with placeholders for
        ``names``, unless one is ready. Called on the submitter's background thread while its
        sbatch runs (``JobManager.submit``); the next ``create`` in this process takes it."""
        if "next" in self._spare:
            return
        spare = make_spare(self.root / "jobs", names)
        if spare is None:
            return
        if self._spare.setdefault("next", (os.getpid(), spare))[1] != spare:
            _rmtree(spare)  # made twice at once: one is enough
        elif not self._spare_cleanup:
            self._spare_cleanup = True
            import atexit  # noqa: PLC0415 - only a process that submits in a loop needs it

            atexit.register(self._drop_spare)

    def _take_spare(self) -> Path | None:
        taken = self._spare.pop("next", None)  # one step: the background thread may be adding
        if taken is None:
            return None
        if taken[0] != os.getpid():  # made by the process this one was forked from: its own
            return None
        return taken[1]

    def _drop_spare(self) -> None:
        """At exit: remove the spare nobody took."""
        spare = self._take_spare()
        if spare is not None:
            _rmtree(spare)

    def create(self, spec: dict[str, Any], *, durable: bool = True) -> JobDir:
        """A new job directory holding ``spec``; not yet known by any id. ``durable=False``
        leaves the fsyncs to the caller (``durable.syncer``)."""
        return JobDir(self._create("job", spec, durable))

    def create_session(self, spec: dict[str, Any]) -> SessionDir:
        """A new session directory holding ``spec``; not yet known by any id."""
        return SessionDir(self._create("session", spec))

    def _link(self, kind: str, an_id: str, directory: JobDir) -> None:
        validate_job_id(an_id)
        self._ensure(kind)
        folder, index = self.KINDS[kind]
        link = self.root / index / an_id
        target = Path("..") / folder / directory.key
        try:
            os.symlink(target, link)
        except FileExistsError:
            if os.readlink(link) != str(target):
                raise QmioError(f"{kind} id {an_id} already names another {kind} in {self.root}"
                                ) from None

    def link(self, job_id: str, job: JobDir) -> None:
        """Record that ``job_id`` names ``job``. Idempotent: the batch step links too."""
        self._link("job", job_id, job)

    def link_session(self, session_id: str, session: SessionDir) -> None:
        self._link("session", session_id, session)

    def _follow(self, link: Path | str, kind: str = "job",
                existing: set[str] | None = None) -> str | None:
        """The directory ``link`` names, if it is a link of ours (``../<folder>/<key>``) to a
        directory of that kind's folder (one of ``existing``, the folder's directories, when the
        caller has listed them). One readlink, and one stat unless the folder was listed: no
        path resolution."""
        try:
            target = os.readlink(link)
        except OSError:
            return None
        folder = self.KINDS[kind][0]
        prefix = f"../{folder}/"
        key = target[len(prefix):]
        if not target.startswith(prefix) or not key or "/" in key or key.startswith("."):
            return None
        where = f"{self.root}/{folder}/{key}"
        found = os.path.isdir(where) if existing is None else key in existing
        return where if found else None

    def get(self, job_id: str) -> JobDir:
        validate_job_id(job_id)
        where = self._seen.get(job_id) or self._follow(f"{self.root}/ids/{job_id}")
        if where is None and "." in job_id:  # <session id>.<number>: inside its session
            session_id, number = job_id.rsplit(".", 1)
            try:
                job = self.get_session(session_id).job(int(number)) if number.isdigit() else None
            except JobNotFoundError:
                job = None
            if job is not None and job.path.is_dir():
                return job
        if where is None:
            raise JobNotFoundError(f"no job {job_id} in the job store {self.root}; "
                                   f"'qmio jobs' lists the jobs there")
        return JobDir(where)

    def get_session(self, session_id: str) -> SessionDir:
        try:
            validate_job_id(session_id)
        except JobNotFoundError:
            raise SessionNotFoundError(f"{session_id!r} is not a valid session id") from None
        where = self._follow(self.root / "session-ids" / session_id, "session")
        if where is None:
            raise SessionNotFoundError(f"no session {session_id} in the job store {self.root}; "
                                       f"'qmio session list' lists the sessions there")
        return SessionDir(where)

    def _ids(self, kind: str) -> list[tuple[str, str]]:
        """(id, directory) of every id of that kind whose directory exists, oldest first: one
        scan of the ids, then one of the directories (in that order: a directory is made
        before its link, so every link seen has its directory listed)."""
        folder, index = self.KINDS[kind]
        try:
            links = os.scandir(f"{self.root}/{index}")
        except (FileNotFoundError, NotADirectoryError):
            return []
        with links:
            named = [(link.name, link.path) for link in links if JOB_ID_RE.match(link.name)]
        try:
            with os.scandir(f"{self.root}/{folder}") as directories:
                existing = {entry.name for entry in directories if entry.is_dir()}
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries = []
        for an_id, link in named:
            where = self._follow(link, kind, existing)
            if where is not None:
                entries.append((an_id, where))
        if kind == "job":  # what get() would look up again, link by link
            self._seen.update(entries)
        entries.sort(key=lambda e: e[1].rsplit("/", 1)[-1])
        return entries

    def ids(self) -> Iterator[tuple[str, JobDir]]:
        """All (id, directory) pairs, oldest first (a session's jobs in their order, from the
        session's start)."""
        entries = [(where.rsplit("/", 1)[-1], an_id, JobDir(where))
                   for an_id, where in self._ids("job")]
        for _session_id, session in self.session_ids():
            for job_id in session.job_ids():
                number = int(job_id.rsplit(".", 1)[1])
                entries.append((f"{session.key}-{number:09d}", job_id, session.job(number)))
        entries.sort(key=lambda e: e[0])
        return iter([(an_id, job) for _, an_id, job in entries])

    def session_ids(self) -> list[tuple[str, SessionDir]]:
        """All (session id, directory) pairs, oldest first."""
        return [(an_id, SessionDir(path)) for an_id, path in self._ids("session")]
