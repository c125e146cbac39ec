"""How to reach the QPU: one record, built once from the settings, read by everything that connects.

The batch step, the session worker and the emulator launcher all need the same facts: the
endpoint, or that the endpoint is the built-in emulator (its port, and the options it is started
with), and the timeouts of the client. They travel in a job's or a session's spec as one
dictionary (``Connection.to_dict``), so what runs on the compute node uses exactly what the
submitter chose, whatever that node's own settings say.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

if TYPE_CHECKING:  # the record itself stays light: no ZMQ until a client is opened
    from .config import Settings
    from .transport import QPUClient

#: The endpoint value that means "the built-in emulator, started on demand on this host".
BUILTIN_ENDPOINT = "emulator"


class Connection(NamedTuple):
    """Where the QPU is and how long to wait for it.

    A NamedTuple (immutable, its fields listed): the batch step reads it first thing, and neither
    ``dataclasses`` (which imports ``inspect``) nor the settings module need loading for that."""

    endpoint: str
    store: str
    emulator_port: int = 5556
    emulator_idle_exit: float = 900.0
    emulator_time_model: bool = False
    emulator_noise: bool = False
    connect_timeout: float = 10.0
    reply_timeout: float = 60.0
    retries: int = 2
    assumed_repetition_period: float = 1e-4

    @classmethod
    def from_settings(cls, settings: Settings) -> "Connection":
        return cls(**{name: settings.get(name) for name in cls._fields})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Connection":
        """From a spec: unknown keys (a newer writer) are ignored, missing ones take defaults."""
        return cls(**{k: v for k, v in data.items() if k in cls._fields})

    def to_dict(self) -> dict[str, Any]:
        return dict(self._asdict())

    @property
    def uses_builtin_emulator(self) -> bool:
        return self.endpoint == BUILTIN_ENDPOINT

    @property
    def address(self) -> str:
        """The ZMQ address a client connects to: the built-in emulator lives on loopback."""
        if self.uses_builtin_emulator:
            return f"tcp://127.0.0.1:{self.emulator_port}"
        return self.endpoint

    def ensure_endpoint(self) -> str:
        """The address, after starting the built-in emulator on this host if it is the endpoint."""
        if self.uses_builtin_emulator:
            from .emulator.launcher import ensure_emulator  # noqa: PLC0415 - only if needed
            ensure_emulator(self)
        return self.address

    def client(self) -> "QPUClient":
        """A client for the endpoint (started first if it is the built-in emulator, which it
        then reaches with the store's key: ``emulator.launcher``)."""
        from .transport import QPUClient  # noqa: PLC0415
        curve = None
        if self.uses_builtin_emulator:
            from .channel import client_keys  # noqa: PLC0415
            address = self.ensure_endpoint()
            curve = client_keys(self.emulator_keys)
        else:
            address = self.endpoint
        return QPUClient(address, connect_timeout=self.connect_timeout,
                         reply_timeout=self.reply_timeout, retries=self.retries,
                         assumed_repetition_period=self.assumed_repetition_period, curve=curve)

    @property
    def emulator_dir(self) -> Path:
        """Where an emulator started on demand keeps its lock, pid and log: inside the store."""
        return Path(self.store) / "emulator"

    @property
    def emulator_keys(self) -> Path:
        """The built-in emulator's CURVE keys, the store owner's alone."""
        return self.emulator_dir / "keys"
