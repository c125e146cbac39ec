"""The qat-rpc wire protocol as pure functions: no sockets, no Qiskit.

Facts (DESIGN section 2): requests are pickled tuples; ``config_json`` is QAT's serialised
``CompilerConfig``; a reply is ``{'results': {creg: {bitstring: count}}, 'execution_metrics': {...}}``
or ``{'Exception': repr(e)}``. Bitstrings on the wire are big-endian (``c[0]`` leftmost); Qiskit
prints ``c[0]`` rightmost, so conversions live here and nowhere else.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import ProgramError

CONFIG_TYPE = "<class 'qat.purr.compiler.config.CompilerConfig'>"
RESULTS_FORMAT_TYPE = "<class 'qat.purr.compiler.config.QuantumResultsFormat'>"
INLINE_TYPE = "<enum 'qat.purr.compiler.config.InlineResultsProcessing'>"
FORMATTING_TYPE = "<enum 'qat.purr.compiler.config.ResultsFormatting'>"
METRICS_TYPE = "<enum 'qat.purr.compiler.config.MetricsType'>"
TKET_TYPE = "<enum 'qat.purr.compiler.config.TketOptimizations'>"

#: Results formats used at CESGA: name -> (InlineResultsProcessing, ResultsFormatting).
RESULTS_FORMATS: dict[str, tuple[int, int]] = {
    "binary_count": (1, 3),
    "raw": (1, 2),
    "binary": (2, 2),
    "squash_binary_result_arrays": (2, 6),
}
#: Optimisation level -> TketOptimizations flag value, as CESGA's tools send them.
OPTIMIZATION_FLAGS: dict[int, int] = {0: 1, 1: 18, 2: 30}
METRICS_DEFAULT = 6
#: Bounds that keep every deadline finite (shots x repetition period sets the reply timeout);
#: a job's shots are split into executions of at most the setting ``max_shots`` each.
MAX_SHOTS = 10_000_000
MAX_REPETITION_PERIOD = 10.0


class ExecutionOptions:
    """What the QPU needs besides the program. ``repetition_period`` is in seconds (None: QAT's).

    Immutable. A plain class rather than a dataclass: ``dataclasses`` imports ``inspect``, about
    6 ms of every batch step's start, paid while the job holds the QPU."""

    __slots__ = ("shots", "repetition_period", "optimization", "res_format")
    shots: int
    repetition_period: float | None
    optimization: int | None
    res_format: str

    def __init__(self, shots: int, repetition_period: float | None = None,
                 optimization: int | None = None, res_format: str = "binary_count") -> None:
        for name, value in zip(self.__slots__, (shots, repetition_period, optimization,
                                                res_format)):
            object.__setattr__(self, name, value)
        if (isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 1
                or self.shots > MAX_SHOTS):
            raise ProgramError(f"shots must be a whole number from 1 to {MAX_SHOTS}, got "
                               f"{self.shots!r}")
        period = self.repetition_period
        if period is not None and (isinstance(period, bool)
                                   or not isinstance(period, (int, float))
                                   or not 0 < period <= MAX_REPETITION_PERIOD):
            raise ProgramError(f"repetition_period must be seconds above 0 and at most "
                               f"{MAX_REPETITION_PERIOD:g}, got {period!r}")
        if self.optimization is not None and self.optimization not in OPTIMIZATION_FLAGS:
            raise ProgramError(f"optimization must be one of {sorted(OPTIMIZATION_FLAGS)}, got "
                               f"{self.optimization!r}")
        if self.res_format not in RESULTS_FORMATS:
            raise ProgramError(f"res_format must be one of {', '.join(RESULTS_FORMATS)}, got "
                               f"{self.res_format!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ExecutionOptions cannot be changed; use .replace({name}=...)")

    def replace(self, **changes: Any) -> "ExecutionOptions":
        """A copy with ``changes``, checked like any other."""
        return ExecutionOptions(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {"shots": self.shots, "repetition_period": self.repetition_period,
                "optimization": self.optimization, "res_format": self.res_format}

    def __eq__(self, other: object) -> bool:
        return type(other) is ExecutionOptions and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().values()))

    def __repr__(self) -> str:
        return f"ExecutionOptions({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        return ExecutionOptions, tuple(self.to_dict().values())


