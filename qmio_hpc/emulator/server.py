"""The emulator's transport: a ZMQ REP socket that hands each request to a handler.

Requests are unpickled with the restricted unpickler (a tuple of strings needs no globals at all).
It binds loopback unless told otherwise, serves one request at a time as the QPU does, and can
exit after a time without requests so that an emulator started on demand does not linger.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import zmq

from .. import wire
from ..protocol import language_of
from ..channel import CurveGate
from .handler import bounded_repr

log = logging.getLogger("qmio_hpc.emulator")


class EmulatorServer:
    """``keys_dir``: serve its owner alone (``channel.CurveGate``): the built-in endpoint's
    emulator, which a job uses only once the CURVE handshake proves it holds the store's key."""

    def __init__(self, bind: str, handler: Callable[[Any], Any], idle_exit: float = 0.0,
                 keys_dir: Path | None = None) -> None:
        self.bind = bind
        self.handler = handler
        self.idle_exit = idle_exit
        self._stop = False
        self._busy = False
        self._context = zmq.Context()
        self._gate = CurveGate(self._context, keys_dir, b"qmio-emulator") if keys_dir else None
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        if self._gate is not None:
            self._gate.secure(self._socket)
            # Handshakes are answered by a thread of their own: the server is serial, and a
            # client must be able to prove it reached this emulator while a program runs.
            self._zap_thread = threading.Thread(target=self._serve_zap, name="zap", daemon=True)
            self._zap_thread.start()
        self._socket.bind(bind)  # raises zmq.ZMQError (EADDRINUSE) if taken

    def _serve_zap(self) -> None:
        assert self._gate is not None
        while not self._stop:
            try:
                if self._gate.zap.poll(200):
                    self._gate.handle()
            except zmq.ZMQError:  # the socket was closed: the server is stopping
                return

    @property
    def address(self) -> str:
        return self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def stop(self, *_args: object) -> None:
        """Stop: between requests at once; during one, abandon it (as a server that dies would)."""
        self._stop = True
        if self._busy:
            raise SystemExit(0)

    def serve_forever(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        last = time.monotonic()
        try:
            while not self._stop:
                if self._socket.poll(200) == 0:
                    if self.idle_exit and time.monotonic() - last > self.idle_exit:
                        log.info("idle for %.0f s; exiting", self.idle_exit)
                        return
                    continue
                request = self._socket.recv()
                self._busy = True
                reply = self._answer(request)
                self._busy = False
                self._socket.send(wire.dumps(reply))
                last = time.monotonic()
        finally:
            self._socket.close(linger=0)
            if self._gate is not None:
                self._stop = True
                self._zap_thread.join(timeout=2)
                self._gate.close()
            self._context.term()

    def _answer(self, payload: bytes) -> Any:
        try:
            message = wire.loads(payload)
        except Exception as exc:  # unsafe or garbled request: answer as the real server would
            log.warning("refused request: %s", exc)
            return {"Exception": bounded_repr(ValueError(f"unreadable request: {exc}"))}
        started = time.monotonic()
        reply = self.handler(message)
        failed = isinstance(reply, dict) and "Exception" in reply
        log.info("%s: %.3f s%s", describe(message), time.monotonic() - started,
                 f" -> {str(reply['Exception'])[:120]}" if failed else "")
        return reply


def describe(message: Any) -> str:
    """One line for the log: which request, and for a program its text's digest (to match
    with a job's spec), its language and its shots. Never the request itself, which is long."""
    if not isinstance(message, tuple) or not message:
        return f"{type(message).__name__} request"
    if message[0] == "program" and len(message) >= 3:
        program, config = message[1], message[2]
    elif len(message) == 2 and isinstance(message[0], str) and message[0] not in ("version",):
        program, config = message  # the pre-0.3 form: (program, config)
    else:
        return f"{str(message[0])[:20]} request"
    if not isinstance(program, str):
        return "program request (not text)"
    digest = hashlib.sha256(program.encode()).hexdigest()[:12]
    language = language_of(program) or "not OpenQASM"
    cacheable = isinstance(config, str) and len(config) < 4096  # clients resend the same few
    shots = _remembered_shots_in(config) if cacheable else _shots_in(config)
    return f"program {digest} ({language}, {shots} shots)"


def _shots_in(config: Any) -> Any:
    """The shots a config asks for, or "?"."""
    try:
        return json.loads(config)["$data"]["repeats"]
    except Exception:  # noqa: BLE001 - a bad config is the handler's to refuse
        return "?"


_remembered_shots_in = functools.lru_cache(maxsize=64)(_shots_in)
