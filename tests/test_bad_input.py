"""Bad input, as a careless or hostile user gives it (issue 8, items 3 and 4): every case ends with
one error line naming what is wrong, the exit code the README gives, no traceback, and no job
created, before anything reaches a scheduler or an endpoint.

The CLI cases run the real ``qmio`` in a fresh process; the API cases call what Python users call.
Program checks use other people's parsers (Qiskit's qasm2, the OpenQASM 3 reference grammar and
Qiskit's importer), so "invalid" here means invalid to them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qiskit import QuantumCircuit

from qmio_hpc import QmioRuntimeService, Session
from qmio_hpc.config import Settings
from qmio_hpc.errors import ConfigError, JobNotFoundError, ProgramError, QmioError
from qmio_hpc.jobs import JobManager
from qmio_hpc.protocol import MAX_SHOTS, ExecutionOptions
from tests.conftest import BELL_QASM, run_qmio

QASM2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
QASM3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'

#: name -> (content of the file 'prog.qasm', or bytes; the fragment the error must name)
BAD_PROGRAMS: dict[str, tuple[str | bytes, str]] = {
    "empty file": ("", "is empty"),
    "only blanks": ("  \n\t\n", "is empty"),
    "not OpenQASM at all": ("# my notes\nh q[0]\n", "is not OpenQASM"),
    "binary file": (b"\x7fELF\x02\x01\x01\x00\xff\xfe", "not UTF-8"),
    "qasm2: undefined gate": (QASM2 + "foo q[0];\n", "not valid OpenQASM 2"),
    "qasm2: missing semicolon": (QASM2 + "h q[0]\nmeasure q -> c;\n", "not valid OpenQASM 2"),
    "qasm2: qubit out of range": (QASM2 + "h q[5];\n", "not valid OpenQASM 2"),
    "qasm2: undeclared register": (QASM2 + "h r[0];\n", "not valid OpenQASM 2"),
    "qasm2: no include": ('OPENQASM 2.0;\nqreg q[1];\nh q[0];\n', "not valid OpenQASM 2"),
    "qasm2: wrong arity": (QASM2 + "cx q[0];\n", "not valid OpenQASM 2"),
    "qasm2: measure size mismatch": (QASM2 + "creg d[3];\nmeasure q -> d;\n",
                                     "not valid OpenQASM 2"),
    "qasm2: negative register": ('OPENQASM 2.0;\nqreg q[-1];\n', "not valid OpenQASM 2"),
    "qasm3: syntax error": (QASM3 + "h q[0]\nc = measure q;\n", "not valid OpenQASM 3"),
    "qasm3: undefined gate": (QASM3 + "foo q[0];\n", "not valid OpenQASM 3"),
    "qasm3: undeclared qubit": (QASM3 + "h r[0];\n", "not valid OpenQASM 3"),
    "qasm3: unterminated comment": (QASM3 + "/* never closed\n", "not valid OpenQASM 3"),
}


def _no_job(env: dict[str, str]) -> None:
    store = Path(env["QMIO_STORE"])
    for folder in ("jobs", "sessions"):
        assert not (store / folder).exists() or not any((store / folder).iterdir()), folder


def _one_error_line(out, code: int, fragment: str = "") -> None:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qmio: error: "), out.stderr
    assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


@pytest.mark.parametrize("case", sorted(BAD_PROGRAMS))
def test_a_bad_program_file_is_refused_at_submission(qmio_env, tmp_path, case):
    content, fragment = BAD_PROGRAMS[case]
    path = tmp_path / "prog.qasm"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    _one_error_line(run_qmio("submit", str(path), "--shots", "10"), 2, fragment)
    _no_job(qmio_env)


@pytest.mark.parametrize("case", ["stdin: not UTF-8", "stdin: empty", "stdin: bad OpenQASM"])
def test_bad_standard_input_is_refused(qmio_env, case):
    data = {"stdin: not UTF-8": b"\xff\xfe\x00".decode("latin-1"), "stdin: empty": "",
            "stdin: bad OpenQASM": QASM2 + "foo q[0];\n"}[case]
    out = run_qmio("submit", "-", input=data) if case != "stdin: not UTF-8" else None
    if out is None:  # bytes that are not UTF-8 need a binary pipe
        import subprocess
        import sys
        out = subprocess.run([sys.executable, "-m", "qmio_hpc", "submit", "-"],
                             input=b"\xff\xfe\x00OPENQASM", capture_output=True, timeout=60)
        out = subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(),
                                          out.stderr.decode())
    _one_error_line(out, 2)
    _no_job(qmio_env)


#: name -> (arguments after 'submit prog.qasm' (a good Bell program), the fragment to name)
BAD_OPTIONS: dict[str, tuple[list[str], str]] = {
    "shots 0": (["--shots", "0"], "--shots"),
    "shots negative": (["--shots", "-5"], "--shots"),
    "shots not a number": (["--shots", "abc"], "--shots"),
    "shots past the cap": (["--shots", str(MAX_SHOTS + 1)], "shots"),
    "repetition period 0": (["--repetition-period", "0"], "--repetition-period"),
    "repetition period negative": (["--repetition-period", "-1"], "--repetition-period"),
    "repetition period NaN": (["--repetition-period", "nan"], "repetition"),
    "repetition period infinite": (["--repetition-period", "inf"], "repetition"),
    "repetition period too long": (["--repetition-period", "11"], "repetition"),
    "results format unknown": (["--res-format", "bogus"], "--res-format"),
    "optimisation level unknown": (["--optimization", "7"], "--optimization"),
    "timeout negative": (["--wait", "--timeout", "-1"], "--timeout"),
    "timeout NaN": (["--wait", "--timeout", "nan"], "timeout"),
    "executor unknown": (["--executor", "bogus"], "--executor"),
    "session with dry run": (["--session", "S1", "--dry-run"], "--session"),
    "endpoint port out of range": (["--wait"], ""),  # with --endpoint below
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_options_are_refused_before_any_job(qmio_env, tmp_path, case):
    args, fragment = BAD_OPTIONS[case]
    prog = tmp_path / "bell.qasm"
    prog.write_text(BELL_QASM)
    prefix = ["--endpoint", "tcp://127.0.0.1:99999"] if case == "endpoint port out of range" \
        else []
    _one_error_line(run_qmio(*prefix, "submit", str(prog), *args), 2, fragment)
    _no_job(qmio_env)


#: name -> (environment, file contents of the user config (or None), fragment to name)
BAD_SETTINGS: dict[str, tuple[dict[str, str], str | bytes | None, str]] = {
    "shots 0": ({"QMIO_SHOTS": "0"}, None, "shots"),
    "shots NaN": ({"QMIO_SHOTS": "nan"}, None, "shots"),
    "reply timeout infinite": ({"QMIO_REPLY_TIMEOUT": "inf"}, None, "reply_timeout"),
    "connect timeout negative": ({"QMIO_CONNECT_TIMEOUT": "-1"}, None, "connect_timeout"),
    "emulator port 0": ({"QMIO_EMULATOR_PORT": "0"}, None, "emulator_port"),
    "emulator port 70000": ({"QMIO_EMULATOR_PORT": "70000"}, None, "emulator_port"),
    "endpoint not tcp": ({"QMIO_ENDPOINT": "http://qpu:5555"}, None, "endpoint"),
    "endpoint without port": ({"QMIO_ENDPOINT": "tcp://qpu"}, None, "endpoint"),
    "config not UTF-8": ({}, b"shots = \xff\xfe\n", "UTF-8"),
    "config not TOML": ({}, "shots = = 3\n", "user.toml"),
    "config shots a string": ({}, 'shots = "many"\n', "shots"),
    "config repetition period NaN": ({}, "assumed_repetition_period = nan\n",
                                     "assumed_repetition_period"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_settings_are_refused_naming_the_setting(qmio_env, tmp_path, case):
    env, config, fragment = BAD_SETTINGS[case]
    if config is not None:
        path = Path(qmio_env["QMIO_USER_CONFIG"])
        path.write_bytes(config if isinstance(config, bytes) else config.encode())
    prog = tmp_path / "bell.qasm"
    prog.write_text(BELL_QASM)
    _one_error_line(run_qmio("submit", str(prog), env=env), 2, fragment)
    _no_job(qmio_env)


def test_a_file_where_the_store_should_be_is_refused(qmio_env, tmp_path):
    prog = tmp_path / "bell.qasm"
    prog.write_text(BELL_QASM)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for args, env in ((["--store", str(blocker)], None), ([], {"QMIO_STORE": str(blocker)})):
        _one_error_line(run_qmio(*args, "submit", str(prog), env=env), 2, "store")


#: name -> (command line, exit code, fragment)
BAD_COMMANDS: dict[str, tuple[list[str], int, str]] = {
    "id with a newline": (["status", "L1\n"], 3, "not a valid job id"),
    "id escaping the store": (["status", "../etc"], 3, "not a valid job id"),
    "id with a slash": (["cancel", "a/b"], 3, "not a valid job id"),
    "id that does not exist": (["result", "L999"], 3, "no job L999"),
    "resubmit of nothing": (["resubmit", ".."], 3, "not a valid job id"),
    "session start: max time not a duration": (["session", "start", "--max-time", "xyz"], 2,
                                               "max_time"),
    "session start: negative max time": (["session", "start", "--max-time", "-5"], 2,
                                         "max_time"),
    "session start: idle timeout NaN": (["session", "start", "--idle-timeout", "nan"], 2,
                                        "idle"),
    "session close without an id": (["session", "close"], 2, "--all"),
    "session status of nothing": (["session", "status", "S404"], 3, "no session S404"),
    "submit into no session": (["submit", "-", "--session", "S404"], 3, "no session S404"),
    "unknown command": (["bogus"], 2, "No such command"),
    "submit without a file": (["submit"], 2, "Missing argument"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
def test_bad_commands_are_one_line_and_their_exit_code(qmio_env, case):
    args, code, fragment = BAD_COMMANDS[case]
    out = run_qmio(*args, input=BELL_QASM)
    _one_error_line(out, code, fragment)
    _no_job(qmio_env)


# -- the Python API -------------------------------------------------------------------------------

def _bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def _seed_run(backend, program: str):
    """The seed API (CESGA's shape): connected, a program string in, the reply out."""
    with backend:
        return backend.run(program=program, shots=10)


API_CASES = {
    "submit: no programs": (lambda m, b: m.submit([], ExecutionOptions(shots=10)),
                            ProgramError),
    "submit: invalid OpenQASM 2": (lambda m, b: m.submit(
        [{"name": "p", "program": QASM2 + "foo q[0];\n"}], ExecutionOptions(shots=10)),
        ProgramError),
    "submit: invalid OpenQASM 3": (lambda m, b: m.submit(
        [{"name": "p", "program": QASM3 + "h q[0]\n"}], ExecutionOptions(shots=10)),
        ProgramError),
    "submit: not a string": (lambda m, b: m.submit([{"name": "p", "program": 42}],
                                                   ExecutionOptions(shots=10)), ProgramError),
    "options: shots 0": (lambda m, b: ExecutionOptions(shots=0), QmioError),
    "options: shots past the cap": (lambda m, b: ExecutionOptions(shots=MAX_SHOTS + 1),
                                    QmioError),
    "options: repetition period infinite": (
        lambda m, b: ExecutionOptions(shots=1, repetition_period=float("inf")), QmioError),
    "options: repetition period NaN": (
        lambda m, b: ExecutionOptions(shots=1, repetition_period=float("nan")), QmioError),
    "options: unknown results format": (
        lambda m, b: ExecutionOptions(shots=1, res_format="bogus"), QmioError),
    "backend.run: shots 0": (lambda m, b: b.run(_bell(), shots=0), QmioError),
    "backend.run: shots past the cap": (lambda m, b: b.run(_bell(), shots=MAX_SHOTS + 1),
                                        QmioError),
    "backend.run: not a circuit": (lambda m, b: b.run(42), ProgramError),
    "backend.run: unknown option": (lambda m, b: b.run(_bell(), shotz=10), ProgramError),
    "backend.run: bad seed-API program": (lambda m, b: _seed_run(b, QASM2 + "foo q[0];\n"),
                                          ProgramError),
    "Session: max_time not a duration": (lambda m, b: Session(b, max_time="abc"), ConfigError),
    "Session: negative idle timeout": (lambda m, b: Session(b, idle_timeout=-1), ConfigError),
    "service.job: id escaping the store": (lambda m, b: QmioRuntimeService().job("../x"),
                                           JobNotFoundError),
    "Settings: shots NaN": (lambda m, b: Settings.load({"shots": "nan"}), ConfigError),
    "Settings: endpoint not tcp": (lambda m, b: Settings.load({"endpoint": "udp://x:1"}),
                                   ConfigError),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_bad_input_through_the_python_api(qmio_env, case):
    call, error = API_CASES[case]
    manager = JobManager()
    backend = QmioRuntimeService().backend("qpu")
    with pytest.raises(error) as info:
        call(manager, backend)
    message = str(info.value)
    assert message and "\n" not in message.strip(), message  # one line
    _no_job(qmio_env)


def test_there_are_at_least_sixty_bad_input_cases():
    """The issue's floor, counted from the tables above (each is a test of its own)."""
    total = (len(BAD_PROGRAMS) + 3 + len(BAD_OPTIONS) + len(BAD_SETTINGS) + 1
             + len(BAD_COMMANDS) + len(API_CASES))
    assert total >= 60, total


def test_a_program_is_parsed_once_per_store_and_a_bad_one_never_vouched_for(qmio_env):
    """The submission check marks the OpenQASM 3 texts that passed (so a loop that submits one
    file again does not import Qiskit each time); a refused text gets no mark and is refused
    again. A short OpenQASM 2 program is checked each time (no Qiskit: faster than a lookup)."""
    import hashlib
    manager = JobManager()
    good, bad = QASM3 + "h q[0];\nc = measure q;\n", QASM3 + "foo q[0];\n"
    manager.build_spec([{"name": "g", "program": good}], ExecutionOptions(shots=10))
    marks = Path(qmio_env["QMIO_STORE"]) / "checked"
    assert [p.name for p in marks.iterdir()] == [hashlib.sha256(good.encode()).hexdigest()]
    assert marks.stat().st_mode & 0o077 == 0
    for _ in range(2):
        with pytest.raises(ProgramError):
            manager.build_spec([{"name": "b", "program": bad}], ExecutionOptions(shots=10))
    manager.build_spec([{"name": "g2", "program": BELL_QASM}], ExecutionOptions(shots=10))
    with pytest.raises(ProgramError):
        manager.build_spec([{"name": "b2", "program": QASM2 + "foo q[0];\n"}],
                           ExecutionOptions(shots=10))
    assert len(list(marks.iterdir())) == 1
