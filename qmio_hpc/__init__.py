"""qmio-hpc: send quantum circuits to the Qmio QPU through Slurm, or to a built-in emulator.

``from qmio_hpc import QmioRuntimeService`` is the entry point. Importing the package does not
import Qiskit; the backend and job modules do, when first used.
"""

__version__ = "0.1.0"

from .errors import (ConfigError, EndpointError, EndpointTimeoutError,  # noqa: E402
                     EndpointUnreachableError, JobFailedError, JobNotFoundError, JobTimeoutError,
                     ProgramError, QmioError, QPUError, SchedulerError, SessionClosedError,
                     SessionNotFoundError)
from .service import QmioRuntimeService  # noqa: E402
from .session import Batch, Session  # noqa: E402

__all__ = [
    "ConfigError", "EndpointError", "EndpointTimeoutError", "EndpointUnreachableError",
    "JobFailedError", "JobNotFoundError", "JobTimeoutError", "ProgramError", "QPUError",
    "QmioError", "QmioRuntimeService", "SchedulerError", "Session", "SessionClosedError",
    "SessionNotFoundError", "Batch", "__version__",
]
