"""Counts you can see: a histogram in the terminal, and a picture with Qiskit's plot_histogram.

The terminal one needs nothing: bars scaled to the terminal's width, most frequent outcome first,
the top N shown and the rest summed on one line. The picture needs matplotlib (the ``plot``
extra), which Qiskit's ``plot_histogram`` draws with; several programs' counts go side by side in
one picture, as Qiskit draws a list of counts with a legend.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .console import terminal_width
from .errors import ConfigError

#: The picture formats ``plot`` writes (matplotlib's names for them).
PICTURE_SUFFIXES = (".png", ".svg", ".pdf")


def bar_lines(counts: dict[str, int], top: int = 16, width: int | None = None) -> list[str]:
    """``  <bits>  <count>  <bar> <percent>`` per outcome, most frequent first (ties by bits),
    at most ``top`` of them, then one line summing the rest. ``width``: the line's length
    (default: the terminal's)."""
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown, rest = ranked[:top], ranked[top:]
    label = max((len(bits) for bits, _ in shown), default=0)
    digits = max((len(str(n)) for _, n in shown), default=1)
    width = width or terminal_width()
    room = max(10, width - label - digits - 15)  # 2 + 2 + 2 spaces, " 100.0%", a margin
    full = ranked[0][1] if ranked else 1
    block = "\u2588" if _unicode() else "#"
    lines = []
    for bits, n in shown:
        bar = block * max(1 if n else 0, round(room * n / full))
        lines.append(f"  {bits:<{label}}  {n:>{digits}}  {bar} {100 * n / total:.1f}%")
    if rest:
        others = sum(n for _, n in rest)
        lines.append(f"  ... {len(rest)} more outcome(s): {others} shots "
                     f"({100 * others / total:.1f}%)")
    return lines


def _unicode() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or ""
    return encoding.lower().replace("-", "") in ("utf8", "utf16", "utf32")


def check_picture_path(path: str) -> Path:
    """The picture's path, refused before anything runs if its format is not one matplotlib
    writes or the extra is missing."""
    target = Path(path)
    if target.suffix.lower() not in PICTURE_SUFFIXES:
        raise ConfigError(f"--plot {path}: the picture's name must end in "
                          f"{', '.join(PICTURE_SUFFIXES)}")
    try:
        import matplotlib  # noqa: F401,PLC0415 - the optional extra
    except ImportError:
        raise ConfigError("--plot draws with matplotlib, which is not installed: "
                          "pip install 'qmio-hpc[plot]'") from None
    return target


def write_picture(path: Path, results: list[tuple[str, dict[str, int]]], title: str) -> None:
    """``results`` (program name, counts) as one histogram picture: side by side when several."""
    import matplotlib  # noqa: PLC0415 - the optional extra, only here

    matplotlib.use("Agg")  # a file, no display needed
    from qiskit.visualization import plot_histogram  # noqa: PLC0415

    counts = [c for _, c in results]
    figure = plot_histogram(counts if len(counts) > 1 else counts[0],
                            legend=[name for name, _ in results] if len(counts) > 1 else None,
                            title=title, figsize=(max(7, len(results) * 3), 5))
    figure.savefig(path, bbox_inches="tight")
