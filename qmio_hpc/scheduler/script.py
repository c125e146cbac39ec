"""The Slurm batch script of one allocation: a template filled in from the settings, the command to
run (one job's batch step, or a session's worker) and the directory it runs in.

Two programs read the script, and no value may fool either of them. sbatch reads the ``#SBATCH``
lines without a shell: it splits them on blanks, honours quotes and backslashes, and treats an
unquoted ``#`` as the start of a comment. So every value on those lines must be made of a small safe
set of characters; only the job directory may also hold spaces, and then it is double-quoted. bash
runs the rest, and every value there is quoted with ``shlex.quote``.

The template is ``qmio_hpc/templates/qmio_job.sbatch`` unless the directory in
``slurm.template_dir`` holds a file of the same name. It is filled in with
``string.Template.substitute`` (never ``safe_substitute``): a site template with a placeholder this
code does not know fails here, with a message naming it, and not later as a broken job on the QPU
node.
"""

from __future__ import annotations

import functools
import re
import shlex
import string
import sys
from pathlib import Path
from typing import Sequence

from ..config import Settings
from ..errors import ConfigError
from ..store import JobDir

TEMPLATE_NAME = "qmio_job.sbatch"

_SAFE = r"A-Za-z0-9_./:=,@+%-"
_SAFE_VALUE = re.compile(rf"[{_SAFE}]+\Z")
# Extra directives may also use Slurm's node-list and constraint syntax: node[1-3], a&b, a|b.
_SAFE_DIRECTIVE = re.compile(rf"-[{_SAFE}\[\]&|]*\Z")
# No '%': sbatch expands it as a file name pattern in --output and --error.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./:=,@+ -]*\Z")
# The batch step and the scheduler adapter find a job's files through these; a directive that
# moved them would lose the job's output.
_RESERVED_LONG = ("--output", "--error", "--chdir")
_RESERVED_SHORT = ("-o", "-e", "-D")

#: Makes ``module`` usable where the batch shell did not inherit it (a non-login bash).
MODULES_INIT = ("command -v module >/dev/null 2>&1 "
                "|| . /etc/profile.d/modules.sh 2>/dev/null || true")

PLACEHOLDERS = ("sbatch_directives", "module_loads", "command", "python", "job_dir")


def template_path(settings: Settings) -> Path:
    """The site's template if ``slurm.template_dir`` holds one, else the one in the package."""
    site_dir = settings.get("slurm.template_dir")
    if site_dir:
        directory = Path(site_dir).expanduser()
        if not directory.is_dir():
            where = settings.origin("slurm.template_dir")
            raise ConfigError(f"setting 'slurm.template_dir' ({where}): {site_dir!r} is not a "
                              f"directory")
        if not (directory / TEMPLATE_NAME).is_file():
            where = settings.origin("slurm.template_dir")
            raise ConfigError(f"setting 'slurm.template_dir' ({where}): {site_dir!r} holds no "
                              f"{TEMPLATE_NAME}; put the site's template there, or unset the "
                              f"setting to use the built-in one")
        return directory / TEMPLATE_NAME
    return _builtin_template()


@functools.cache
def _builtin_template() -> Path:
    # The package is installed as files (setuptools, editable or not), so a path beside this
    # module; importlib.resources would cost every submission ~3 ms of imports.
    return Path(__file__).resolve().parent.parent / "templates" / TEMPLATE_NAME


