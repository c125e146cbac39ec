"""``qmio session ...``: start, watch, list, close and cancel sessions. No Qiskit."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click

from .cli import EXIT_CODES_HELP, FiniteFloat, _manager
from .console import handle_errors
from .errors import JobTimeoutError, ProgramError

if TYPE_CHECKING:  # the sessions module is imported by the commands that use it
    from .sessions import SessionView


@click.group(epilog=EXIT_CODES_HELP)
def session() -> None:
    """Hold the QPU across many jobs: one allocation, many jobs, in submission order.

    \b
    qmio session start --idle-timeout 120      prints the session id
    qmio submit bell.qasm --session ID --wait  a job in that session
    qmio session status ID                     status, usage, time left
    qmio session close ID                      queued jobs finish, then the QPU is released
    """


def _row(view: SessionView) -> dict[str, Any]:
    return {"session_id": view.session_id, "status": view.status, "reason": view.reason,
            "details": view.details, "usage": view.usage}


@session.command(epilog=EXIT_CODES_HELP)
@click.option("--max-time", metavar="TIME",
              help="Time limit: seconds, or Slurm's [D-]HH:MM:SS (setting session.max_time).")
@click.option("--idle-timeout", metavar="TIME",
              help="Release the QPU after this long without jobs; 0 never (setting "
                   "session.idle_timeout).")
@click.option("--batch", is_flag=True,
              help="A batch: release the QPU as soon as the queue is empty.")
@click.option("--wait", is_flag=True, help="Wait until the session is serving jobs.")
@click.option("--timeout", type=FiniteFloat(min=0), metavar="SECONDS",
              help="With --wait: give up after this long (the session goes on).")
@click.option("--json", "as_json", is_flag=True, help='Print {"session_id": ...}.')
@click.option("-q", "--quiet", is_flag=True,
              help='Print the session id alone, for scripts: SID=$(qmio session start -q)')
@click.pass_context
@handle_errors
def start(ctx: click.Context, max_time: str | None, idle_timeout: str | None, batch: bool,
          wait: bool, timeout: float | None, as_json: bool, quiet: bool) -> None:
    """Start a session: an allocation that holds the QPU and serves jobs sent with --session."""
    from .sessions import STATUS_PENDING  # noqa: PLC0415

    manager = _manager(ctx)
    sessions = manager.sessions
    session_id = sessions.start(mode="batch" if batch else "session", max_time=max_time,
                                idle_timeout=idle_timeout)
    if as_json:
        click.echo(json.dumps({"session_id": session_id}))
    elif quiet:
        click.echo(session_id)
    else:
        click.echo(f"Started session {session_id} ({manager.executor} executor); submit into it "
                   f"with: qmio submit FILE --session {session_id}")
    if wait:
        deadline = None if timeout is None else time.monotonic() + timeout
        view = sessions.view(session_id)
        while view.status == STATUS_PENDING:
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeoutError(f"session {session_id} is still pending after "
                                      f"{timeout:g} s ({view.reason}); it stays queued")
            time.sleep(0.2)
            view = sessions.view(session_id)
        if not (as_json or quiet):
            click.echo(f"{session_id}: {view.status} ({view.reason})", err=True)


@session.command(epilog=EXIT_CODES_HELP)
@click.argument("session_ids", nargs=-1, metavar="[ID...]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, session_ids: tuple[str, ...], as_json: bool) -> None:
    """Show sessions ID... in full (every session not yet closed if none is given)."""
    from .sessions import STATUS_CLOSED  # noqa: PLC0415

    sessions = _manager(ctx).sessions
    views = sessions.views(list(session_ids) or None)
    if not session_ids:
        views = [v for v in views if v.status != STATUS_CLOSED]
    if as_json:
        click.echo(json.dumps([_row(v) for v in views]))
        return
    if not views:
        click.echo("no open sessions ('qmio session list' shows them all)")
    for view in views:
        d, u = view.details, view.usage
        click.echo(f"session {view.session_id}: {view.status} ({view.reason})")
        left = "-" if d["seconds_left"] is None else f"{d['seconds_left']:.0f} s"
        click.echo(f"  executor {d['executor']}, allocation {d['allocation_state'] or '-'}, "
                   f"mode {d['mode']}, time left {left}, idle timeout "
                   f"{d['interactive_timeout']:g} s")
        click.echo(f"  jobs {d['jobs']} submitted, {d['jobs_done']} run; QPU held "
                   f"{u['held_seconds']:.1f} s, busy {u['busy_seconds']:.1f} s, idle "
                   f"{u['idle_seconds']:.1f} s")
        click.echo(f"  endpoint {d['endpoint']}, channel {d['channel'] or '-'}")


@session.command(name="list", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """List every session in the store, oldest first, open and closed."""
    views = _manager(ctx).sessions.views()
    if as_json:
        click.echo(json.dumps([_row(v) for v in views]))
        return
    if not views:
        click.echo("no sessions")
        return
    width = max(len("ID"), *(len(v.session_id) for v in views))
    click.echo(f"{'ID':<{width}}  {'JOBS':>5}  {'BUSY/HELD (s)':>14}  STATUS")
    for v in views:
        usage = f"{v.usage['busy_seconds']:.1f}/{v.usage['held_seconds']:.1f}"
        click.echo(f"{v.session_id:<{width}}  {v.details['jobs']:>5}  {usage:>14}  "
                   f"{v.status} ({v.reason})")


@session.command(epilog=EXIT_CODES_HELP)
@click.argument("session_ids", nargs=-1, metavar="ID...")
@click.option("--all", "close_all", is_flag=True, help="Close every session not yet closed.")
@click.pass_context
@handle_errors
def close(ctx: click.Context, session_ids: tuple[str, ...], close_all: bool) -> None:
    """Close sessions: no new jobs; queued jobs finish; then each releases the QPU."""
    from .sessions import STATUS_CLOSED  # noqa: PLC0415

    sessions = _manager(ctx).sessions
    if bool(session_ids) == close_all:
        raise ProgramError("give session ids or --all (not both)")
    ids = list(session_ids) or [v.session_id for v in sessions.views()
                                if v.status != STATUS_CLOSED]
    sessions.close(ids)
    for session_id in ids:
        click.echo(f"{session_id}: closing (queued jobs finish first)")
    if not ids:
        click.echo("no open sessions")


@session.command(epilog=EXIT_CODES_HELP)
@click.argument("session_ids", nargs=-1, required=True, metavar="ID...")
@click.pass_context
@handle_errors
def cancel(ctx: click.Context, session_ids: tuple[str, ...]) -> None:
    """Cancel sessions: queued jobs end CANCELLED and the QPU is released now."""
    _manager(ctx).sessions.cancel(list(session_ids))
    for session_id in session_ids:
        click.echo(f"{session_id}: cancelled")
