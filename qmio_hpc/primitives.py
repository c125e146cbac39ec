"""Qiskit's V2 primitives on Qmio: ``SamplerV2(mode=backend)`` and ``EstimatorV2(mode=backend)``.

They are Qiskit's backend primitives with the qiskit-ibm-runtime call shape (``mode=``), so code
written for a runtime service reads the same here. ``mode`` is a ``QmioBackend`` now; sessions
will be accepted when they exist.
"""

from __future__ import annotations

from typing import Any

from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2

from .backend import QmioBackend
from .errors import ProgramError


def _backend_of(mode: Any) -> QmioBackend:
    backend = getattr(mode, "backend", mode)
    backend = backend() if callable(backend) and not isinstance(backend, QmioBackend) else backend
    if not isinstance(backend, QmioBackend):
        raise ProgramError(f"mode must be a QmioBackend, got {type(mode).__name__}")
    return backend


class SamplerV2(BackendSamplerV2):
    def __init__(self, mode: Any, options: dict | None = None) -> None:
        super().__init__(backend=_backend_of(mode), options=options)


class EstimatorV2(BackendEstimatorV2):
    def __init__(self, mode: Any, options: dict | None = None) -> None:
        super().__init__(backend=_backend_of(mode), options=options)
