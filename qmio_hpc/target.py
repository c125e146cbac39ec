"""A Qiskit ``Target`` for Qmio, built from a calibration.

The Target is what Qiskit's transpiler reads to map a circuit onto the chip: which native
instructions exist on which qubits, how long they take and how often they fail. Qmio's natives
are ``sx``, ``x``, ``rz`` (a virtual frame change: zero duration, no error), ``ecr`` on the
directed pairs the calibration lists, ``measure`` and ``delay``. Because the ECR pairs change from
one calibration to the next, the Target is rebuilt from whichever calibration is current.

Errors are ``1 - fidelity`` (RB fidelities from the file); durations are in seconds. A value the
calibration does not give stays ``None`` (unknown to the transpiler) rather than being guessed.
"""

from __future__ import annotations

from qiskit.circuit import Delay, Measure, Parameter
from qiskit.circuit.library import ECRGate, RZGate, SXGate, XGate
from qiskit.providers import QubitProperties
from qiskit.transpiler import InstructionProperties, Target

from qmio_hpc.calibration import NATIVE_GATES, Calibration, GateCalibration1Q

__all__ = ["NATIVE_GATES", "build_target"]

#: The instruction names a Qmio Target holds; anything transpiled for it uses only these.


def _error(fidelity: float | None) -> float | None:
    return None if fidelity is None else max(0.0, 1.0 - fidelity)


def _props_1q(cal: GateCalibration1Q | None) -> InstructionProperties:
    if cal is None:
        return InstructionProperties(duration=None, error=None)
    return InstructionProperties(duration=cal.duration, error=_error(cal.fidelity))


def _x_props(cal: Calibration, qubit: int) -> InstructionProperties:
    """X from its own entry if the file has one, else as QAT plays it: two SX pulses in a row.

    (QAT's ``get_gate_X`` for theta = pi goes through ``get_gate_U``, i.e. two X(pi/2) pulses.)
    So duration 2 x SX and fidelity SX squared.
    """
    own = cal.gate_1q(qubit, "x")
    if own is not None:
        return _props_1q(own)
    sx = cal.gate_1q(qubit, "sx")
    if sx is None:
        return InstructionProperties(duration=None, error=None)
    duration = None if sx.duration is None else 2.0 * sx.duration
    error = None if sx.fidelity is None else _error(sx.fidelity**2)
    return InstructionProperties(duration=duration, error=error)


def _rz_props(cal: Calibration, qubit: int) -> InstructionProperties:
    """Rz is a frame change: zero duration and no error unless the file says otherwise."""
    own = cal.gate_1q(qubit, "rz")
    duration = own.duration if own is not None and own.duration is not None else 0.0
    error = _error(own.fidelity) if own is not None and own.fidelity is not None else 0.0
    return InstructionProperties(duration=duration, error=error)


def build_target(cal: Calibration, *, dt: float | None = None) -> Target:
    """Build the Qiskit Target for ``cal``.

    ``dt`` is the backend's sample time in seconds, if the caller knows it (the calibration
    file does not say); without it Qiskit schedules in seconds only.

    Every qubit gets sx, x, rz, measure and delay; ecr exists only on the calibration's directed
    (control, target) pairs, so the transpiler routes through them and flips direction itself.
    Two-qubit gates other than ECR in the file are ignored: Qmio executes ECR natively.
    """
    n = cal.num_qubits
    qubit_properties = []
    for q in range(n):
        qc = cal.qubits.get(q)
        if qc is None:
            qubit_properties.append(QubitProperties())
        else:
            qubit_properties.append(QubitProperties(t1=qc.t1, t2=qc.t2, frequency=qc.frequency))

    target = Target(
        description=f"Qmio QPU, calibration {cal.source}",
        num_qubits=n,
        dt=dt,
        qubit_properties=qubit_properties,
    )
    qubits = range(n)
    target.add_instruction(SXGate(), {(q,): _props_1q(cal.gate_1q(q, "sx")) for q in qubits})
    target.add_instruction(XGate(), {(q,): _x_props(cal, q) for q in qubits})
    target.add_instruction(RZGate(Parameter("theta")), {(q,): _rz_props(cal, q) for q in qubits})

    ecr: dict[tuple[int, ...], InstructionProperties] = {}
    for gate in cal.gates_2q:
        if gate.gate == "ecr":
            ecr[(gate.control, gate.target)] = InstructionProperties(
                duration=gate.duration, error=_error(gate.fidelity)
            )
    if ecr:
        target.add_instruction(ECRGate(), ecr)

    measure: dict[tuple[int, ...], InstructionProperties] = {}
    for q in qubits:
        qc = cal.qubits.get(q)
        measure[(q,)] = InstructionProperties(
            duration=qc.readout_duration if qc else None,
            error=_error(qc.readout_fidelity) if qc else None,
        )
    target.add_instruction(Measure(), measure)
    target.add_instruction(Delay(Parameter("t")), {(q,): None for q in qubits})
    return target
