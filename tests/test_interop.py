"""Interop with peers nobody here wrote, each in its own virtual environment
(scripts/interop-venvs.sh):

(a) our client against OQC's real control server, ``qat_server`` from qat-rpc 1.0.0, in echo
    mode (all-zero results of the right shape, 32 qubits), and the same server simulating for
    real: given a QAT config whose default pipeline is QAT's own real-time chip simulator
    (``legacy_rtcs2``: 2 qubits, pulse-level compile and readout, a qutip master-equation
    engine), it is the oracle for bit order, which our emulator and our counts must match;
(b) CESGA's own client, ``qmio`` 0.1.3, against our emulator.

These tests fail, never skip, when a venv is missing.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from qmio_hpc.errors import ProgramError, ProtocolError, QPUError
from qmio_hpc.protocol import ExecutionOptions
from qmio_hpc.jobs import classical_registers
from qmio_hpc.programs import check_program
from qmio_hpc.results import (ReplyFormatError, check_reply, counts_of, memory_of,
                               register_counts)
from qmio_hpc.transport import QPUClient
from tests.conftest import BELL_QASM, REPO, run_qmio

pytestmark = pytest.mark.interop

VENVS = Path(os.environ.get("QMIO_INTEROP_VENVS", REPO / ".venv-interop"))


def venv_python(name: str) -> Path:
    python = VENVS / name / "bin" / "python"
    if not (VENVS / name / ".interop-complete").exists() or not python.exists():
        pytest.fail(f"the {name} interop venv is missing in {VENVS}: run "
                    f"scripts/interop-venvs.sh {VENVS}")
    return python


def port_in_qat_range() -> int:
    """qat_server silently falls back to 5556 for ports outside 1025-49151."""
    for _ in range(100):
        port = random.randint(20000, 40000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@contextlib.contextmanager
def running_qat_server(log: Path, config: Path | None = None) -> Iterator[str]:
    """OQC's own ``qat_server`` console script, unmodified: echo mode without ``config``, else
    the QAT session config it names (``QAT_CONFIG_PATH``). It busy-polls a core: stop it soon."""
    python = venv_python("qat")
    port, metrics = port_in_qat_range(), port_in_qat_range()
    env = {k: v for k, v in os.environ.items() if k != "QAT_CONFIG_PATH"}
    env.update(RECEIVER_PORT=str(port), METRICS_PORT=str(metrics))
    if config is not None:
        env["QAT_CONFIG_PATH"] = str(config)
    with open(log, "w") as out:
        proc = subprocess.Popen([str(python.parent / "qat_server")], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while "QAT RPC Server Starting" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"qat_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def qat_server(tmp_path_factory) -> Iterator[str]:
    """OQC's real server in echo mode, one per module."""
    with running_qat_server(tmp_path_factory.mktemp("qat") / "qat_server.log") as endpoint:
        yield endpoint


#: The QAT session config that makes qat_server simulate: QAT's pipeline for its real-time chip
#: simulator (qat-compiler 3.x, ``qat.pipelines.legacy.rtcs``) as the default pipeline.
QAT_RTCS_CONFIG = """\
PIPELINES:
  - name: legacy_rtcs2
    pipeline: qat.pipelines.legacy.rtcs.legacy_rtcs2
    default: true
"""


@pytest.fixture(scope="class")
def qat_simulating_server(tmp_path_factory) -> Iterator[str]:
    """OQC's real server simulating with QAT's real-time chip simulator. Class-scoped, and its
    class runs before the echo tests, so the two busy-polling servers never overlap."""
    where = tmp_path_factory.mktemp("qat-rtcs")
    config = where / "qat-rtcs.yaml"
    config.write_text(QAT_RTCS_CONFIG)
    log = where / "qat_server.log"
    with running_qat_server(log, config) as endpoint:
        assert f"Using QAT config: {config}" in log.read_text()
        yield endpoint


# -- (a) our client against the real server, simulating --------------------------------------

RTCS_HEAD = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n'
RTCS_BELL = RTCS_HEAD + "creg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"

