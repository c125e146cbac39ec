"""The batch step: ``python -m qmio_hpc.step JOB_DIR``.

This is what a Slurm job (or the local runner) executes while it holds the QPU: read the spec,
check the programs (VALIDATING), send each one to the endpoint, splitting shots above the
per-execution cap, and write the result (complete, atomically) or the error. Exit codes: 0 done,
1 the endpoint or QPU failed, 2 the program was invalid, 143 terminated (cancel or time limit).

It imports no Qiskit (programs were checked when submitted; OpenQASM 2 by ``qasm2_check``), and
nothing it does not use: its start is paid while the job holds the QPU.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .connection import Connection
from .errors import EndpointError, ProgramError, ProtocolError, QmioError
from .programs import check_program
from .protocol import ExecutionOptions
from .results import ReplyFormatError, check_reply, merge_replies
from .store import JobDir, JobStore
from .transport import QPUClient
from .wire import to_plain

if TYPE_CHECKING:
    import logging


def _log() -> "logging.Logger":
    """The step's logger (to the job's Slurm output), set up on the first message: ``import
    logging`` is ~5 ms of every batch step's start, and a step that goes well logs nothing."""
    import logging  # noqa: PLC0415

    if not logging.getLogger().handlers:  # a session's worker has configured it already
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return logging.getLogger("qmio_hpc.step")


EXIT_OK, EXIT_QPU, EXIT_PROGRAM, EXIT_TERMINATED = 0, 1, 2, 143
#: Seconds between RUNNING progress notes ("program 37 of 200"): often enough for a person
#: watching ``qmio status``, rarely enough that a job of many short programs is not slowed.
NOTE_EVERY = 0.25


class Terminated(Exception):
    """SIGTERM arrived: scancel, the time limit, or ``qmio cancel`` on the local executor. The
    message, if any, is the reason the job's error file gives."""


