"""A first-come-first-served queue kept as files in one directory: oldest name first.

Two users, one shape:

* the local executor: each runner adds a ticket named by its submission time and holding its pid,
  locks it for its lifetime (``hold``), and waits until its ticket is the oldest one whose runner
  is alive (``wait_turn``), asleep on the lock of the one ahead;
* a session: each job submitted into it adds an entry named by its sequence number, and the
  session's worker serves the entries in name order (``entries``).

A file per entry, created atomically, means any process on any node that mounts the directory can
add to the queue without a server, and a reader never sees half an entry.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from pathlib import Path
from typing import Callable

POLL_SECONDS = 0.1
#: An entry whose owner has not written its pid after this long is taken as abandoned.
START_GRACE = 30.0


def pid_alive(pid: int | None) -> bool:
    """The process exists and is not a zombie (on this host)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class FifoQueue:
    """The entries of ``directory``, served in the order of their names."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def add(self, name: str, content: str = "", made: Path | None = None) -> Path:
        """Create entry ``name`` holding ``content``, whole or not at all (an empty entry is
        whole the moment it exists). ``made``: an empty file made ahead of time on the same
        filesystem, renamed into place if it exists, so that no file is created now (the caller
        makes sure ``name`` is new: a rename would replace an entry)."""
        path = self.directory / name
        if made is not None and not content:
            try:
                os.rename(made, path)
                return path
            except FileNotFoundError:
                pass
        if not content:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:  # the first entry creates the directory
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            return path
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, content.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return path

    def entries(self) -> list[Path]:
        """Every entry, oldest name first (temporary files of writers excluded)."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if not n.startswith("."))
        except FileNotFoundError:
            return []
        return [self.directory / n for n in names]

    def remove(self, entry: Path) -> None:
        entry.unlink(missing_ok=True)

    def hold(self, entry: Path) -> int:
        """Lock ``entry`` for as long as its owner lives (the returned descriptor stays open):
        whoever waits behind it sleeps on that lock (``wait_turn``), and the kernel releases it
        when the owner exits, however it exits."""
        fd = os.open(entry, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def wait_turn(self, entry: Path, alive: Callable[[Path], bool] | None = None) -> None:
        """Block until ``entry`` is the oldest entry whose owner is ``alive``; entries of dead
        owners are removed on the way.

        No polling while the owner ahead holds its entry (``hold``): this sleeps on that lock,
        and wakes when it is released. Only an owner that has not taken its lock yet (it is
        starting) is looked at again, every ``POLL_SECONDS``."""
        alive = alive or ticket_alive
        while True:
            ahead = None
            for other in self.entries():
                if other == entry:
                    return
                if alive(other):
                    ahead = other
                    break
                self.remove(other)
            if ahead is not None and not _sleep_on(ahead):
                time.sleep(POLL_SECONDS)  # its owner is starting: it holds no lock yet


def _sleep_on(entry: Path) -> bool:
    """Wait until ``entry``'s owner lets go of it; False at once if nobody holds it (yet)."""
    try:
        fd = os.open(entry, os.O_RDONLY)
    except FileNotFoundError:
        return True  # gone: look again
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False  # nobody holds it
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)  # sleeps until the owner ends
            return True
    finally:
        os.close(fd)


def ticket_alive(ticket: Path) -> bool:
    """A local runner's ticket holds its pid: alive while that process is, or while it is young
    and still empty (its runner has not started yet)."""
    try:
        text = ticket.read_text().strip()
        age = time.time() - ticket.stat().st_mtime
    except FileNotFoundError:
        return False
    if not text:
        return age < START_GRACE
    return text.isdigit() and pid_alive(int(text))
