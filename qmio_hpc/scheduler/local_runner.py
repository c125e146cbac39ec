"""The local executor's queue owner: one resident process per job store that runs the store's
local allocations one at a time, first come first served.

Run as ``python -m qmio_hpc.scheduler.local_runner LOCAL_DIR`` (``LocalScheduler`` starts it when
a ticket is queued and none is running, in the background of a shell that exits at once, so it
is nobody's child). It holds ``LOCAL_DIR/owner.lock`` while it lives (there is never a second
one) and keeps the named pipe ``LOCAL_DIR/wake`` open: a submitter writes a byte there to wake it,
and a submitter whose open fails with ENXIO knows that no owner is alive.

For each ticket, oldest first, it takes the QPU lock and runs the allocation's command (``-m
qmio_hpc.step DIR``: one job's batch step, or ``-m qmio_hpc.worker DIR``: a session's worker) in
a forked child of itself, without exec: the owner imported those modules once, so a job costs a
fork, not a fresh Python and its imports (that was ~200 ms of CPU per job, the bound on how fast
the local executor went under load). The child is killed when the owner dies (Linux
PR_SET_PDEATHSIG): an owner gone is a failed allocation, and a step that outlived it could write
a result after the job was declared lost. It writes ``DIR/local.json`` (queued, running, finished
with the exit code) for ``LocalScheduler.states``. With no ticket for ``LINGER`` seconds it exits,
deciding that under the queue lock so that no ticket is left without an owner.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import importlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from ..fifo import FifoQueue
from ..store import read_json, write_json_atomic

#: Seconds the owner stays without work before it exits.
LINGER = 15.0
#: Seconds between looks at the queue directory while idle, in case a wake-up byte was lost.
RESCAN = 1.0
#: The commands the owner runs: ``-m`` one of these modules (a ticket is data, not a program).
MODULES = ("qmio_hpc.step", "qmio_hpc.worker")

_PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def queue_lock(local_dir: Path) -> Iterator[None]:
    """Held while a ticket is added and the owner's presence checked, and while the owner decides
    to exit: so a ticket is never added just as the last owner leaves."""
    fd = os.open(local_dir / "queue.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def wake(local_dir: Path) -> bool:
    """Nudge the owner; False if there is none (nobody has the wake pipe open to read)."""
    try:
        fd = os.open(local_dir / "wake", os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise
    try:
        os.write(fd, b"w")
    except BlockingIOError:
        pass  # the pipe is full of wake-ups already
    finally:
        os.close(fd)
    return True


def _exit_code(status: int) -> int:
    """A wait status as the runner reports it: the exit code, or minus the signal."""
    return os.waitstatus_to_exitcode(status)


class Owner:
    """The resident process that serves the tickets of ``local_dir/queue``."""

    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir
        self.queue = FifoQueue(local_dir / "queue")
        self.child = 0  # the running allocation's pid, while there is one
        self.stopping = False

    # -- the owner's life -------------------------------------------------------------------------

    def serve(self) -> int:
        lock_fd = self._take_ownership()
        if lock_fd is None:
            return 0  # another owner serves this queue
        wake_path = self.local_dir / "wake"
        with contextlib.suppress(FileExistsError):
            os.mkfifo(wake_path, 0o600)
        wake_fd = os.open(wake_path, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never an EOF
        (self.local_dir / "owner.pid").write_text(str(os.getpid()))
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        qpu_fd = os.open(self.local_dir / "qpu.lock", os.O_RDWR | os.O_CREAT, 0o600)
        # Imported once here, not in every job's child (nor by submitters, who import this
        # module for queue_lock and wake):
        import ctypes  # noqa: F401,PLC0415 - the children's prctl
        import select  # noqa: PLC0415

        import qmio_hpc.step  # noqa: F401,PLC0415
        import qmio_hpc.worker  # noqa: F401,PLC0415
        idle_since = time.monotonic()
        try:
            while not self.stopping:
                tickets = self.queue.entries()
                if tickets:
                    self._run(tickets[0], qpu_fd, (lock_fd, wake_fd, qpu_fd))
                    idle_since = time.monotonic()
                    continue
                if time.monotonic() - idle_since >= LINGER and self._leave(wake_fd):
                    return 0
                with contextlib.suppress(InterruptedError):
                    select.select([wake_fd], [], [], RESCAN)
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_fd, 4096)
        except FileNotFoundError:
            return 0  # the store was removed underneath
        return 0

    def _take_ownership(self) -> int | None:
        """``owner.lock``, or None when another owner holds it. Tried for a moment: a submitter
        may be holding it for the blink of a check."""
        fd = os.open(self.local_dir / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        for _ in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                time.sleep(0.01)
        os.close(fd)
        return None

    def _leave(self, wake_fd: int) -> bool:
        """Exit if the queue is still empty once submitters are kept out; a submitter after us
        finds no reader on the wake pipe and starts a new owner."""
        with queue_lock(self.local_dir):
            if self.queue.entries():
                return False
            os.close(wake_fd)  # from now on a submitter sees no owner
            return True

    def _on_term(self, signum: int, _frame: object) -> None:
        """Stop after the running allocation, which is told to stop too; tickets left wait for
        the next owner."""
        self.stopping = True
        if self.child:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child, signum)

    # -- one allocation ---------------------------------------------------------------------------

    def _run(self, ticket: Path, qpu_fd: int, inherited: tuple[int, ...]) -> None:
        order = _read_ticket(ticket)
        if order is None:  # not a ticket of ours: never run it
            self.queue.remove(ticket)
            return
        directory, args = Path(order["dir"]), order["args"]
        state_file = directory / "local.json"
        info: dict[str, Any] = {**(read_json(state_file) or {}), "pid": os.getpid()}
        code = -signal.SIGTERM
        try:
            if (directory / "cancelled").exists():
                return
            fcntl.flock(qpu_fd, fcntl.LOCK_EX)
            self.child = _start(directory, args, inherited)
            info.update(phase="running", pgid=self.child, child=self.child, started=time.time())
            write_json_atomic(state_file, info, durable=False)
            if (directory / "cancelled").exists():  # cancelled as it started: the canceller
                with contextlib.suppress(ProcessLookupError):  # may have read "queued"
                    os.killpg(self.child, signal.SIGTERM)
            while True:
                try:
                    _, status = os.waitpid(self.child, 0)
                    break
                except InterruptedError:
                    continue
            code = _exit_code(status)
        finally:
            self.child = 0
            with contextlib.suppress(FileNotFoundError):
                write_json_atomic(state_file, {**info, "phase": "finished", "exit_code": code,
                                               "ended": time.time()})
            self.queue.remove(ticket)
            fcntl.flock(qpu_fd, fcntl.LOCK_UN)


def _read_ticket(ticket: Path) -> dict[str, Any] | None:
    try:
        order = json.loads(ticket.read_text())
    except (OSError, ValueError):
        return None
    args = order.get("args") if isinstance(order, dict) else None
    if (not isinstance(args, list) or len(args) < 2 or args[0] != "-m" or args[1] not in MODULES
            or not all(isinstance(a, str) for a in args) or not isinstance(order.get("dir"), str)):
        return None
    return order


def _start(directory: Path, args: list[str], inherited: tuple[int, ...]) -> int:
    """Fork the child that runs ``python ARG...`` in ``directory``; its pid (and group id)."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        with contextlib.suppress(PermissionError, ProcessLookupError):
            os.setpgid(pid, pid)  # also in the child: whichever runs first
        return pid
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: a cancel signals the step, never the owner
        try:
            import ctypes  # noqa: PLC0415 - the owner has it loaded (serve)
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # no prctl here: the child outlives a killed owner
        if os.getppid() != parent:  # the owner died before prctl took effect
            os._exit(1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        os.chdir(directory)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(directory / "local.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        err = os.open(directory / "local.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for source, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(source, target)
            os.close(source)
        sys.argv = [args[1], *args[2:]]
        try:
            # The module's main(), as ``python -m`` would run it, minus the import: the owner
            # has the module loaded already (serve)
            code = importlib.import_module(args[1]).main(sys.argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a crash of the child is its exit code, and a trace
        import traceback  # noqa: PLC0415
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # no interpreter teardown: the job is over, its files are written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m qmio_hpc.scheduler.local_runner LOCAL_DIR", file=sys.stderr)
        return 2
    os.umask(0o077)
    sys.stdin.close()
    return Owner(Path(argv[1])).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