@functools.lru_cache(maxsize=64)  # a job's programs share their options: built once, not each
def build_compiler_config(options: ExecutionOptions) -> str:
    """QAT's serialised ``CompilerConfig`` JSON, in the shape CESGA's client sends."""
    inline, formatting = RESULTS_FORMATS[options.res_format]
    optimizations = None
    if options.optimization is not None:  # a bare TketOptimizations flag, as CESGA's qmio sends
        optimizations = {"$type": TKET_TYPE, "$value": OPTIMIZATION_FLAGS[options.optimization]}
    config = {
        "$type": CONFIG_TYPE,
        "$data": {
            "repeats": options.shots,
            "repetition_period": options.repetition_period,
            "results_format": {
                "$type": RESULTS_FORMAT_TYPE,
                "$data": {
                    "format": {"$type": INLINE_TYPE, "$value": inline},
                    "transforms": {"$type": FORMATTING_TYPE, "$value": formatting},
                },
            },
            "metrics": {"$type": METRICS_TYPE, "$value": METRICS_DEFAULT},
            "active_calibrations": [],
            "optimizations": optimizations,
        },
    }
    return json.dumps(config)


def parse_compiler_config(config_json: str) -> ExecutionOptions:
    """The inverse of :func:`build_compiler_config`, lenient about what QAT allows to be absent."""
    try:
        data = json.loads(config_json)["$data"]
        shots = int(data.get("repeats") or 1000)
        period = data.get("repetition_period")
        res = data.get("results_format") or {}
        fmt = (res.get("$data", {}).get("format", {}).get("$value", 1),
               res.get("$data", {}).get("transforms", {}).get("$value", 3))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProgramError(f"config is not a QAT CompilerConfig JSON: {exc}") from None
    names = {v: k for k, v in RESULTS_FORMATS.items()}
    if fmt not in names:
        raise ProgramError(f"results format {fmt} is not one of {sorted(names)}")
    level = None
    opt = data.get("optimizations")
    if isinstance(opt, dict):  # the bare flag, or wrapped in a Tket config
        flag = opt.get("$value", opt.get("$data", {}).get("tket_optimizations", {}).get("$value"))
        level = {v: k for k, v in OPTIMIZATION_FLAGS.items()}.get(flag)
    return ExecutionOptions(shots=shots, repetition_period=float(period) if period else None,
                            optimization=level, res_format=names[fmt])


# --- requests ------------------------------------------------------------------------------------

def program_request(program: str, config_json: str) -> tuple[str, str, str]:
    """The tuple a current client sends; the server also accepts the legacy 2-tuple."""
    return ("program", program, config_json)


VERSION_REQUEST = ("version",)


_LEADING_COMMENTS = re.compile(r"\A(?:\s+|//[^\n]*|/\*.*?\*/)*", re.S)


def language_of(program: str) -> str:
    """``qasm2``, ``qasm3`` or ``other`` (OpenPulse, QIR, ...), from the program's header (after
    any comments before it)."""
    head = _LEADING_COMMENTS.sub("", program)[:40]
    if head.startswith("OPENQASM 2"):
        return "qasm2"
    if head.startswith("OPENQASM 3"):
        return "qasm3"
    return "other"


# --- replies -------------------------------------------------------------------------------------

def reply_exception(reply: Any) -> str | None:
    """The server's error text if the reply is ``{'Exception': ...}``, else None."""
    if isinstance(reply, Mapping) and "Exception" in reply:
        return str(reply["Exception"])
    return None


def big_endian_to_qiskit(bits: str) -> str:
    """Wire bitstring (``c[0]`` leftmost) to Qiskit's (``c[0]`` rightmost)."""
    return bits[::-1]


def counts_to_qiskit(counts: Mapping[str, int]) -> dict[str, int]:
    """One register's wire counts in Qiskit's bit order."""
    return {big_endian_to_qiskit(k): int(v) for k, v in counts.items()}


def join_shots(per_register: Mapping[str, list[str]], register_order: list[str]) -> list[str]:
    """Per-shot wire bitstrings of each register -> Qiskit memory strings.

    Per-register *counts* are marginals and cannot be joined; per-shot values can. Qiskit puts the
    first register rightmost and separates registers with a space.
    """
    lengths = {len(per_register[name]) for name in register_order}
    if len(lengths) > 1:
        raise ValueError(f"registers have different numbers of shots: {sorted(lengths)}")
    columns = [per_register[name] for name in reversed(register_order)]
    return [" ".join(big_endian_to_qiskit(bits) for bits in row) for row in zip(*columns)]
