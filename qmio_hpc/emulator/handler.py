"""The emulator's request handler, apart from its transport (``server``).

Incoming tuples are turned into typed requests by a thin shim (the legacy forms of DESIGN
section 2), and each typed request has one handler method. Every failure becomes the reply the
real server gives: ``{'Exception': repr(e)}``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..calibration import Calibration
from ..protocol import ExecutionOptions, parse_compiler_config

if TYPE_CHECKING:
    import numpy as np

#: The qat-rpc version whose protocol the emulator speaks.
QAT_RPC_VERSION = "1.0.0"


@dataclass(frozen=True)
class ProgramRequest:
    program: str
    config_json: str


@dataclass(frozen=True)
class QueryRequest:
    what: str  # version, qpu_info, couplings, qubit_info


Request = ProgramRequest | QueryRequest
QUERIES = ("version", "qpu_info", "couplings", "qubit_info")


def parse_request(message: Any) -> Request:
    """Accept every tuple form qat-rpc 1.0 accepts; refuse anything else with a clear reason."""
    if not isinstance(message, (tuple, list)):
        raise ValueError(f"Unrecognized request: {str(message)[:80]}")
    if not message:
        raise ValueError(f"Invalid legacy message: {message!r}")
    head = message[0]
    if head == "program":
        if len(message) not in (3, 5):
            raise ValueError(f"PROGRAM message expects 2 or 4 args, got {len(message) - 1}.")
        program, config = message[1], message[2]
    elif head in QUERIES and len(message) == 1:
        return QueryRequest(head)
    elif len(message) == 2 and head not in QUERIES:
        program, config = message  # the pre-0.3 (program, config_json) form
    else:
        raise ValueError(f"Unrecognized legacy message type: {str(head)[:40]}")
    if not isinstance(program, str) or not isinstance(config, str):
        raise ValueError("No suitable frontend could be found for the source program.")
    return ProgramRequest(program, config)


#: The longest error text a reply carries: an error that quotes what it received (a huge
#: program, say) is cut, so a request can never make the reply grow with it.
MAX_ERROR_TEXT = 2000


def bounded_repr(exc: BaseException) -> str:
    text = repr(exc)
    if len(text) <= MAX_ERROR_TEXT:
        return text
    return f"{text[:MAX_ERROR_TEXT]}... ({len(text) - MAX_ERROR_TEXT} more characters cut)"


_remembered_config = functools.lru_cache(maxsize=64)(parse_compiler_config)


def options_of(config_json: str) -> ExecutionOptions:
    """``parse_compiler_config``, remembered for configs of ordinary size: a client sends the
    same few again and again, and parsing one costs as much as sampling a small program.
    (ExecutionOptions is frozen; a config that fails to parse raises every time.)"""
    if len(config_json) > 4096:
        return parse_compiler_config(config_json)
    return _remembered_config(config_json)


class Handler:
    """Answers requests. ``time_model`` makes programs take shots x repetition period."""

    def __init__(self, *, num_qubits: int = 32, couplings: list[tuple[int, int]] | None = None,
                 time_model: bool = False, default_period: float = 1e-4,
                 seed: int | None = None, noise: Calibration | None = None) -> None:
        self.num_qubits = num_qubits
        self.couplings = couplings if couplings is not None else [
            (i, i + 1) for i in range(num_qubits - 1)]
        self.time_model = time_model
        self.default_period = default_period
        self.seed = seed
        self.noise = noise
        self.served = 0
        self._rng: np.random.Generator | None = None  # made with the first program

    def __call__(self, message: Any) -> Any:
        try:
            request = parse_request(message)
            if isinstance(request, QueryRequest):
                return self._queries[request.what](self)
            return self.run_program(request)
        except Exception as exc:  # the protocol's way of reporting every failure
            return {"Exception": bounded_repr(exc)}

    def run_program(self, request: ProgramRequest) -> dict[str, Any]:
        import numpy as np  # noqa: PLC0415

        from .simulate import execute, execution_seconds  # noqa: PLC0415 - imports Qiskit
        options = options_of(request.config_json)
        began = time.monotonic()
        if self._rng is None:  # one generator for every request: a run with --seed repeats
            self._rng = np.random.default_rng(self.seed)
        seed = None if self.seed is None else self.seed + self.served
        reply = execute(request.program, options, seed=seed, num_qubits=self.num_qubits,
                        noise=self.noise, rng=self._rng)
        self.served += 1
        if self.time_model:
            left = execution_seconds(options, self.default_period) - (time.monotonic() - began)
            if left > 0:
                time.sleep(left)
        return reply

    # The queries answer as qat-rpc 1.0 does (checked against its echo server), except qpu_info:
    # the real one pickles qat classes (Constraints, Quantity, ...) that no restricted unpickler
    # loads, so the emulator gives the plain-data part that a client can use.

    def version(self) -> dict[str, Any]:
        """qat-rpc's answer, plus how this emulator runs (a key the real server lacks): a job
        does not use an emulator whose options differ from its own (``emulator.launcher``)."""
        return {"qat_rpc_version": QAT_RPC_VERSION,
                "emulator": {"time_model": self.time_model, "noise": self.noise is not None}}

    def qpu_info(self) -> dict[str, Any]:
        return {"qpu_info": {"name": "qmio-hpc emulator", "num_qubits": self.num_qubits,
                             "couplings": list(self.couplings)}}

    def couplings_info(self) -> dict[str, list[tuple[int, int]]]:
        return {"couplings": list(self.couplings)}

    def qubit_info(self) -> dict[str, Any]:
        raise NotImplementedError("Individual qubit information not implemented, pending "
                                  "hardware model changes.")

    _queries: dict[str, Callable[["Handler"], Any]] = {
        "version": version, "qpu_info": qpu_info, "couplings": couplings_info,
        "qubit_info": qubit_info,
    }
