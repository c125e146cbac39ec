"""``circuits.native_qasm2`` writes what ``qiskit.qasm2.dumps`` writes, for the circuits it takes
(the device's native gates, measurements, barriers), and takes no other: Qiskit's exporter is the
oracle, compared text for text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, qasm2, transpile
from qiskit.circuit import Barrier, Gate, Parameter, Qubit
from qiskit.circuit.random import random_circuit

from qmio_hpc.circuits import native_qasm2, to_qasm
from qmio_hpc.config import Settings
from qmio_hpc.service import QmioRuntimeService


@pytest.fixture(scope="module")
def backend():
    settings = Settings.load({"executor": "local"},
                             environ={"QMIO_SITE_CONFIG": "/nonexistent",
                                      "QMIO_USER_CONFIG": "/nonexistent"})
    return QmioRuntimeService(settings).backend("qpu")


@pytest.mark.parametrize("seed", range(60))
def test_random_transpiled_circuits_are_written_as_qiskit_writes_them(backend, seed):
    width = 2 + seed % 5
    circuit = random_circuit(width, 3 + seed % 7, measure=True, seed=seed)
    native = transpile(circuit, backend, seed_transpiler=seed, optimization_level=seed % 4)
    if seed % 3 == 0:
        native.barrier()
    text = native_qasm2(native)
    assert text is not None, native.count_ops()
    assert text == qasm2.dumps(native)
    assert to_qasm(native, 2) == text


ANGLES = [0.0, -0.0, math.pi, -math.pi, math.pi / 2, 3 * math.pi / 4, -5 * math.pi / 8,
          2 * math.pi, math.pi / 2 + 1e-10, 1e-13, -1e-13, 1.23456789, 1e10, np.float64(0.5), 7, math.pi / 3 * 1e-7]


@pytest.mark.parametrize("names", [("q", "c"), ("Q", "C"), ("measure", "gate"), ("q", "qreg"),
                                   ("a b", "c-1"), ("ecr", "rz"), ("pi", "reg_pi")])
def test_registers_are_named_as_qiskit_names_them(names):
    quantum = QuantumRegister(3, names[0])
    second = QuantumRegister(2, "anc")
    bits = ClassicalRegister(3, names[1])
    more = ClassicalRegister(2, names[1] + "2")
    circuit = QuantumCircuit(quantum, second, bits, more)
    for i, angle in enumerate(ANGLES):
        circuit.rz(angle, i % 5)
        circuit.sx((i + 1) % 5)
    circuit.x(4)
    circuit.ecr(0, 3)
    circuit.barrier(1, 4)
    circuit.append(Barrier(0), [])  # no qubits: Qiskit leaves it out
    circuit.measure([0, 1, 2], bits)
    circuit.measure([3, 4], more)
    assert native_qasm2(circuit) == qasm2.dumps(circuit)


def test_without_ecr_no_definition_is_written():
    circuit = QuantumCircuit(1, 1)
    circuit.rz(0.25, 0)
    circuit.measure(0, 0)
    text = native_qasm2(circuit)
    assert text == qasm2.dumps(circuit) and "gate ecr" not in text


def other_circuits():
    loose = QuantumCircuit([Qubit(), Qubit()], ClassicalRegister(2))
    loose.measure([0, 1], [0, 1])
    shared = QuantumRegister(2, "q")
    overlapping = QuantumCircuit(shared, QuantumRegister(bits=list(shared), name="r"),
                                 ClassicalRegister(1))
    overlapping.measure(0, 0)
    hadamard = QuantumCircuit(1, 1)
    hadamard.h(0)
    unbound = QuantumCircuit(1, 1)
    unbound.rz(Parameter("t"), 0)
    own_rz = QuantumCircuit(1, 1)
    own_rz.append(Gate("rz", 1, [0.5]), [0])
    delayed = QuantumCircuit(1, 1)
    delayed.delay(100, 0)
    reset = QuantumCircuit(1, 1)
    reset.reset(0)
    return {"loose bits": loose, "a bit in two registers": overlapping, "h": hadamard,
            "an unbound parameter": unbound, "a gate of its own named rz": own_rz,
            "delay": delayed, "reset": reset}


@pytest.mark.parametrize("name", list(other_circuits()))
def test_other_circuits_are_left_to_qiskit(name):
    circuit = other_circuits()[name]
    assert native_qasm2(circuit) is None
    if name != "an unbound parameter":  # Qiskit refuses that one itself
        assert to_qasm(circuit, 2) == qasm2.dumps(circuit)
