"""The emulator as a real process on loopback, spoken to with raw qat-rpc tuples."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time

import pytest
import zmq

from qmio_hpc import wire
from qmio_hpc.emulator import is_loopback_bind
from qmio_hpc.emulator.simulate import compact, load_circuit
from qmio_hpc.protocol import ExecutionOptions, build_compiler_config
from tests.conftest import BELL_QASM


def ask(endpoint: str, message, timeout: float = 30.0):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.connect(endpoint)
    try:
        sock.send(message if isinstance(message, bytes) else pickle.dumps(message))
        return wire.loads(sock.recv())
    finally:
        sock.close()


def config(shots=1000, res_format="binary_count"):
    return build_compiler_config(ExecutionOptions(shots=shots, res_format=res_format))


@pytest.mark.parametrize("form", ["legacy", "three", "five"])
def test_bell_in_every_request_form(emulator, form):
    msg = {"legacy": (BELL_QASM, config()), "three": ("program", BELL_QASM, config()),
           "five": ("program", BELL_QASM, config(), None, None)}[form]
    reply = ask(emulator.endpoint, msg)
    counts = reply["results"]["c"]
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    assert 400 < counts["00"] < 600
    assert reply["execution_metrics"]["optimized_instruction_count"] > 0


def test_bitstrings_are_big_endian_per_register(emulator):
    prog = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[4];\ncreg c[3];\ncreg d[1];\n'
            'x q[0];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[1];\nmeasure q[2] -> c[2];\n'
            'x q[3];\nmeasure q[3] -> d[0];\n')
    reply = ask(emulator.endpoint, ("program", prog, config(shots=50)))
    assert reply["results"] == {"c": {"100": 50}, "d": {"1": 50}}


def test_openqasm3(emulator):
    prog = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'
            'x q[1];\nc = measure q;\n')
    assert ask(emulator.endpoint, ("program", prog, config(shots=20)))["results"] == \
        {"c": {"01": 20}}


X0_QASM = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nx q[0];\n'
           'measure q[0] -> c[0];\nmeasure q[1] -> c[1];\n')


def test_raw_format_is_per_bit_lists_of_per_shot_readouts(emulator):
    bits = ask(emulator.endpoint, ("program", X0_QASM, config(10, "raw")))["results"]["c"]
    assert len(bits) == 2 and all(len(b) == 10 for b in bits)  # as qat-rpc 1.0 shapes it
    assert all(-1.5 < v < -0.5 for v in bits[0]) and all(0.5 < v < 1.5 for v in bits[1])
    one = ask(emulator.endpoint, ("program", X0_QASM, config(1, "raw")))["results"]["c"]
    assert len(one) == 2 and all(isinstance(v, float) for v in one)  # one shot collapses


def test_binary_formats_give_majority_bits(emulator):
    assert ask(emulator.endpoint, ("program", X0_QASM, config(20, "binary")))["results"] == \
        {"c": [1, 0]}
    squash = config(20, "squash_binary_result_arrays")
    assert ask(emulator.endpoint, ("program", X0_QASM, squash))["results"] == {"c": "10"}


def test_invalid_program_is_an_exception_reply(emulator):
    reply = ask(emulator.endpoint, ("program", "OPENQASM 2.0;\nqreg q[1];\nfoo q[0];\n", config()))
    assert set(reply) == {"Exception"} and "foo" in reply["Exception"]
    # the server is still serving
    assert ask(emulator.endpoint, ("version",))["qat_rpc_version"] == "1.0.0"


def test_an_error_reply_is_bounded_whatever_the_request(emulator):
    """An error that quotes what it received is cut: a 4 MB request gets a small reply."""
    huge = "OPENQASM 2.0;\nqreg q[1];\n" + "x" * 4_000_000 + " q[0];\n"
    reply = ask(emulator.endpoint, ("program", huge, config()))
    assert set(reply) == {"Exception"} and len(reply["Exception"]) < 2100
    garbage = ask(emulator.endpoint, ("program", 42, "{" * 3_000_000))
    assert set(garbage) == {"Exception"} and len(garbage["Exception"]) < 2100
    assert ask(emulator.endpoint, ("version",))["qat_rpc_version"] == "1.0.0"


@pytest.mark.parametrize("prog,words", [
    ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[33];\ncreg c[1];\nx q[32];\n'
     'measure q[32] -> c[0];\n', "Unable to resolve hardware"),
    ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[2];\nmeasure q[0] -> c[0];\n'
     'x q[0];\nmeasure q[0] -> c[1];\n', "No mid-circuit measurements"),
])
def test_refuses_what_the_qpu_refuses_in_its_words(emulator, prog, words):
    assert words in ask(emulator.endpoint, ("program", prog, config(10)))["Exception"]


def test_queries_answer_as_qat_rpc_does(emulator):
    version = ask(emulator.endpoint, ("version",))
    assert version["qat_rpc_version"] == "1.0.0"  # qat-rpc's key, as its server gives it
    assert version["emulator"] == {"time_model": False, "noise": False}  # and how it runs
    assert ask(emulator.endpoint, ("qpu_info",))["qpu_info"]["num_qubits"] == 32
    couplings = ask(emulator.endpoint, ("couplings",))["couplings"]
    assert couplings and all(len(c) == 2 for c in couplings)
    assert "NotImplementedError" in ask(emulator.endpoint, ("qubit_info",))["Exception"]
    assert "Unrecognized legacy message type" in ask(emulator.endpoint, ("bogus",))["Exception"]
    assert "No suitable frontend" in ask(emulator.endpoint, ("bogus", 1))["Exception"]
    assert "expects 2 or 4 args" in ask(emulator.endpoint, ("program", "x"))["Exception"]
    assert "Invalid legacy message" in ask(emulator.endpoint, ())["Exception"]


def test_malicious_pickle_is_refused_and_the_server_lives(emulator, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))
    reply = ask(emulator.endpoint, pickle.dumps(Evil()))
    assert "Exception" in reply and "refused" in reply["Exception"]
    assert not (tmp_path / "pwned").exists()
    assert "results" in ask(emulator.endpoint, ("program", BELL_QASM, config(10)))


def test_32_qubit_register_with_three_used_qubits_is_fast(emulator):
    prog = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[32];\ncreg c[3];\nh q[5];\n'
            'cx q[5],q[17];\ncx q[17],q[31];\nbarrier q;\nmeasure q[5] -> c[0];\n'
            'measure q[17] -> c[1];\nmeasure q[31] -> c[2];\n')
    began = time.monotonic()
    counts = ask(emulator.endpoint, ("program", prog, config(2000)))["results"]["c"]
    assert time.monotonic() - began < 5.0
    assert set(counts) == {"000", "111"}


def test_compact_keeps_only_used_qubits():
    circuit = load_circuit('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[32];\ncreg c[1];\n'
                           'x q[30];\nbarrier q;\nmeasure q[30] -> c[0];\n')
    small, used = compact(circuit)
    assert small.num_qubits == 1 and used == [30]


def test_time_model_takes_shots_times_period(emulator_factory):
    emu = emulator_factory("--time-model")
    began = time.monotonic()
    opts = ExecutionOptions(shots=100, repetition_period=0.01)
    ask(emu.endpoint, ("program", BELL_QASM, build_compiler_config(opts)))
    assert time.monotonic() - began >= 1.0


@pytest.mark.parametrize("bind,loop", [("tcp://127.0.0.1:5556", True), ("tcp://localhost:1", True),
                                       ("tcp://0.0.0.0:5556", False), ("tcp://10.1.2.3:1", False),
                                       ("ipc:///tmp/x", True)])
def test_loopback_detection(bind, loop):
    assert is_loopback_bind(bind) is loop


def test_default_bind_is_loopback_on_the_emulator_port(qmio_env):
    """Run by hand without --bind, it listens where jobs look for it: loopback, emulator_port."""
    proc = subprocess.Popen([sys.executable, "-m", "qmio_hpc", "emulator", "--private"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()
    assert first == f"emulator listening on tcp://127.0.0.1:{qmio_env['QMIO_EMULATOR_PORT']}"


def test_noisy_mode_is_a_fake_qmio(emulator_factory):
    """The calibration's errors show up: a GHZ state leaks into other outcomes, but mostly holds."""
    ghz = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[32];\ncreg c[3];\nh q[0];\n'
           'cx q[0],q[1];\ncx q[1],q[2];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[1];\n'
           'measure q[2] -> c[2];\n')
    noisy = emulator_factory("--noise", "--seed", "5")
    counts = ask(noisy.endpoint, ("program", ghz, config(4000)))["results"]["c"]
    ideal = counts.get("000", 0) + counts.get("111", 0)
    assert sum(counts.values()) == 4000
    assert 2000 < ideal < 3990  # noise, but still a GHZ state
    assert len(counts) > 2


def test_the_log_has_one_line_per_request_naming_program_shots_and_time(emulator):
    """Issue 10, item 9: one line a request (the program's digest, language, shots, seconds),
    never Qiskit's transpiler chatter, and a refused program says why on the same line."""
    import hashlib
    ask(emulator.endpoint, ("program", BELL_QASM, config(shots=123)))
    ask(emulator.endpoint, ("program", "OPENQASM 2.0;\nfrob q;", config(shots=5)))
    ask(emulator.endpoint, ("version",))
    time.sleep(0.2)  # the log line is written after the reply is sent
    emulator.log.seek(0)
    lines = [line for line in emulator.log.read().decode().splitlines() if line.strip()]
    digest = hashlib.sha256(BELL_QASM.encode()).hexdigest()[:12]
    bell = [line for line in lines if digest in line]
    assert len(bell) == 1 and "qasm2, 123 shots" in bell[0] and " s" in bell[0], lines
    bad = [line for line in lines if "5 shots" in line]
    assert len(bad) == 1 and "->" in bad[0] and "frob" in bad[0], lines
    assert any(line.endswith(" s") and "version request" in line for line in lines), lines
    assert not any("qiskit" in line.lower() and "pass" in line.lower() for line in lines), lines
