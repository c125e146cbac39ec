"""A variational loop in a session: one allocation holds the QPU for every iteration.

Each iteration waits for the last result before it chooses the next angle (a simple parameter
scan towards <Z> = -1 on one qubit), as a variational algorithm does. Without a session each
iteration would be a Slurm job of its own, queueing for the QPU again.
"""

import math

from qiskit import QuantumCircuit, transpile

from qmio_hpc import QmioRuntimeService, Session

service = QmioRuntimeService()
backend = service.backend("qpu")


def expectation_z(theta: float, shots: int = 400) -> float:
    qc = QuantumCircuit(1, 1)
    qc.ry(theta, 0)
    qc.measure(0, 0)
    counts = backend.run(transpile(qc, backend), shots=shots).result().get_counts()
    return (counts.get("0", 0) - counts.get("1", 0)) / shots


with Session(backend, idle_timeout=60) as session:
    theta, step = 0.3, 0.4
    energy = expectation_z(theta)
    for _ in range(15):
        trial = theta + step
        trial_energy = expectation_z(trial)
        if trial_energy < energy:
            theta, energy = trial, trial_energy
        else:
            step = -step / 2
    usage = session.usage()
    print(f"session {session.session_id}: {len(session.job_ids())} jobs in one allocation")
    print(f"theta = {theta:.2f} (pi = {math.pi:.2f}), <Z> = {energy:+.2f}")
    print(f"QPU held {usage['held_seconds']:.1f} s, busy {usage['busy_seconds']:.1f} s")
