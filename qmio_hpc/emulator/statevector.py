"""A small numpy statevector simulator for the programs the QPU runs: gates, then measurements.

The QPU refuses mid-circuit measurement, so a program it accepts is a unitary followed by
measurements that commute with everything after them. Its distribution is then exact and cheap:
apply each gate's matrix to a statevector of the few qubits the program uses, square, marginalise
onto the measured qubits, and draw all shots at once. Qiskit's BasicSimulator (pure Python, and
one memory string per shot) stays as the fallback for everything else: reset, conditionals,
instructions without a matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Clbit, Gate, Instruction, Qubit

#: How deep custom gate definitions are unrolled before giving up (a guard, not a real limit).
MAX_DEFINITION_DEPTH = 32


class Unsupported(Exception):
    """The circuit needs the general simulator (the reason is the message)."""


@dataclass(frozen=True)
class Distribution:
    """The exact outcome distribution of a circuit's measurements.

    ``probabilities[i]`` (normalised to sum to 1) is the chance of outcome ``i``, whose bit ``k``
    is the value of the ``k``-th of the ``num_measured`` measured qubits; ``source[clbit]`` is that
    ``k`` for each clbit something is measured into (the last measurement into it wins, as on a
    simulator). Other clbits read 0.
    """

    probabilities: np.ndarray
    source: dict[Clbit, int]
    num_measured: int
    num_qubits: int  # qubits simulated: those some non-barrier instruction acts on


def _matrix(op: Instruction) -> np.ndarray | None:
    """The operation's unitary, in Qiskit's order (its first qubit is the least significant bit),
    or None when it has none of its own. ``to_matrix`` of a standard gate takes 0.3-2 us, less
    than a cache keyed by name and parameters would, so there is no cache."""
    try:
        return np.asarray(op.to_matrix(), dtype=complex)
    except Exception:  # noqa: BLE001 - no matrix (opaque, unbound parameter, ...): try elsewhere
        return None


def _unroll(op: Instruction, qubits: tuple[int, ...], out: list[tuple[np.ndarray, tuple[int, ...]]],
            depth: int = 0) -> None:
    """Append ``op`` on ``qubits`` to ``out`` as (matrix, qubits) steps, unrolling a gate without
    a matrix of its own (``u0``, say) through its definition."""
    name = op.name
    if name in ("barrier", "delay"):  # timing only
        return
    if not isinstance(op, Gate):
        raise Unsupported(f"{name} is not a gate")
    if not qubits:  # a global phase: no probability changes
        return
    matrix = _matrix(op)
    if matrix is not None:
        out.append((matrix, qubits))
        return
    definition = op.definition
    if definition is None or depth >= MAX_DEFINITION_DEPTH:
        raise Unsupported(f"{name} has no matrix")
    position = {bit: i for i, bit in enumerate(definition.qubits)}
    for inst in definition.data:
        _unroll(inst.operation, tuple(qubits[position[q]] for q in inst.qubits), out, depth + 1)


def _apply(state: np.ndarray, matrix: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """``matrix`` applied to ``qubits`` of ``state``, a tensor with one axis of length 2 per qubit
    where qubit ``q`` is axis ``n - 1 - q`` (so the flattened index is Qiskit's).

    The gate's axes are moved to the front, in the order of the matrix's row index (its last
    qubit most significant), so that the gate is one matmul; then moved back. This is what
    ``np.tensordot`` + ``np.moveaxis`` do, at a third of their overhead on small states.
    """
    n = state.ndim
    if len(qubits) == 1:  # one matmul over a (high, 2, low) view: the common case, and cheapest
        q = qubits[0]
        view = state.reshape(1 << (n - 1 - q), 2, 1 << q)
        return np.matmul(matrix, view).reshape(state.shape)
    front = [n - 1 - q for q in reversed(qubits)]
    order = front + [axis for axis in range(n) if axis not in front]
    back = [0] * n
    for i, axis in enumerate(order):
        back[axis] = i
    moved = state.transpose(order).reshape(matrix.shape[0], -1)
    return (matrix @ moved).reshape(state.shape).transpose(back)


def distribution(circuit: QuantumCircuit, max_qubits: int) -> Distribution:
    """The exact distribution of ``circuit``'s measurements, simulating only the qubits it uses.

    Raises Unsupported for what needs the general simulator (including a gate after a
    measurement of one of its qubits), and ValueError when it uses more than ``max_qubits``.
    """
    index: dict[Qubit, int] = {}  # circuit qubit -> simulated qubit, in order of first use
    steps: list[tuple[np.ndarray, tuple[int, ...]]] = []
    measured_into: dict[Clbit, int] = {}  # clbit -> simulated qubit
    done: set[int] = set()  # simulated qubits already measured
    for inst in circuit.data:
        name = inst.name
        if name == "barrier":
            continue
        qubits = tuple(index.setdefault(q, len(index)) for q in inst.qubits)
        if name == "measure":
            done.add(qubits[0])
            measured_into[inst.clbits[0]] = qubits[0]
            continue
        if inst.clbits:
            raise Unsupported(f"{name} acts on classical bits")
        if done.intersection(qubits):
            raise Unsupported("an instruction after a measurement")
        _unroll(inst.operation, qubits, steps)
    n = len(index)
    if n > max_qubits:
        raise ValueError(f"the program uses {n} qubits; the emulator simulates at most "
                         f"{max_qubits}")
    state = np.zeros((2,) * n, dtype=complex)
    state[(0,) * n] = 1.0
    for matrix, qubits in steps:
        state = _apply(state, matrix, qubits)
    measured = sorted(done)
    unmeasured = tuple(n - 1 - q for q in range(n) if q not in done)
    probabilities = np.square(np.abs(state))
    if unmeasured:  # the axes left are the measured qubits, highest first: bit k is measured[k]
        probabilities = probabilities.sum(axis=unmeasured)
    position = {q: k for k, q in enumerate(measured)}
    source = {clbit: position[qubit] for clbit, qubit in measured_into.items()}
    probabilities = np.ravel(probabilities)
    return Distribution(probabilities / probabilities.sum(), source, len(measured), n)


def sample(probabilities: np.ndarray, shots: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``shots`` draws from ``probabilities`` (normalised) as (distinct outcomes, how many times
    each): a multinomial draw when there are fewer outcomes than shots, else per-shot draws."""
    if probabilities.size <= shots:
        counts = rng.multinomial(shots, probabilities)
        outcomes = np.flatnonzero(counts)
        return outcomes, counts[outcomes]
    return np.unique(rng.choice(probabilities.size, size=shots, p=probabilities),
                     return_counts=True)


def clbit_values(outcomes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Some classical bits of each outcome: one row per outcome, one uint8 column per entry of
    ``positions``, the outcome bit that clbit reads. A clbit nothing is measured into reads bit
    ``num_measured``, which no outcome has set."""
    return ((outcomes[:, None] >> positions) & 1).astype(np.uint8)
