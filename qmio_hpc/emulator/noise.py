"""A "fake Qmio": a noise model built from a calibration, for the emulator's noisy mode.

Per qubit: thermal relaxation (T1, T2, with T2 clamped to 2*T1, since measured files can break
that physical bound) over each gate's duration, a depolarising error that brings the gate to its
benchmarked fidelity, and a symmetric readout error from the readout fidelity. ECR pairs get the
same from their own fidelity and duration. Needs qiskit-aer (``pip install qmio-hpc[noise]``).
"""

from __future__ import annotations

from typing import Any

from ..calibration import Calibration
from ..errors import ConfigError

BASIS = ["sx", "x", "rz", "ecr"]


def _aer() -> Any:
    try:
        import qiskit_aer  # noqa: PLC0415
    except ImportError:
        raise ConfigError("the noisy emulator needs qiskit-aer: pip install 'qmio-hpc[noise]'"
                          ) from None
    return qiskit_aer


def _relaxation(cal: Calibration, qubit: int, duration: float) -> Any:
    from qiskit_aer.noise import thermal_relaxation_error  # noqa: PLC0415
    q = cal.qubits.get(qubit)
    if q is None or not q.t1 or not q.t2 or duration <= 0:
        return None
    return thermal_relaxation_error(q.t1, min(q.t2, 2 * q.t1), duration)


def _with_depolarising(error: Any, fidelity: float | None, num_qubits: int) -> Any:
    from qiskit_aer.noise import depolarizing_error  # noqa: PLC0415
    if fidelity is None or fidelity >= 1.0:
        return error
    dim = 2 ** num_qubits
    param = min(1.0, (1.0 - fidelity) * dim / (dim - 1))  # average gate infidelity -> parameter
    depol = depolarizing_error(param, num_qubits)
    return depol if error is None else depol.compose(error)


def noise_model(cal: Calibration, qubits: list[int]) -> Any:
    """Noise on the physical ``qubits``, renumbered 0..n-1 in that order (the compact circuit)."""
    aer = _aer()
    from qiskit_aer.noise import ReadoutError  # noqa: PLC0415
    model = aer.noise.NoiseModel(basis_gates=BASIS)
    index = {physical: i for i, physical in enumerate(qubits)}
    for physical, i in index.items():
        sx = cal.gate_1q(physical, "sx")
        if sx is not None:
            error = _with_depolarising(_relaxation(cal, physical, sx.duration or 0.0),
                                       sx.fidelity, 1)
            if error is not None:
                model.add_quantum_error(error, ["sx"], [i])
                model.add_quantum_error(error.compose(error), ["x"], [i])
        readout = cal.qubits.get(physical)
        if readout is not None and readout.readout_fidelity is not None:
            p = min(0.5, 1.0 - readout.readout_fidelity)
            model.add_readout_error(ReadoutError([[1 - p, p], [p, 1 - p]]), [i])
    for gate in cal.gates_2q:
        if gate.control in index and gate.target in index:
            duration = gate.duration or 0.0
            relax = [_relaxation(cal, q, duration) for q in (gate.control, gate.target)]
            error = relax[0].expand(relax[1]) if all(r is not None for r in relax) else None
            error = _with_depolarising(error, gate.fidelity, 2)
            if error is not None:
                model.add_quantum_error(error, ["ecr"], [index[gate.control], index[gate.target]])
    return model
