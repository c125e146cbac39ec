"""qmio-hpc: send quantum circuits to the Qmio QPU through Slurm, or to a built-in emulator.

``from qmio_hpc import QmioRuntimeService`` is the entry point. Importing the package imports
almost nothing (not Qiskit, not ZMQ); the names below load their modules when first used.
"""

__version__ = "0.1.0"

from .errors import (ConfigError, EndpointError, EndpointTimeoutError,  # noqa: E402
                     EndpointUnreachableError, JobFailedError, JobNotFoundError, JobTimeoutError,
                     ProgramError, QmioError, QPUError, SchedulerError, SessionClosedError,
                     SessionNotFoundError)

#: Imported when first used (PEP 562): the processes behind every job (the local runner, the batch
#: step, the session worker) import this package too, and need none of them.
_LAZY = {"QmioRuntimeService": "service", "Session": "session", "Batch": "session"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib  # noqa: PLC0415
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ConfigError", "EndpointError", "EndpointTimeoutError", "EndpointUnreachableError",
    "JobFailedError", "JobNotFoundError", "JobTimeoutError", "ProgramError", "QPUError",
    "QmioError", "QmioRuntimeService", "SchedulerError", "Session", "SessionClosedError",
    "SessionNotFoundError", "Batch", "__version__",
]
