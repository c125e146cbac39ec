"""The ``qmio`` command's options and commands, with click. Imports Qiskit only in commands that
need it (not status, jobs, cancel). The console script is ``fast_cli``: it runs the plain forms of
``submit`` and ``status`` without click, and hands everything else to ``main`` here; the work and
the output of both are in ``console``.

Exit codes: 0 success; 1 the job ended in ERROR or CANCELLED; 2 bad input or usage; 3 no such
job; 4 the QPU endpoint failed; 5 the scheduler failed; 6 gave up waiting (the job goes on);
7 the session takes no new jobs.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from . import console
from .console import handle_errors, make_manager
from .errors import JobFailedError, ProgramError, SchedulerError
from .protocol import OPTIMIZATION_FLAGS, RESULTS_FORMATS, ExecutionOptions
from .states import ALL_STATUSES

if TYPE_CHECKING:  # imported when a command runs: --help and completion stay light
    from .config import Settings
    from .jobs import JobManager

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  the job ended in ERROR or CANCELLED (4 or 2 when the endpoint or the program was why)
  2  bad input or usage
  3  no such job or session
  4  the QPU endpoint failed (unreachable, no answer, an answer that is not a result,
     or the QPU refused)
  5  the scheduler (Slurm or the local executor) failed
  6  gave up waiting; the job itself goes on
  7  the session takes no new jobs (closed, cancelled, ended, out of time)
  130  interrupted (Ctrl-C)"""


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses 'nan' and 'inf' (which pass any range check)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _manager(ctx: click.Context) -> JobManager:
    if "manager" not in ctx.obj:
        ctx.obj["manager"] = make_manager(ctx.obj["overrides"])
    return ctx.obj["manager"]


#: The width click gives its help (its own rule, without the shutil import it would make for it).
HELP_WIDTH = max(min(console.terminal_width(), 80) - 2, 50)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"],
                                                       "terminal_width": HELP_WIDTH})
@click.option("--store", metavar="DIR", help="Job store root (setting 'store').")
@click.option("--endpoint", metavar="ADDR",
              help="QPU control server, tcp://host:port, or 'emulator' (setting 'endpoint').")
@click.option("--executor", type=click.Choice(["auto", "local", "slurm"]),
              help="Where jobs run (setting 'executor').")
@click.version_option(package_name="qmio-hpc")
@click.pass_context
def cli(ctx: click.Context, store: str | None, endpoint: str | None, executor: str | None) -> None:
    """Send quantum circuits to the Qmio QPU through Slurm, or to the built-in emulator.

    \b
    qmio submit bell.qasm --wait     run a program and print its counts
    qmio status [ID...]              where jobs are (QUEUED, RUNNING, DONE, ...)
    qmio result ID                   counts of a finished job
    qmio jobs                        the newest jobs, with their status
    qmio session start               hold the QPU for many jobs
    qmio config                      effective settings, where each came from, what it does

    \b
    Shell completion (bash; zsh and fish alike, with zsh_source or fish_source):
      eval "$(_QMIO_COMPLETE=bash_source qmio)"     in ~/.bashrc
    """
    ctx.ensure_object(dict)
    ctx.obj["overrides"] = {"store": store, "endpoint": endpoint, "executor": executor}


# -- submit --------------------------------------------------------------------------------------

@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--shots", type=click.IntRange(min=1), help="Shots per program (setting 'shots').")
@click.option("--res-format", type=click.Choice(list(RESULTS_FORMATS)), default="binary_count",
              show_default=True, help="Results format the QPU returns.")
@click.option("--repetition-period", type=FiniteFloat(min=0, min_open=True),
              metavar="SECONDS", help="Time between shots (default: the QPU's).")
@click.option("--optimization", type=click.Choice([str(k) for k in OPTIMIZATION_FLAGS]),
              help="QAT optimisation level.")
@click.option("--wait", is_flag=True, help="Wait for the job and print its counts.")
@click.option("--timeout", type=FiniteFloat(min=0), metavar="SECONDS",
              help="With --wait: give up after this long (the job goes on).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--executor", type=click.Choice(["auto", "local", "slurm"]),
              help="Where the job runs (overrides the setting 'executor').")
@click.option("--dry-run", is_flag=True,
              help="Print the batch script that would be submitted, and submit nothing.")
@click.option("--session", "session_id", metavar="ID",
              help="Queue the job into session ID ('qmio session start') instead of an "
                   "allocation of its own.")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only the job id (for ID=$(qmio submit FILE -q)).")