#: Programs with one outcome, and that outcome as the wire carries it (DESIGN: c[0] leftmost in
#: each register). The simulator is a physical model: about 1 % of shots flip (readout, pulses).
DETERMINISTIC = {
    "x on q0": (RTCS_HEAD + "creg c[2];\nx q[0];\nmeasure q -> c;\n", {"c": "10"}),
    "x on q1": (RTCS_HEAD + "creg c[2];\nx q[1];\nmeasure q -> c;\n", {"c": "01"}),
    "x on both": (RTCS_HEAD + "creg c[2];\nx q[0];\nx q[1];\nmeasure q -> c;\n",
                  {"c": "11"}),
    "x on q0, crossed measures": (RTCS_HEAD + "creg c[2];\nx q[0];\nmeasure q[0] -> c[1];\n"
                                  "measure q[1] -> c[0];\n", {"c": "01"}),
    "x on q0 into c[0] of 3 bits": (RTCS_HEAD + "creg c[3];\nx q[0];\nmeasure q[0] -> c[0];\n"
                                    "measure q[1] -> c[2];\n", {"c": "100"}),
    "openqasm 3, x on q0": ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'
                            'x q[0];\nc = measure q;\n', {"c": "10"}),
    "two registers": (RTCS_HEAD + "creg a[1];\ncreg b[1];\nx q[1];\nmeasure q[0] -> a[0];\n"
                      "measure q[1] -> b[0];\n", {"a": "0", "b": "1"}),
}


def majority(counts: dict[str, int]) -> tuple[str, float]:
    """The most frequent bitstring and its share of the shots."""
    bits, n = max(counts.items(), key=lambda item: item[1])
    return bits, n / sum(counts.values())


class TestTheRealServerSimulating:
    def test_it_is_oqcs_server_and_it_simulates(self, qat_simulating_server):
        with QPUClient(qat_simulating_server) as client:
            assert client.version() == {"qat_rpc_version": "1.0.0"}
            nothing = client.run_program(RTCS_HEAD + "creg c[2];\nmeasure q -> c;\n",
                                         ExecutionOptions(shots=200))
            flipped = client.run_program(DETERMINISTIC["x on both"][0],
                                         ExecutionOptions(shots=200))
        assert majority(nothing["results"]["c"])[0] == "00"
        assert majority(flipped["results"]["c"])[0] == "11"  # not echo mode
        with QPUClient(qat_simulating_server) as client, \
                pytest.raises(QPUError, match="only 2 available"):  # the simulated chip's size
            client.run_program(BELL_QASM, ExecutionOptions(shots=10))

    def test_bell_counts_are_half_00_half_11(self, qat_simulating_server):
        """The simulated chip's Bell pair: about half 00, half 11. Its default calibration
        leaves ~13 % of shots on 01/10 (an imperfect cross-resonance gate), so the bounds are
        wide; they still fail an echo, a constant, or one qubit measured twice."""
        shots = 1000
        with QPUClient(qat_simulating_server) as client:
            reply = client.run_program(RTCS_BELL, ExecutionOptions(shots=shots))
        counts = reply["results"]["c"]
        assert sum(counts.values()) == shots and set(counts) <= {"00", "01", "10", "11"}
        assert counts.get("00", 0) + counts.get("11", 0) >= 0.75 * shots, counts
        assert 0.2 * shots <= counts.get("00", 0) <= 0.8 * shots, counts
        assert 0.2 * shots <= counts.get("11", 0) <= 0.8 * shots, counts
        check_reply(reply, "binary_count", shots, [("c", 2)])
        assert counts_of(reply, "binary_count") == {b[::-1]: n for b, n in counts.items()}

    @pytest.mark.parametrize("case", list(DETERMINISTIC))
    def test_bit_order_is_the_real_servers_in_our_emulator_and_our_counts(
            self, qat_simulating_server, emulator, case):
        """OQC's simulating server is the oracle: its outcome is the one DESIGN states (c[0]
        leftmost), our emulator gives exactly that, and counts_of turns both into the same
        Qiskit-order counts."""
        program, expected = DETERMINISTIC[case]
        shots = 500
        with QPUClient(qat_simulating_server) as client:
            theirs = client.run_program(program, ExecutionOptions(shots=shots))
        with QPUClient(emulator.endpoint) as client:
            ours = client.run_program(program, ExecutionOptions(shots=shots))
        registers = classical_registers(program)
        check_reply(theirs, "binary_count", shots, registers)
        assert set(theirs["results"]) == set(expected)
        for name, bits in expected.items():
            top, share = majority(theirs["results"][name])
            assert (top, name) == (bits, name) and share >= 0.9, theirs["results"]
        assert ours["results"] == {name: {bits: shots} for name, bits in expected.items()}
        qiskit = {name: bits[::-1] for name, bits in expected.items()}  # c[0] rightmost
        theirs_qiskit = register_counts(theirs, "binary_count", registers)
        assert {name: majority(c)[0] for name, c in theirs_qiskit.items()} == qiskit
        assert register_counts(ours, "binary_count", registers) == \
            {name: {bits: shots} for name, bits in qiskit.items()}
        if len(expected) == 1:  # one register: joint counts
            (bits,) = qiskit.values()
            assert majority(counts_of(theirs, "binary_count", registers))[0] == bits
            assert counts_of(ours, "binary_count", registers) == {bits: shots}

    def test_every_results_format_keeps_the_real_servers_bit_order(self, qat_simulating_server,
                                                                    emulator):
        program, expected = DETERMINISTIC["x on q0"]  # wire "10", Qiskit "01"
        registers = classical_registers(program)
        for endpoint in (qat_simulating_server, emulator.endpoint):
            with QPUClient(endpoint) as client:
                raw = client.run_program(program, ExecutionOptions(shots=20, res_format="raw"))
                binary = client.run_program(program, ExecutionOptions(shots=9,
                                                                      res_format="binary"))
                squash = client.run_program(program, ExecutionOptions(
                    shots=9, res_format="squash_binary_result_arrays"))
            check_reply(raw, "raw", 20, registers)
            # raw: one list of readouts per bit, c[0] first: about -1 for |1>, +1 for |0>
            assert [sum(values) < 0 for values in raw["results"]["c"]] == [True, False], endpoint
            memory = Counter(memory_of(raw, "raw", registers))
            assert majority(memory)[0] == "01" and sum(memory.values()) == 20, endpoint
            assert binary["results"] == {"c": [1, 0]}, endpoint
            assert squash["results"] == {"c": "10"}, endpoint

    def test_a_job_through_the_local_executor_against_the_simulating_server(
            self, qmio_env, qat_simulating_server, tmp_path):
        """Our whole client path (CLI, job store, local executor, batch step, transport,
        counts) against OQC's simulating server."""
        program, _ = DETERMINISTIC["x on q0"]
        (tmp_path / "x0.qasm").write_text(program)
        out = run_qmio("--endpoint", qat_simulating_server, "submit", str(tmp_path / "x0.qasm"),
                       "--shots", "500", "--wait", "--json")
        assert out.returncode == 0, out.stderr
        (entry,) = json.loads(out.stdout.splitlines()[-1])["results"]
        assert sum(entry["counts"].values()) == 500
        assert majority(entry["counts"])[0] == "01"  # Qiskit order: c[0] rightmost
        assert majority(entry["reply"]["results"]["c"])[0] == "10"  # as the wire carries it


