"""The batch script template and its renderer: content, shell safety, site templates.

The rendered scripts are checked by the programs that read them: ``bash -n`` and bash itself (with
a stub interpreter in place of Python and a stub ``module`` function), and sbatch's own parser
where sbatch is installed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from qmio_hpc.config import Settings
from qmio_hpc.errors import ConfigError
from qmio_hpc.scheduler.script import TEMPLATE_NAME, render_batch_script, template_path
from qmio_hpc.store import JobDir, JobStore

REPO = Path(__file__).resolve().parents[1]


def load(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Settings:
    return Settings.load({"store": str(tmp_path / "store"), **(overrides or {})},
                         environ={"QMIO_SITE_CONFIG": "/nonexistent",
                                  "QMIO_USER_CONFIG": "/nonexistent", "HOME": str(tmp_path)})


@pytest.fixture
def job(tmp_path: Path) -> JobDir:
    return JobStore(tmp_path / "store").create({})


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "check.sbatch"
    path.write_text(script)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def argv_stub(directory: Path) -> Path:
    """An executable that stands in for Python: prints each argument on its own line."""
    directory.mkdir(parents=True, exist_ok=True)
    stub = directory / "py stub"
    stub.write_text('#!/bin/bash\nprintf "ARG:%s\\n" "$@"\n'
                    'printf "UNBUF:%s\\n" "$PYTHONUNBUFFERED"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return stub


def run_script(script: str, tmp_path: Path, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "run.sbatch"
    path.write_text(script)
    return subprocess.run(["bash", str(path)], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **(env or {})},
                          timeout=30)


# -- the default script ---------------------------------------------------------------------------

def test_default_render(tmp_path: Path, job: JobDir) -> None:
    script = render_batch_script(load(tmp_path), job, python="/opt/py/bin/python3")
    lines = sbatch_lines(script)
    d = job.path
    assert lines == [
        "#SBATCH --job-name=qmio",
        "#SBATCH --partition=qpu",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --exclusive",
        "#SBATCH --time=00:10:00",
        f"#SBATCH --output={d}/slurm.out",
        f"#SBATCH --error={d}/slurm.err",
        f"#SBATCH --chdir={d}",
    ]
    assert script.startswith("#!/bin/bash\n")
    body = script.splitlines()
    assert body.index("set -euo pipefail") < body.index("umask 077") < body.index(
        "export PYTHONUNBUFFERED=1")
    assert body[-1] == f"exec /opt/py/bin/python3 -m qmio_hpc.step {d}"
    assert "module" not in "\n".join(line for line in body if not line.startswith("#"))
    bash_syntax_ok(script, tmp_path)


def test_default_python_is_this_interpreter(tmp_path: Path, job: JobDir) -> None:
    script = render_batch_script(load(tmp_path), job)
    assert script.splitlines()[-1].startswith(f"exec {sys.executable} -m qmio_hpc.step ")


def test_python_setting_wins_over_argument(tmp_path: Path, job: JobDir) -> None:
    settings = load(tmp_path, {"slurm.python": "/site/python 3/bin/python"})
    script = render_batch_script(settings, job, python="/other/python")
    last = script.splitlines()[-1]
    assert last == f"exec '/site/python 3/bin/python' -m qmio_hpc.step {job.path}"


def test_rendered_script_runs_the_step_with_the_job_dir(tmp_path: Path) -> None:
    """Run the whole script with bash; a job dir and interpreter with spaces stay one argument."""
    job = JobStore(tmp_path / "my store").create({})
    stub = argv_stub(tmp_path / "my bin")
    script = render_batch_script(load(tmp_path), job, python=str(stub))
    assert f'#SBATCH --chdir="{job.path}"' in script
    assert f'#SBATCH --output="{job.path}/slurm.out"' in script
    proc = run_script(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["ARG:-m", "ARG:qmio_hpc.step", f"ARG:{job.path}", "UNBUF:1"]


def test_gres_hold(tmp_path: Path, job: JobDir) -> None:
    script = render_batch_script(load(tmp_path, {"slurm.qpu_hold": "gres"}), job)
    assert "#SBATCH --gres=qpu:1" in sbatch_lines(script)
    assert "--exclusive" not in script
    script = render_batch_script(
        load(tmp_path, {"slurm.qpu_hold": "gres", "slurm.gres": "qpu:2"}), job)
    assert "#SBATCH --gres=qpu:2" in sbatch_lines(script)
    with pytest.raises(ConfigError, match="slurm.gres"):
        render_batch_script(load(tmp_path, {"slurm.qpu_hold": "gres", "slurm.gres": ""}), job)


def test_reservation_account_qos_only_when_set(tmp_path: Path, job: JobDir) -> None:
    plain = render_batch_script(load(tmp_path), job)
    for option in ("--reservation", "--account", "--qos"):
        assert option not in plain
    settings = load(tmp_path, {"slurm.reservation": "qmio_res", "slurm.account": "cesga-q1",
                               "slurm.qos": "qpu_high", "slurm.time": "01:30:00"})
    lines = sbatch_lines(render_batch_script(settings, job))
    assert "#SBATCH --reservation=qmio_res" in lines
    assert "#SBATCH --account=cesga-q1" in lines
    assert "#SBATCH --qos=qpu_high" in lines
    assert "#SBATCH --time=01:30:00" in lines
    only_qos = render_batch_script(load(tmp_path, {"slurm.qos": "q"}), job)
    assert "--qos=q" in only_qos and "--reservation" not in only_qos
    assert "--account" not in only_qos


@pytest.mark.parametrize("name,value", [
    ("slurm.partition", "qpu --uid=0"),
    ("slurm.reservation", "res\n#SBATCH --uid=0"),
    ("slurm.account", "acct#x"),
    ("slurm.qos", 'q"x'),
    ("slurm.time", "10:00\0"),
])
def test_unsafe_setting_values_are_refused(tmp_path: Path, job: JobDir, name: str,
                                           value: str) -> None:
    with pytest.raises(ConfigError) as info:
        render_batch_script(load(tmp_path, {name: value}), job)
    assert name in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize("bad", ["jobs/it's", "jobs/50%", 'jobs/a"b', "jobs/a#b", "jobs/a\nb"])
def test_unsafe_job_dir_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="job directory"):
        render_batch_script(load(tmp_path), JobDir(tmp_path / bad))


# -- extra directives -----------------------------------------------------------------------------

def test_extra_directives_each_on_own_line(tmp_path: Path, job: JobDir) -> None:
    extra = ["--mem=4G", "--cpus-per-task=2", "--exclude=c[1-3]", "-N1"]
    script = render_batch_script(load(tmp_path, {"slurm.extra_directives": extra}), job)
    lines = sbatch_lines(script)
    assert lines[-4:] == [f"#SBATCH {d}" for d in extra]
    bash_syntax_ok(script, tmp_path)


@pytest.mark.parametrize("bad", [
    "--mem=4G\n#SBATCH --uid=0",
    "--mem=4G\necho pwned",
    "--mem=4G; rm -rf /",
    "--comment=$(touch /tmp/x)",
    "mem=4G",
    "-",
    "--comment='a b'",
    "--output=/tmp/elsewhere",
    "--chdir=/tmp",
    "-o/tmp/x",
    "--err=/tmp/x",
])
def test_bad_extra_directive_is_refused(tmp_path: Path, job: JobDir, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        render_batch_script(load(tmp_path, {"slurm.extra_directives": ["--mem=1G", bad]}), job)
    assert repr(bad) in str(info.value)
    assert "slurm.extra_directives" in str(info.value)


# -- modules --------------------------------------------------------------------------------------

MODULE_STUB = '() {  printf "MODULE:%s\\n" "$@"; }'


def test_module_loads_are_guarded_and_quoted(tmp_path: Path, job: JobDir) -> None:
    settings = load(tmp_path, {"slurm.modules": ["qmio-tools", "qiskit/1.3"]})
    script = render_batch_script(settings, job)
    body = script.splitlines()
    guard = "command -v module >/dev/null 2>&1 || . /etc/profile.d/modules.sh 2>/dev/null || true"
    order = [guard, "module load qmio-tools", "module load qiskit/1.3",
             "export PYTHONUNBUFFERED=1", f"exec {sys.executable} -m qmio_hpc.step {job.path}"]
    positions = [body.index(line) for line in order]
    assert positions == sorted(positions)
    bash_syntax_ok(script, tmp_path)


def test_module_name_injection_does_not_run(tmp_path: Path, job: JobDir) -> None:
    """Run the rendered script for real: the would-be command must stay a module name."""
    victim = tmp_path / "pwned"
    evil = [f"qiskit; touch {victim}", f"$(touch {victim})", f"`touch {victim}`\ntouch {victim}"]
    stub = argv_stub(tmp_path / "bin")
    script = render_batch_script(load(tmp_path, {"slurm.modules": evil}), job, python=str(stub))
    bash_syntax_ok(script, tmp_path)
    proc = run_script(script, tmp_path, env={"BASH_FUNC_module%%": MODULE_STUB})
    assert proc.returncode == 0, proc.stderr
    assert not victim.exists()
    out = proc.stdout.split("ARG:-m")[0]
    # each module name arrives at `module` as one argument, byte for byte
    assert out == "".join(f"MODULE:load\nMODULE:{name}\n" for name in evil)
    assert "ARG:qmio_hpc.step" in proc.stdout


def test_module_load_failure_stops_the_job(tmp_path: Path, job: JobDir) -> None:
    stub = argv_stub(tmp_path / "bin")
    script = render_batch_script(load(tmp_path, {"slurm.modules": ["nope"]}), job,
                                 python=str(stub))
    proc = run_script(script, tmp_path, env={"BASH_FUNC_module%%": "() {  return 3; }"})
    assert proc.returncode == 3
    assert "ARG:" not in proc.stdout


# -- templates ------------------------------------------------------------------------------------

def test_builtin_template_is_shipped_and_linked() -> None:
    shipped = REPO / "qmio_hpc" / "templates" / TEMPLATE_NAME
    link = REPO / "slurm_templates" / TEMPLATE_NAME
    assert link.is_symlink() and os.readlink(link) == f"../qmio_hpc/templates/{TEMPLATE_NAME}"
    assert link.read_text() == shipped.read_text()
    assert Path(str(template_path(load(Path("/nonexistent"))))).samefile(shipped)


def test_site_template_override(tmp_path: Path, job: JobDir) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / TEMPLATE_NAME).write_text(
        "#!/bin/bash\n${sbatch_directives}\n#SBATCH --comment=site\n"
        "echo \"site $$HOME\"\n${python} -c pass ${job_dir}\nexec ${command}\n")
    script = render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job,
                                 python="py")
    assert "#SBATCH --comment=site" in script
    assert 'echo "site $HOME"' in script
    assert "#SBATCH --partition=qpu" in script
    assert "umask 077" not in script  # the built-in body is not used


def test_site_dir_without_template_is_refused(tmp_path: Path, job: JobDir) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with pytest.raises(ConfigError, match=f"holds no {TEMPLATE_NAME}.*unset the setting"):
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job)


def test_site_template_that_never_runs_the_command_is_refused(tmp_path: Path, job: JobDir) -> None:
    """A template with its own fixed step command would run a session's worker as a job."""
    site = tmp_path / "site"
    site.mkdir()
    (site / TEMPLATE_NAME).write_text("#!/bin/bash\n${sbatch_directives}\n"
                                      "exec ${python} -m qmio_hpc.step ${job_dir} # $$command\n")
    with pytest.raises(ConfigError, match=r"never runs \$\{command\}"):
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job)