def read_template(path: Path) -> tuple[string.Template, bool]:
    """The template at ``path``, and whether it runs ``${command}``: read once for each version
    of the file (a loop of ``backend.run`` calls renders it hundreds of times)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read batch script template {path}: {exc}") from None
    return _read_template(path, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=8)
def _read_template(path: Path, _mtime_ns: int, _size: int) -> tuple[string.Template, bool]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read batch script template {path}: {exc}") from None
    return string.Template(text), bool(re.search(r"(?<!\$)\$(\{command\}|command\b)", text))


def render_batch_script(settings: Settings, job: JobDir, *, python: str | None = None,
                        args: Sequence[str] | None = None, name: str = "qmio") -> str:
    """The batch script that runs ``python ARG...`` in ``job``'s directory under Slurm.

    ``args`` default to the batch step of that job (``-m qmio_hpc.step DIR``). ``python`` is the
    interpreter to use when ``slurm.python`` is empty (default: this one). ``name`` is the Slurm
    job name. Raises ConfigError for a value that could not be written safely or a broken template.
    """
    path = template_path(settings)
    template, runs_command = read_template(path)
    job_dir = str(job.path.absolute())
    interpreter = settings.get("slurm.python") or python or sys.executable
    _no_nul("slurm.python", interpreter)
    directives = sbatch_directives(settings, job_dir, name)
    command = [interpreter, *(args if args is not None else ["-m", "qmio_hpc.step", job_dir])]
    for arg in command:
        _no_nul("command", arg)
    values = {
        "sbatch_directives": "\n".join(f"#SBATCH {d}" for d in directives),
        "module_loads": module_loads(settings),
        "command": shlex.join(command),
        "python": shlex.quote(interpreter),
        "job_dir": shlex.quote(job_dir),
    }
    try:
        script = template.substitute(values)
    except KeyError as exc:
        raise ConfigError(f"batch script template {path}: unknown placeholder ${{{exc.args[0]}}}; "
                          f"known: {', '.join(PLACEHOLDERS)} (write $$ for a literal $)") from None
    except ValueError as exc:
        raise ConfigError(f"batch script template {path}: {exc} "
                          f"(write $$ for a literal $)") from None
    _check_layout(script, path)
    if not runs_command:
        # A template that runs its own fixed command would run a session's worker as a batch step.
        raise ConfigError(f"batch script template {path} never runs ${{command}}: end it with "
                          f"'exec ${{command}}' (jobs and sessions both need it)")
    return script


def sbatch_directives(settings: Settings, job_dir: str, name: str = "qmio") -> list[str]:
    """The options for the ``#SBATCH`` lines, in order, without the ``#SBATCH`` prefix."""
    out = [f"--job-name={name}"]
    if settings.get("slurm.partition"):
        out.append(f"--partition={_value(settings, 'slurm.partition')}")
    out += ["--nodes=1", "--ntasks=1"]
    if settings.get("slurm.qpu_hold") == "gres":
        if not settings.get("slurm.gres"):
            raise ConfigError(f"setting 'slurm.gres' ({settings.origin('slurm.gres')}) is empty "
                              f"but slurm.qpu_hold = gres needs it, e.g. qpu:1")
        out.append(f"--gres={_value(settings, 'slurm.gres')}")
    else:  # at CESGA the QPU has a node of its own and no GRES: holding the node holds the QPU
        out.append("--exclusive")
    for name in ("time", "reservation", "account", "qos"):
        if settings.get(f"slurm.{name}"):
            out.append(f"--{name}={_value(settings, f'slurm.{name}')}")
    out += [f"--output={_sbatch_path(job_dir + '/slurm.out')}",
            f"--error={_sbatch_path(job_dir + '/slurm.err')}",
            f"--chdir={_sbatch_path(job_dir)}"]
    out += [_directive(settings, d) for d in settings.get("slurm.extra_directives")]
    return out


def module_loads(settings: Settings) -> str:
    """``module load`` lines for ``slurm.modules``, or '' when there are none.

    nounset is off while they run: module init scripts (Lmod, Environment Modules) read variables
    that may be unset, and under ``set -u`` that would end the job before the QPU is touched.
    """
    modules = settings.get("slurm.modules")
    if not modules:
        return ""
    for name in modules:
        _no_nul("slurm.modules", name)
        if not name.strip():
            raise ConfigError(f"setting 'slurm.modules' ({settings.origin('slurm.modules')}) "
                              f"holds an empty module name")
    lines = ["set +u", MODULES_INIT]
    lines += [f"module load {shlex.quote(name)}" for name in modules]
    lines.append("set -u")
    return "\n".join(lines)


def _value(settings: Settings, name: str) -> str:
    value = settings.get(name)
    if not _SAFE_VALUE.match(value):
        raise ConfigError(f"setting '{name}' ({settings.origin(name)}): {value!r} may only hold "
                          f"letters, digits and _ . / : = , @ + % - on an #SBATCH line")
    return value


def _directive(settings: Settings, directive: str) -> str:
    where = f"setting 'slurm.extra_directives' ({settings.origin('slurm.extra_directives')})"
    if not _SAFE_DIRECTIVE.match(directive) or directive == "-":
        raise ConfigError(f"{where}: {directive!r} is not a safe #SBATCH option; it must start "
                          f"with '-' and hold only letters, digits and _ . / : = , @ + % - [ ] & |"
                          f" (no spaces, quotes or newlines)")
    name = directive.split("=", 1)[0]
    reserved = (name.startswith("--") and any(r.startswith(name) for r in _RESERVED_LONG)) or (
        not name.startswith("--") and name.startswith(_RESERVED_SHORT))
    if reserved:
        raise ConfigError(f"{where}: {directive!r} would move the job's output or working "
                          f"directory, which qmio-hpc sets to the job directory")
    return directive


def _sbatch_path(path: str) -> str:
    """A path for an #SBATCH line: as it is, or double-quoted if it holds spaces."""
    if not _SAFE_PATH.match(path):
        raise ConfigError(f"job directory {path!r} cannot be written on an #SBATCH line: use a "
                          f"store path (setting 'store') of letters, digits, spaces and "
                          f"_ . / : = , @ + - only")
    return f'"{path}"' if " " in path else path


def _no_nul(name: str, value: str) -> None:
    if "\0" in value:
        raise ConfigError(f"setting '{name}': {value!r} holds a NUL character")


def _check_layout(script: str, path: Path) -> None:
    """sbatch needs a '#!' first line, and it ignores '#SBATCH' lines below the first command."""
    lines = script.splitlines()
    if not lines or not lines[0].startswith("#!"):
        raise ConfigError(f"batch script template {path} must start with a '#!' line")
    first_command = next((i for i, line in enumerate(lines)
                          if line.strip() and not line.lstrip().startswith("#")), len(lines))
    if any(line.startswith("#SBATCH") for line in lines[first_command:]):
        raise ConfigError(f"batch script template {path}: #SBATCH lines come after the first "
                          f"command (line {first_command + 1}); sbatch would ignore them")