# -- (a) our client against the real server, echoing ----------------------------------------

def test_version_of_the_real_server(qat_server):
    with QPUClient(qat_server) as client:
        assert client.version() == {"qat_rpc_version": "1.0.0"}


def test_bell_counts_have_the_right_shape(qat_server):
    with QPUClient(qat_server) as client:
        reply = client.run_program(BELL_QASM, ExecutionOptions(shots=100))
    assert reply["results"] == {"c": {"00": 100}}  # echo mode: all zeros
    assert counts_of(reply, "binary_count") == {"00": 100}
    assert "optimized_circuit" in reply["execution_metrics"]


def test_raw_readouts_parse_into_per_shot_memory(qat_server):
    with QPUClient(qat_server) as client:
        reply = client.run_program(BELL_QASM, ExecutionOptions(shots=7, res_format="raw"))
    assert memory_of(reply, "raw") == ["00"] * 7
    one = client_reply(qat_server, ExecutionOptions(shots=1, res_format="raw"))
    assert memory_of(one, "raw") == ["00"]


@pytest.mark.parametrize("res_format, shots", [
    ("binary_count", 1), ("binary_count", 9), ("raw", 1), ("raw", 9), ("binary", 9),
    ("squash_binary_result_arrays", 9)])  # (qat-rpc 1.0 itself fails majority formats at 1 shot)
def test_the_real_servers_replies_pass_our_reply_check(qat_server, res_format, shots):
    """check_reply (which turns malformed replies into ProtocolError) accepts what OQC's own
    server sends, in every format, with the registers our submitter declares."""
    reply = client_reply(qat_server, ExecutionOptions(shots=shots, res_format=res_format))
    check_reply(reply, res_format, shots, classical_registers(BELL_QASM))
    with pytest.raises(ReplyFormatError):  # and the check is not blind to that very reply
        check_reply(reply, res_format, shots + 1 if res_format in ("binary_count", "raw")
                    else shots, [("c", 3)])


