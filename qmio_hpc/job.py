"""``QmioJob``: a Qiskit ``JobV1`` over a job in the store.

It holds nothing but the id: status and result are read from the scheduler and the job
directory each time, so ``service.job(id)`` in a new process gives the same object back.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from qiskit.providers import JobStatus, JobV1
from qiskit.result import Result

from . import __version__
from .errors import QmioError
from .jobs import JobManager
from .results import MAJORITY_FORMATS, counts_of, memory_of, register_counts, register_sizes
from .states import Status

if TYPE_CHECKING:
    from qiskit.providers import BackendV2


def _hex(bits: str) -> str:
    return hex(int(bits.replace(" ", ""), 2))


def build_result(job_id: str, spec: dict[str, Any], data: dict[str, Any],
                 backend_name: str = "qmio") -> Result:
    """A ``qiskit.result.Result`` from the job's spec and complete result file."""
    meta = spec.get("meta", {})
    res_format = spec["options"]["res_format"]
    experiments = []
    for entry, program in zip(data["results"], spec["programs"]):
        reply = entry["reply"]
        regs = register_sizes(reply, res_format, program.get("registers"))
        exp_data: dict[str, Any] = {}
        if res_format not in MAJORITY_FORMATS:
            counts = counts_of(reply, res_format, regs)
            exp_data["counts"] = {_hex(k): v for k, v in counts.items()}
        memory = memory_of(reply, res_format, regs)
        if meta.get("memory") and memory is not None:
            exp_data["memory"] = [_hex(m) for m in memory]
        experiments.append({
            "shots": entry["shots"],
            "success": True,
            "status": "DONE",
            "data": exp_data,
            "header": {"name": program["name"], "creg_sizes": [[n, w] for n, w in regs],
                       "memory_slots": sum(w for _, w in regs),
                       "metadata": program.get("metadata") or {}},
            "metadata": {"execution_metrics": reply.get("execution_metrics", {}),
                         "executions": entry.get("executions", 1),
                         "results_format": res_format,
                         "register_counts": register_counts(reply, res_format, regs),
                         "reply": reply if res_format in MAJORITY_FORMATS else None},
        })
    return Result.from_dict({
        "backend_name": backend_name,
        "backend_version": __version__,
        "job_id": job_id,
        "qobj_id": job_id,
        "success": True,
        "results": experiments,
        "date": _dt.datetime.fromtimestamp(data.get("finished", 0), _dt.timezone.utc).isoformat(),
        "metadata": {"endpoint": data.get("endpoint"), "started": data.get("started"),
                     "finished": data.get("finished"), **meta.get("result", {})},
    })


class QmioJob(JobV1):
    """A job on the Qmio QPU (or the emulator). Map of states: ``qmio_hpc.states``."""

    def __init__(self, backend: "BackendV2 | None", job_id: str, manager: JobManager) -> None:
        super().__init__(backend, job_id)
        self._manager = manager

    def submit(self) -> None:
        raise QmioError("a QmioJob is submitted by backend.run(); it cannot be submitted again")

    def status(self) -> JobStatus:
        return JobStatus[self._manager.status(self.job_id()).name]

    def status_detail(self) -> Status:
        """The status with the reason in words (Slurm state, queue reason, error message)."""
        return self._manager.status(self.job_id())

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the job to end and return its result; raises JobFailedError otherwise."""
        self._manager.wait(self.job_id(), timeout=timeout)
        data = self._manager.result(self.job_id())
        name = self._backend.name if self._backend is not None else "qmio"
        return build_result(self.job_id(), self._manager.spec(self.job_id()), data, name)

    def replies(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """The server's reply for each program, as it sent it (big-endian bitstrings)."""
        self._manager.wait(self.job_id(), timeout=timeout)
        return [entry["reply"] for entry in self._manager.result(self.job_id())["results"]]

    def cancel(self) -> bool:
        before = self._manager.cancel([self.job_id()])[self.job_id()]
        return not before.final
