"""The README's session tour and the examples run as written, as a user would run them."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from qmio_hpc.jobs import JobManager
from tests.conftest import REPO


def readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", text, re.S)
    assert match, f"README.md has no block marked {marker}"
    return match.group(1)


def user_env() -> dict[str, str]:
    """The environment after activating the venv: its bin directory first on PATH."""
    return {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


def test_readme_tour_runs_as_written(qmio_env):
    """Issue 10, item 1: the tour, from the repository root, after the first set-up command
    (which made .venv): every line runs, on files that exist."""
    block = readme_block("tour")
    assert block.startswith(". .venv/bin/activate")
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=os.environ,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "bell: 2000 shots" in out.stdout
    assert "ghz: 1000 shots" in out.stdout and "111" in out.stdout
    assert "left as it is" in out.stdout
    ids = JobManager().job_ids()
    assert len(ids) == 2 and ids[1] in out.stdout


def test_every_python_block_in_the_readme_runs_as_written(qmio_env):
    """Issue 10, item 1: the README's Python examples are whole programs that run (on the
    embedded default, from the repository root) and print what their comments say."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    outputs = []
    for block in blocks:
        out = subprocess.run([sys.executable, "-c", block], cwd=REPO, env=user_env(),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{block}\n{out.stderr}"
        outputs.append(out.stdout)
    first = outputs[0].splitlines()
    counts = ast.literal_eval(first[-1].split("}")[0] + "}")
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000
    assert "{'1': 1000}" in outputs[1]
    assert outputs[1].rstrip().endswith(("Closed", "In progress, not accepting new jobs"))
    assert "'c':" in outputs[2]


def test_readme_session_tour_runs_as_written(qmio_env):
    block = readme_block("session-tour")
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=user_env(),
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "bell: 1000 shots" in out.stdout
    assert "In progress, accepting new jobs" in out.stdout  # session status
    sessions = JobManager().sessions.views()
    assert len(sessions) == 1 and sessions[0].details["jobs"] == 1
    assert "closing" in out.stdout


def test_session_example_runs(qmio_env):
    out = subprocess.run([sys.executable, str(REPO / "examples" / "session_loop.py")],
                         cwd=REPO, env=user_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("16 jobs in one allocation")
    theta = float(lines[1].split()[2])
    assert abs(theta - 3.14) < 0.5  # it found |1>: the loop really used each result
    assert "<Z> = -1.00" in lines[1] or "<Z> = -0.9" in lines[1]


@pytest.mark.parametrize("name", ["qiskit_bell.py", "seed_api.py"])
def test_examples_run(qmio_env, name):
    out = subprocess.run([sys.executable, str(REPO / "examples" / name)], cwd=REPO,
                         env=user_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if name == "qiskit_bell.py":
        counts = ast.literal_eval(out.stdout.splitlines()[-1])
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000
    else:
        assert "'results'" in out.stdout


def test_every_test_the_readme_names_exists():
    """"What we tried" names the test behind each row: each must be a test function that CI
    runs (a renamed or removed test would leave the row unchecked), and each bench a file."""
    text = (REPO / "README.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(named) >= 20, named
    for path, name in named:
        source = (REPO / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"README names {path}::{name}"
    for path in re.findall(r"`(bench/\w+\.py)`", text) + ["tests/test_bad_input.py"]:
        assert (REPO / path).is_file(), path


def test_the_readme_opens_with_two_commands_and_the_first_runs_the_main_job(qmio_env):
    """The first line's install is what .ci/run does; its last command, the main job, runs here
    as written with the venv's bin first on PATH, on the embedded default (the local executor:
    a fresh machine has no Slurm). It prints Bell counts: about half 00, half 11."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"\A# qmio-hpc\n\n```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with its two set-up commands"
    first, second = block.group(1).strip().splitlines()
    install, main_job = first.rsplit(" && ", 1)
    assert install == "python3 -m venv .venv && .venv/bin/pip install -e .", install
    assert second == "scripts/run-tests.sh"
    command = main_job.replace(".venv/bin/", f"{os.path.dirname(sys.executable)}/", 1)
    out = subprocess.run(["bash", "-c", command], cwd=REPO, env=user_env(),
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    counts = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("00", "01", "10", "11") and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000, out.stdout
    assert min(counts.values()) > 350, counts
