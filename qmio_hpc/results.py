"""From the server's reply to counts and per-shot memory in Qiskit's bit order, without Qiskit.

What a reply holds per classical register depends on the results format (checked against
qat-rpc 1.0's echo server):

* ``binary_count``: ``{bits: count}`` with c[0] leftmost;
* ``raw``: one list per bit (c[0] first) of one readout value per shot, about +1 for |0> and -1
  for |1>; QAT reads a value as 0 when it is > 0. With one shot the inner lists collapse;
* ``binary`` / ``squash_binary_result_arrays``: one majority-vote value per bit: no counts at all.

Counts of separate registers are marginals, so joint counts over several registers are built
from per-shot (``raw``) values; ``jobs`` asks for ``raw`` when a program has several registers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .protocol import counts_to_qiskit, join_shots

PER_SHOT_FORMAT = "raw"
MAJORITY_FORMATS = ("binary", "squash_binary_result_arrays")


class ReplyFormatError(ValueError):
    """A reply that does not have the shape its results format promises."""


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_reply(reply: Any, res_format: str, shots: int,
                declared: Sequence[Sequence[Any]] | None = None) -> None:
    """Refuse a reply that is not a result of ``shots`` shots in ``res_format`` before anything
    calls it one: counts are non-negative integers summing to the shots, bitstrings have their
    register's width, raw readouts are finite numbers, one per shot. Raises ReplyFormatError
    naming the first fault."""
    if not isinstance(reply, Mapping) or not isinstance(reply.get("results"), Mapping):
        raise ReplyFormatError(f"the reply has no 'results' mapping: {reply!r:.120}")
    widths = {str(r[0]): int(r[1]) for r in declared or []}
    for name, value in reply["results"].items():
        if widths and name not in widths:
            raise ReplyFormatError(f"register {name!r} is not one the program declares "
                                   f"({', '.join(widths)})")
        width = widths.get(name)
        where = f"register {name!r}"
        if res_format == "binary_count":
            _check_counts(where, value, shots, width)
        elif res_format == PER_SHOT_FORMAT:
            _check_raw(where, value, shots, width)
        elif isinstance(value, str) and res_format == "squash_binary_result_arrays":
            if set(value) - {"0", "1"} or (width is not None and len(value) != width):
                raise ReplyFormatError(f"{where}: {value!r:.60} is not a {width}-bit string")
        elif not isinstance(value, list) or not all(v in (0, 1) for v in value) or (
                width is not None and len(value) != width):
            raise ReplyFormatError(f"{where}: {value!r:.60} is not one 0/1 value per bit")


def _check_counts(where: str, value: Any, shots: int, width: int | None) -> None:
    if not isinstance(value, Mapping):
        raise ReplyFormatError(f"{where}: counts must be a mapping, not {type(value).__name__}")
    total = 0
    for bits, count in value.items():
        if not isinstance(bits, str) or not bits or set(bits) - {"0", "1"}:
            raise ReplyFormatError(f"{where}: {bits!r:.60} is not a bitstring")
        width = len(bits) if width is None else width  # the first key sets it when undeclared
        if len(bits) != width:
            raise ReplyFormatError(f"{where}: bitstring {bits!r:.60} is not {width} bits wide")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ReplyFormatError(f"{where}: count {count!r:.30} of {bits!r:.60} is not a "
                                   f"non-negative integer")
        total += count
    if total != shots:
        raise ReplyFormatError(f"{where}: the counts sum to {total}, not to the {shots} shots")


def _check_raw(where: str, value: Any, shots: int, width: int | None) -> None:
    if not isinstance(value, list):
        raise ReplyFormatError(f"{where}: raw results must be a list, not {type(value).__name__}")
    per_bit = value if value and isinstance(value[0], list) else [[v] for v in value]
    if shots != 1 and value and not isinstance(value[0], list):
        raise ReplyFormatError(f"{where}: one value per bit, but {shots} shots were asked for")
    if width is not None and len(per_bit) != width:
        raise ReplyFormatError(f"{where}: {len(per_bit)} bits of raw values, not {width}")
    for bit, values in enumerate(per_bit):
        if not isinstance(values, list) or len(values) != shots:
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise ReplyFormatError(f"{where}: bit {bit} has {got} raw values, not one per shot "
                                   f"({shots})")
        for v in values:
            if not _is_number(v):
                raise ReplyFormatError(f"{where}: bit {bit} has a raw value that is not a finite "
                                       f"number ({v!r:.30})")


def raw_per_bit(value: Any) -> list[list[float]]:
    """A register's raw value as one list of per-shot readouts per bit (undoing the collapse)."""
    if not isinstance(value, list):
        raise ValueError(f"raw results must be lists, got {type(value).__name__}")
    if value and not isinstance(value[0], list):
        return [[float(v)] for v in value]  # one shot: one value per bit
    return [[float(v) for v in bit] for bit in value]


