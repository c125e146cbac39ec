"""The Slurm adapter that uses the command-line tools: sbatch, squeue, sacct, scancel.

Facts it rests on (Slurm 22.05, DESIGN section 3): ``squeue -t all`` shows finished jobs for
MinJobAge seconds; ``squeue -j`` with a mix of known and unknown ids lists the known ones, and
with only unknown ids exits 1 ("Invalid job id specified"); sacct answers history but lags the
live state by a few seconds, and exits 1 when accounting is disabled. So: live state from one
squeue call, and one sacct call only for jobs squeue no longer shows or that have ended (for
their exit code).

A process that submits in a loop (``backend.run`` over parameters) starts each next sbatch ahead
of time, to wait for its script on standard input (``WaitingSbatch``): its start-up is then paid
while the loop does something else, not in the next call.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import threading
import time
from typing import NamedTuple, Sequence

from ..errors import SchedulerError
from ..states import TERMINAL, SchedulerState, normalise_state
from ..store import JobDir
from .slurm import SlurmScheduler, _epoch

COMMAND_TIMEOUT = 30.0
SQUEUE_FORMAT = "%i|%T|%r|%e"
SACCT_FIELDS = "JobIDRaw,State,ExitCode,End,Reason"


class WaitingSbatch(NamedTuple):
    """An ``sbatch --parsable`` started ahead of time, waiting for its script on standard input
    (``start_waiting``), and what it was started with. Every submission runs the same command
    (the script carries all the options), so one waiting sbatch serves any of them."""

    pid: int  # the process that started it: only that one may give it a script
    process: subprocess.Popen[bytes]
    script_in: int  # the write end of its standard input
    cwd: str
    environ: dict[str, str]  # sbatch hands its environment to the job
    started: float


#: A waiting sbatch older than this is not used (it read the cluster's configuration when it
#: started): a loop that submits less often gains nothing worth that risk.
WAITING_SECONDS = 60.0

#: "next" -> this process's waiting sbatch.
_waiting: dict[str, WaitingSbatch] = {}

#: Held while a waiting sbatch's input is opened, written or closed. sbatch reads its script up
#: to the end of its input, which a copy of the write end in a forked child would hold back: so
#: a fork waits for the lock, and the child closes the copies it knows of
#: (``_after_fork_in_child``).
_lock = threading.Lock()


def start_waiting() -> None:
    """Start the next submission's sbatch now, unless one is waiting.

    sbatch spends its first millisecond or so (a quarter of its time here) loading and reading
    the cluster's configuration before it reads its script; started ahead, it does that while
    the caller is busy elsewhere, and ``submit_waiting`` then writes the script to its standard
    input. It submits nothing until it has read the whole script up to the end of its input:
    a script of at most ``PIPE_BUF`` bytes goes in one write, so it arrives whole or not at all,
    even if this process is killed (the end of the input then comes with its death). Ended
    unused (``_stop``), it submits nothing."""
    cwd, environ = _cwd(), os.environ.copy()
    with _lock:
        if "next" in _waiting or cwd is None:
            return
        script_out, script_in = os.pipe()
        try:
            process = subprocess.Popen(["sbatch", "--parsable"], stdin=script_out,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       umask=0o077, cwd=cwd, env=environ)
        except OSError:
            os.close(script_in)
            return
        finally:
            os.close(script_out)
        _waiting["next"] = WaitingSbatch(os.getpid(), process, script_in, cwd, environ,
                                         time.monotonic())


def submit_waiting(script: bytes) -> str | None:
    """sbatch's output once the waiting sbatch has submitted ``script`` (at most ``PIPE_BUF``
    bytes). None if there was none fit to use: started by this process, in this directory, with
    this environment, not long ago, and still waiting. Then nothing was submitted."""
    with _lock:
        waiting = _waiting.pop("next", None)
        if waiting is None or waiting.pid != os.getpid():
            return None
        if (waiting.process.poll() is not None or waiting.cwd != _cwd()
                or time.monotonic() - waiting.started > WAITING_SECONDS
                or waiting.environ != os.environ):
            _stop(waiting)
            return None
        try:
            os.write(waiting.script_in, script)  # whole or nothing: a pipe, at most PIPE_BUF
        except OSError:  # it ended before reading anything
            _stop(waiting)
            return None
        os.close(waiting.script_in)
    try:
        stdout, stderr = waiting.process.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        waiting.process.kill()
        waiting.process.communicate()
        raise SchedulerError(f"sbatch did not answer in {COMMAND_TIMEOUT:g} s; "
                             f"slurmctld may be overloaded") from None
    _check("sbatch", waiting.process.returncode, stderr.decode(errors="replace"))
    return stdout.decode(errors="replace")


def stop_waiting() -> None:
    """End this process's waiting sbatch, if there is one (at exit)."""
    with _lock:
        waiting = _waiting.pop("next", None)
        if waiting is not None and waiting.pid == os.getpid():
            _stop(waiting)


