"""The documentation site (mkdocs.yml, docs/): it builds strictly with MkDocs; the troubleshooting
page covers every exit code and every error class; every ``qmio`` command it shows exists, with
the options it shows; its Python examples run as written."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys

import qmio_hpc.errors as errors
from qmio_hpc.cli import EXIT_CODES_HELP, cli
from tests.conftest import REPO

DOCS = REPO / "docs"
PAGES = ("index", "user-guide", "admin-guide", "troubleshooting")


def code_blocks(language: str) -> list[tuple[str, str]]:
    """(page name, block text) for every fenced block of ``language`` in docs/."""
    out = []
    for page in sorted(DOCS.glob("*.md")):
        for block in re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M):
            out.append((page.name, block))
    return out


def section(text: str, heading: str) -> str:
    """The text under a '### heading', up to the next heading."""
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^#|\Z)", text, re.S | re.M)
    assert match, f"no section '### {heading}'"
    return match.group(1)


# -- (a) the site builds ----------------------------------------------------------------------------

def test_mkdocs_builds_the_site_strictly(tmp_path):
    """A broken link, a missing anchor or a page left out of nav fails the build (mkdocs.yml
    makes them warnings, and --strict makes warnings fatal). Without MkDocs this fails too."""
    site = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                          str(REPO / "mkdocs.yml"), "-d", str(site)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for page in PAGES:
        built = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), f"{page} was not built"
    assert "JobEndpointError" in (site / "troubleshooting" / "index.html").read_text()


# -- (b) every exit code -------------------------------------------------------------------------

def test_every_exit_code_of_the_help_is_in_the_troubleshooting_table():
    codes = re.findall(r"^\s+(\d+)\s{2,}\S", EXIT_CODES_HELP, re.M)
    assert len(codes) >= 8 and codes[0] == "0", f"cannot read the codes of {EXIT_CODES_HELP!r}"
    rows = {}
    for line in (DOCS / "troubleshooting.md").read_text().splitlines():
        match = re.match(r"^\|\s*(\d+)\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    missing = [code for code in codes if code not in rows]
    assert not missing, f"exit codes {missing} are not in the table of docs/troubleshooting.md"
    for code in codes:
        meaning, todo = rows[code][0], rows[code][-1]
        assert meaning and todo, f"exit code {code}: the row says nothing"


# -- (c) every error class -------------------------------------------------------------------------

def error_classes_of_errors_py() -> dict[str, type]:
    return {name: obj for name, obj in inspect.getmembers(errors, inspect.isclass)
            if obj.__module__ == errors.__name__ and issubclass(obj, errors.QmioError)}


def test_every_error_class_has_a_section_with_its_exit_code():
    classes = error_classes_of_errors_py()
    assert len(classes) >= 15 and "QmioError" in classes
    text = (DOCS / "troubleshooting.md").read_text()
    headings = set(re.findall(r"^#{2,4} (\w+)\s*$", text, re.M))
    missing = sorted(set(classes) - headings)
    assert not missing, f"no heading in docs/troubleshooting.md for {missing}"
    for name, cls in classes.items():
        said = re.findall(r"\bExit (\d+)\.", section(text, name))
        assert said, f"the section {name} does not give its exit code"
        assert said == [str(cls.exit_code)], f"{name} exits {cls.exit_code}, the docs say {said}"


def test_every_error_class_anywhere_in_the_package_has_a_section():
    """QmioError subclasses defined outside errors.py (UnknownBackendError, ...) too, found in
    the source without importing it."""
    bases: dict[str, list[str]] = {}
    for path in (REPO / "qmio_hpc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                                    for b in node.bases]

    def is_qmio_error(name: str, seen: frozenset = frozenset()) -> bool:
        return name == "QmioError" or any(
            base not in seen and is_qmio_error(base, seen | {name}) for base in bases.get(name, ()))

    classes = {name for name in bases if is_qmio_error(name)}
    assert set(error_classes_of_errors_py()) <= classes and "UnknownBackendError" in classes
    text = (DOCS / "troubleshooting.md").read_text()
    missing = sorted(name for name in classes if not re.search(rf"^### {name}$", text, re.M))
    assert not missing, f"no heading in docs/troubleshooting.md for {missing}"


# -- (d) every command shown exists, with the options shown ---------------------------------------

GLOBAL_OPTIONS_WITH_VALUE = {opt for p in cli.params if not getattr(p, "is_flag", False)
                             for opt in p.opts}


def qmio_invocations(block: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Each ``qmio`` call in a bash block: (command words, options after them). Commands named
    in comments count too (options there are not attributed)."""
    calls = []
    for line in block.replace("\\\n", " ").splitlines():
        code, _, comment = line.partition(" #")
        if line.lstrip().startswith("#"):
            code, comment = "", line
        for segment in re.split(r"\$\(|[;|&()`]", code):
            words = [w.strip("\"'") for w in segment.split()]
            for i, word in enumerate(words):
                if word != "qmio" and not word.endswith("/qmio"):
                    continue
                j = i + 1
                while j < len(words) and words[j].startswith("-"):
                    j += 2 if words[j] in GLOBAL_OPTIONS_WITH_VALUE else 1
                command = []
                while j < len(words) and re.fullmatch(r"[a-z]+", words[j]) and (
                        not command or command == ["session"]):
                    command.append(words[j])
                    j += 1
                if command:
                    options = [w.split("=", 1)[0] for w in words[j:] if re.match(r"--?[a-z]", w)]
                    calls.append((tuple(command), options))
        for match in re.finditer(r"\bqmio ((?:session )?[a-z]+)", comment):
            calls.append((tuple(match.group(1).split()), []))
    return calls


