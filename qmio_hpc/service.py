"""``QmioRuntimeService``: the entry point for Python users, shaped like qiskit-ibm-runtime's.

``service.backend("qpu")`` gives the backend, ``service.job(id)`` picks a job up again in any
process, ``service.jobs()`` lists them. Settings load once per service (see ``config``).
"""

from __future__ import annotations

from typing import Any

from .config import Settings
from .errors import QmioError
from .jobs import JobManager

BACKEND_NAMES = ("qpu",)


class UnknownBackendError(QmioError, ValueError):
    """The backend name is not one this service offers."""

    exit_code = 2


class QmioRuntimeService:
    """Jobs and backends under one set of settings (keyword arguments override any setting)."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        base = settings or Settings.load()
        self.settings = base.replace(**overrides) if overrides else base
        self.manager = JobManager(self.settings)

    def backends(self) -> list["QmioBackend"]:
        return [self.backend(name) for name in BACKEND_NAMES]

    def backend(self, name: str = "qpu") -> "QmioBackend":
        if name not in BACKEND_NAMES:
            raise UnknownBackendError(f"unknown backend {name!r}; available: "
                                      f"{', '.join(BACKEND_NAMES)}")
        from .backend import QmioBackend  # noqa: PLC0415 - Qiskit is imported only here
        return QmioBackend(service=self, name=name)

    def job(self, job_id: str) -> "QmioJob":
        """The job with this id, from the job store (raises JobNotFoundError)."""
        from .job import QmioJob  # noqa: PLC0415
        self.manager.store.get(job_id)
        return QmioJob(self.backend("qpu"), job_id, self.manager)

    def sessions(self) -> list["Session"]:
        """Every session in the job store, oldest first (open and closed)."""
        from .session import Batch, Session  # noqa: PLC0415
        backend = self.backend("qpu")
        out = []
        for session_id, directory in self.manager.store.session_ids():
            cls = Batch if directory.spec().get("mode") == "batch" else Session
            out.append(cls(backend, service=self, session_id=session_id))
        return out

    def session(self, session_id: str) -> "Session":
        """The session with this id (``Session.from_id``)."""
        from .session import Session  # noqa: PLC0415
        return Session.from_id(session_id, self)

    def jobs(self) -> list["QmioJob"]:
        from .job import QmioJob  # noqa: PLC0415
        backend = self.backend("qpu")
        return [QmioJob(backend, job_id, self.manager) for job_id in self.manager.job_ids()]


from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:  # keeps Qiskit out of ``import qmio_hpc.service``
    from .backend import QmioBackend
    from .job import QmioJob
    from .session import Session
