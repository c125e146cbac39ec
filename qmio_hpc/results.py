"""From the server's reply to counts and per-shot memory in Qiskit's bit order, without Qiskit.

A reply holds one entry per classical register: counts (``binary_count``) or per-shot values
(``raw`` readout values, ``binary`` bits). Counts of separate registers are marginals, so joint
counts over several registers are built from per-shot values; ``jobs`` asks for a per-shot format
when a program has more than one register.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .protocol import counts_to_qiskit, join_shots


def _shot_bits(value: Any) -> str:
    """One shot of one register -> its wire bitstring (c[0] leftmost).

    ``binary`` gives 0/1 per bit; ``raw`` gives a readout value per bit, about +1 for |0> and
    -1 for |1>, thresholded at zero (negative means 1).
    """
    values = value if isinstance(value, (list, tuple)) else [value]
    bits = []
    for v in values:
        if isinstance(v, (list, tuple)) and len(v) == 2:  # complex stored as [re, im]
            v = v[0]
        if isinstance(v, str):
            bits.append(v)
        elif isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)):
            bits.append(str(int(v)))
        else:
            bits.append("1" if float(v) < 0 else "0")
    return "".join(bits)


def register_shots(results: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """Per-register per-shot wire bitstrings, or None if the reply holds counts."""
    if any(isinstance(v, Mapping) for v in results.values()):
        return None
    return {name: [_shot_bits(shot) for shot in shots] for name, shots in results.items()}


def register_order(results: Mapping[str, Any],
                   declared: Sequence[Sequence[Any]] | None) -> list[str]:
    """Registers in declaration order (from the spec), else in the reply's order."""
    names = [str(r[0]) for r in declared or [] if str(r[0]) in results]
    return names + [n for n in results if n not in names]


def memory_of(reply: Mapping[str, Any],
              declared: Sequence[Sequence[Any]] | None = None) -> list[str] | None:
    """Per-shot Qiskit bitstrings, or None when the reply holds only counts."""
    results = reply["results"]
    shots = register_shots(results)
    if shots is None:
        return None
    return join_shots(shots, register_order(results, declared))


def counts_of(reply: Mapping[str, Any],
              declared: Sequence[Sequence[Any]] | None = None) -> dict[str, int]:
    """Joint counts in Qiskit's bit order (registers space-separated, first register rightmost).

    With counts for several registers the joint distribution is unknown; rather than invent one,
    this raises ValueError (``jobs`` avoids the case by asking for per-shot results).
    """
    results = reply["results"]
    memory = memory_of(reply, declared)
    if memory is not None:
        counts: dict[str, int] = {}
        for shot in memory:
            counts[shot] = counts.get(shot, 0) + 1
        return counts
    order = register_order(results, declared)
    if len(order) == 1:
        return counts_to_qiskit(results[order[0]])
    raise ValueError(f"the reply has counts for {len(order)} registers separately; their joint "
                     f"counts cannot be rebuilt (ask for res_format='binary')")


def register_counts(reply: Mapping[str, Any],
                    declared: Sequence[Sequence[Any]] | None = None) -> dict[str, dict[str, int]]:
    """Counts of each register on its own, in Qiskit's bit order."""
    results = reply["results"]
    shots = register_shots(results)
    out: dict[str, dict[str, int]] = {}
    for name in register_order(results, declared):
        if shots is None:
            out[name] = counts_to_qiskit(results[name])
        else:
            reg: dict[str, int] = {}
            for bits in shots[name]:
                key = bits[::-1]
                reg[key] = reg.get(key, 0) + 1
            out[name] = reg
    return out


def register_sizes(reply: Mapping[str, Any],
                   declared: Sequence[Sequence[Any]] | None = None) -> list[tuple[str, int]]:
    """(name, width) of each register in the reply, in declaration order; width as returned."""
    results = reply["results"]
    shots = register_shots(results)
    out = []
    for name in register_order(results, declared):
        sample = next(iter(results[name]), "") if shots is None else (shots[name] or [""])[0]
        out.append((name, len(sample)))
    return out