def test_site_template_unknown_placeholder(tmp_path: Path, job: JobDir) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / TEMPLATE_NAME).write_text("#!/bin/bash\n${sbatch_directives}\necho $cluster_name\n")
    with pytest.raises(ConfigError) as info:
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job)
    assert "cluster_name" in str(info.value)
    assert str(site / TEMPLATE_NAME) in str(info.value)


def test_site_template_invalid_placeholder(tmp_path: Path, job: JobDir) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / TEMPLATE_NAME).write_text("#!/bin/bash\n${sbatch_directives}\necho $1\n")
    with pytest.raises(ConfigError, match=r"\$\$ for a literal \$") as info:
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job)
    assert str(site / TEMPLATE_NAME) in str(info.value)


def test_site_template_directives_after_command(tmp_path: Path, job: JobDir) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / TEMPLATE_NAME).write_text("#!/bin/bash\nset -e\n${sbatch_directives}\n")
    with pytest.raises(ConfigError, match="sbatch would ignore them"):
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job)
    (site / TEMPLATE_NAME).write_text("${sbatch_directives}\n")
    with pytest.raises(ConfigError, match="#!"):
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(site)}), job)


def test_an_edited_site_template_is_read_again(tmp_path: Path, job: JobDir) -> None:
    """Templates are read once per version of the file: an edit between two submissions of the
    same process (a notebook's loop) is seen by the second."""
    site = tmp_path / "site"
    site.mkdir()
    settings = load(tmp_path, {"slurm.template_dir": str(site)})
    (site / TEMPLATE_NAME).write_text("#!/bin/bash\n${sbatch_directives}\n# first\n"
                                      "exec ${command}\n")
    assert "# first" in render_batch_script(settings, job)
    (site / TEMPLATE_NAME).write_text("#!/bin/bash\n${sbatch_directives}\n# second one\n"
                                      "exec ${command}\n")
    second = render_batch_script(settings, job)
    assert "# second one" in second and "# first" not in second
    (site / TEMPLATE_NAME).unlink()
    with pytest.raises(ConfigError, match="qmio_job.sbatch"):
        render_batch_script(settings, job)


