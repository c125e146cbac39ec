"""QmioBackend as Qiskit users meet it: a calibrated Target, one job for many circuits, faithful
results, split shots, the V2 primitives, and clear refusals before anything is submitted."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.primitives import BackendSamplerV2
from qiskit.providers import JobStatus
from qiskit.quantum_info import SparsePauliOp

from qmio_hpc import ProgramError, QmioRuntimeService
from qmio_hpc.primitives import EstimatorV2, SamplerV2
from qmio_hpc.target import NATIVE_GATES


def ghz(n: int = 3) -> QuantumCircuit:
    qc = QuantumCircuit(n, n, name="ghz")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure(range(n), range(n))
    return qc


@pytest.fixture
def service(qmio_env):
    return QmioRuntimeService()


@pytest.fixture
def backend(service):
    return service.backend("qpu")


def test_the_shots_setting_is_the_backends_default(qmio_env, monkeypatch):
    monkeypatch.setenv("QMIO_SHOTS", "123")
    backend = QmioRuntimeService().backend("qpu")
    assert backend.options.shots == 123
    counts = backend.run(transpile(ghz(2), backend)).result(timeout=60).get_counts()
    assert sum(counts.values()) == 123 and set(counts) <= {"00", "11"}


def test_backend_is_listed_with_a_32_qubit_calibrated_target(service, backend):
    assert [b.name for b in service.backends()] == ["qpu"]
    target = backend.target
    assert target.num_qubits == 32
    assert set(NATIVE_GATES) <= set(target.operation_names)
    pairs = set(target["ecr"])
    assert pairs == set(backend.calibration.coupling_map)
    assert backend.target.qubit_properties[0].t1 > 0


def test_ghz_ten_circuits_one_job_returns_at_once(emulator_factory, qmio_env):
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    service = QmioRuntimeService()  # after the emulator: its settings say --time-model too
    backend = service.backend("qpu")
    isa = transpile(ghz(), backend)
    job = backend.run([isa] * 10, shots=2000, repetition_period=1e-4)
    assert job.status() is not JobStatus.DONE  # run() did not wait for the QPU
    result = job.result(timeout=120)
    assert len(service.manager.job_ids()) == 1  # one job for the ten circuits
    all_counts = [result.get_counts(i) for i in range(10)]
    for counts in all_counts:
        assert set(counts) == {"000", "111"} and sum(counts.values()) == 2000
        assert 800 < counts["000"] < 1200
    assert result.results[0].header["name"] == "ghz"
    assert result.metadata["calibration"]["source"] == "built-in default"


def test_qiskit_bit_order_and_registers(backend):
    qc = QuantumCircuit(3, 3, name="x0")
    qc.x(0)
    qc.measure([0, 1, 2], [0, 1, 2])
    assert backend.run(transpile(qc, backend), shots=10).result(timeout=60).get_counts() == \
        {"001": 10}


def test_20000_shots_are_split_and_merged(backend):
    result = backend.run(transpile(ghz(2), backend), shots=20000).result(timeout=120)
    counts = result.get_counts()
    assert sum(counts.values()) == 20000 and set(counts) == {"00", "11"}
    assert result.results[0].metadata["executions"] == 3  # 8192 + 8192 + 3616


def test_memory_from_raw(backend):
    qc = QuantumCircuit(2, 2)
    qc.x(1)
    qc.measure([0, 1], [0, 1])
    result = backend.run(transpile(qc, backend), shots=9, memory=True).result(timeout=60)
    assert result.get_memory() == ["10"] * 9


def test_openqasm3_on_request(backend):
    result = backend.run(transpile(ghz(), backend), shots=100, qasm_version=3).result(timeout=60)
    assert set(result.get_counts()) <= {"000", "111"}


def test_transpile_on_request(backend):
    result = backend.run(ghz(), shots=100, transpile=True).result(timeout=60)
    assert set(result.get_counts()) <= {"000", "111"}


@pytest.mark.parametrize("make,words", [
    (lambda: QuantumCircuit(40, 1), "40 qubits"),
    (lambda: ghz(), "transpile first"),
    (lambda: _mid_circuit(), "mid-circuit"),
    (lambda: QuantumCircuit(2, 2), "measures nothing"),
])
def test_bad_circuits_fail_before_any_job_exists(service, backend, make, words):
    circuit = make()
    if circuit.num_qubits == 40:
        circuit.x(39)
        circuit.measure(39, 0)
    with pytest.raises(ProgramError, match=words):
        backend.run(circuit, shots=100)
    assert service.manager.job_ids() == []


def _mid_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(1, 2)
    qc.measure(0, 0)
    qc.x(0)
    qc.measure(0, 1)
    return qc


def test_uncoupled_ecr_is_refused(service, backend):
    a, b = 0, 31
    assert (a, b) not in set(backend.calibration.coupling_map)
    qc = QuantumCircuit(32, 2)
    qc.ecr(a, b)
    qc.measure([a, b], [0, 1])
    with pytest.raises(ProgramError, match="not coupled"):
        backend.run(qc)
    assert service.manager.job_ids() == []


@pytest.mark.parametrize("options,words", [({"shots": 0}, "shots"), ({"colour": "red"}, "colour"),
                                           ({"res_format": "nope"}, "res_format"),
                                           ({"qasm_version": 4}, "qasm_version")])
def test_bad_options_fail_before_any_job_exists(service, backend, options, words):
    with pytest.raises(ProgramError, match=words):
        backend.run(transpile(ghz(), backend), **options)
    assert service.manager.job_ids() == []


def test_backend_sampler_v2_with_parameter_sets(backend):
    theta = Parameter("θ")
    qc = QuantumCircuit(1)
    qc.ry(theta, 0)
    qc.measure_all()
    isa = transpile(qc, backend)
    sampler = BackendSamplerV2(backend=backend)
    values = np.array([[0.0], [math.pi], [math.pi / 2]])
    result = sampler.run([(isa, values)], shots=1000).result()
    counts = [result[0].data.meas.get_counts(i) for i in range(3)]
    assert counts[0] == {"0": 1000} and counts[1] == {"1": 1000}
    assert 400 < counts[2].get("0", 0) < 600


def test_package_primitives_take_mode_backend(backend):
    theta = Parameter("θ")
    qc = QuantumCircuit(1)
    qc.ry(theta, 0)
    isa = transpile(qc, backend)
    observable = SparsePauliOp("Z").apply_layout(isa.layout)
    estimator = EstimatorV2(mode=backend, options={"default_precision": 0.02})
    evs = estimator.run([(isa, observable, [[0.0], [math.pi]])]).result()[0].data.evs
    assert evs[0] == pytest.approx(1.0, abs=0.1) and evs[1] == pytest.approx(-1.0, abs=0.1)
    measured = qc.copy()
    measured.measure_all()
    sampled = SamplerV2(mode=backend).run([(transpile(measured, backend), [[math.pi]])],
                                          shots=50).result()
    assert sampled[0].data.meas.get_counts() == {"1": 50}
    with pytest.raises(ProgramError, match="QmioBackend"):
        SamplerV2(mode="qpu")
