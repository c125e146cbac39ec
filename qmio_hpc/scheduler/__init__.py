"""Executors: ``local`` (the embedded default) and ``slurm``. ``get_scheduler`` picks one."""

from __future__ import annotations

import os

from ..config import Settings
from ..errors import ConfigError
from ..store import JobStore
from .base import Scheduler

EXECUTORS = ("local", "slurm")


def in_allocation(settings: Settings) -> bool:
    """Inside a Slurm job with a real endpoint: this node holds the QPU already."""
    return bool(os.environ.get("SLURM_JOB_ID")) and not settings.uses_builtin_emulator


def choose_executor(settings: Settings) -> str:
    """``executor = auto``: inside an allocation, run here (no second Slurm job); else Slurm where
    it is installed and answering; else the local executor."""
    wanted = settings.executor
    if wanted != "auto":
        return wanted
    if in_allocation(settings):
        return "local"
    from .slurm import slurm_available  # noqa: PLC0415 - keeps the local path light
    return "slurm" if slurm_available() else "local"


def get_scheduler(name: str, settings: Settings, store: JobStore | None = None) -> Scheduler:
    store = store or JobStore(settings.store)
    if name == "local":
        from .local import LocalScheduler
        return LocalScheduler(settings, store)
    if name == "slurm":
        from .slurm import make_slurm_scheduler
        return make_slurm_scheduler(settings, store)
    raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