def test_missing_template_dir(tmp_path: Path, job: JobDir) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ConfigError) as info:
        render_batch_script(load(tmp_path, {"slurm.template_dir": str(missing)}), job)
    assert "slurm.template_dir" in str(info.value) and str(missing) in str(info.value)


# -- sbatch's own reading of the directives -------------------------------------------------------

def sbatch_parsed_arguments(script_path: Path) -> tuple[list[str], bool, str]:
    """The #SBATCH arguments as sbatch itself tokenises them (``-vvv`` prints each one), whether
    it got as far as listing its options, and what it printed.

    ``--test-only`` means nothing is ever submitted, even if a controller answers; sbatch is
    stopped once it has printed its options, before it spends time retrying a missing controller.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURM_"))}
    if os.environ.get("SLURM_CONF"):
        env["SLURM_CONF"] = os.environ["SLURM_CONF"]
    proc = subprocess.Popen(["sbatch", "-vvv", "--test-only", str(script_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(30, proc.kill)
    timer.start()
    found: list[str] = []
    seen: list[str] = []
    complete = False
    marker = 'Found in script, argument "'
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                found.append(line.split(marker, 1)[1].rstrip().removesuffix('"'))
            if "end of defined options" in line:
                complete = True
                break
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
    return found, complete, "".join(seen)


def test_sbatch_reads_the_directives_as_meant(tmp_path: Path) -> None:
    assert shutil.which("sbatch"), "sbatch is not installed: run scripts/slurm-cluster/start.sh"
    job = JobStore(tmp_path / "my store").create({})
    settings = load(tmp_path, {"slurm.reservation": "res1", "slurm.qpu_hold": "gres",
                               "slurm.extra_directives": ["--mem=4G", "--exclude=c[1-3]"]})
    path = tmp_path / "job.sbatch"
    path.write_text(render_batch_script(settings, job))
    parsed, complete, output = sbatch_parsed_arguments(path)
    assert parsed or complete, f"sbatch did not read the script (no slurm.conf?): {output[-300:]}"
    assert complete, f"sbatch refused the script: {output}"
    assert parsed == [
        "--job-name=qmio", "--partition=qpu", "--nodes=1", "--ntasks=1", "--gres=qpu:1",
        "--time=00:10:00", "--reservation=res1",
        f"--output={job.path}/slurm.out", f"--error={job.path}/slurm.err",
        f"--chdir={job.path}", "--mem=4G", "--exclude=c[1-3]",
    ]
