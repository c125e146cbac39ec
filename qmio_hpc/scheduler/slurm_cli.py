"""The Slurm adapter that uses the command-line tools: sbatch, squeue, sacct, scancel.

Facts it rests on (Slurm 22.05, DESIGN section 3): ``squeue -t all`` shows finished jobs for
MinJobAge seconds; ``squeue -j`` with a mix of known and unknown ids lists the known ones, and
with only unknown ids exits 1 ("Invalid job id specified"); sacct answers history but lags the
live state by a few seconds, and exits 1 when accounting is disabled. So: live state from one
squeue call, and one sacct call only for jobs squeue no longer shows or that have ended (for
their exit code).
"""

from __future__ import annotations

import subprocess
from typing import Sequence

from ..errors import SchedulerError
from ..states import TERMINAL, SchedulerState, normalise_state
from ..store import JobDir
from .slurm import SlurmScheduler, _epoch

COMMAND_TIMEOUT = 30.0
SQUEUE_FORMAT = "%i|%T|%r|%e"
SACCT_FIELDS = "JobIDRaw,State,ExitCode,End,Reason"


class SlurmCLIScheduler(SlurmScheduler):
    adapter = "command-line tools"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._accounting: bool | None = None  # unknown until sacct is first tried
        self.calls: list[str] = []  # commands run, in order (tests count them)

    def _run(self, argv: Sequence[str], *, ok_codes: tuple[int, ...] = (0,),
             umask: int = -1) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv[0])
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True,
                                 timeout=COMMAND_TIMEOUT, umask=umask)
        except FileNotFoundError:
            raise SchedulerError(f"{argv[0]} is not installed; is Slurm available here?") from None
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"{argv[0]} did not answer in {COMMAND_TIMEOUT:g} s; "
                                 f"slurmctld may be overloaded") from None
        if out.returncode not in ok_codes:
            message = " ".join(out.stderr.split()) or f"exit code {out.returncode}"
            raise SchedulerError(f"{argv[0]} failed: {message}")
        return out

    def _submit_script(self, script: str, job: JobDir) -> str:
        # sbatch hands its umask to the job: slurm.out/err are then the user's alone.
        out = self._run(["sbatch", "--parsable", str(job.file("job.sbatch"))], umask=0o077)
        job_id = out.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch gave no job id: {out.stdout.strip()!r}")
        return job_id

    def _query(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        found = self._squeue(job_ids)
        history = [i for i in job_ids
                   if i not in found or normalise_state(found[i].state) in TERMINAL]
        if history and self._accounting is not False:
            for job_id, state in self._sacct(history).items():
                live = found.get(job_id)
                if live is None:
                    found[job_id] = state
                else:  # squeue's state is current; sacct adds the exit code
                    found[job_id] = SchedulerState(job_id, live.state, live.reason,
                                                   state.exit_code, live.ended_at or state.ended_at)
        return found

    def _squeue(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        out = self._run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids),
                         "-o", SQUEUE_FORMAT], ok_codes=(0, 1))
        if out.returncode == 1:
            if "Invalid job id" in out.stderr:
                return {}
            raise SchedulerError(f"squeue failed: {' '.join(out.stderr.split())}")
        states: dict[str, SchedulerState] = {}
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) != 4:
                continue
            job_id, state, reason, end = parts
            terminal = normalise_state(state) in TERMINAL
            states[job_id] = SchedulerState(job_id, state, "" if reason == "None" else reason,
                                            "", _epoch(end) if terminal else None)
        return states

    def _sacct(self, job_ids: list[str]) -> dict[str, SchedulerState]:
        out = self._run(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids),
                         "-o", SACCT_FIELDS], ok_codes=(0, 1))
        if out.returncode == 1:
            if "accounting storage is disabled" in out.stderr.lower():
                self._accounting = False
                return {}
            raise SchedulerError(f"sacct failed: {' '.join(out.stderr.split())}")
        self._accounting = True
        states: dict[str, SchedulerState] = {}
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) != 5:
                continue
            job_id, state, exit_code, end, reason = parts
            states[job_id] = SchedulerState(job_id, normalise_state(state),
                                            "" if reason == "None" else reason, exit_code,
                                            _epoch(end))
        return states

    def _cancel(self, job_ids: list[str]) -> None:
        self._run(["scancel", *job_ids])
