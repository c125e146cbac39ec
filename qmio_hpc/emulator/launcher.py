"""Start the built-in emulator on demand, or reuse the one already listening.

The batch step calls ``ensure_emulator`` when the endpoint is ``emulator``; it runs wherever the
step runs (this host for the local executor, the compute node under Slurm), so the emulator binds
loopback and the step reaches it there. A lock keeps two steps from starting two emulators.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time

from ..connection import Connection
from ..errors import EndpointUnreachableError
from ..transport import QPUClient

START_TIMEOUT = 60.0


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers(endpoint: str) -> bool:
    try:
        with QPUClient(endpoint, connect_timeout=1.0, reply_timeout=5.0, retries=0) as client:
            client.version()
        return True
    except Exception:
        return False


def ensure_emulator(connection: Connection) -> str:
    """Return the endpoint of a running emulator on 127.0.0.1, starting one if needed, with the
    options ``connection`` names."""
    port, endpoint = connection.emulator_port, connection.address
    if listening(port):
        return endpoint
    folder = connection.emulator_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = os.open(folder / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if listening(port):
            return endpoint
        log_path = folder / f"{port}.log"
        with open(log_path, "ab") as log:
            os.chmod(log_path, 0o600)
            proc = subprocess.Popen(
                [sys.executable, "-m", "qmio_hpc", "emulator", "--bind", endpoint,
                 "--idle-exit", str(connection.emulator_idle_exit)]
                + (["--time-model"] if connection.emulator_time_model else [])
                + (["--noise"] if connection.emulator_noise else []),
                # cwd "/": not a directory someone may delete under it (a job's or a store's)
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                cwd="/", close_fds=True)
        (folder / f"{port}.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise EndpointUnreachableError(
                    f"the built-in emulator for {endpoint} exited at start (code "
                    f"{proc.returncode}): {' '.join(tail) or 'no output'}; log in {log_path}",
                    endpoint)
            if _answers(endpoint):
                return endpoint
            time.sleep(0.2)
        raise EndpointUnreachableError(
            f"the built-in emulator for {endpoint} did not answer within {START_TIMEOUT:g} s; "
            f"log in {log_path}", endpoint)
    finally:
        os.close(lock_fd)
