"""ZMQ client for the QPU control server that never blocks forever.

The server is a REP socket; a REQ socket whose reply never comes is stuck until it is closed, so
each attempt uses a fresh socket and a deadline ("lazy pirate"). Three failures are told apart:

* cannot reach: with ``IMMEDIATE`` set, a send only queues once a connection exists, so a send
  that times out means nobody is listening at that address;
* no answer in time: the request went out but no reply came before the deadline, which scales with
  the work asked for (shots x repetition period) on top of ``reply_timeout``;
* the QPU reported an error: the reply was ``{'Exception': ...}``.

A socket monitor watches for the connection dropping while we wait, so a server that dies ends
the wait at once instead of at the deadline.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

import zmq

from . import wire
from .errors import EndpointTimeoutError, EndpointUnreachableError, ProtocolError, QPUError
from .protocol import (VERSION_REQUEST, ExecutionOptions, build_compiler_config,
                       program_request, reply_exception)

if TYPE_CHECKING:
    import logging


def _log() -> "logging.Logger":
    """This module's logger, imported on the first message (a retry): ``import logging`` is
    ~5 ms of every batch step's start, and most steps log nothing."""
    import logging  # noqa: PLC0415

    return logging.getLogger(__name__)


class _ConnectionLost(Exception):
    """Internal: the peer closed the connection while a reply was awaited."""


class Background(Protocol):
    """Other work to do while a reply is awaited: a session's worker keeps answering its clients
    while the QPU works. ``sent`` is called once the request is out (bookkeeping that need not
    delay it goes there); ``handle`` gets the ready ``sockets``, and may raise to abandon the wait
    (the worker's allocation is ending)."""

    sockets: list[zmq.Socket]

    def sent(self) -> None: ...

    def handle(self, ready: set[zmq.Socket]) -> None: ...


