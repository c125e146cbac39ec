"""Check circuits against the device before anything is submitted, and turn them into QASM.

The QPU refuses non-native gates at its own pace (after the job waited in the queue), so these
checks run in ``backend.run`` and say how to fix the circuit: transpile it for the backend.
"""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit, QuantumRegister, qasm2, qasm3
from qiskit.circuit import Barrier, Measure
from qiskit.circuit.library import ECRGate, RZGate, SXGate, XGate
from qiskit.circuit.tools.pi_check import pi_check
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
    # Each pass over circuit.data builds its instructions' Python objects again: one pass here.
    index = {bit: i for i, bit in enumerate(circuit.qubits)}
    steps = [(inst.name, inst.qubits) for inst in circuit.data]
    foreign = sorted({op_name for op_name, _ in steps} - native - ALWAYS_ALLOWED)
    if foreign:
        raise ProgramError(
            f"circuit {name!r} uses {', '.join(foreign)}, which the device cannot run (native: "
            f"{', '.join(sorted(native))}); transpile first with qiskit.transpile(circuit, "
            f"backend), or pass transpile=True to run()")
    measured: set[int] = set()
    any_measure = False
    for op_name, bits in steps:
        if op_name == "barrier":
            continue
        qubits = tuple(index[q] for q in bits)
        if op_name == "measure":
            measured.update(qubits)
            any_measure = True
            continue
        if measured.intersection(qubits):
            raise ProgramError(f"circuit {name!r} acts on qubit {sorted(measured & set(qubits))[0]}"
                               f" after measuring it; the device has no mid-circuit measurement: "
                               f"move every measurement to the end")
        if len(qubits) == 2 and not target.instruction_supported(op_name, qubits):
            raise ProgramError(f"circuit {name!r} applies {op_name} to qubits {qubits}, which are "
                               f"not coupled that way on the device; transpile first with "
                               f"qiskit.transpile(circuit, backend)")
    if not any_measure:
        raise ProgramError(f"circuit {name!r} measures nothing, so it would return no counts; "
                           f"add measurements")


def to_qasm(circuit: QuantumCircuit, version: int) -> str:
    """OpenQASM text in a form the QAT frontend reads: 2 by default, 3 on request."""
    if version == 2:
        return native_qasm2(circuit) or qasm2.dumps(circuit)
    if version == 3:
        return qasm3.dumps(circuit)
    raise ProgramError(f"qasm_version must be 2 or 3, got {version!r}")


#: The device's gates, as Qiskit's standard classes (a gate of another class with the same name
#: has a definition of its own, which Qiskit's exporter would write out).
_NATIVE_CALLS = {RZGate: "rz", SXGate: "sx", XGate: "x", ECRGate: "ecr"}
#: Register layouts (and whether ecr's definition is needed) -> Qiskit's own header for them, and
#: the register names it uses (escaped where a name is not a valid identifier).
_HEADERS: dict[tuple[Any, ...], tuple[str, list[str]]] = {}
#: Angles -> their text (``_angle``). 0.0 and -0.0 share an entry: Qiskit writes both as 0.
_ANGLES: dict[float, str] = {}


def native_qasm2(circuit: QuantumCircuit) -> str | None:
    """``qasm2.dumps(circuit)``, the same text, for a circuit of the device's native gates,
    measurements and barriers on registers that share no bit; None for any other circuit.

    Why: Qiskit's exporter is about a sixth of what ``backend.run`` adds to ``sbatch`` (it builds
    ecr's definition again for every circuit). The header (version, include, ecr's definition,
    registers) still comes from Qiskit, once per register layout; the statements are written
    here as Qiskit writes them, angles with Qiskit's own ``pi_check``.
    tests/test_native_qasm2.py holds the two to the same text over random transpiled circuits."""
    if circuit.num_parameters:
        return None
    registers = [*circuit.qregs, *circuit.cregs]
    where: dict[Any, tuple[int, int]] = {}
    for number, register in enumerate(registers):
        for index, bit in enumerate(register):
            if where.setdefault(bit, (number, index)) != (number, index):
                return None  # a bit in two registers: Qiskit names it after the last one
    if len(where) != circuit.num_qubits + circuit.num_clbits:
        return None  # bits outside any register: Qiskit declares registers of its own for them
    statements: list[tuple[str, Any]] = []  # (call, bits): labelled once the header is known
    uses_ecr = False
    for instruction in circuit.data:
        operation = instruction.operation
        call = _NATIVE_CALLS.get(operation.base_class)  # (singletons: _SingletonXGate...)
        if call is not None:
            uses_ecr = uses_ecr or call == "ecr"
            params = operation.params
            if call == "rz":
                call = f"rz({_angle(params[0])})"
            elif params:
                return None
            statements.append((call, instruction.qubits))
        elif operation.base_class is Measure:
            statements.append(("measure", (instruction.qubits[0], instruction.clbits[0])))
        elif operation.base_class is Barrier:
            if instruction.qubits:
                statements.append(("barrier", instruction.qubits))
        else:
            return None
    layout = (tuple((isinstance(r, QuantumRegister), r.name, r.size) for r in registers),
              uses_ecr)
    if layout not in _HEADERS:
        if len(_HEADERS) >= 64:  # a loop over ever new register names
            _HEADERS.clear()
        _HEADERS[layout] = _header(registers, uses_ecr)
    header, names = _HEADERS[layout]

    def label(bit: Any) -> str:
        number, index = where[bit]
        return f"{names[number]}[{index}]"
    body = []
    for call, bits in statements:
        if call == "measure":
            body.append(f"measure {label(bits[0])} -> {label(bits[1])};")
        else:
            body.append(f"{call} {','.join(label(b) for b in bits)};")
    return "\n".join(part for part in (header, "\n".join(body)) if part)


def _angle(value: Any) -> str:
    """An angle as Qiskit's exporter writes it (``pi_check``, which tries many fractions of pi):
    a float's text is remembered, since a loop's circuits share most of their angles."""
    if type(value) is not float:
        return pi_check(value, output="qasm", eps=1e-12)
    text = _ANGLES.get(value)
    if text is None:
        if len(_ANGLES) >= 4096:
            _ANGLES.clear()
        text = _ANGLES[value] = pi_check(value, output="qasm", eps=1e-12)
    return text


def _header(registers: list[Any], uses_ecr: bool) -> tuple[str, list[str]]:
    """Qiskit's header for these registers (and ecr's definition), and its register names in
    the order of ``registers``: from ``qasm2.dumps`` of a circuit of the registers alone."""
    skeleton = QuantumCircuit(*registers)
    if uses_ecr:
        skeleton.ecr(0, 1)
    header = qasm2.dumps(skeleton).split("\n")
    if uses_ecr:
        header.pop()  # the skeleton's one statement
    names = [line.split(" ", 1)[1].rsplit("[", 1)[0] for line in header
             if line.startswith(("qreg ", "creg "))]
    return "\n".join(header), names