#: Programs OQC's compiler accepts; our submission check must accept every one of them.
ACCEPTED_BY_QAT = {
    "qasm2 bell": BELL_QASM,
    "qasm2 after a comment": "// a Bell pair\n" + BELL_QASM,
    "qasm2 barrier and reset": ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
                                'reset q[0];\nh q[0];\nbarrier q;\ncx q[0],q[1];\n'
                                'measure q -> c;\n'),
    "qasm2 custom gate": ('OPENQASM 2.0;\ninclude "qelib1.inc";\ngate bell a,b { h a; cx a,b; }\n'
                          'qreg q[2];\ncreg c[2];\nbell q[0],q[1];\nmeasure q -> c;\n'),
    "qasm3 bell": ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nh q[0];\n'
                   'cx q[0], q[1];\nc = measure q;\n'),
    "qasm3 arrow measure": ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nbit[1] c;\n'
                            'x q[0];\nmeasure q[0] -> c[0];\n'),
    "qasm3 after a block comment": ('/* header */\nOPENQASM 3.0;\ninclude "stdgates.inc";\n'
                                    'qubit[1] q;\nbit[1] c;\nrx(0.5) q[0];\nc[0] = measure '
                                    'q[0];\n'),
    # CESGA's own example (qmio 0.1.3's README): OpenQASM 3 that includes qelib1.inc
    "qasm3 with qelib1.inc": ('OPENQASM 3.0;\ninclude "qelib1.inc";\nqreg q[32];\ncreg c[32];\n'
                              'x q[0];\nmeasure q[0]->c[0];'),
    "qasm3 with qelib1-only gates": ('OPENQASM 3.0;\ninclude "qelib1.inc";\nqreg q[3];\n'
                                     'creg c[3];\ncu1(0.3) q[0],q[1];\nrzz(0.2) q[1],q[2];\n'
                                     'sxdg q[2];\nu(0.1,0.2,0.3) q[0];\nmeasure q -> c;\n'),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED_BY_QAT))
def test_what_the_real_server_runs_passes_our_submission_check(qat_server, case):
    program = ACCEPTED_BY_QAT[case]
    with QPUClient(qat_server) as client:
        reply = client.run_program(program, ExecutionOptions(shots=5))  # QAT compiles it
    assert reply["results"]
    check_program(case, program)  # and so must our check, or it refuses good work


def test_what_our_check_refuses_the_real_server_refuses_too(qat_server):
    """The same undefined gate, refused by both (so the check is no stricter than the QPU)."""
    bad = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nfoo q[0];\n'
    with pytest.raises(ProgramError):
        check_program("bad", bad)
    with QPUClient(qat_server) as client, pytest.raises(QPUError):
        client.run_program(bad, ExecutionOptions(shots=5))


def client_reply(endpoint: str, options: ExecutionOptions) -> dict:
    with QPUClient(endpoint) as client:
        return client.run_program(BELL_QASM, options)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_optimisation_levels_are_accepted(qat_server, level):
    reply = client_reply(qat_server, ExecutionOptions(shots=10, optimization=level))
    assert sum(reply["results"]["c"].values()) == 10


def test_several_registers_and_openqasm3(qat_server):
    prog3 = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nh q[0];\n'
             'cx q[0], q[1];\nc = measure q;\n')
    with QPUClient(qat_server) as client:
        assert client.run_program(prog3, ExecutionOptions(shots=20))["results"] == \
            {"c": {"00": 20}}
        two = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg a[2];\ncreg b[1];\n'
               'measure q[0] -> a[0];\nmeasure q[1] -> a[1];\nmeasure q[2] -> b[0];\n')
        assert client.run_program(two, ExecutionOptions(shots=5))["results"] == \
            {"a": {"00": 5}, "b": {"0": 5}}


def test_bad_program_surfaces_the_servers_exception(qat_server):
    with QPUClient(qat_server) as client:
        with pytest.raises(QPUError, match="QASM2ParseError") as info:
            client.run_program("OPENQASM 2.0;\nqreg q[1];\nthis q[0];\n",
                               ExecutionOptions(shots=10))
    assert qat_server in str(info.value)


def test_qpu_info_with_qat_classes_is_refused_not_unpickled(qat_server):
    with QPUClient(qat_server) as client:
        with pytest.raises(ProtocolError, match="refused to load qat"):
            client.request(("qpu_info",))
        assert client.version()["qat_rpc_version"] == "1.0.0"  # the client goes on


def test_a_job_through_the_local_executor_against_the_real_server(qmio_env, qat_server,
                                                                   tmp_path):
    prog = tmp_path / "bell.qasm"
    prog.write_text(BELL_QASM)
    out = run_qmio("--endpoint", qat_server, "submit", str(prog), "--shots", "300", "--wait")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].split()[:2] == ["00", "300"]


