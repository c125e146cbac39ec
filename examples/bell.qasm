OPENQASM 2.0;
include "qelib1.inc";
// A Bell pair on two of Qmio's 32 qubits: about half 00, half 11.
qreg q[32];
creg c[2];
h q[0];
cx q[0],q[1];
measure q[0] -> c[0];
measure q[1] -> c[1];
