"""The detached process behind one local job: wait for the QPU, run the batch step, record the end.

Run as ``python -m qmio_hpc.scheduler.local_runner JOB_DIR TICKET LOCK``. It forks at once and the
first process exits, so the runner is reparented away from whoever submitted the job. It imports
nothing heavy: it only queues, runs ``python -m qmio_hpc.step`` and writes ``local.json``.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..store import JobDir, read_json, write_json_atomic

POLL_SECONDS = 0.1
TICKET_START_GRACE = 30.0


def _ticket_alive(ticket: Path) -> bool:
    from .local import pid_alive
    try:
        text = ticket.read_text().strip()
        age = time.time() - ticket.stat().st_mtime
    except FileNotFoundError:
        return False
    if not text:  # its runner has not started yet
        return age < TICKET_START_GRACE
    return pid_alive(int(text))


def _wait_for_turn(ticket: Path) -> None:
    """Block until ``ticket`` is the oldest ticket whose runner is alive."""
    while True:
        for other in sorted(ticket.parent.iterdir()):
            if other == ticket:
                return
            if other.name.startswith(".") or _ticket_alive(other):
                break
            other.unlink(missing_ok=True)  # a dead runner's ticket
        time.sleep(POLL_SECONDS)


def run(job_dir: Path, ticket: Path, lock_path: Path) -> int:
    job = JobDir(job_dir)
    record = read_json(job.file("local.json")) or {}
    info = {**record, "pid": os.getpid(), "pgid": os.getpgid(0)}
    write_json_atomic(job.file("local.json"), {**info, "phase": "queued"})
    ticket.write_text(str(os.getpid()))
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
        _wait_for_turn(ticket)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if job.is_cancelled():
            code = -signal.SIGTERM
            return code
        write_json_atomic(job.file("local.json"),
                          {**info, "phase": "running", "started": time.time()})
        with open(job.file("step.out"), "ab") as out, open(job.file("step.err"), "ab") as err:
            os.chmod(job.file("step.out"), 0o600)
            os.chmod(job.file("step.err"), 0o600)
            child = subprocess.Popen([sys.executable, "-m", "qmio_hpc.step", str(job_dir)],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err)
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
        write_json_atomic(job.file("local.json"),
                          {**info, "phase": "finished", "exit_code": code, "ended": time.time()})
        ticket.unlink(missing_ok=True)
        os.close(lock_fd)


def main(argv: list[str]) -> int:
    job_dir, ticket, lock = (Path(a) for a in argv[1:4])
    if os.fork() != 0:
        return 0  # the submitter reaps this process at once; the child carries on
    os.umask(0o077)
    sys.stdin.close()
    run(job_dir, ticket, lock)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
