"""``Session`` and ``Batch``: hold the QPU across many jobs, shaped like qiskit-ibm-runtime's.

::

    with Session(backend, max_time="1:00:00", idle_timeout=60) as session:
        sampler = SamplerV2(mode=session)        # or SamplerV2() inside the with block
        for step in range(200):
            counts = backend.run(circuit(step)).result().get_counts()   # into the session

A session starts one allocation that holds the QPU (``sessions.Sessions.start``); its worker keeps
one connection to the endpoint and serves the session's jobs in order. Every job is a full
``QmioJob`` with its own id, status and result, found again with ``service.job(id)``.
``Session.from_id(id)`` attaches to it from any process, and has no side effects.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import QmioBackend
    from .service import QmioRuntimeService
    from .sessions import SessionView

_current: contextvars.ContextVar["Session | None"] = contextvars.ContextVar(
    "qmio_session", default=None)


def current_session() -> "Session | None":
    """The session of the innermost ``with Session(...)`` block, if any."""
    return _current.get()


class Session:
    """One allocation on the QPU serving many jobs. ``max_time`` and ``idle_timeout`` are
    seconds, or Slurm times like ``"1:00:00"``; None takes the settings ``session.max_time`` and
    ``session.idle_timeout``."""

    _mode = "session"

    def __init__(self, backend: "QmioBackend | None" = None, max_time: int | float | str | None
                 = None, idle_timeout: int | float | str | None = None, *,
                 service: "QmioRuntimeService | None" = None,
                 session_id: str | None = None) -> None:
        if backend is None:
            from .service import QmioRuntimeService  # noqa: PLC0415
            backend = (service or QmioRuntimeService()).backend("qpu")
        self._backend = backend
        self._service = service or backend.service
        self._token: contextvars.Token | None = None
        sessions = self._service.manager.sessions
        if session_id is None:
            session_id = sessions.start(mode=self._mode, max_time=max_time,
                                        idle_timeout=idle_timeout, backend=backend.name)
        else:
            self._service.manager.store.get_session(session_id)  # raises SessionNotFoundError
        self._session_id = session_id

    @classmethod
    def from_id(cls, session_id: str, service: "QmioRuntimeService | None" = None
                ) -> "Session":
        """The session with this id, started by any process of this user. Reads only: a closed
        session reads as closed, and nothing is started, closed or changed."""
        from .service import QmioRuntimeService  # noqa: PLC0415
        service = service or QmioRuntimeService()
        return cls(service.backend("qpu"), service=service, session_id=session_id)

    # -- what it is -------------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        """The Slurm job id of the allocation (``S<n>`` on the local executor)."""
        return self._session_id

    @property
    def service(self) -> "QmioRuntimeService":
        return self._service

    def backend(self) -> str:
        """The backend's name, as in qiskit-ibm-runtime."""
        return self._backend.name

    @property
    def backend_object(self) -> "QmioBackend":
        """The backend whose ``run`` submits into this session."""
        return self._backend.in_session(self)

    def _view(self) -> "SessionView":
        return self._service.manager.sessions.view(self._session_id)

    def status(self) -> str:
        """"Pending", "In progress, accepting new jobs", "In progress, not accepting new jobs" or
        "Closed"."""
        return self._view().status

    def details(self) -> dict[str, Any]:
        """qiskit-ibm-runtime's keys, plus the Slurm job id, the seconds left and the endpoint."""
        return self._view().details

    def usage(self) -> dict[str, float]:
        """Seconds the QPU was held, was busy with jobs, and sat idle (never None)."""
        return self._view().usage

    def job_ids(self) -> list[str]:
        return self._service.manager.store.get_session(self._session_id).job_ids()

    # -- using it ---------------------------------------------------------------------------------

    def run(self, circuits: Any, **options: Any) -> Any:
        """``backend.run`` into this session: returns a ``QmioJob`` at once."""
        return self._backend.run(circuits, _session=self, **options)

    def close(self) -> None:
        """No new jobs; queued jobs finish; then the allocation is released at once."""
        self._service.manager.sessions.close([self._session_id])

    def cancel(self) -> None:
        """Queued jobs end CANCELLED and the allocation is released now."""
        self._service.manager.sessions.cancel([self._session_id])

    def __enter__(self) -> "Session":
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._session_id} on {self.backend()}>"


class Batch(Session):
    """A session whose jobs run back to back and which releases the QPU as soon as its queue is
    empty (after a moment's grace for the next submission, or at once when closed)."""

    _mode = "batch"
