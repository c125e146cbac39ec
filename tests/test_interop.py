"""Interop with peers nobody here wrote, each in its own virtual environment
(scripts/interop-venvs.sh):

(a) our client against OQC's real control server, ``qat_server`` from qat-rpc 1.0.0, in echo
    mode (all-zero results of the right shape, 32 qubits);
(b) CESGA's own client, ``qmio`` 0.1.3, against our emulator.

These tests fail, never skip, when a venv is missing.
"""

from __future__ import annotations

import ast
import json
import re
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from qmio_hpc.errors import ProgramError, ProtocolError, QPUError
from qmio_hpc.protocol import ExecutionOptions
from qmio_hpc.jobs import classical_registers
from qmio_hpc.programs import check_program
from qmio_hpc.results import ReplyFormatError, check_reply, counts_of, memory_of
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


@pytest.fixture(scope="module")
def qat_server(tmp_path_factory) -> Iterator[str]:
    """OQC's real server in echo mode. It busy-polls a core, so one per module, stopped after."""
    python = venv_python("qat")
    port, metrics = port_in_qat_range(), port_in_qat_range()
    log = tmp_path_factory.mktemp("qat") / "qat_server.log"
    env = {k: v for k, v in os.environ.items() if k != "QAT_CONFIG_PATH"}
    env.update(RECEIVER_PORT=str(port), METRICS_PORT=str(metrics))
    with open(log, "w") as out:
        proc = subprocess.Popen([str(python.parent / "qat_server")], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while "QAT RPC Server Starting" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"qat_server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    yield f"tcp://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


# -- (a) our client against the real server ---------------------------------------------------

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
