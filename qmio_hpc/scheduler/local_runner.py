"""The detached process behind one local allocation: wait for the QPU, run the command, record the end.

Run as ``python -m qmio_hpc.scheduler.local_runner DIR TICKET LOCK -- ARG...``: it waits its turn
in the first-come-first-served queue of tickets (``fifo``), holds the QPU lock, and runs
``python ARG...`` in ``DIR`` (the batch step of one job, or a session's worker), writing
``DIR/local.json`` as it goes. The submitter starts it in the background of a shell that exits at
once (``LocalScheduler.submit_command``), so the runner is reparented away from whoever submitted
it and leaves no zombie behind. It imports nothing heavy.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..fifo import FifoQueue
from ..store import read_json, write_json_atomic


def _die_with(parent: int) -> Callable[[], None]:
    """For the child, between fork and exec: be killed when this runner dies (Linux
    PR_SET_PDEATHSIG). A runner that is gone is taken as a failed allocation (NODE_FAIL), and
    a step that outlived it could still write a result after that, changing a final status."""
    def setup() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return  # no prctl here: the step outlives a killed runner, as before
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)
    return setup


_PR_SET_PDEATHSIG = 1


def run(directory: Path, ticket: Path, lock_path: Path, args: list[str]) -> int:
    state_file = directory / "local.json"
    record = read_json(state_file) or {}
    info = {**record, "pid": os.getpid(), "pgid": os.getpgid(0)}
    write_json_atomic(state_file, {**info, "phase": "queued"})
    ticket.write_text(str(os.getpid()))
    queue = FifoQueue(ticket.parent)
    held = queue.hold(ticket)  # released when this process ends: the next runner wakes
    child: subprocess.Popen[bytes] | None = None
    code = 1

    def on_term(signum: int, _frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        queue.wait_turn(ticket)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if (directory / "cancelled").exists():
            code = -signal.SIGTERM
            return code
        write_json_atomic(state_file, {**info, "phase": "running", "started": time.time()})
        out_path, err_path = directory / "local.out", directory / "local.err"
        with open(out_path, "ab") as out, open(err_path, "ab") as err:
            os.chmod(out_path, 0o600)
            os.chmod(err_path, 0o600)
            child = subprocess.Popen([sys.executable, *args], cwd=directory,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     preexec_fn=_die_with(os.getpid()))
            code = child.wait()
        return code
    except SystemExit as exc:
        if child is not None:
            try:
                code = child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
        else:
            code = -signal.SIGTERM if exc.code == 128 + signal.SIGTERM else -signal.SIGINT
        return code
    finally:
        write_json_atomic(state_file,
                          {**info, "phase": "finished", "exit_code": code, "ended": time.time()})
        ticket.unlink(missing_ok=True)
        os.close(held)
        os.close(lock_fd)


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[4] != "--":
        print("usage: python -m qmio_hpc.scheduler.local_runner DIR TICKET LOCK -- ARG...",
              file=sys.stderr)
        return 2
    directory, ticket, lock = (Path(a) for a in argv[1:4])
    os.umask(0o077)
    sys.stdin.close()
    run(directory, ticket, lock, argv[5:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