def split_shots(shots: int, cap: int) -> list[int]:
    """``20000`` with a cap of 8192 -> ``[8192, 8192, 3616]``."""
    parts = [cap] * (shots // cap)
    if shots % cap:
        parts.append(shots % cap)
    return parts


def check_job(job: JobDir, spec: dict[str, Any]) -> None:
    """VALIDATING: refuse the job's programs before the QPU (or an emulator) is touched."""
    unchecked = [entry for entry in spec["programs"] if not entry.get("checked")]
    if not unchecked:  # the submitter parsed them already (a Qiskit circuit it wrote out)
        return
    job.set_state("validating", f"checking {len(unchecked)} program(s)")
    for entry in unchecked:
        check_program(entry["name"], entry["program"])


def run_step(job: JobDir, client: QPUClient, *, durable: bool = True,
             spec: dict[str, Any] | None = None, claim: Callable[[], bool] | None = None,
             note: Callable[[str], None] | None = None) -> int:
    """Run the job's (checked) programs through ``client`` and write the result.

    The client is open already: the batch step opens one for its single job, a session's worker
    keeps one for all of its jobs. Failures raise; ``execute`` records them. ``claim`` makes this
    process the one that ends the job (default: ``JobDir.claim_outcome``); ``note`` records the
    RUNNING progress (default: ``job.set_state`` at once; a worker writes it while the QPU works).
    """
    spec = spec or job.spec()
    claim = claim or _claim(job)
    note = note or (lambda message: job.set_state("running", message))
    options = ExecutionOptions(**spec["options"])
    programs: list[dict[str, str]] = spec["programs"]
    endpoint = client.endpoint
    started = time.time()
    results: list[dict[str, Any]] = []
    chunks = split_shots(options.shots, int(spec.get("max_shots", options.shots)))
    parts = [options.replace(shots=shots) for shots in chunks]
    noted = -1.0
    for index, entry in enumerate(programs, 1):
        replies = []
        for part, (shots, part_options) in enumerate(zip(chunks, parts), 1):
            if job.cancel_requested():
                raise Terminated()
            if time.monotonic() - noted >= NOTE_EVERY:  # a file write: not one per program
                noted = time.monotonic()
                note(f"program {index} of {len(programs)}, execution {part} of {len(chunks)} "
                     f"on {endpoint}")
            reply = to_plain(client.run_program(entry["program"], part_options))
            try:
                check_reply(reply, options.res_format, shots, entry.get("registers"))
            except ReplyFormatError as exc:
                raise ProtocolError(f"the reply of {endpoint} to program {entry['name']} is not "
                                    f"a result: {exc}", endpoint) from None
            replies.append(reply)
        results.append({"name": entry["name"],
                        "reply": merge_replies(replies, options.res_format),
                        "executions": len(chunks), "shots": options.shots})
    if not claim():  # someone else ended it meanwhile (a cancel, its session's end): that stays
        _log().warning("job %s already has an outcome; its late result is not written", job.path)
        return EXIT_TERMINATED
    job.write_result({"results": results, "endpoint": endpoint, "started": started,
                      "finished": time.time(), "job_id": os.environ.get("SLURM_JOB_ID")},
                     durable=durable)
    return EXIT_OK


def execute(job: JobDir, open_client: Callable[[], QPUClient], *, durable: bool = True,
            claim: Callable[[], bool] | None = None, spec: dict[str, Any] | None = None,
            note: Callable[[str], None] | None = None) -> int:
    """Check and run one job and record how it ended; returns the batch step's exit code.

    ``open_client`` (called after the check) gives the client to use (opening it may start the
    built-in emulator, and fail): every failure, that one included, ends with an error file
    naming the reason. ``durable=False`` leaves the result's fsync to the caller
    (``JobDir.sync``); ``claim`` and ``note`` are passed to ``run_step``, and ``claim`` guards the
    error file too. ``spec``: the job's spec, when the caller has read it already."""
    claim = claim or _claim(job)
    try:
        spec = spec or job.spec()
        check_job(job, spec)
        return run_step(job, open_client(), durable=durable, spec=spec, claim=claim, note=note)
    except ProgramError as exc:
        return _fail(job, "ProgramError", str(exc), EXIT_PROGRAM, claim)
    except EndpointError as exc:
        return _fail(job, type(exc).__name__, str(exc), EXIT_QPU, claim)
    except Terminated as exc:
        if not str(exc) and job.has_cancel_request():
            # a session's job, cancelled while it ran: its end is the worker's to write
            if claim():
                job.mark_cancelled("cancelled while it ran: it stopped before its next "
                                   "execution on the QPU")
            return EXIT_TERMINATED
        reason = str(exc) or ("the batch step was cancelled" if job.is_cancelled() else
                              "the batch step was terminated by SIGTERM (time limit?)")
        return _fail(job, "Terminated", reason, EXIT_TERMINATED, claim)
    except QmioError as exc:
        return _fail(job, type(exc).__name__, str(exc), EXIT_QPU, claim)
    except Exception as exc:  # a bug: record it so the job never ends without a reason
        _log().exception("batch step crashed")
        return _fail(job, "InternalError", f"the batch step crashed: {exc!r}", EXIT_QPU, claim)


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m qmio_hpc.step JOB_DIR", file=sys.stderr)
        return EXIT_PROGRAM
    os.umask(0o077)
    job = JobDir(Path(argv[1]).resolve())
    signal.signal(signal.SIGTERM, _on_sigterm)
    slurm_id = os.environ.get("SLURM_JOB_ID")
    # Submitted to Slurm as a batch job of its own (not run by the local executor inside
    # someone's allocation): the submitter links the id too; whoever comes first wins, both agree.
    if slurm_id and job.file("job.sbatch").exists():
        try:
            if job.scheduler_record() is None:  # never an id without its executor: see submit
                job.write_scheduler_record("slurm", slurm_id, durable=False)
            JobStore(job.path.parent.parent).link(slurm_id, job)
        except QmioError as exc:
            return _fail(job, type(exc).__name__, str(exc), EXIT_QPU)
    clients: list[QPUClient] = []

    def open_client() -> QPUClient:
        spec = job.spec()
        connection = Connection.from_dict(spec.get("connection", spec))
        if connection.uses_builtin_emulator:
            job.set_state("running", "starting the built-in emulator")
        clients.append(connection.client())
        return clients[-1]
    try:
        return execute(job, open_client)
    finally:
        for client in clients:
            client.close()


def _claim(job: JobDir) -> Callable[[], bool]:
    """How a batch step becomes the one that ends its job (a session's worker passes its own)."""
    return lambda: job.claim_outcome("step")


def _fail(job: JobDir, kind: str, message: str, code: int,
          claim: Callable[[], bool] | None = None) -> int:
    _log().error("%s: %s", kind, message)
    if (claim or _claim(job))():
        job.write_error(kind, message)
        job.set_state("error", message)
    return code


if __name__ == "__main__":
    sys.exit(main())