@click.pass_context
@handle_errors
def submit(ctx: click.Context, files: tuple[str, ...], shots: int | None, res_format: str,
           repetition_period: float | None, optimization: str | None, wait: bool,
           timeout: float | None, as_json: bool, executor: str | None, dry_run: bool,
           session_id: str | None, quiet: bool) -> None:
    """Submit OpenQASM program FILE(s) as one job ('-' reads standard input).

    All files go out together, as one job that holds the QPU once. The job id is printed at once;
    with --wait the command also waits and prints the counts, in Qiskit's bit order (c[0] is the
    rightmost character). With --session the job runs in that session's allocation, after the
    jobs queued there before it.
    """
    if executor:
        ctx.obj["overrides"]["executor"] = executor
    console.submit(_manager(ctx), files, shots=shots, res_format=res_format,
                   repetition_period=repetition_period, optimization=optimization, wait=wait,
                   timeout=timeout, as_json=as_json, dry_run=dry_run, session_id=session_id,
                   quiet=quiet, executor_given=bool(executor))


# -- results -------------------------------------------------------------------------------------

@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("job_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Wait for the job to finish first.")
@click.option("--timeout", type=FiniteFloat(min=0), metavar="SECONDS",
              help="With --wait: give up after this long.")
@click.option("--top", type=click.IntRange(min=1), default=16, show_default=True,
              help="Show the N most frequent outcomes; the rest are summed on one line.")
@click.option("--plot", metavar="FILE", help="Also write a histogram picture (.png, .svg or "
              ".pdf; several programs side by side). Needs pip install 'qmio-hpc[plot]'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def result(ctx: click.Context, job_id: str, wait: bool, timeout: float | None, top: int,
           plot: str | None, as_json: bool) -> None:
    """Print the counts of job ID as a histogram (Qiskit's bit order: c[0] rightmost)."""
    from .histogram import check_picture_path  # noqa: PLC0415
    picture = check_picture_path(plot) if plot else None
    manager = _manager(ctx)
    status = (manager.wait(job_id, timeout=timeout, on_status=console.progress(job_id, as_json))
              if wait else manager.status(job_id))
    if not status.final:
        raise JobFailedError(f"job {job_id} is {status.name} ({status.detail}); no result yet "
                             f"(use --wait)")
    console.print_result(manager, job_id, status, as_json, top, picture)


# -- status, jobs, cancel ------------------------------------------------------------------------

