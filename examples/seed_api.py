"""CESGA's first client API, unchanged: run a QASM program and print the server's reply."""

from qmio_hpc import QmioRuntimeService

program = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
rx(0.01) q[0];
measure q[0]->c[0];
measure q[1]->c[1];
measure q[2]->c[2];
measure q[3]->c[3];
"""

service = QmioRuntimeService()
with service.backend(name="qpu") as backend:
    result = backend.run(program=program, shots=100)
print(result)
