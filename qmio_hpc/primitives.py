"""Qiskit's V2 primitives on Qmio: ``SamplerV2(mode=...)`` and ``EstimatorV2(mode=...)``.

They are Qiskit's backend primitives with the qiskit-ibm-runtime call shape: ``mode`` is a
``QmioBackend`` (each call is a job of its own), or a ``Session`` / ``Batch`` (each call is a job in
that allocation). Inside ``with Session(...)``, a primitive built without a mode uses that session.
"""

from __future__ import annotations

from typing import Any

from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2

from .backend import QmioBackend
from .errors import ProgramError
from .session import Session, current_session


def _backend_of(mode: Any) -> QmioBackend:
    if mode is None:
        mode = current_session()
        if mode is None:
            raise ProgramError("mode is required outside a session: give a QmioBackend, a "
                               "Session or a Batch (or build the primitive inside 'with "
                               "Session(...)')")
    if isinstance(mode, Session):
        return mode.backend_object
    if isinstance(mode, QmioBackend):
        return mode
    raise ProgramError(f"mode must be a QmioBackend, a Session or a Batch, got "
                       f"{type(mode).__name__}")


class SamplerV2(BackendSamplerV2):
    def __init__(self, mode: Any = None, options: dict | None = None) -> None:
        super().__init__(backend=_backend_of(mode), options=options)


class EstimatorV2(BackendEstimatorV2):
    def __init__(self, mode: Any = None, options: dict | None = None) -> None:
        super().__init__(backend=_backend_of(mode), options=options)