def _cwd() -> str | None:
    """This process's directory; None if it was removed."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _stop(waiting: WaitingSbatch) -> None:
    """End a waiting sbatch that will not be given a script: it has read nothing, so it submits
    nothing."""
    waiting.process.kill()
    os.close(waiting.script_in)
    waiting.process.communicate()


def _after_fork_in_child() -> None:
    for waiting in _waiting.values():
        os.close(waiting.script_in)
    _waiting.clear()
    _lock.release()


atexit.register(stop_waiting)
os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release,
                    after_in_child=_after_fork_in_child)


def _check(command: str, returncode: int, stderr: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    if returncode not in ok_codes:
        message = " ".join(stderr.split()) or f"exit code {returncode}"
        raise SchedulerError(f"{command} failed: {message}")


class SlurmCLIScheduler(SlurmScheduler):
    adapter = "command-line tools"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._accounting: bool | None = None  # unknown until sacct is first tried
        self.calls: list[str] = []  # commands run, in order (tests count them)

    def _run(self, argv: Sequence[str], *, ok_codes: tuple[int, ...] = (0,),
             umask: int = -1) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv[0])
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True,
                                 timeout=COMMAND_TIMEOUT, umask=umask)
        except FileNotFoundError:
            raise SchedulerError(f"{argv[0]} is not installed; is Slurm available here?") from None
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"{argv[0]} did not answer in {COMMAND_TIMEOUT:g} s; "
                                 f"slurmctld may be overloaded") from None
        _check(argv[0], out.returncode, out.stderr, ok_codes)
        return out

    def _submit_script(self, script: str, job: JobDir) -> str:
        data = script.encode()
        stdout = submit_waiting(data) if len(data) <= select.PIPE_BUF else None
        if stdout is not None:
            self.calls.append("sbatch")
        else:
            # sbatch hands its umask to the job: slurm.out/err are then the user's alone.
            stdout = self._run(["sbatch", "--parsable", str(job.file("job.sbatch"))],
                               umask=0o077).stdout
        job_id = stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch gave no job id: {stdout.strip()!r}")
        return job_id

    def prepare_next(self) -> None:
        """The next sbatch is started now and waits for its script (``start_waiting``)."""
        start_waiting()

    def _query(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        found = self._squeue(job_ids)
        history = [i for i in job_ids
                   if i not in found or normalise_state(found[i].state) in TERMINAL]
        if history and self._accounting is not False:
            for job_id, state in self._sacct(history).items():
                live = found.get(job_id)
                if live is None:
                    found[job_id] = state
                else:  # squeue's state is current; sacct adds the exit code
                    found[job_id] = SchedulerState(job_id, live.state, live.reason,
                                                   state.exit_code, live.ended_at or state.ended_at)
        return found

    def _squeue(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        out = self._run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids),
                         "-o", SQUEUE_FORMAT], ok_codes=(0, 1))
        if out.returncode == 1:
            if "Invalid job id" in out.stderr:
                return {}
            raise SchedulerError(f"squeue failed: {' '.join(out.stderr.split())}")
        states: dict[str, SchedulerState] = {}
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) != 4:
                continue
            job_id, state, reason, end = parts
            terminal = normalise_state(state) in TERMINAL
            states[job_id] = SchedulerState(job_id, state, "" if reason == "None" else reason,
                                            "", _epoch(end) if terminal else None)
        return states

    def _sacct(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        out = self._run(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids),
                         "-o", SACCT_FIELDS], ok_codes=(0, 1))
        if out.returncode == 1:
            if "accounting storage is disabled" in out.stderr.lower():
                self._accounting = False
                return {}
            raise SchedulerError(f"sacct failed: {' '.join(out.stderr.split())}")
        self._accounting = True
        states: dict[str, SchedulerState] = {}
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) != 5:
                continue
            job_id, state, exit_code, end, reason = parts
            states[job_id] = SchedulerState(job_id, normalise_state(state),
                                            "" if reason == "None" else reason, exit_code,
                                            _epoch(end))
        return states

    def _cancel(self, job_ids: list[str]) -> None:
        self._run(["scancel", *job_ids])
