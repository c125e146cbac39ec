"""Slurm executors (filled in by the Slurm issue)."""

from __future__ import annotations

import shutil
import subprocess

from ..config import Settings
from ..errors import SchedulerError
from ..store import JobStore


def slurm_available() -> bool:
    """sbatch is installed and slurmctld answers."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def make_slurm_scheduler(settings: Settings, store: JobStore):  # type: ignore[no-untyped-def]
    raise SchedulerError("the Slurm executor is not available yet")
