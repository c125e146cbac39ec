"""A first-come-first-served queue kept as files in one directory: oldest name first.

Two users, one shape:

* the local executor: each allocation adds a ticket named by its submission time, holding its
  command, and the store's queue owner (``scheduler.local_runner``) serves them in name order;
* a session: each job submitted into it adds an entry named by its sequence number, and the
  session's worker serves the entries in name order (``entries``).

A file per entry, created atomically, means any process on any node that mounts the directory can
add to the queue without a server, and a reader never sees half an entry.
"""

from __future__ import annotations

import os
from pathlib import Path


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
        tmp = self.directory / f".{name}.{os.urandom(4).hex()}.tmp"
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
