"""Really simulate a QASM program the way the QPU would answer it.

Parse OpenQASM 2 or 3 with Qiskit and simulate only the qubits the program touches (Qmio
programs declare ``qreg q[32]`` and use a few). A program the QPU accepts (gates, then
measurements) gets its exact distribution from a small numpy statevector (``statevector``) and
all its shots in one draw; anything else (reset, conditionals) runs on Qiskit's BasicSimulator,
and the noisy mode on qiskit-aer. Either way the shots become, per register, rows of bits with a
count each, and those are shaped into the reply the control server gives for the requested
results format.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, qasm2, transpile
from qiskit.circuit import Barrier, Qubit
from qiskit.providers.basic_provider import BasicSimulator
from qiskit.transpiler import PassManager, generate_preset_pass_manager

from ..calibration import Calibration
from ..protocol import ExecutionOptions, language_of
from .statevector import Unsupported, clbit_values, distribution, sample

#: BasicSimulator's limit on qubits actually used (kept for the statevector too: 2**24 amplitudes).
MAX_SIMULATED_QUBITS = 24
#: Readout values of the ``raw`` format: about +1 for |0>, -1 for |1>, with this much noise.
RAW_NOISE = 0.05

_SIMULATOR = BasicSimulator()

#: Per register (non-empty ones, in declaration order): one row per distinct outcome, one uint8
#: column per bit in wire order (``c[0]`` first). The rows of all registers are aligned: row ``i``
#: of each is the same joint outcome, seen ``counts[i]`` times.
Rows = dict[str, np.ndarray]


@functools.cache
def _basic_pass_manager() -> PassManager:
    """What ``transpile(circuit, BasicSimulator(), optimization_level=0)`` runs, built once: building
    it is most of the time a small circuit takes here."""
    return generate_preset_pass_manager(optimization_level=0, backend=_SIMULATOR)


def load_circuit(program: str) -> QuantumCircuit:
    """OpenQASM 2 or 3 text to a circuit; raises on a program the QPU frontend would refuse."""
    language = language_of(program)
    if language == "qasm3":
        from qiskit import qasm3  # noqa: PLC0415 - needs qiskit-qasm3-import

        from ..programs import qasm3_for_qiskit  # noqa: PLC0415
        return qasm3.loads(qasm3_for_qiskit(program))
    if language == "qasm2":
        if program.count("include") == program.count('include "qelib1.inc"'):
            # qelib1.inc is built into the parser, so no directory is searched: skip resolving
            # the default include path (".") on disk, a fifth of a small program's parse.
            return qasm2.loads(program, include_path=(),
                               custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        return qasm2.loads(program, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    raise ValueError("the emulator runs OpenQASM 2 or 3 programs only (no OPENQASM header found)")


def compact(circuit: QuantumCircuit) -> tuple[QuantumCircuit, list[int]]:
    """The same circuit on only the qubits some non-barrier instruction acts on, and which
    qubits of the original those are (new qubit i was ``used[i]``)."""
    used = sorted({circuit.find_bit(q).index for inst in circuit.data
                   if not isinstance(inst.operation, Barrier) for q in inst.qubits})
    if len(used) == circuit.num_qubits:
        return circuit, used
    index = {old: new for new, old in enumerate(used)}
    small = QuantumCircuit(len(used), name=circuit.name)
    for creg in circuit.cregs:
        small.add_register(creg)
    for inst in circuit.data:
        qubits = [small.qubits[index[circuit.find_bit(q).index]] for q in inst.qubits
                  if circuit.find_bit(q).index in index]
        if isinstance(inst.operation, Barrier):
            if qubits:
                small.append(Barrier(len(qubits)), qubits)
            continue
        small.append(inst.operation, qubits, inst.clbits)
    return small, used


def check_like_the_qpu(circuit: QuantumCircuit, num_qubits: int) -> None:
    """Refuse what the real server refuses, with its words."""
    if circuit.num_qubits > num_qubits:
        raise ValueError("Unable to resolve hardware instance for fall-back optimizations.")
    measured: set[Qubit] = set()
    for inst in circuit.data:
        qubits = set(inst.qubits)
        name = inst.name
        if name == "measure":
            measured |= qubits
        elif name != "barrier" and qubits & measured:
            raise ValueError("Verification failed: No mid-circuit measurements allowed.")


def _check_measures_something(circuit: QuantumCircuit) -> None:
    if not circuit.cregs or circuit.num_clbits == 0:
        raise ValueError("the program measures nothing (no classical register)")


def sample_memory(circuit: QuantumCircuit, shots: int, seed: int | None = None,
                  noise: Calibration | None = None) -> list[str]:
    """Per-shot outcomes in Qiskit's memory format (registers space-separated, last first), from
    the general simulators: what ``execute`` falls back on, and its noisy mode.

    With ``noise`` (a calibration), the circuit runs on qiskit-aer with that calibration's noise
    on the physical qubits it uses; otherwise on Qiskit's exact BasicSimulator.
    """
    small, used = compact(circuit)
    if small.num_qubits > MAX_SIMULATED_QUBITS:
        raise ValueError(f"the program uses {small.num_qubits} qubits; the emulator simulates at "
                         f"most {MAX_SIMULATED_QUBITS}")
    _check_measures_something(small)
    if noise is not None:
        from qiskit_aer import AerSimulator  # noqa: PLC0415

        from .noise import BASIS, noise_model  # noqa: PLC0415
        simulator = AerSimulator(noise_model=noise_model(noise, used))
        runnable = transpile(small, basis_gates=BASIS + ["measure", "delay"],
                             optimization_level=0)
        return simulator.run(runnable, shots=shots, memory=True,
                             seed_simulator=seed).result().get_memory()
    runnable = _basic_pass_manager().run(small)
    result = _SIMULATOR.run(runnable, shots=shots, memory=True, seed_simulator=seed).result()
    return result.get_memory()


def memory_rows(circuit: QuantumCircuit, memory: list[str]) -> tuple[Rows, np.ndarray]:
    """Qiskit memory strings as ``Rows`` (one row per distinct string) and their counts."""
    distinct = Counter(memory)
    counts = np.fromiter(distinct.values(), dtype=np.int64, count=len(distinct))
    parts = [shot.split(" ")[::-1] for shot in distinct]  # Qiskit puts the first register last
    rows: Rows = {}
    for i, creg in enumerate(circuit.cregs):  # empty registers too: Qiskit leaves them a part
        if creg.size:
            text = "".join(p[i][::-1] for p in parts)  # each part is c[0]-rightmost: reverse it
            rows[creg.name] = (np.frombuffer(text.encode(), dtype=np.uint8) - 48).reshape(
                len(parts), creg.size)
    return rows, counts


@dataclass(frozen=True)
class ExactProgram:
    """What every run of a program the statevector can simulate shares: its exact outcome
    distribution (``statevector.Distribution``), which outcome bit each bit of each non-empty
    register reads (``statevector.clbit_values``), and its instruction count for the metrics."""

    probabilities: np.ndarray
    registers: tuple[tuple[str, np.ndarray], ...]
    instruction_count: int

    def draw(self, shots: int, rng: np.random.Generator) -> tuple[Rows, np.ndarray]:
        """``shots`` runs as ``Rows`` and counts, drawn all at once: no per-shot strings."""
        outcomes, counts = sample(self.probabilities, shots, rng)
        return {name: clbit_values(outcomes, positions)
                for name, positions in self.registers}, counts


def exact_program(circuit: QuantumCircuit) -> ExactProgram:
    """``circuit`` prepared for sampling from its exact distribution; raises ``Unsupported`` for
    what needs the general simulator."""
    dist = distribution(circuit, MAX_SIMULATED_QUBITS)
    _check_measures_something(circuit)
    registers = tuple(
        (creg.name, np.array([dist.source.get(bit, dist.num_measured) for bit in creg]))
        for creg in circuit.cregs if creg.size)
    for array in (dist.probabilities, *(positions for _, positions in registers)):
        array.flags.writeable = False  # shared by every run of a remembered program
    return ExactProgram(dist.probabilities, registers, len(circuit.data))


class _RecentPrograms:
    """The ``ExactProgram`` of recently run program texts, least recently used dropped first.

    Parsing is most of what a small program costs now (Qiskit's parser builds a 32-qubit
    circuit in Python), and the same text often comes again: a job's shots split into several
    executions, a sweep that repeats a circuit, a test suite. Sampling stays per request, so a
    seeded emulator answers the same with or without this. Only small entries are kept.
    """

    MAX_ENTRIES = 128
    MAX_PROGRAM_CHARS = 32_768
    MAX_OUTCOMES = 4096

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, int], ExactProgram] = OrderedDict()

    def get(self, program: str, num_qubits: int) -> ExactProgram | None:
        entry = self._entries.get((program, num_qubits))
        if entry is not None:
            self._entries.move_to_end((program, num_qubits))
        return entry

    def put(self, program: str, num_qubits: int, entry: ExactProgram) -> None:
        if len(program) > self.MAX_PROGRAM_CHARS or entry.probabilities.size > self.MAX_OUTCOMES:
            return
        self._entries[(program, num_qubits)] = entry
        if len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)


_RECENT = _RecentPrograms()


def shape_results(rows: Rows, counts: np.ndarray, res_format: str,
                  rng: np.random.Generator) -> dict[str, Any]:
    """The ``results`` part of the reply, per register, as qat-rpc 1.0 shapes it.

    * ``binary_count``: ``{bits: count}``, c[0] leftmost;
    * ``raw``: one list per bit (c[0] first) of one readout value per shot, about +1 for 0 and
      -1 for 1; with a single shot the inner lists collapse to one value per bit. Shot ``j`` of
      every register is the same shot, so a client can join registers back into per-shot memory;
    * ``binary``: one majority-vote int per bit; ``squash_binary_result_arrays``: those as a string.
    """
    shots = int(counts.sum())
    order = None
    if res_format == "raw":  # one shuffled shot sequence, shared by all registers
        order = np.repeat(np.arange(len(counts)), counts)[rng.permutation(shots)]
    out: dict[str, Any] = {}
    for name, bits in rows.items():
        if res_format == "binary_count":
            text_bits = np.ascontiguousarray(bits + 48)  # ASCII "0"/"1": one row, one string
            keys = text_bits.view(f"S{bits.shape[1]}").ravel().tolist()
            tally: dict[str, int] = {}
            for key, count in zip(keys, counts.tolist()):
                text = key.decode()
                tally[text] = tally.get(text, 0) + count
            out[name] = tally
        elif order is not None:
            readout = 1.0 - 2.0 * bits[order].T + rng.normal(0.0, RAW_NOISE, (bits.shape[1], shots))
            out[name] = readout[:, 0].tolist() if shots == 1 else readout.tolist()
        else:
            majority = [2 * ones > shots for ones in (counts @ bits).tolist()]
            out[name] = ([int(b) for b in majority] if res_format == "binary"
                         else "".join("1" if b else "0" for b in majority))
    return out


def execute(program: str, options: ExecutionOptions, seed: int | None = None,
            num_qubits: int = 32, noise: Calibration | None = None,
            rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The full reply dict for a program: results per register and execution metrics.

    ``seed`` seeds the general simulators; ``rng`` draws the statevector's shots and the raw
    readout noise (default: a generator seeded with ``seed``). A server passes one generator
    for all its requests: seeding a new one costs more than the rest of a small program's
    sampling."""
    if rng is None:
        rng = np.random.default_rng(seed)
    exact = _RECENT.get(program, num_qubits) if noise is None else None
    if exact is None:
        circuit = load_circuit(program)
        check_like_the_qpu(circuit, num_qubits)
        if noise is None:
            try:
                exact = exact_program(circuit)
            except Unsupported:
                pass  # reset, conditionals, ...: the general simulator runs it
            else:
                _RECENT.put(program, num_qubits, exact)
    if exact is not None:
        rows, counts = exact.draw(options.shots, rng)
        instruction_count = exact.instruction_count
    else:
        rows, counts = memory_rows(circuit, sample_memory(circuit, options.shots, seed, noise))
        instruction_count = len(circuit.data)
    return {
        "results": shape_results(rows, counts, options.res_format, rng),
        "execution_metrics": {
            "optimized_circuit": program,
            "optimized_instruction_count": instruction_count,
            "physical_qubit_indices": None,
        },
    }


def execution_seconds(options: ExecutionOptions, default_period: float) -> float:
    """What the QPU would take: shots x repetition period (the optional time model)."""
    period = options.repetition_period or default_period
    return options.shots * period if math.isfinite(period) else 0.0