class QPUClient:
    """Talks to one endpoint. Use as a context manager, or call ``close()``."""

    def __init__(self, endpoint: str, *, connect_timeout: float = 10.0,
                 reply_timeout: float = 60.0, retries: int = 2,
                 assumed_repetition_period: float = 1e-4,
                 context: zmq.Context | None = None,
                 background: Background | None = None,
                 curve: tuple[bytes, bytes, bytes] | None = None) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.assumed_repetition_period = assumed_repetition_period
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._polled: tuple[tuple[zmq.Socket, ...], zmq.Poller | None] = ((), None)
        self.background = background
        self.curve = curve  # (server public, own public, own secret): talk to that server only

    # -- socket lifecycle -------------------------------------------------------------------------

    def _open(self) -> zmq.Socket:
        if self._socket is None:
            sock = self._context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.SNDTIMEO, int(self.connect_timeout * 1000))
            if self.curve is not None:
                sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self.curve
            self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            sock.connect(self.endpoint)
            self._socket = sock
        return self._socket

    def _discard(self) -> None:
        if self._socket is not None:
            try:
                self._socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._socket.close(linger=0)
            self._socket = None
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None
        self._polled = ((), None)

    def close(self) -> None:
        self._discard()

    def __enter__(self) -> "QPUClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------

    def work_timeout(self, options: ExecutionOptions | None) -> float:
        """Seconds to wait for one reply: the base plus the time the shots themselves take."""
        if options is None:
            return self.reply_timeout
        period = options.repetition_period or self.assumed_repetition_period
        return self.reply_timeout + options.shots * period * 1.5

    def request(self, message: Any, timeout: float | None = None,
                on_retry: Callable[[int, str], None] | None = None, *,
                idempotent: bool = True) -> Any:
        """Send ``message`` and return the unpickled reply.

        An idempotent request (version, qpu_info, couplings) is sent again on a fresh socket
        when no answer comes, up to ``retries`` times. A program is sent at most once: once it has
        gone out, the serial server may be running it, and a second copy would run it twice on
        the QPU. So a program that got no answer ends the request with an error that says it
        may have run. Nothing is sent when there is no connection; that failure says so too."""
        timeout = self.reply_timeout if timeout is None else timeout
        payload = wire.dumps(message)
        attempts = self.retries + 1 if idempotent else 1
        lost = False
        for attempt in range(1, attempts + 1):
            sock = self._open()
            try:
                sock.send(payload)
            except zmq.Again:
                self._discard()
                what = "lost the connection to" if lost else "cannot reach"
                raise EndpointUnreachableError(
                    f"{what} the QPU control server at {self.endpoint} (no connection within "
                    f"{self.connect_timeout:g} s); is it running and is the address right?",
                    self.endpoint) from None
            try:
                raw = self._await_reply(sock, timeout)
            except _ConnectionLost:
                lost = True
                self._discard()
                reason = "connection lost"
            else:
                if raw is not None:
                    return self._decode(raw)
                self._discard()
                reason = f"no reply in {timeout:g} s"
            if not idempotent:
                error = EndpointUnreachableError if lost else EndpointTimeoutError
                what = ("lost the connection to" if lost else "no answer from")
                raise error(f"{what} the QPU control server at {self.endpoint} ({reason}) after "
                            f"the program was sent: it may have run, so it was not sent again",
                            self.endpoint)
            _log().warning("%s from %s (attempt %d of %d)", reason, self.endpoint, attempt,
                           attempts)
            if on_retry is not None and attempt < attempts:
                on_retry(attempt, reason)
        raise EndpointTimeoutError(
            f"no answer from the QPU control server at {self.endpoint}: {reason} on each of "
            f"{attempts} attempts", self.endpoint)

    def _await_reply(self, sock: zmq.Socket, timeout: float) -> bytes | None:
        assert self._monitor is not None
        others = self.background.sockets if self.background is not None else []
        poller = self._poller(sock, self._monitor, *others)
        tick = 0.2 if others else 1.0
        deadline = time.monotonic() + timeout
        if self.background is not None:
            self.background.sent()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            events = dict(poller.poll(min(left, tick) * 1000))
            if self.background is not None:
                self.background.handle({s for s in others if s in events})
            if sock in events:
                return sock.recv()
            if self._monitor in events:
                # (imported here: zmq.utils.monitor imports asyncio, a third of a step's start)
                from zmq.utils.monitor import recv_monitor_message  # noqa: PLC0415
                event = recv_monitor_message(self._monitor)
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    raise _ConnectionLost()

    def _poller(self, *sockets: zmq.Socket) -> zmq.Poller:
        """A poller for ``sockets``, made again only when they change (not for every program
        sent on the same socket)."""
        if self._polled[0] != sockets:
            poller = zmq.Poller()
            for sock in sockets:
                poller.register(sock, zmq.POLLIN)
            self._polled = (sockets, poller)
        return self._polled[1]

    def _decode(self, raw: bytes) -> Any:
        try:
            return wire.loads(raw)
        except Exception as exc:  # any unpickling failure is the peer's fault, not ours
            raise ProtocolError(f"unreadable reply from {self.endpoint}: {exc}",
                                self.endpoint) from None

    def version(self) -> dict[str, Any]:
        reply = self.request(VERSION_REQUEST, timeout=min(self.reply_timeout, 10.0))
        if not isinstance(reply, dict):
            raise ProtocolError(f"unexpected version reply from {self.endpoint}: {reply!r:.200}",
                                self.endpoint)
        return reply

    def run_program(self, program: str, options: ExecutionOptions,
                    on_retry: Callable[[int, str], None] | None = None) -> dict[str, Any]:
        """Run one program; returns the server's reply dict or raises QPUError."""
        reply = self.request(program_request(program, build_compiler_config(options)),
                             timeout=self.work_timeout(options), on_retry=on_retry,
                             idempotent=False)
        error = reply_exception(reply)
        if error is not None:
            raise QPUError(f"the QPU at {self.endpoint} reported: {error}", self.endpoint)
        if not isinstance(reply, dict) or "results" not in reply:
            raise ProtocolError(f"the reply of {self.endpoint} is not a result: it has no "
                                f"'results' ({reply!r:.200})", self.endpoint)
        return reply
