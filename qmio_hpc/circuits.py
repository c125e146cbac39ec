"""Check circuits against the device before anything is submitted, and turn them into QASM.

The QPU refuses non-native gates at its own pace (after the job waited in the queue), so these
checks run in ``backend.run`` and say how to fix the circuit: transpile it for the backend.
"""

from __future__ import annotations

from qiskit import QuantumCircuit, qasm2, qasm3
from qiskit.transpiler import Target

from .errors import ProgramError

#: Instructions that need no calibration entry to be allowed.
ALWAYS_ALLOWED = frozenset({"barrier", "measure", "delay"})


def check_circuit(circuit: QuantumCircuit, target: Target) -> None:
    """Raise ProgramError naming the first thing the device cannot run, and the fix."""
    name = circuit.name
    if circuit.num_qubits > target.num_qubits:
        raise ProgramError(f"circuit {name!r} has {circuit.num_qubits} qubits but the device has "
                           f"{target.num_qubits}; use at most {target.num_qubits}")
    native = set(target.operation_names)
    foreign = sorted({inst.operation.name for inst in circuit.data} - native - ALWAYS_ALLOWED)
    if foreign:
        raise ProgramError(
            f"circuit {name!r} uses {', '.join(foreign)}, which the device cannot run (native: "
            f"{', '.join(sorted(native))}); transpile first with qiskit.transpile(circuit, "
            f"backend), or pass transpile=True to run()")
    measured: set[int] = set()
    any_measure = False
    for inst in circuit.data:
        op = inst.operation
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if op.name == "measure":
            measured.update(qubits)
            any_measure = True
            continue
        if op.name == "barrier":
            continue
        if measured.intersection(qubits):
            raise ProgramError(f"circuit {name!r} acts on qubit {sorted(measured & set(qubits))[0]}"
                               f" after measuring it; the device has no mid-circuit measurement: "
                               f"move every measurement to the end")
        if len(qubits) == 2 and not target.instruction_supported(op.name, qubits):
            raise ProgramError(f"circuit {name!r} applies {op.name} to qubits {qubits}, which are "
                               f"not coupled that way on the device; transpile first with "
                               f"qiskit.transpile(circuit, backend)")
    if not any_measure:
        raise ProgramError(f"circuit {name!r} measures nothing, so it would return no counts; "
                           f"add measurements")


def to_qasm(circuit: QuantumCircuit, version: int) -> str:
    """OpenQASM text in a form the QAT frontend reads: 2 by default, 3 on request."""
    if version == 2:
        return qasm2.dumps(circuit)
    if version == 3:
        return qasm3.dumps(circuit)
    raise ProgramError(f"qasm_version must be 2 or 3, got {version!r}")