@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("job_ids", nargs=-1, metavar="[ID...]")
@click.option("--all", "show_all", is_flag=True, help="With no ID: every job, final ones too.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, job_ids: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """Show the status of jobs ID...; with no ID, of the jobs that are not final yet (--all:
    every job in the store; 'qmio jobs' lists the newest).

    Statuses are Qiskit's, and move forward only: QUEUED, INITIALIZING, VALIDATING, RUNNING,
    then DONE, CANCELLED or ERROR; DETAIL gives the scheduler's reason or the error.
    """
    console.status(_manager(ctx), job_ids, show_all, as_json)


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def queue(ctx: click.Context, as_json: bool) -> None:
    """Show the QPU's queue: what holds the QPU and what waits for it, in the order expected.

    Your allocations (jobs and sessions) are listed in full, with Slurm's expected start where
    it has one; other users' are counted only. On the local executor: its own queue.
    """
    manager = _manager(ctx)
    entries = manager.scheduler().queue()
    rows = [{"place": None if e.holding else i, "id": e.alloc_id, "kind": e.kind,
             "state": "HOLDING" if e.holding else "WAITING",
             "expected_start": console.iso(e.expected_start)}
            for i, e in enumerate(entries, 1 - sum(x.holding for x in entries)) if e.mine]
    others = [e for e in entries if not e.mine]
    summary = {"holding": sum(e.holding for e in entries),
               "waiting": sum(not e.holding for e in entries),
               "sessions": sum(e.kind == "session" for e in entries),
               "others_holding": sum(e.holding for e in others),
               "others_waiting": sum(not e.holding for e in others)}
    if as_json:
        click.echo(json.dumps({"executor": manager.executor, **summary, "yours": rows}))
        return
    click.echo(f"QPU queue ({manager.scheduler().describe()}): {summary['holding']} holding, "
               f"{summary['waiting']} waiting ({summary['sessions']} session(s) among them); "
               f"other users: {summary['others_holding']} holding, {summary['others_waiting']} "
               f"waiting")
    if not rows:
        click.echo("none of yours")
        return
    click.echo(f"{'PLACE':<6} {'ID':<10} {'KIND':<8} {'STATE':<8} EXPECTED START")
    for r in rows:
        click.echo(f"{r['place'] or '-':<6} {r['id']:<10} {r['kind']:<8} {r['state']:<8} "
                   f"{(r['expected_start'] or '-').replace('T', ' ')}")


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--since", metavar="DATE", help="From DATE (2026-11-01; local time). Default: "
              "the last 30 days.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def usage(ctx: click.Context, since: str | None, as_json: bool) -> None:
    """QPU time you held and used, per day, jobs and sessions, with a total.

    HELD is how long your allocations held the QPU (under Slurm: sacct's own figures); USED is
    how long the QPU worked for them (from the job store: jobs' results, sessions' workers).
    """
    manager = _manager(ctx)
    after = _since(since) if since else time.time() - 30 * 86400
    rows = manager.usage(after)
    days: dict[str, dict[str, Any]] = {}
    for r in rows:
        day = days.setdefault(console.iso(r["started"])[:10],
                              {"jobs": 0, "sessions": 0, "held_seconds": 0.0, "used_seconds": 0.0})
        day["jobs" if r["kind"] == "job" else "sessions"] += 1
        day["held_seconds"] += r["held_seconds"]
        day["used_seconds"] += r["used_seconds"] or 0.0
    total = {key: sum(d[key] for d in days.values())
             for key in ("jobs", "sessions", "held_seconds", "used_seconds")}
    if as_json:
        click.echo(json.dumps({"since": console.iso(after), "days": days, "total": total,
                               "allocations": rows}))
        return
    click.echo(f"{'DAY':<11} {'JOBS':>5} {'SESSIONS':>8} {'HELD':>10} {'USED':>10}")
    for day, d in sorted(days.items()):
        click.echo(f"{day:<11} {d['jobs']:>5} {d['sessions']:>8} {_hms(d['held_seconds']):>10} "
                   f"{_hms(d['used_seconds']):>10}")
    click.echo(f"{'total':<11} {total['jobs']:>5} {total['sessions']:>8} "
               f"{_hms(total['held_seconds']):>10} {_hms(total['used_seconds']):>10}")


def _hms(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _since(text: str | None) -> float | None:
    """``--since``: an ISO date or date and time (local time), as a Unix time."""
    if text is None:
        return None
    from datetime import datetime  # noqa: PLC0415
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date: write it as 2026-11-22 or "
                                 f"2026-11-22T14:30", param_hint="'--since'") from None


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--state", "states", multiple=True, metavar="STATUS",
              type=click.Choice(ALL_STATUSES, case_sensitive=False),
              help="Only jobs in this status (repeat for several).")
@click.option("--since", metavar="DATE", help="Only jobs submitted since DATE (2026-11-22, or "
              "2026-11-22T14:30; local time).")
@click.option("--limit", "--last", "limit", type=click.IntRange(min=1), default=50,
              show_default=True, help="Show at most the newest N jobs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def jobs(ctx: click.Context, states: tuple[str, ...], since: str | None, limit: int,
         as_json: bool) -> None:
    """List the jobs in the store, newest first, with their status."""
    manager = _manager(ctx)
    after = _since(since)
    ids = list(reversed(manager.job_ids()))
    if after is not None:
        ids = [job_id for job_id in ids if manager.submitted_at(job_id) >= after]
    if not states:
        ids = ids[:limit]
    rows = console.status_rows(manager, ids)
    if states:
        wanted = {state.upper() for state in states}
        rows = [r for r in rows if r["status"] in wanted][:limit]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        console.print_table(rows)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("job_ids", nargs=-1, required=True, metavar="ID...")
@click.pass_context
@handle_errors
def cancel(ctx: click.Context, job_ids: tuple[str, ...]) -> None:
    """Cancel jobs ID... that have not finished. A finished job is left as it is."""
    before = _manager(ctx).cancel(list(job_ids))
    for job_id, status in before.items():
        if status.final:
            click.echo(f"{job_id}: already {status.name}, left as it is")
        else:
            click.echo(f"{job_id}: cancel requested (was {status.name})")


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("job_id", metavar="ID")
@click.option("--session", "session_id", metavar="ID",
              help="Send it into this session (default: an allocation of its own).")
@click.option("--wait", is_flag=True, help="Wait for the new job and print its counts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def resubmit(ctx: click.Context, job_id: str, session_id: str | None, wait: bool,
             as_json: bool) -> None:
    """Send job ID's programs and options again, as a new job.

    For a job that ended without a result: cancelled, failed, or caught by the end of its
    session ("the session ended before it ran"). The old job stays as it was.
    """
    manager = _manager(ctx)
    spec = manager.spec(job_id)
    options = ExecutionOptions(**spec["options"])
    programs = [{k: v for k, v in entry.items() if k != "registers"} for entry in spec["programs"]]
    new_id = manager.submit(programs, options, meta=spec.get("meta"), session=session_id)
    if as_json and not wait:
        click.echo(json.dumps({"job_id": new_id, "resubmitted_from": job_id}))
        return
    if not as_json:
        click.echo(f"Submitted job {new_id} (again: the programs of {job_id})")
    if wait:
        status = manager.wait(new_id, on_status=console.progress(new_id, as_json))
        console.print_result(manager, new_id, status, as_json)


# -- the device -----------------------------------------------------------------------------------

def _calibration_summary(settings: Settings) -> dict[str, Any]:
    """The calibration in use, without Qiskit: source, age, qubits, gates, coupling map."""
    import datetime as dt  # noqa: PLC0415

    from .calibration import NATIVE_GATES, resolve_calibration  # noqa: PLC0415
    cal = resolve_calibration(settings.calibration_dir or None)
    age = None
    if cal.taken_at is not None:
        age = (dt.datetime.now(dt.timezone.utc) - cal.taken_at).total_seconds()
    return {"name": "qpu", "num_qubits": cal.num_qubits, "native_gates": list(NATIVE_GATES),
            "coupling_map": [list(pair) for pair in cal.coupling_map],
            "calibration": {"source": cal.source,
                            "taken_at": cal.taken_at.isoformat() if cal.taken_at else None,
                            "age_seconds": age},
            "qubits": [{"index": q.index, "t1": q.t1, "t2": q.t2,
                        "readout_fidelity": q.readout_fidelity}
                       for q in sorted(cal.qubits.values(), key=lambda q: q.index)],
            "gates_2q": [{"control": g.control, "target": g.target, "fidelity": g.fidelity,
                          "duration": g.duration} for g in cal.gates_2q]}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "built in, no date"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} old"
    return f"{seconds:.0f} seconds old"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def backends(ctx: click.Context, as_json: bool) -> None:
    """List the backends: qubits, native gates, the endpoint and the calibration in use."""
    manager = _manager(ctx)
    info = _calibration_summary(manager.settings)
    row = {"name": info["name"], "num_qubits": info["num_qubits"],
           "native_gates": info["native_gates"], "couplings": len(info["coupling_map"]),
           "endpoint": manager.settings.resolved_endpoint, "executor": manager.executor,
           "calibration": info["calibration"]}
    if as_json:
        click.echo(json.dumps([row]))
        return
    click.echo(f"{row['name']}: {row['num_qubits']} qubits, native gates "
               f"{' '.join(row['native_gates'])}, {row['couplings']} coupled pairs")
    click.echo(f"  endpoint {row['endpoint']} via the {row['executor']} executor")
    click.echo(f"  calibration {info['calibration']['source']} "
               f"({_age(info['calibration']['age_seconds'])})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def calibration(ctx: click.Context, as_json: bool) -> None:
    """Show the calibration in use: T1/T2 and readout per qubit, the ECR pairs, its age.

    The newest file in the setting 'calibration_dir' wins; without one, the built-in calibration
    (synthetic values in Qmio's format) is used.
    """
    info = _calibration_summary(_manager(ctx).settings)
    if as_json:
        click.echo(json.dumps(info))
        return
    cal = info["calibration"]
    click.echo(f"calibration: {cal['source']} ({_age(cal['age_seconds'])})")
    click.echo(f"{'qubit':>5}  {'T1 (us)':>8}  {'T2 (us)':>8}  readout")

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value * 1e6:.1f}"
    for q in info["qubits"]:
        fid = "-" if q["readout_fidelity"] is None else f"{q['readout_fidelity']:.3f}"
        click.echo(f"{q['index']:>5}  {us(q['t1']):>8}  {us(q['t2']):>8}  {fid}")
    pairs = " ".join(f"{g['control']}->{g['target']}" for g in info["gates_2q"])
    click.echo(f"ECR pairs ({len(info['gates_2q'])}): {pairs}")


# -- emulator, config ----------------------------------------------------------------------------

@cli.command()
@click.option("--bind", metavar="ADDR",
              help="ZMQ address to listen on (default: loopback, on the port of the setting "
                   "'emulator_port'). Loopback unless you name another interface.")
@click.option("--time-model", is_flag=True,
              help="Make each program take shots x repetition period, like the QPU.")
@click.option("--seed", type=int, help="Seed the simulator, for repeatable results.")
@click.option("--idle-exit", type=FiniteFloat(min=0), default=0.0,
              help="Exit after this many seconds without a request (0: never).")
@click.option("--noise", is_flag=True,
              help="Simulate the calibration's noise (T1/T2, gate and readout errors): a "
                   "'fake Qmio'. Needs qiskit-aer (pip install 'qmio-hpc[noise]').")
@click.option("--private", is_flag=True,
              help="Serve only you: clients must hold your job store's emulator key, and the "
                   "CURVE handshake proves to them that this emulator is yours. The endpoint "
                   "'emulator' uses only such emulators (and starts them so).")
@click.pass_context
@handle_errors
def emulator(ctx: click.Context, bind: str | None, time_model: bool, seed: int | None,
             idle_exit: float, noise: bool, private: bool) -> None:
    """Run the built-in QPU emulator: it speaks qat-rpc and simulates programs with Qiskit.

    Point any client at it with ZMQ_SERVER=tcp://127.0.0.1:5556. Jobs whose endpoint is
    'emulator' start a --private one on demand, on the port of the setting 'emulator_port'; to
    watch its requests, run it yourself there with --private (and the options the settings
    name: a job does not use an emulator whose --time-model or --noise differ).
    """
    import logging  # noqa: PLC0415

    import zmq  # noqa: PLC0415

    bind = bind or f"tcp://127.0.0.1:{_manager(ctx).settings.emulator_port}"

    from .emulator import is_loopback_bind, run_emulator  # noqa: PLC0415
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not is_loopback_bind(bind):
        click.echo(f"qmio: warning: the emulator listens on {bind}, beyond this host", err=True)
    calibration = None
    if noise:
        from .calibration import resolve_calibration  # noqa: PLC0415
        calibration = resolve_calibration(_manager(ctx).settings.calibration_dir or None)
    keys_dir = None
    if private:
        from .emulator.launcher import emulator_keys  # noqa: PLC0415
        keys_dir = emulator_keys(_manager(ctx).connection)
    try:
        run_emulator(bind, time_model=time_model, seed=seed, idle_exit=idle_exit,
                     noise=calibration, keys_dir=keys_dir,
                     ready=lambda addr: click.echo(f"emulator listening on {addr}", err=True))
    except zmq.ZMQError as exc:
        raise ProgramError(f"cannot listen on {bind}: {exc} (is another emulator running?)"
                           ) from None


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def config(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings, where each came from, and what each does.

    Layers, later wins: defaults < /etc/qmio/config.toml < ~/.config/qmio/config.toml <
    QMIO_* environment variables (and ZMQ_SERVER) < command-line options. In a config file a
    setting is written as in this list (dotted names as TOML tables or dotted keys); as an
    environment variable, QMIO_ and its name in capitals with dots as underscores
    (session.idle_timeout: QMIO_SESSION_IDLE_TIMEOUT).
    """
    from .config import FIELDS_BY_NAME  # noqa: PLC0415
    manager = _manager(ctx)
    rows = [{"name": n, "value": v, "origin": o, "help": FIELDS_BY_NAME[n].help}
            for n, v, o in manager.settings.items()]
    try:  # the settings are shown even while Slurm does not answer
        executor, described = manager.executor, manager.scheduler().describe()
    except SchedulerError as exc:
        executor = described = f"none ({exc})"
    if as_json:
        click.echo(json.dumps({"settings": rows, "executor": executor}))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {json.dumps(r['value']):<40}  ({r['origin']})")
        click.echo(f"{'':<{width}}    {r['help']}")
    click.echo(f"\nexecutor in use: {described}")
    click.echo(f"endpoint in use: {manager.settings.resolved_endpoint}")


from .cli_session import session  # noqa: E402 - registers 'qmio session ...'

cli.add_command(session)


def main() -> None:
    """The ``qmio`` command. A usage error (a bad option value, a missing argument) is one line
    naming the command and its --help, exit 2, like every other bad input."""
    try:
        code = cli.main(prog_name="qmio", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "qmio"
        console.fail(f"{exc.format_message()} (see '{command} --help')", 2)
    except click.ClickException as exc:
        console.fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        console.fail("interrupted (jobs already submitted keep running)", 130)
    sys.exit(code if isinstance(code, int) else 0)
