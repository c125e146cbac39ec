"""Durations as users write them: seconds, or Slurm's ``[D-]HH:MM:SS``; and back to ``--time``."""

from __future__ import annotations

import re
from typing import Any

from .errors import ConfigError

_DURATION = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")  # [D-]HH[:MM[:SS]]


def parse_duration(value: Any, name: str) -> float | None:
    """Seconds from a number of seconds or a Slurm time ("90", "1:30:00", "2-00:00:00").

    A bare number, given as a number or as text, is seconds, as in qiskit-ibm-runtime (Slurm
    would read it as minutes); a time with colons is Slurm's format. None or "" means no limit."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a duration")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
        value = float(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise ConfigError(f"{name}: {value!r} is not a duration; give seconds (3600) or "
                              f"Slurm's [D-]HH:MM:SS")
        days, first, second, third = match.groups()
        parts = [int(p) for p in (first, second, third) if p is not None]
        if days is not None:  # D-HH[:MM[:SS]]
            parts += [0] * (3 - len(parts))
            seconds = int(days) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
        elif len(parts) == 2:  # MM:SS
            seconds = parts[0] * 60 + parts[1]
        else:
            seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(f"{name}: {value!r} must be a positive, finite duration")
    return seconds


def is_zero(value: Any) -> bool:
    try:
        return float(value) == 0
    except (TypeError, ValueError):
        return False


def slurm_time(seconds: float) -> str:
    """``--time`` for a limit of ``seconds`` (Slurm counts whole minutes: round up)."""
    minutes = max(1, int(-(-seconds // 60)))
    return f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"
