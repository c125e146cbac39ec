"""The emulator's request handler, apart from its transport (``server``).

Incoming tuples are turned into typed requests by a thin shim (the legacy forms of DESIGN
section 2), and each typed request has one handler method. Every failure becomes the reply the
real server gives: ``{'Exception': repr(e)}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..protocol import ExecutionOptions, parse_compiler_config

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
    if not isinstance(message, (tuple, list)) or not message:
        raise ValueError(f"request must be a non-empty tuple, got {type(message).__name__}")
    head = message[0]
    if head == "program" and len(message) in (3, 5):
        program, config = message[1], message[2]
    elif head in QUERIES and len(message) == 1:
        return QueryRequest(head)
    elif len(message) == 2 and all(isinstance(m, str) for m in message):
        program, config = message  # the pre-0.3 (program, config_json) form
    else:
        raise ValueError(f"unrecognised request {str(message)[:80]!r}")
    if not isinstance(program, str) or not isinstance(config, str):
        raise ValueError("program and config must both be strings")
    return ProgramRequest(program, config)


class Handler:
    """Answers requests. ``time_model`` makes programs take shots x repetition period."""

    def __init__(self, *, num_qubits: int = 32, couplings: list[tuple[int, int]] | None = None,
                 time_model: bool = False, default_period: float = 1e-4,
                 seed: int | None = None) -> None:
        self.num_qubits = num_qubits
        self.couplings = couplings if couplings is not None else [
            (i, i + 1) for i in range(num_qubits - 1)]
        self.time_model = time_model
        self.default_period = default_period
        self.seed = seed
        self.served = 0

    def __call__(self, message: Any) -> Any:
        try:
            request = parse_request(message)
            if isinstance(request, QueryRequest):
                return self._queries[request.what](self)
            return self.run_program(request)
        except Exception as exc:  # the protocol's way of reporting every failure
            return {"Exception": repr(exc)}

    def run_program(self, request: ProgramRequest) -> dict[str, Any]:
        from .simulate import execute, execution_seconds  # noqa: PLC0415 - imports Qiskit
        options: ExecutionOptions = parse_compiler_config(request.config_json)
        began = time.monotonic()
        seed = None if self.seed is None else self.seed + self.served
        reply = execute(request.program, options, seed=seed)
        self.served += 1
        if self.time_model:
            left = execution_seconds(options, self.default_period) - (time.monotonic() - began)
            if left > 0:
                time.sleep(left)
        return reply

    def version(self) -> dict[str, str]:
        return {"qat_rpc_version": QAT_RPC_VERSION, "emulator": "qmio-hpc"}

    def qpu_info(self) -> dict[str, Any]:
        return {"name": "qmio-hpc emulator", "num_qubits": self.num_qubits,
                "couplings": [list(c) for c in self.couplings]}

    def couplings_info(self) -> list[tuple[int, int]]:
        return list(self.couplings)

    def qubit_info(self) -> list[dict[str, Any]]:
        return [{"index": q} for q in range(self.num_qubits)]

    _queries: dict[str, Callable[["Handler"], Any]] = {
        "version": version, "qpu_info": qpu_info, "couplings": couplings_info,
        "qubit_info": qubit_info,
    }