def raw_to_bits(per_bit: list[list[float]]) -> list[str]:
    """Per-bit readouts -> per-shot wire bitstrings (c[0] leftmost), thresholded as QAT does."""
    return ["".join("0" if v > 0 else "1" for v in shot) for shot in zip(*per_bit)]


def register_order(results: Mapping[str, Any],
                   declared: Sequence[Sequence[Any]] | None) -> list[str]:
    """Registers in declaration order (from the spec), else in the reply's order."""
    names = [str(r[0]) for r in declared or [] if str(r[0]) in results]
    return names + [n for n in results if n not in names]


def memory_of(reply: Mapping[str, Any], res_format: str,
              declared: Sequence[Sequence[Any]] | None = None) -> list[str] | None:
    """Per-shot Qiskit bitstrings; None unless the reply has per-shot (raw) values."""
    if res_format != PER_SHOT_FORMAT:
        return None
    results = reply["results"]
    shots = {name: raw_to_bits(raw_per_bit(value)) for name, value in results.items()}
    return join_shots(shots, register_order(results, declared))


def counts_of(reply: Mapping[str, Any], res_format: str,
              declared: Sequence[Sequence[Any]] | None = None) -> dict[str, int]:
    """Joint counts in Qiskit's bit order (registers space-separated, first register rightmost).

    Raises ValueError where the reply cannot give them: the majority formats have no counts, and
    counts of several registers are marginals (their joint distribution is unknown).
    """
    results = reply["results"]
    if res_format in MAJORITY_FORMATS:
        raise ValueError(f"the {res_format} format returns one majority value per bit, not counts;"
                         f" use binary_count or raw")
    memory = memory_of(reply, res_format, declared)
    if memory is not None:
        counts: dict[str, int] = {}
        for shot in memory:
            counts[shot] = counts.get(shot, 0) + 1
        return counts
    order = register_order(results, declared)
    if len(order) == 1:
        return counts_to_qiskit(results[order[0]])
    raise ValueError(f"the reply has counts for {len(order)} registers separately; their joint "
                     f"counts cannot be rebuilt (ask for res_format='raw')")


def register_sizes(reply: Mapping[str, Any], res_format: str,
                   declared: Sequence[Sequence[Any]] | None = None) -> list[tuple[str, int]]:
    """(name, width) of each register in the reply, in declaration order; width as returned."""
    results = reply["results"]
    out = []
    for name in register_order(results, declared):
        value = results[name]
        if res_format == "binary_count":
            width = len(next(iter(value), ""))
        elif res_format == PER_SHOT_FORMAT:
            width = len(raw_per_bit(value))
        else:
            width = len(value)
        out.append((name, width))
    return out


def register_counts(reply: Mapping[str, Any], res_format: str,
                    declared: Sequence[Sequence[Any]] | None = None) -> dict[str, dict[str, int]]:
    """Counts of each register on its own, in Qiskit's bit order."""
    results = reply["results"]
    out: dict[str, dict[str, int]] = {}
    for name in register_order(results, declared):
        if res_format == "binary_count":
            out[name] = counts_to_qiskit(results[name])
        elif res_format == PER_SHOT_FORMAT:
            reg: dict[str, int] = {}
            for bits in raw_to_bits(raw_per_bit(results[name])):
                reg[bits[::-1]] = reg.get(bits[::-1], 0) + 1
            out[name] = reg
    return out


def merge_replies(replies: list[dict[str, Any]], res_format: str) -> dict[str, Any]:
    """One reply from several executions of one program (shots split at the hardware cap):
    counts add, raw readouts join per bit. The majority formats keep the largest execution's."""
    if len(replies) == 1:
        return replies[0]
    merged: dict[str, Any] = {}
    for reply in replies:
        for register, data in reply["results"].items():
            if res_format == "binary_count":
                into = merged.setdefault(register, {})
                for bits, count in data.items():
                    into[bits] = into.get(bits, 0) + count
            elif res_format == PER_SHOT_FORMAT:
                per_bit = raw_per_bit(data)
                into = merged.setdefault(register, [[] for _ in per_bit])
                for bit, values in enumerate(per_bit):
                    into[bit].extend(values)
            else:
                merged.setdefault(register, data)  # replies come largest first
    metrics = dict(replies[0].get("execution_metrics") or {})
    metrics["executions"] = len(replies)
    return {"results": merged, "execution_metrics": metrics}
