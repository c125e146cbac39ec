"""The two doors of ``qmio``: the plain forms of ``submit`` and ``status`` run without click
(``fast_cli``), every other form goes through click (``cli``). Both must print the same, exit the
same and leave the same jobs. Each case runs both doors as new processes, as a user would, and
compares them: the click door is the oracle for the fast one."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from qmio_hpc.fast_cli import parse

#: The click door, as ``qmio`` ran before the fast one existed.
CLICK_DOOR = "import sys; sys.argv[0] = 'qmio'; from qmio_hpc.cli import main; main()"
#: A program with one outcome: its counts are the same on every run.
X0 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
x q[0];
measure q -> c;
"""


def fast(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qmio_hpc", *args], capture_output=True,
                          text=True, timeout=120, input=stdin)


def click(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLICK_DOOR, *args], capture_output=True,
                          text=True, timeout=120, input=stdin)


def same(a: str, b: str) -> str:
    """``a`` with its own job ids (L<n>) named as ``b`` names them, in order of appearance."""
    ids_a = list(dict.fromkeys(re.findall(r"\bL\d+\b", a)))
    ids_b = list(dict.fromkeys(re.findall(r"\bL\d+\b", b)))
    if len(ids_a) != len(ids_b):
        return a
    names = dict(zip(ids_a, ids_b))
    return re.sub(r"\bL\d+\b", lambda m: names[m.group(0)], a)


def assert_same(args: tuple[str, ...], stdin: str | None = None, stderr: str = "all") -> None:
    """Both doors give the same exit code and output. ``stderr``: 'all', or 'last' (progress
    lines of --wait depend on timing: only the final one is compared)."""
    ours, theirs = fast(*args, stdin=stdin), click(*args, stdin=stdin)
    assert (ours.returncode, same(ours.stdout, theirs.stdout)) == \
        (theirs.returncode, theirs.stdout), (args, ours.stderr, theirs.stderr)
    err_ours, err_theirs = same(ours.stderr, theirs.stderr), theirs.stderr
    if stderr == "last":
        err_ours, err_theirs = err_ours.splitlines()[-1:], err_theirs.splitlines()[-1:]
    assert err_ours == err_theirs, args
    assert "Traceback" not in ours.stderr


@pytest.fixture
def files(qmio_env, tmp_path, monkeypatch):
    (tmp_path / "x0.qasm").write_text(X0)
    (tmp_path / "bad.qasm").write_text("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];\n")
    (tmp_path / "dir.qasm").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args", [
    ("submit", "x0.qasm"),
    ("submit", "x0.qasm", "-q"),
    ("submit", "x0.qasm", "--quiet", "--executor", "local"),
    ("submit", "x0.qasm", "--json"),
    ("submit", "x0.qasm", "x0.qasm", "--shots", "7", "--json"),
    ("submit", "--res-format", "raw", "x0.qasm"),
    # bad input the fast door sees itself: one line, the same exit code
    ("submit", "missing.qasm"),
    ("submit", "bad.qasm"),
    ("submit", "dir.qasm"),
    ("submit", "x0.qasm", "-q", "--json"),
    # forms the fast door hands to click
    ("submit", "x0.qasm", "--shots", "0"),
    ("submit", "x0.qasm", "--shots", "+5"),
    ("submit", "x0.qasm", "--shots=5"),
    ("submit", "x0.qasm", "--executor", "nowhere"),
    ("submit", "x0.qasm", "-q", "-q"),
    ("submit", "x0.qasm", "--bogus"),
    ("submit",),
    ("submit", "--help"),
    ("status", "-h"),
    ("status", "--all", "--bogus"),
])
def test_submit_prints_and_exits_as_through_click(files, args):
    assert_same(args)


def test_a_waited_job_prints_the_same_counts(files):
    assert_same(("submit", "x0.qasm", "--wait"), stderr="last")
    assert_same(("submit", "x0.qasm", "--wait", "--json", "--shots", "5"), stderr="last")
    assert_same(("submit", "-", "--wait"), stdin=X0, stderr="last")


def test_status_prints_and_exits_as_through_click(files):
    job_id = json.loads(fast("submit", "x0.qasm", "--wait", "--json").stdout)["job_id"]
    other = json.loads(fast("submit", "x0.qasm", "--wait", "--json").stdout)["job_id"]
    assert fast("submit", "bad.qasm").returncode == 2  # refused: no job
    for args in [("status",), ("status", "--all"), ("status", "--json"), ("status", job_id),
                 ("status", other, job_id, "--json"), ("status", "--all", "--json"),
                 ("status", job_id, "nope"), ("status", "nope"), ("status", "../x")]:
        assert_same(args)
    rows = json.loads(fast("status", job_id, "--json").stdout)
    assert rows[0]["status"] == "DONE" and rows[0]["job_id"] == job_id


def test_the_fast_door_loads_no_click_and_the_other_forms_do(files):
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('CLICK' if 'click' in sys.modules else 'NO CLICK'))\n"
             "sys.argv = ['qmio', *sys.argv[1:]]\n"
             "from qmio_hpc.fast_cli import main\nmain()\n")

    def loads_click(*args: str) -> bool:
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                             text=True, timeout=120)
        return out.stdout.strip().splitlines()[-1] == "CLICK"
    assert not loads_click("submit", "x0.qasm", "-q")
    assert not loads_click("status", "--all")
    assert not loads_click("submit", "missing.qasm")
    assert loads_click("jobs")
    assert loads_click("submit", "x0.qasm", "--shots=5", "-q")


@pytest.mark.parametrize("argv, expected", [
    (["status"], ("status", [], {})),
    (["status", "L1", "--json", "L2"], ("status", ["L1", "L2"], {"as_json": True})),
    (["submit", "a.qasm", "-", "--shots", "12", "-q"],
     ("submit", ["a.qasm", "-"], {"shots": 12, "quiet": True})),
    (["submit", "a.qasm", "--executor", "slurm", "--res-format", "binary"],
     ("submit", ["a.qasm"], {"executor": "slurm", "res_format": "binary"})),
    (["status", "-"], None),                        # '-' is a file only for submit
    (["submit", "a.qasm", "--shots"], None),        # a value missing
    (["submit", "a.qasm", "--shots", "012"], None),  # click reads it; its message, not ours
    (["submit", "a.qasm", "-q", "--quiet"], None),  # given twice
    (["submit", "--json"], None),                   # no file
    (["jobs"], None), ([], None), (["--store", "x", "status"], None),
])
def test_which_forms_are_plain(argv, expected, monkeypatch):
    monkeypatch.delenv("_QMIO_COMPLETE", raising=False)
    assert parse(argv) == expected


def test_shell_completion_is_clicks(monkeypatch):
    monkeypatch.setenv("_QMIO_COMPLETE", "bash_complete")
    assert parse(["status"]) is None
