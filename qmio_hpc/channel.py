"""The fast channel between a session's worker and its clients: ZMQ, CURVE, JSON.

The job store stays the record of every job; the channel only makes things quick: a client tells
the worker that it queued a job (so the worker need not wait for its next look at the queue), and
the worker tells a waiting client the moment a job is final. Nothing is lost without it: a client
that cannot reach the channel (a firewall between login and compute nodes) falls back to the
files, and the worker watches its queue directory anyway.

Security, since the worker listens on a compute node that other users share:

* always CURVE: encrypted, and both ends authenticated. A client knows the worker's public key from
  the session directory, so nothing else can stand in for the worker; the worker accepts only the
  session's client key (a ZAP handler in the worker's own loop checks it), and that key's secret
  half is in the session directory, which only its owner can read;
* messages are JSON objects of bounded size, never pickles;
* keys are written 0600 in a 0700 directory, and read only from a directory that is the user's
  alone.

Messages (client -> worker, each an object with ``op``):
``queued`` with ``entry``, ``job`` and ``id`` (a job is in the queue, and this client waits for
it: the reply ``{"id", "final": {job: "final"}}`` comes when it is final, or after a minute with
``final`` empty), ``wait`` with ``id``, ``jobs`` and ``timeout`` (the same reply, when one of the
jobs is final or at the timeout: a heartbeat), ``close`` / ``cancel`` (look at the session's marks
now; no reply).
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any, Callable

import zmq
import zmq.utils.z85

from .errors import QmioError

#: Largest message either side accepts.
MAX_MESSAGE = 64 * 1024
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
#: How long a client waits for the handshake with a worker before it uses the files instead.
CONNECT_TIMEOUT = 1.0


class ChannelError(QmioError):
    """The channel cannot be set up here (no CURVE in this pyzmq, unsafe key files)."""


def require_curve() -> None:
    if not zmq.has("curve"):
        raise ChannelError("this pyzmq has no CURVE support, and a session's channel is never "
                           "left unencrypted; install pyzmq from its wheels (they bundle "
                           "libsodium)")


# -- keys -----------------------------------------------------------------------------------------

def create_keys(keys_dir: Path) -> None:
    """A key pair for the worker and one for the session's clients, owner-only."""
    require_curve()
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    for name in ("worker", "client"):
        public, secret = zmq.curve_keypair()
        for suffix, key in ((".key", public), (".key_secret", secret)):
            fd = os.open(keys_dir / f"{name}{suffix}", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600)
            try:
                os.write(fd, key)
            finally:
                os.close(fd)


def read_key(keys_dir: Path, name: str) -> bytes:
    """A key from ``keys_dir``, which must be owned by this user and closed to everyone else."""
    info = keys_dir.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise ChannelError(f"refusing the keys in {keys_dir}: the directory must be yours alone "
                           f"(mode 0700)")
    key = (keys_dir / name).read_bytes().strip()
    if len(key) != 40:
        raise ChannelError(f"{keys_dir / name} is not a CURVE key")
    return key


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(frame: bytes) -> dict[str, Any] | None:
    """The message, or None for anything that is not a JSON object of bounded size."""
    if len(frame) > MAX_MESSAGE:
        return None
    try:
        message = json.loads(frame)
    except (UnicodeDecodeError, ValueError):
        return None
    return message if isinstance(message, dict) else None


# -- the worker's end ------------------------------------------------------------------------------

def client_keys(keys_dir: Path) -> tuple[bytes, bytes, bytes]:
    """(server public, client public, client secret): what a client needs to reach the holder of
    the server's secret key, and nobody else."""
    require_curve()
    return (read_key(keys_dir, "worker.key"), read_key(keys_dir, "client.key"),
            read_key(keys_dir, "client.key_secret"))


def use_client_keys(sock: zmq.Socket, keys: tuple[bytes, bytes, bytes]) -> None:
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = keys


class CurveGate:
    """The server side of an owner-only socket: CURVE with the server's key pair from
    ``keys_dir`` (so clients know they reached its holder) and a ZAP handler in ``context`` that
    admits the one client key there and refuses every other. The server polls ``zap`` and calls
    ``handle`` when it is readable."""

    def __init__(self, context: zmq.Context, keys_dir: Path, domain: bytes) -> None:
        require_curve()
        self._client_key = read_key(keys_dir, "client.key")
        self._server_keys = (read_key(keys_dir, "worker.key"),
                             read_key(keys_dir, "worker.key_secret"))
        self.domain = domain
        self.zap = context.socket(zmq.REP)
        self.zap.linger = 0
        self.zap.bind(ZAP_ENDPOINT)
        self.refused = 0  # handshakes refused, for the record

    def secure(self, sock: zmq.Socket) -> None:
        """Make ``sock`` (before it binds) a CURVE server behind this gate."""
        sock.curve_server = True
        sock.curve_publickey, sock.curve_secretkey = self._server_keys
        sock.zap_domain = self.domain

    def handle(self) -> None:
        """Answer one ZAP request: 200 for the owner's client key, 400 for anything else."""
        frames = self.zap.recv_multipart()
        version, request_id = frames[0], frames[1]
        mechanism = frames[5] if len(frames) > 5 else b""
        key = frames[6] if len(frames) > 6 else b""
        ok = mechanism == b"CURVE" and zmq.utils.z85.encode(key) == self._client_key
        if not ok:
            self.refused += 1
        self.zap.send_multipart([version, request_id, b"200" if ok else b"400",
                                 b"OK" if ok else b"not the owner's key", b"", b""])

    def close(self) -> None:
        self.zap.close(linger=0)


