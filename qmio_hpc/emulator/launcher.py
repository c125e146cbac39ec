"""Start the built-in emulator on demand, or reuse the one already listening, if it is yours.

The batch step calls ``ensure_emulator`` when the endpoint is ``emulator``; it runs wherever the
step runs (this host for the local executor, the compute node under Slurm), so the emulator binds
loopback and the step reaches it there. A lock keeps two steps from starting two emulators.

Loopback is shared by every user of the host, so the emulator is private (``--private``): it
holds a CURVE key pair from the job store (the owner's alone) and admits only the store's client
key. A job uses whatever listens on the port only after the handshake proves it is that emulator:
another user's process there cannot answer a user's jobs.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..channel import client_keys, create_keys
from ..connection import Connection
from ..errors import EndpointTimeoutError, EndpointUnreachableError
from ..transport import QPUClient

START_TIMEOUT = 60.0


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on ``port``. With the C module ``_socket``: ``socket``
    and the launcher's other imports (subprocess, tempfile) cost a batch step ~10 ms of its
    start, and a step whose emulator is running needs only this."""
    import _socket  # noqa: PLC0415

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
    except OSError:
        return False
    finally:
        sock.close()


def emulator_keys(connection: Connection) -> Path:
    """The store's emulator keys (``channel.create_keys``), created once, whole: in a private
    directory that is renamed into place, so a concurrent starter sees all of them or none."""
    keys = connection.emulator_keys
    if not (keys / "client.key_secret").exists():
        import shutil  # noqa: PLC0415 - once per store
        import tempfile  # noqa: PLC0415

        keys.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=".keys-", dir=keys.parent))  # empty, 0700
        create_keys(fresh)
        try:
            os.rename(fresh, keys)
        except OSError:  # another process won: use its keys
            shutil.rmtree(fresh, ignore_errors=True)
    return keys


#: What ``_answers`` gives for this store's emulator when it is busy with a program: the CURVE
#: handshake proved it is ours, but its version answer waits behind that program.
BUSY: dict[str, Any] = {}


def _answers(endpoint: str, keys: Path) -> dict[str, Any] | None:
    """The version answer of this store's emulator there, ``BUSY``, or None if what listens
    there is not it. The handshake is the proof: with CURVE, a request goes out only on a
    connection whose server showed it holds the store's emulator key."""
    try:
        with QPUClient(endpoint, connect_timeout=2.0, reply_timeout=5.0, retries=0,
                       curve=client_keys(keys)) as client:
            return client.version()
    except EndpointTimeoutError:  # connected (so it is ours), no answer yet: it is working
        return BUSY
    except Exception:
        return None


def _describe(options: dict[str, Any]) -> str:
    flags = [f"--{name.replace('_', '-')}" for name in ("time_model", "noise") if options[name]]
    return " ".join(flags) or "no --time-model and no --noise"


def _owned(connection: Connection, keys: Path) -> bool:
    """Something listens on the port: it is used only if it proves to be this store's emulator,
    running with the options the job asks for. Anything else is refused, never used."""
    version = _answers(connection.address, keys)
    if version is None:
        raise EndpointUnreachableError(
            f"port {connection.emulator_port} on this host is taken by a process that is not "
            f"your built-in emulator (it cannot prove it holds your store's emulator key); stop "
            f"it, or set 'emulator_port' to a free port", connection.address)
    if version is BUSY:  # ours; its options are checked when it is free to answer
        return True
    wanted = {"time_model": connection.emulator_time_model, "noise": connection.emulator_noise}
    said = version.get("emulator")
    running = {k: bool(said.get(k)) for k in wanted} if isinstance(said, dict) else None
    if running != wanted:
        raise EndpointUnreachableError(
            f"your emulator on port {connection.emulator_port} runs with "
            f"{_describe(running or dict.fromkeys(wanted, False))}, but this job asks for "
            f"{_describe(wanted)} (settings emulator_time_model, emulator_noise); stop that "
            f"emulator, use the same settings, or another 'emulator_port'", connection.address)
    return True


def ensure_emulator(connection: Connection) -> str:
    """Return the endpoint of this store's emulator on 127.0.0.1, starting one if needed, with
    the options ``connection`` names."""
    port, endpoint = connection.emulator_port, connection.address
    keys = emulator_keys(connection)
    if listening(port) and _owned(connection, keys):
        return endpoint
    folder = connection.emulator_dir
    lock_fd = os.open(folder / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if listening(port) and _owned(connection, keys):
            return endpoint
        log_path = folder / f"{port}.log"
        import subprocess  # noqa: PLC0415 - only to start one
        with open(log_path, "ab") as log:
            os.chmod(log_path, 0o600)
            proc = subprocess.Popen(
                [sys.executable, "-m", "qmio_hpc", "--store", connection.store, "emulator",
                 "--private", "--bind", endpoint,
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
            if _answers(endpoint, keys) is not None:
                return endpoint
            time.sleep(0.2)
        raise EndpointUnreachableError(
            f"the built-in emulator for {endpoint} did not answer within {START_TIMEOUT:g} s; "
            f"log in {log_path}", endpoint)
    finally:
        os.close(lock_fd)