# -- (b) CESGA's client against our emulator --------------------------------------------------

QMIO_SCRIPT = textwrap.dedent('''
    import json, sys
    from qmio import QmioRuntimeService
    program = sys.stdin.read()
    out = {}
    with QmioRuntimeService().backend(name="qpu") as backend:
        out["default"] = backend.run(circuit=program, shots=1000)
        out["raw"] = backend.run(circuit=program, shots=5, res_format="raw")
        out["opt2"] = backend.run(circuit=program, shots=100, optimization=2)
    print(json.dumps(out))
''')


def test_cesgas_qmio_client_gets_correct_results_from_our_emulator(emulator):
    python = venv_python("qmio")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["ZMQ_SERVER"] = emulator.endpoint
    out = subprocess.run([str(python), "-c", QMIO_SCRIPT], input=BELL_QASM, capture_output=True,
                         text=True, env=env, timeout=120, cwd=VENVS)
    assert out.returncode == 0, out.stderr
    replies = json.loads(out.stdout)
    counts = replies["default"]["results"]["c"]
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    assert 400 < counts["00"] < 600
    raw = replies["raw"]["results"]["c"]
    assert len(raw) == 2 and all(len(bit) == 5 for bit in raw)
    assert memory_of(replies["raw"], "raw")[0] in ("00", "11")
    assert sum(replies["opt2"]["results"]["c"].values()) == 100


def test_cesgas_own_readme_example_runs_with_only_its_import_changed(qmio_env):
    """The usage example of CESGA's client, qmio 0.1.3, read from its installed package's
    README (so nobody here wrote it), runs against qmio-hpc with only ``from qmio import``
    changed. It sets x on qubit 0 of 32: the reply's bitstring has c[0] first (the QPU's order)."""
    python = venv_python("qmio")
    metadata = next(python.parent.parent.glob("lib/python*/site-packages/qmio-0.1.3.dist-info/"
                                              "METADATA"))
    example = re.search(r"```python\n(.*?)```", metadata.read_text(), re.S)
    assert example is not None, "no Python example in qmio 0.1.3's README"
    script = example.group(1)
    assert "from qmio import QmioRuntimeService" in script
    script = script.replace("from qmio import", "from qmio_hpc import")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    reply = ast.literal_eval(out.stdout.strip())
    assert reply["results"]["c"] == {"1" + "0" * 31: 1000}


BUILDER_CASES = [(shots, period, opt, fmt) for shots in (1, 1000, 8192) for period in (None, 0.0005)
                 for opt in (0, 1, 2)
                 for fmt in ("binary_count", "raw", "binary", "squash_binary_result_arrays")]


def test_our_compiler_config_is_qmio_013s_own_for_every_option(qmio_env):
    """The compiler config we send is what CESGA's client builds (its own _config_build, run in
    its own venv, not a copy), for every shots / repetition period / optimisation / format."""
    from qmio_hpc import QmioRuntimeService
    from qmio_hpc.protocol import build_compiler_config
    code = ("import json, sys\nfrom qmio.backends import _config_build\n"
            "cases = json.loads(sys.stdin.read())\n"
            "print(json.dumps([_config_build(s, repetition_period=p, optimization=o, "
            "res_format=f) for s, p, o, f in cases] + [_config_build(100)]))\n")
    env = {**os.environ, "ZMQ_SERVER": "tcp://127.0.0.1:1"}  # its import reads it; unused
    out = subprocess.run([str(venv_python("qmio")), "-c", code], input=json.dumps(BUILDER_CASES),
                         capture_output=True, text=True, timeout=120, cwd=VENVS, env=env)
    assert out.returncode == 0, out.stderr
    *theirs, their_default = json.loads(out.stdout)
    assert len(theirs) == len(BUILDER_CASES) == 72
    for case, their in zip(BUILDER_CASES, theirs):
        shots, period, opt, fmt = case
        ours = build_compiler_config(ExecutionOptions(shots=shots, repetition_period=period,
                                                      optimization=opt, res_format=fmt))
        assert json.loads(ours) == json.loads(their), case
    # and what backend.run(circuit=..., shots=100) sends, its defaults left alone: the job it
    # ran (on the embedded default) holds the options the batch step sent
    from qmio_hpc.jobs import JobManager
    with QmioRuntimeService().backend(name="qpu") as backend:
        backend.run(circuit=BELL_QASM, shots=100)
    manager = JobManager()
    options = manager.spec(manager.job_ids()[-1])["options"]
    assert json.loads(build_compiler_config(ExecutionOptions(**options))) == \
        json.loads(their_default)