class ChannelServer:
    """A ROUTER socket with CURVE, behind a gate that admits the session's client key only.

    Both sockets are polled by the worker's loop (``sockets``), which calls ``handle_zap`` and
    ``receive`` when they are readable; ``reply`` answers a client later, by its identity."""

    def __init__(self, context: zmq.Context, keys_dir: Path, host: str) -> None:
        self.gate = CurveGate(context, keys_dir, b"qmio-session")
        self.zap = self.gate.zap
        self.socket = context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.gate.secure(self.socket)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        port = self.socket.bind_to_random_port(f"tcp://{host}")
        self.address = f"tcp://{host}:{port}"

    @property
    def refused(self) -> int:
        return self.gate.refused

    @property
    def sockets(self) -> list[zmq.Socket]:
        return [self.zap, self.socket]

    def handle_zap(self) -> None:
        self.gate.handle()

    def receive(self) -> tuple[bytes, dict[str, Any]] | None:
        """One (client identity, message); None for a malformed one (dropped)."""
        frames = self.socket.recv_multipart()
        if len(frames) != 2:
            return None
        message = decode(frames[1])
        return None if message is None else (frames[0], message)

    def reply(self, identity: bytes, message: dict[str, Any]) -> None:
        try:
            self.socket.send_multipart([identity, encode(message)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the client went away: it reads the job store instead

    def close(self) -> None:
        self.socket.close(linger=0)
        self.gate.close()


# -- a client's end --------------------------------------------------------------------------------

class ChannelClient:
    """A DEALER socket to one worker. Sends never block: with no connection (the worker not up
    yet, or unreachable) ``send`` returns False and the caller relies on the files."""

    def __init__(self, address: str, keys_dir: Path,
                 context: zmq.Context | None = None) -> None:
        require_curve()
        self.address = address
        self.socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.immediate = True  # queue nothing while there is no connection
        use_client_keys(self.socket, client_keys(keys_dir))
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        self.socket.connect(address)
        # With IMMEDIATE, nothing can be sent before the CURVE handshake is done (about a
        # millisecond on one network); a worker that is not there in this time is out of reach.
        if not self.socket.poll(int(CONNECT_TIMEOUT * 1000), zmq.POLLOUT):
            self.socket.close(linger=0)
            raise ChannelError(f"no connection to the session's worker at {address} within "
                               f"{CONNECT_TIMEOUT:g} s")
        self._next = 0
        self._early: dict[int, dict[str, Any]] = {}  # answers received, by request id
        self._registered: dict[str, int] = {}  # job -> the request that awaits it

    def send(self, message: dict[str, Any]) -> bool:
        try:
            self.socket.send(encode(message), zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def queued(self, job_id: str, entry: str) -> bool:
        """Tell the worker a job is in its queue (naming its entry), and ask in the same message
        to be told when it is final: ``wait`` then only listens."""
        self._next += 1
        if not self.send({"op": "queued", "entry": entry, "job": job_id, "id": self._next}):
            return False
        self._registered[job_id] = self._next
        return True

    def wait(self, jobs: list[str], timeout: float) -> dict[str, str] | None:
        """Wait until one of ``jobs`` is final, or ``timeout`` seconds; returns the final ones.

        Jobs announced with ``queued`` are already awaited: this listens. Otherwise it asks the
        worker, which answers when one is final or at the timeout (a heartbeat, ``{}``); None
        means no answer came in ``timeout`` plus a second: the worker is gone or out of reach."""
        wanted = {self._registered[j] for j in jobs if j in self._registered}
        asked = not wanted
        if asked:
            self._next += 1
            if not self.send({"op": "wait", "id": self._next, "jobs": jobs, "timeout": timeout}):
                return None
            wanted = {self._next}
        deadline = time.monotonic() + timeout + (1.0 if asked else 0.0)
        while True:
            for request_id in wanted & set(self._early):
                return self._answer(self._early.pop(request_id))
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(int(left * 1000)):
                return None if asked else {}
            message = decode(self.socket.recv())
            if message is not None and isinstance(message.get("id"), int):
                self._early[message["id"]] = message
                if len(self._early) > 1000:  # answers nobody waits for any more
                    self._early.pop(next(iter(self._early)))

    def _answer(self, message: dict[str, Any]) -> dict[str, str]:
        """An answer ends the request it answers: forget the jobs it was about."""
        for job_id, request_id in list(self._registered.items()):
            if request_id == message["id"]:
                del self._registered[job_id]
        final = message.get("final")
        return final if isinstance(final, dict) else {}

    def close(self) -> None:
        self.socket.close(linger=0)


def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Call ``check`` until it is true or ``timeout`` passes; for the file fallback."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
