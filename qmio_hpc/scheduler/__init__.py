"""Executors: ``local`` (the embedded default) and ``slurm``. ``get_scheduler`` builds one, and
for Slurm ``make_slurm_scheduler`` picks the adapter (pyslurm or the command-line tools)."""

from __future__ import annotations

import os
import sys

from typing import TYPE_CHECKING

from ..errors import ConfigError, SchedulerError
from ..store import JobStore
from .base import Scheduler

if TYPE_CHECKING:  # not at run time: the local runner, which lives here, imports little
    from ..config import Settings
    from .slurm import SlurmScheduler

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
    from .slurm import slurm_available, slurm_installed  # noqa: PLC0415 - keeps local light
    if not slurm_installed():
        return "local"
    if slurm_available():
        return "slurm"
    # Not a silent fall-back: on a login node the user means the QPU, not this machine.
    raise SchedulerError("Slurm is installed here but its controller does not answer "
                         "('scontrol ping' fails); try again later, or choose --executor local "
                         "to run on this machine")


def get_scheduler(name: str, settings: Settings, store: JobStore | None = None) -> Scheduler:
    store = store or JobStore(settings.store)
    if name == "local":
        from .local import LocalScheduler
        return LocalScheduler(settings, store)
    if name == "slurm":
        return make_slurm_scheduler(settings, store)
    raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


def _pyslurm_matches() -> tuple[bool, str]:
    """pyslurm imports and its major.minor equals the running Slurm's (22.5.x for 22.05)."""
    try:
        import pyslurm  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        return False, "pyslurm is not installed"
    except Exception as exc:  # a pyslurm built for another Slurm fails at import
        return False, f"pyslurm does not load ({exc})"
    import subprocess  # noqa: PLC0415 - qmio status of a local job needs no subprocess

    try:
        out = subprocess.run(["sinfo", "--version"], capture_output=True, text=True, timeout=10)
        running = out.stdout.split()[-1]  # "slurm 22.05.8"
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return False, "cannot tell the running Slurm's version"
    from .slurm_pyslurm import REQUIRED_API  # noqa: PLC0415
    ours = str(getattr(pyslurm, "__version__", "0.0")).split(".")
    try:
        theirs = [str(int(part)) for part in running.split(".")[:2]]
    except ValueError:
        return False, f"cannot read the running Slurm's version from {running!r}"
    if ours[:2] != theirs:
        return False, f"pyslurm {'.'.join(ours)} does not match Slurm {running}"
    missing = [name for name in REQUIRED_API if not hasattr(pyslurm, name)]
    if missing:  # the job API arrived in pyslurm 22.5.2
        return False, f"pyslurm {'.'.join(ours)} lacks {', '.join(missing)} (needs >= 22.5.2)"
    return True, f"pyslurm {'.'.join(ours)}"


_notice_given = False


def make_slurm_scheduler(settings: Settings, store: JobStore) -> "SlurmScheduler":
    """The pyslurm adapter where pyslurm matches the running Slurm; the CLI adapter otherwise."""
    global _notice_given
    wanted = settings.get("slurm.adapter")
    ok, why = (False, "slurm.adapter = cli") if wanted == "cli" else _pyslurm_matches()
    if wanted == "pyslurm" and not ok:
        raise SchedulerError(f"slurm.adapter is 'pyslurm' but {why}; set it to 'auto' or 'cli'")
    if ok:
        from .slurm_pyslurm import PySlurmScheduler  # noqa: PLC0415
        return PySlurmScheduler(settings, store)
    if not _notice_given and "not installed" not in why and wanted != "cli":
        print(f"qmio: notice: using the Slurm command-line tools: {why}", file=sys.stderr)
        _notice_given = True
    from .slurm_cli import SlurmCLIScheduler  # noqa: PLC0415
    scheduler = SlurmCLIScheduler(settings, store)
    scheduler.adapter = f"command-line tools; {why}"
    return scheduler
