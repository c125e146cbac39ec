"""The Python doors on the embedded default: the seed API, QmioJob and service.job(id)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.providers import JobStatus

from qmio_hpc import JobFailedError, JobNotFoundError, QmioRuntimeService
from qmio_hpc.backend import NotConnectedError
from qmio_hpc.errors import ProgramError
from qmio_hpc.service import UnknownBackendError
from tests.conftest import BELL_QASM


def test_seed_api_with_block_returns_the_reply_dict(qmio_env):
    with QmioRuntimeService().backend(name="qpu") as backend:
        result = backend.run(program=BELL_QASM, shots=100)
    counts = result["results"]["c"]
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 100
    assert "execution_metrics" in result


def test_cesga_qmio_013_call_shapes_work_unchanged(qmio_env):
    """qmio 0.1.3's ``run(circuit, shots, repetition_period=None, optimization=0,
    res_format="binary_count")``: positional, and every keyword; the reply dict comes back."""
    from qmio_hpc.results import memory_of
    with QmioRuntimeService().backend(name="qpu") as backend:
        positional = backend.run(BELL_QASM, 200)
        keywords = backend.run(circuit=BELL_QASM, shots=50, repetition_period=0.0005,
                               optimization=1, res_format="raw")
        with pytest.raises(ProgramError, match="program text"):
            backend.run(BELL_QASM, "200")  # a second text is not a shot count
    counts = positional["results"]["c"]
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200
    memory = memory_of(keywords, "raw")
    assert len(memory) == 50 and set(memory) <= {"00", "11"}


def test_seed_api_connect_disconnect_and_not_connected(qmio_env):
    backend = QmioRuntimeService().backend(name="qpu")
    with pytest.raises(NotConnectedError, match="Not connected"):
        backend.run(program=BELL_QASM, shots=10)
    backend.connect()
    assert sum(backend.run(program=BELL_QASM, shots=10)["results"]["c"].values()) == 10
    backend.disconnect()
    with pytest.raises(RuntimeError):  # seed users caught RuntimeError
        backend.run(program=BELL_QASM, shots=10)


def test_unknown_backend_lists_the_names(qmio_env):
    with pytest.raises(UnknownBackendError, match="available: qpu"):
        QmioRuntimeService().backend(name="gpu")


def test_run_returns_a_job_at_once_and_result_is_qiskit_ordered(qmio_env):
    service = QmioRuntimeService()
    backend = service.backend("qpu")
    qc = QuantumCircuit(3, 3, name="x0")
    qc.x(0)
    qc.measure([0, 1, 2], [0, 1, 2])
    job = backend.run(qc, shots=50)
    assert job.status() in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.VALIDATING,
                            JobStatus.DONE)
    result = job.result(timeout=60)
    assert job.status() is JobStatus.DONE
    assert result.get_counts("x0") == {"001": 50}  # Qiskit order: c[0] is rightmost
    assert result.results[0].data.counts == {"0x1": 50}  # hex keys
    assert result.job_id == job.job_id()
    assert "execution_metrics" in result.results[0].metadata


def test_several_registers_get_joint_counts(qmio_env):
    a, b = ClassicalRegister(2, "a"), ClassicalRegister(1, "b")
    qc = QuantumCircuit(QuantumRegister(3, "q"), a, b, name="two_regs")
    qc.h(0)
    qc.cx(0, 1)
    qc.x(2)
    qc.measure([0, 1], a)
    qc.measure(2, b)
    result = QmioRuntimeService().backend().run(qc, shots=400, transpile=True).result(timeout=60)
    counts = result.get_counts()
    assert set(counts) == {"1 00", "1 11"} and sum(counts.values()) == 400
    reg = result.results[0].metadata["register_counts"]
    assert reg["b"] == {"1": 400} and set(reg["a"]) == {"00", "11"}


def test_memory_gives_per_shot_bitstrings(qmio_env):
    qc = QuantumCircuit(2, 2)
    qc.x(1)
    qc.measure([0, 1], [0, 1])
    result = QmioRuntimeService().backend().run(qc, shots=20, memory=True).result(timeout=60)
    assert result.get_memory() == ["10"] * 20


def test_several_circuits_go_out_as_one_job(qmio_env):
    circuits = []
    for i in range(3):
        qc = QuantumCircuit(2, 2, name=f"c{i}")
        if i:
            qc.x(i - 1)
        qc.measure([0, 1], [0, 1])
        circuits.append(qc)
    service = QmioRuntimeService()
    job = service.backend().run(circuits, shots=30)
    result = job.result(timeout=60)
    assert [result.get_counts(c) for c in circuits] == [{"00": 30}, {"01": 30}, {"10": 30}]
    assert len(service.manager.job_ids()) == 1


def test_service_job_recovers_the_job_in_a_new_process(qmio_env):
    job = QmioRuntimeService().backend().run(_bell(), shots=64, transpile=True)
    code = (
        "from qmio_hpc import QmioRuntimeService\n"
        f"job = QmioRuntimeService().job({job.job_id()!r})\n"
        "counts = job.result(timeout=60).get_counts()\n"
        "print(job.status().name, sum(counts.values()), sorted(counts))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["DONE", "64"]


def test_unknown_job_and_failed_job(qmio_env):
    service = QmioRuntimeService()
    with pytest.raises(JobNotFoundError):
        service.job("L404")
    bad = service.backend().run(_bell(), shots=10, transpile=True)
    assert bad.result(timeout=60)  # sanity: good job works
    with QmioRuntimeService(endpoint="tcp://127.0.0.1:9", connect_timeout=0.5).backend() as b:
        with pytest.raises(JobFailedError, match="cannot reach.*127.0.0.1:9"):
            b.run(program=BELL_QASM, shots=10)


def test_cancel_returns_whether_it_cancelled(qmio_env):
    service = QmioRuntimeService()
    job = service.backend().run(_bell(), shots=10, transpile=True)
    job.result(timeout=60)
    assert job.cancel() is False and job.status() is JobStatus.DONE


def _bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2, name="bell")
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def test_cancel_of_a_queued_job_returns_true_and_it_ends_cancelled(qmio_env, emulator_factory):
    """Issue 10, item 11: cancel() tested on a job that is really queued (behind one holding
    the local QPU on the time-model emulator), not only on a finished one."""
    from qmio_hpc.jobs import JobManager
    from qmio_hpc.protocol import ExecutionOptions
    emulator_factory("--time-model", port=int(qmio_env["QMIO_EMULATOR_PORT"]))
    manager = JobManager()
    holder = manager.submit([{"name": "slow", "program": BELL_QASM}],
                            ExecutionOptions(shots=1000, repetition_period=0.002))
    service = QmioRuntimeService()
    job = service.backend().run(_bell(), shots=10, transpile=True)
    assert job.status() is JobStatus.QUEUED
    assert job.cancel() is True
    assert job.status() is JobStatus.CANCELLED
    manager.wait(holder, timeout=60)
    assert service.job(job.job_id()).status() is JobStatus.CANCELLED  # and it stays so
    with pytest.raises(JobFailedError):
        job.result(timeout=5)
