"""What the ``qmio`` commands print, and the work of ``submit`` and ``status``, without click.

``qmio submit`` and ``qmio status`` are the commands users run in loops, so their plain forms are
parsed without click (see ``fast_cli``): importing click costs as much as Python's own start.
Both doors call the functions here, so the two print the same, fail the same and exit the same;
``tests/test_fast_cli.py`` holds them to it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from .errors import ProgramError, QmioError
from .protocol import ExecutionOptions
from .states import FINAL_STATUSES, Status

if TYPE_CHECKING:
    from .jobs import JobManager


def echo(text: str = "", err: bool = False, nl: bool = True) -> None:
    """Write a line (as ``click.echo`` does for text): flushed at once, so a reader of a pipe
    sees each line as it is written."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if nl else text)
    stream.flush()


def terminal_width(fallback: int = 80) -> int:
    """The terminal's width in columns, read as ``shutil.get_terminal_size`` reads it (COLUMNS,
    else standard output's terminal, else ``fallback``), without importing shutil: that import
    is a tenth of a short command's time."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or fallback


def fail(message: str, code: int) -> NoReturn:
    echo(f"qmio: error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Every expected failure becomes one line on stderr and its exit code; never a traceback."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QmioError as exc:
            fail(str(exc), exc.exit_code)
        except BrokenPipeError:  # 'qmio jobs | head': the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
        except KeyboardInterrupt:
            fail("interrupted (jobs already submitted keep running)", 130)
    return wrapper


def make_manager(overrides: dict[str, Any]) -> JobManager:
    """The job manager for these command-line overrides (store, endpoint, executor)."""
    from .config import Settings  # noqa: PLC0415
    from .jobs import JobManager  # noqa: PLC0415
    return JobManager(Settings.load(overrides))


# -- submit --------------------------------------------------------------------------------------

def read_program(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        with open(path, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        raise ProgramError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ProgramError(f"{path} is a directory, not an OpenQASM file") from None
    except UnicodeDecodeError:
        where = "standard input" if path == "-" else path
        raise ProgramError(f"{where} is not UTF-8 text (expected OpenQASM)") from None


def submit(manager: JobManager, files: tuple[str, ...] | list[str], *, shots: int | None,
           res_format: str = "binary_count", repetition_period: float | None = None,
           optimization: str | None = None, wait: bool = False, timeout: float | None = None,
           as_json: bool = False, dry_run: bool = False, session_id: str | None = None,
           quiet: bool = False, executor_given: bool = False) -> None:
    """``qmio submit``: the programs as one job; with ``wait``, its counts."""
    if session_id and (dry_run or executor_given):
        raise ProgramError("--session cannot go with --dry-run or --executor: the session's "
                           "allocation runs the job")
    if quiet and (as_json or wait or dry_run):
        raise ProgramError("-q prints the job id alone: it cannot go with --json, --wait or "
                           "--dry-run")
    programs = [{"name": Path(f).stem if f != "-" else "stdin", "program": read_program(f)}
                for f in files]
    options = ExecutionOptions(shots=shots or manager.settings.shots,
                               repetition_period=repetition_period,
                               optimization=int(optimization) if optimization else None,
                               res_format=res_format)
    if dry_run:
        echo(manager.dry_run(programs, options), nl=False)
        return
    job_id = manager.submit(programs, options, session=session_id)
    where = f"session {session_id}" if session_id else f"{manager.executor} executor"
    if quiet:
        echo(job_id)
        return
    if not as_json:
        echo(f"Submitted job {job_id} ({where}, {len(programs)} program(s), "
             f"{options.shots} shots)")
    if not wait:
        if as_json:
            echo(json.dumps({"job_id": job_id, "executor": "session" if session_id
                             else manager.executor, "session_id": session_id}))
        return
    status = manager.wait(job_id, timeout=timeout, on_status=progress(job_id, as_json))
    print_result(manager, job_id, status, as_json)


def progress(job_id: str, quiet: bool) -> Callable[[Status], None]:
    """Show the job's state while waiting: a live line on a terminal, a line a change otherwise."""
    began = time.monotonic()
    last: list[str] = [""]
    live = sys.stderr.isatty()

    def show(status: Status) -> None:
        if quiet:
            return
        text = f"{job_id}: {status.name} - {status.detail}"
        if live:
            echo(f"\r\033[K{text} ({time.monotonic() - began:.0f} s)", err=True, nl=status.final)
        elif text != last[0]:
            echo(text, err=True)
        last[0] = text
    return show


# -- results -------------------------------------------------------------------------------------

