"""Really simulate a QASM program the way the QPU would answer it.

Parse OpenQASM 2 or 3 with Qiskit, drop the qubits the program never touches (Qmio programs
declare ``qreg q[32]`` and use a few), sample with Qiskit's BasicSimulator, and shape the shots
into the reply the control server gives for the requested results format.
"""

from __future__ import annotations

import functools
import math
import random
from typing import Any

from qiskit import QuantumCircuit, qasm2, transpile
from qiskit.circuit import Barrier
from qiskit.providers.basic_provider import BasicSimulator
from qiskit.transpiler import PassManager, generate_preset_pass_manager

from ..calibration import Calibration
from ..protocol import ExecutionOptions, big_endian_to_qiskit, language_of

#: BasicSimulator's limit on qubits actually used.
MAX_SIMULATED_QUBITS = 24
#: Readout values of the ``raw`` format: about +1 for |0>, -1 for |1>, with this much noise.
RAW_NOISE = 0.05

_SIMULATOR = BasicSimulator()


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
    measured: set[int] = set()
    for inst in circuit.data:
        qubits = {circuit.find_bit(q).index for q in inst.qubits}
        name = inst.operation.name
        if name == "measure":
            measured |= qubits
        elif name != "barrier" and qubits & measured:
            raise ValueError("Verification failed: No mid-circuit measurements allowed.")


def sample_memory(circuit: QuantumCircuit, shots: int, seed: int | None = None,
                  noise: Calibration | None = None) -> list[str]:
    """Per-shot outcomes in Qiskit's memory format (registers space-separated, last first).

    With ``noise`` (a calibration), the circuit runs on qiskit-aer with that calibration's noise
    on the physical qubits it uses; otherwise on Qiskit's exact BasicSimulator.
    """
    small, used = compact(circuit)
    if small.num_qubits > MAX_SIMULATED_QUBITS:
        raise ValueError(f"the program uses {small.num_qubits} qubits; the emulator simulates at "
                         f"most {MAX_SIMULATED_QUBITS}")
    if not small.cregs or small.num_clbits == 0:
        raise ValueError("the program measures nothing (no classical register)")
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


def per_register_shots(circuit: QuantumCircuit, memory: list[str]) -> dict[str, list[str]]:
    """Split Qiskit memory strings into each register's big-endian (wire-order) bitstrings."""
    names = [creg.name for creg in circuit.cregs if creg.size]
    out: dict[str, list[str]] = {name: [] for name in names}
    for shot in memory:
        parts = shot.split(" ")[::-1]  # Qiskit puts the first register last
        for name, bits in zip(names, parts):
            out[name].append(big_endian_to_qiskit(bits))
    return out


def _majority(values: list[str]) -> str:
    """Each bit's majority over the shots, as QAT's ``binary`` formats report it."""
    width = len(values[0]) if values else 0
    return "".join("1" if sum(v[i] == "1" for v in values) * 2 > len(values) else "0"
                   for i in range(width))


def shape_results(shots: dict[str, list[str]], res_format: str,
                  rng: random.Random) -> dict[str, Any]:
    """The ``results`` part of the reply, per register, as qat-rpc 1.0 shapes it.

    * ``binary_count``: ``{bits: count}``, c[0] leftmost;
    * ``raw``: one list per bit (c[0] first) of one readout value per shot, about +1 for 0 and
      -1 for 1; with a single shot the inner lists collapse to one value per bit;
    * ``binary``: one majority-vote int per bit; ``squash_binary_result_arrays``: those as a string.
    """
    out: dict[str, Any] = {}
    for name, values in shots.items():
        if res_format == "binary_count":
            counts: dict[str, int] = {}
            for bits in values:
                counts[bits] = counts.get(bits, 0) + 1
            out[name] = counts
        elif res_format == "raw":
            width = len(values[0]) if values else 0
            per_bit = [[(1.0 if bits[i] == "0" else -1.0) + rng.gauss(0.0, RAW_NOISE)
                        for bits in values] for i in range(width)]
            out[name] = [v[0] for v in per_bit] if len(values) == 1 else per_bit
        elif res_format == "binary":
            out[name] = [int(b) for b in _majority(values)]
        else:
            out[name] = _majority(values)
    return out


def execute(program: str, options: ExecutionOptions, seed: int | None = None,
            num_qubits: int = 32, noise: Calibration | None = None) -> dict[str, Any]:
    """The full reply dict for a program: results per register and execution metrics."""
    circuit = load_circuit(program)
    check_like_the_qpu(circuit, num_qubits)
    memory = sample_memory(circuit, options.shots, seed, noise)
    shots = per_register_shots(circuit, memory)
    results = shape_results(shots, options.res_format, random.Random(seed))
    return {
        "results": results,
        "execution_metrics": {
            "optimized_circuit": program,
            "optimized_instruction_count": sum(1 for _ in circuit.data),
            "physical_qubit_indices": None,
        },
    }


def execution_seconds(options: ExecutionOptions, default_period: float) -> float:
    """What the QPU would take: shots x repetition period (the optional time model)."""
    period = options.repetition_period or default_period
    return options.shots * period if math.isfinite(period) else 0.0
