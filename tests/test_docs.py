"""The documentation site (docs/, mkdocs.yml): it builds strictly with MkDocs, and it covers
what it promises: every exit code, every error class, and only commands that exist."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import qmio_hpc.errors as errors
from qmio_hpc.cli import EXIT_CODES_HELP
from tests.conftest import REPO

DOCS = REPO / "docs"


def test_mkdocs_builds_the_site_strictly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                          str(REPO / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr  # mkdocs missing fails here too, never skips
    for page in ("index", "user-guide", "admin-guide", "troubleshooting"):
        built = tmp_path / "site" / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), page


def test_troubleshooting_has_every_exit_code_and_every_error_class():
    text = (DOCS / "troubleshooting.md").read_text()
    codes = re.findall(r"^\s+(\d)\s", EXIT_CODES_HELP, re.M)
    assert codes == [str(n) for n in range(8)]
    for code in codes:
        assert re.search(rf"^\| {code} \|", text, re.M), f"exit code {code} not in the table"
    classes = [name for name, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, errors.QmioError) and obj is not errors.QmioError]
    assert len(classes) >= 15
    for name in classes:
        assert re.search(rf"^### {name}$", text, re.M), f"no section for {name}"


def test_every_qmio_command_in_the_docs_exists():
    """Each 'qmio COMMAND' in a bash block of the docs is a real command (its --help works)."""
    commands: set[tuple[str, ...]] = set()
    for page in DOCS.glob("*.md"):
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for match in re.finditer(r"\bqmio ((?:session )?[a-z]+)", block):
                commands.add(tuple(match.group(1).split()))
    assert ("submit",) in commands and ("session", "start") in commands
    for command in sorted(commands):
        out = subprocess.run([sys.executable, "-m", "qmio_hpc", *command, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"qmio {' '.join(command)}: {out.stderr}"