def result_payload(manager: JobManager, job_id: str) -> dict[str, Any]:
    from .results import counts_of  # noqa: PLC0415
    spec = manager.spec(job_id)
    res_format = spec["options"]["res_format"]
    data = manager.result(job_id)
    out = []
    for entry, program in zip(data["results"], spec["programs"]):
        reply = entry["reply"]
        try:
            counts: dict[str, int] | None = counts_of(reply, res_format, program.get("registers"))
        except ValueError:
            counts = None  # the majority formats have none; the reply says it all
        out.append({"name": entry["name"], "shots": entry["shots"], "counts": counts,
                    "reply": reply})
    return {"job_id": job_id, "status": "DONE", "endpoint": data.get("endpoint"),
            "results_format": res_format,
            "bit_order": "qiskit: c[0] is the rightmost character of 'counts'; 'reply' is as "
                         "the server sent it (c[0] leftmost)",
            "results": out}


def print_result(manager: JobManager, job_id: str, status: Status, as_json: bool,
                 top: int = 16, plot: Path | None = None) -> None:
    """The counts as a histogram per program (``top`` outcomes, the rest summed), or JSON;
    with ``plot``, also a picture of them all. A job that did not end DONE raises its failure."""
    from .histogram import bar_lines, write_picture  # noqa: PLC0415
    if status.name != "DONE":
        if as_json:
            echo(json.dumps({"job_id": job_id, "status": status.name, "detail": status.detail}))
        raise manager.failure(job_id, status)
    payload = result_payload(manager, job_id)
    if plot is not None:
        drawn = [(e["name"], e["counts"]) for e in payload["results"] if e["counts"]]
        if not drawn:
            raise ProgramError(f"job {job_id} has no counts to draw (results format "
                               f"{payload['results_format']})")
        write_picture(plot, drawn, f"job {job_id}")
    if as_json:
        echo(json.dumps(payload))
        return
    lines = []  # written at once: a job of hundreds of programs prints thousands of lines
    for entry in payload["results"]:
        counts = entry["counts"]
        if counts is None:
            lines.append(f"{entry['name']}: {entry['shots']} shots, "
                         f"{payload['results_format']}: "
                         f"{json.dumps(entry['reply']['results'])} (c[0] leftmost)")
            continue
        lines.append(f"{entry['name']}: {entry['shots']} shots (bit order: c[0] rightmost)")
        lines.extend(bar_lines(counts, top))
    if plot is not None:
        lines.append(f"histogram written to {plot}")
    echo("\n".join(lines))


# -- status --------------------------------------------------------------------------------------

def status(manager: JobManager, job_ids: tuple[str, ...] | list[str], show_all: bool,
           as_json: bool) -> None:
    """``qmio status``: jobs ``job_ids``, or those not final (``show_all``: every job)."""
    rows = status_rows(manager, list(job_ids) or manager.job_ids())
    if not job_ids and not show_all:
        rows = [r for r in rows if r["status"] not in FINAL_STATUSES]
    if as_json:
        echo(json.dumps(rows))
    elif not rows and not job_ids and not show_all:
        echo("no jobs waiting or running ('qmio jobs' lists the newest)")
    else:
        print_table(rows)


def status_rows(manager: JobManager, ids: list[str]) -> list[dict[str, Any]]:
    """One row a job; a QUEUED one also says where it stands in the QPU's queue (``queue``)."""
    statuses = manager.statuses(ids)
    places = manager.places(statuses)
    rows = []
    for job_id, s in statuses.items():
        row = {"job_id": job_id, "status": s.name, "scheduler_state": s.scheduler_state,
               "detail": s.detail}
        place = places.get(job_id)
        if place is not None:
            row["queue"] = {**place, "expected_start": iso(place["expected_start"])}
            row["detail"] = f"{s.detail}; {_place_words(place)}"
        rows.append(row)
    return rows


def iso(stamp: float | None) -> str | None:
    from datetime import datetime  # noqa: PLC0415
    return datetime.fromtimestamp(stamp).isoformat(timespec="seconds") if stamp else None


def _place_words(place: dict[str, Any]) -> str:
    holding = place["holding"]
    words = (f"place {place['place']} of {place['waiting']} waiting for the QPU "
             f"({holding} job{'s' if holding != 1 else ''} or session{'s' if holding != 1 else ''}"
             f" holding it")
    if place["expected_start"]:
        words += f"; expected to start {iso(place['expected_start']).replace('T', ' ')}"
    return words + ")"


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        echo("no jobs")
        return
    widths = [max(len("ID"), *(len(r["job_id"]) for r in rows)),
              max(len("STATUS"), *(len(r["status"]) for r in rows))]
    lines = [f"{'ID':<{widths[0]}}  {'STATUS':<{widths[1]}}  DETAIL"]
    lines.extend(f"{r['job_id']:<{widths[0]}}  {r['status']:<{widths[1]}}  {r['detail']}"
                 for r in rows)
    echo("\n".join(lines))
