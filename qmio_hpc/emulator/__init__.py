"""A qat-rpc-compatible QPU server that simulates programs with Qiskit (``qmio emulator``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..calibration import Calibration

__all__ = ["EmulatorServer", "Handler", "is_loopback_bind", "run_emulator"]


def __getattr__(name: str) -> object:
    """The server's parts load when asked for: a batch step imports this package to reach
    ``launcher``, and needs neither them nor the calibration."""
    if name == "Handler":
        from .handler import Handler  # noqa: PLC0415
        return Handler
    if name == "EmulatorServer":
        from .server import EmulatorServer  # noqa: PLC0415
        return EmulatorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_loopback_bind(bind: str) -> bool:
    import ipaddress  # noqa: PLC0415 - a batch step imports this package, and needs neither
    from urllib.parse import urlparse  # noqa: PLC0415

    if bind.startswith(("ipc://", "inproc://")):
        return True
    host = urlparse(bind).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_emulator(bind: str, *, time_model: bool = False, seed: int | None = None,
                 idle_exit: float = 0.0, default_period: float = 1e-4,
                 ready: Callable[[str], None] | None = None,
                 noise: Calibration | None = None, keys_dir: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``idle_exit`` seconds without a request).

    The device it stands in for is the calibration's: its qubit count and coupling map, and,
    with ``noise``, its errors."""
    from ..calibration import default_calibration  # noqa: PLC0415
    from .handler import Handler  # noqa: PLC0415
    from .server import EmulatorServer  # noqa: PLC0415
    device = noise or default_calibration()
    handler = Handler(num_qubits=device.num_qubits, couplings=device.coupling_map,
                      time_model=time_model, seed=seed, default_period=default_period,
                      noise=noise)
    if noise is not None:
        from .noise import _aer  # noqa: PLC0415
        _aer()  # fail at start, not on the first request, when qiskit-aer is missing
    server = EmulatorServer(bind, handler, idle_exit=idle_exit, keys_dir=keys_dir)
    import logging  # noqa: PLC0415

    # Qiskit logs every transpiler pass at INFO: a dozen lines per request, which would fill
    # the emulator's log file (or block it on a pipe nobody reads). Its warnings still show.
    logging.getLogger("qiskit").setLevel(logging.WARNING)
    from . import simulate  # noqa: F401,PLC0415 - import Qiskit now, not on the first request
    if ready is not None:
        ready(server.address)
    server.serve_forever()