def test_the_command_finder_finds_commands_and_options():
    found = qmio_invocations('ID=$(qmio --executor slurm submit a.qasm -q)  # see qmio jobs\n'
                             'qmio session close "$SID" --all | .venv/bin/qmio status --json\n')
    assert found == [(("submit",), ["-q"]), (("jobs",), []),
                     (("session", "close"), ["--all"]), (("status",), ["--json"])]


def test_every_qmio_command_in_the_docs_exists_with_its_options():
    """Each 'qmio COMMAND' in a bash block of the docs is a real command (its --help exits 0),
    and each option written after it is one of that command's."""
    options: dict[tuple[str, ...], set[str]] = {}
    for _, block in code_blocks("bash"):
        for command, opts in qmio_invocations(block):
            options.setdefault(command, set()).update(opts)
    assert {("submit",), ("status",), ("result",), ("cancel",), ("jobs",), ("resubmit",),
            ("config",), ("session", "start"), ("session", "close")} <= set(options)
    for command, opts in sorted(options.items()):
        out = subprocess.run([sys.executable, "-m", "qmio_hpc", *command, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"qmio {' '.join(command)}: {out.stderr}"
        known = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", out.stdout))
        unknown = sorted(opts - known)
        assert not unknown, f"qmio {' '.join(command)} has no option {unknown}"


def test_every_toml_example_is_a_valid_site_file(tmp_path):
    """The site file shown in the administrator's guide loads, and says what it seems to."""
    from qmio_hpc.config import Settings

    blocks = code_blocks("toml")
    assert blocks
    for n, (page, block) in enumerate(blocks):
        site = tmp_path / f"site{n}.toml"
        site.write_text(block)
        settings = Settings.load(environ={"QMIO_SITE_CONFIG": str(site), "HOME": str(tmp_path),
                                          "QMIO_USER_CONFIG": str(tmp_path / "none.toml")})
        assert settings.origin("slurm.partition") == f"site file {site}", page
        assert settings.executor == "slurm" and settings.endpoint.startswith("tcp://"), page


def test_the_sbatch_example_in_the_user_guide_is_the_file_itself():
    script = (REPO / "examples" / "my_qpu_job.sbatch").read_text()
    assert ("user-guide.md", script) in code_blocks("bash")


# -- the Python examples run ------------------------------------------------------------------------

def test_every_python_example_in_the_docs_runs_as_written(qmio_env):
    """From the repository root, on the embedded default (local executor, built-in emulator),
    as a user would run them after activating the virtual environment."""
    blocks = code_blocks("python")
    assert len(blocks) >= 4
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    output = ""
    for page, block in blocks:
        out = subprocess.run([sys.executable, "-c", block], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{page}:\n{block}\n{out.stderr}"
        output += out.stdout
    assert "[{'01': 200}, {'11': 200}]" in output  # several circuits, one job, Qiskit's order
    assert "{'1': 1000}" in output and "{'1': 500}" in output  # backend.run and SamplerV2
    assert "-1.0" in output  # EstimatorV2: <Z> of |1>
    assert "In progress, accepting new jobs" in output
    assert "'c': {" in output  # the seed API's reply dict
