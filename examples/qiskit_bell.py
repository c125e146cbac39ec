"""Qiskit users: run() returns a job at once; result() waits and gives a qiskit Result.

The QPU takes its native gates only (sx, x, rz, ecr, measure): transpile for the backend first.
"""

from qiskit import QuantumCircuit, transpile

from qmio_hpc import QmioRuntimeService

qc = QuantumCircuit(2, 2, name="bell")
qc.h(0)
qc.cx(0, 1)
qc.measure([0, 1], [0, 1])

service = QmioRuntimeService()
backend = service.backend("qpu")
job = backend.run(transpile(qc, backend), shots=1000)
print("job", job.job_id(), job.status().name)
print(job.result().get_counts())
