"""One error class per kind of failure a user can act on.

Every message is meant to be shown as a single line: it names what went wrong and, where there is
one, the fix. The CLI prints ``str(error)`` and maps the class to an exit code (see ``cli``).
"""

from __future__ import annotations


class QmioError(Exception):
    """Base class: anything qmio-hpc raises on purpose."""

    exit_code = 1


class ConfigError(QmioError):
    """A setting has a bad value or a config file cannot be read. Fix the setting named."""

    exit_code = 2


class ProgramError(QmioError):
    """The program or its options are invalid; nothing was submitted. Fix the input."""

    exit_code = 2


class JobNotFoundError(QmioError):
    """No job with that id exists in the job store (or the id is malformed)."""

    exit_code = 3


class SessionNotFoundError(JobNotFoundError):
    """No session with that id exists in the job store (or the id is malformed)."""


class SessionClosedError(QmioError):
    """The session takes no new jobs: closed, cancelled, ended, or out of time. Start a new one."""

    exit_code = 7


class EndpointError(QmioError):
    """Base for failures talking to the QPU control server; the message names the endpoint."""

    exit_code = 4

    def __init__(self, message: str, endpoint: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class EndpointUnreachableError(EndpointError):
    """No connection could be made to the endpoint: the server is down or the address is wrong."""


class EndpointTimeoutError(EndpointError):
    """The server took the request but no answer came in time (lazy-pirate retries exhausted)."""


class QPUError(EndpointError):
    """The control server answered with ``{'Exception': ...}``: the QPU or its compiler refused."""


class ProtocolError(EndpointError):
    """The server's reply is not something the qat-rpc protocol can produce (or is unsafe to load)."""


class SchedulerError(QmioError):
    """The scheduler (Slurm or the local executor) refused or failed a request."""

    exit_code = 5


class JobFailedError(QmioError):
    """The job ended in ERROR or CANCELLED, so it has no result. The message gives the reason."""

    exit_code = 1


class JobEndpointError(JobFailedError):
    """The job ended in ERROR because the QPU endpoint failed: unreachable, no answer, or the
    QPU refused. Check the control server (or the emulator), then resubmit."""

    exit_code = 4


class JobProgramError(JobFailedError):
    """The job ended in ERROR because its program did not pass the batch step's check."""

    exit_code = 2


#: The error file's ``kind`` -> the error a caller gets for the failed job.
FAILURE_KINDS: dict[str, type[JobFailedError]] = {
    "EndpointUnreachableError": JobEndpointError, "EndpointTimeoutError": JobEndpointError,
    "QPUError": JobEndpointError, "ProtocolError": JobEndpointError,
    "ProgramError": JobProgramError,
}


class JobTimeoutError(QmioError):
    """Waiting for a job took longer than the caller allowed; the job itself goes on."""

    exit_code = 6
