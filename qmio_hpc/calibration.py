"""Qmio calibration files: parse them into typed records and pick the newest one in a directory.

Qmio publishes its calibration as JSON with three sections (checked against the public example
``shared/data/qmio_calibration_example.json``):

``Qubits``
    keyed ``"q[N]"`` with N **0-based** (``q[0]`` .. ``q[31]``); fields ``"T1 (s)"``,
    ``"T2 (s)"``, ``"T1 error (s)"``, ``"T2 error (s)"``, ``"Drive Frequency (Hz)"``,
    ``"Measuring frequency (Hz)"``, ``"Readout duration (s)"``, ``"Readout fidelity (RB)"`` and
    ``"Fidelity readout"`` (the same value twice). All SI units, already as JSON numbers.
``Q1Gates``
    keyed ``"q[N]"``, each a dict of gate name -> ``{"Gate duration (s)", "Fidelity(RB)",
    "Fidelity error"}``. Qmio lists ``"SX"`` and ``"Rz"`` (Rz: duration ``0``, fidelity ``1.0``,
    no error field). There is no ``X`` entry: QAT plays X as two SX pulses.
``Q2Gates(RB)``
    keyed ``"C-T"`` (e.g. ``"2-1"``), each ``{"ECR": {"Control", "Target", "Duration (s)",
    "Fidelity(RB)", "Fidelity error"}}`` with integer, 0-based Control/Target. Note the field is
    ``"Duration (s)"`` here but ``"Gate duration (s)"`` for one-qubit gates.

The file carries no date. At CESGA the files are named after the time they were taken
(``2025_02_16__23_59_59.json``), so ``taken_at`` comes from such a name when there is one, and
from the file's modification time otherwise. The ``"Fidelity error"`` fields are the uncertainty
of the RB fit, *not* ``1 - fidelity``.

The parser is strict about types (a wrong type means a corrupt or foreign file, and a silently
wrong coupling map would send circuits to uncoupled qubits) but lenient about absent fields,
which become ``None``, because the set of measured quantities varies between calibration runs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from qmio_hpc.errors import QmioError

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "built-in default"
#: Qmio's native instructions (rz is virtual: zero duration, no error).
NATIVE_GATES = ("sx", "x", "rz", "ecr", "measure", "delay")
_DEFAULT_RESOURCE = ("data", "calibrations", "qmio_default_calibration.json")

SECTION_QUBITS = "Qubits"
SECTION_1Q = "Q1Gates"
SECTION_2Q = "Q2Gates(RB)"

_QUBIT_KEY = re.compile(r"^q\[(\d+)\]$")
_PAIR_KEY = re.compile(r"^(\d+)-(\d+)$")
# CESGA names calibration files after the moment they were taken: 2025_02_16__23_59_59.json
_STAMP = re.compile(r"(\d{4})_(\d{2})_(\d{2})__(\d{2})_(\d{2})_(\d{2})")

# Qmio's gate names -> Qiskit's instruction names.
_GATE_NAMES = {"SX": "sx", "X": "x", "RZ": "rz", "ID": "id", "ECR": "ecr", "CZ": "cz", "CX": "cx"}


class CalibrationError(QmioError, ValueError):
    """A calibration file is missing, unreadable or not in Qmio's format.

    The message is one line naming the file and what is wrong with it, so it can be shown to the
    user as is. It is a ``ValueError`` (bad input data) and a ``QmioError`` (so the CLI maps it
    to an exit code like the other input errors).
    """

    exit_code = 2

    def __init__(self, source: str | os.PathLike[str], reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"calibration {self.source}: {reason}")

    def __reduce__(self):  # keep it picklable (e.g. across a process boundary) despite two args
        return (type(self), (self.source, self.reason))


@dataclass(frozen=True)
class QubitCalibration:
    """What the calibration says about one qubit. Times in seconds, frequencies in Hz.

    Any field the file does not give (or gives as null/NaN) is ``None``.
    """

    index: int
    t1: float | None = None
    t2: float | None = None
    readout_fidelity: float | None = None
    readout_duration: float | None = None
    frequency: float | None = None  # drive frequency
    measure_frequency: float | None = None  # readout resonator frequency
    t1_error: float | None = None  # fit uncertainty of t1
    t2_error: float | None = None  # fit uncertainty of t2


@dataclass(frozen=True)
class GateCalibration1Q:
    """One single-qubit gate on one qubit. ``gate`` is the Qiskit name (``"sx"``, ``"rz"``...)."""

    qubit: int
    gate: str
    fidelity: float | None = None
    duration: float | None = None  # seconds
    fidelity_error: float | None = None  # RB fit uncertainty, not 1 - fidelity


@dataclass(frozen=True)
class GateCalibration2Q:
    """One directed two-qubit gate (Qmio: ECR). ``gate`` is the Qiskit name (``"ecr"``)."""

    control: int
    target: int
    fidelity: float | None = None
    duration: float | None = None  # seconds
    fidelity_error: float | None = None  # RB fit uncertainty, not 1 - fidelity
    gate: str = "ecr"


@dataclass(frozen=True)
class Calibration:
    """One parsed calibration: qubit data, 1q gates, directed 2q gates, and where it came from."""

    source: str  # file path, or "built-in default"
    taken_at: datetime | None  # timezone-aware; None for the built-in default
    qubits: dict[int, QubitCalibration]
    gates_1q: list[GateCalibration1Q]
    gates_2q: list[GateCalibration2Q]

    @property
    def num_qubits(self) -> int:
        """One more than the highest qubit index mentioned anywhere (indices are 0-based).

        Counting the highest index rather than the entries keeps qubit numbers stable when a
        calibration leaves a broken qubit out.
        """
        indices = set(self.qubits)
        indices.update(g.qubit for g in self.gates_1q)
        for g in self.gates_2q:
            indices.update((g.control, g.target))
        return max(indices) + 1 if indices else 0

    @property
    def coupling_map(self) -> list[tuple[int, int]]:
        """Directed ECR pairs ``(control, target)``, in file order. Changes between calibrations."""
        return [(g.control, g.target) for g in self.gates_2q if g.gate == "ecr"]

    def gate_1q(self, qubit: int, gate: str) -> GateCalibration1Q | None:
        """The calibration of ``gate`` (Qiskit name) on ``qubit``, or ``None`` if not calibrated."""
        return next((g for g in self.gates_1q if g.qubit == qubit and g.gate == gate), None)


# --------------------------------------------------------------------------------------------
# parsing


def _number(
    src: str, where: str, value: Any, lo: float | None = None, hi: float | None = None
) -> float | None:
    """A JSON value as a float; null and NaN (missing measurements) become None."""
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int subclass; true/false is never a measurement
        raise CalibrationError(src, f"{where} should be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise CalibrationError(
                src, f"{where} should be a number, got string {value!r}"
            ) from None
    elif not isinstance(value, (int, float)):
        raise CalibrationError(src, f"{where} should be a number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number) or (lo is not None and number < lo) or (hi is not None and number > hi):
        bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise CalibrationError(src, f"{where} = {value!r} is outside {bounds}")
    return number


def _section(src: str, data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if name not in data:
        raise CalibrationError(src, f"missing section {name!r} (has {sorted(data)})")
    section = data[name]
    if not isinstance(section, Mapping):
        raise CalibrationError(
            src, f"section {name!r} should be an object, got {type(section).__name__}"
        )
    return section


def _entry(src: str, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CalibrationError(src, f"{where} should be an object, got {type(value).__name__}")
    return value


def _qubit_index(src: str, section: str, key: str) -> int:
    match = _QUBIT_KEY.match(key)
    if match is None:
        raise CalibrationError(src, f"{section} key {key!r} is not a qubit name like 'q[0]'")
    return int(match.group(1))


def _gate_name(raw: str) -> str:
    return _GATE_NAMES.get(raw.upper(), raw.lower())


def _field(src: str, at: str, entry: Mapping[str, Any], key: str, **bounds: float) -> float | None:
    """``entry[key]`` as a number (None if absent), with errors located as ``at['key']``."""
    return _number(src, f"{at}[{key!r}]", entry.get(key), **bounds)


_FIDELITY = {"lo": 0.0, "hi": 1.0}
_POSITIVE = {"lo": 0.0}  # durations, times, frequencies, fit uncertainties


def _parse_qubits(src: str, section: Mapping[str, Any]) -> dict[int, QubitCalibration]:
    qubits: dict[int, QubitCalibration] = {}
    for key, raw in section.items():
        index = _qubit_index(src, SECTION_QUBITS, key)
        at = f"{SECTION_QUBITS}[{key!r}]"
        entry = dict(_entry(src, at, raw))
        # The file gives readout fidelity twice with the same value; take either.
        entry.setdefault("Fidelity readout", entry.get("Readout fidelity (RB)"))
        qubits[index] = QubitCalibration(
            index=index,
            t1=_field(src, at, entry, "T1 (s)", **_POSITIVE),
            t2=_field(src, at, entry, "T2 (s)", **_POSITIVE),
            readout_fidelity=_field(src, at, entry, "Fidelity readout", **_FIDELITY),
            readout_duration=_field(src, at, entry, "Readout duration (s)", **_POSITIVE),
            frequency=_field(src, at, entry, "Drive Frequency (Hz)", **_POSITIVE),
            measure_frequency=_field(src, at, entry, "Measuring frequency (Hz)", **_POSITIVE),
            t1_error=_field(src, at, entry, "T1 error (s)", **_POSITIVE),
            t2_error=_field(src, at, entry, "T2 error (s)", **_POSITIVE),
        )
    return dict(sorted(qubits.items()))


def _parse_1q(src: str, section: Mapping[str, Any]) -> list[GateCalibration1Q]:
    gates: list[GateCalibration1Q] = []
    for key, raw in section.items():
        qubit = _qubit_index(src, SECTION_1Q, key)
        for gate_name, raw_gate in _entry(src, f"{SECTION_1Q}[{key!r}]", raw).items():
            at = f"{SECTION_1Q}[{key!r}][{gate_name!r}]"
            entry = _entry(src, at, raw_gate)
            gates.append(
                GateCalibration1Q(
                    qubit=qubit,
                    gate=_gate_name(gate_name),
                    fidelity=_field(src, at, entry, "Fidelity(RB)", **_FIDELITY),
                    duration=_field(src, at, entry, "Gate duration (s)", **_POSITIVE),
                    fidelity_error=_field(src, at, entry, "Fidelity error", **_POSITIVE),
                )
            )
    return sorted(gates, key=lambda g: (g.qubit, g.gate))


def _pair_index(src: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CalibrationError(src, f"{where} should be a qubit index (int >= 0), got {value!r}")
    return value


def _pair(src: str, at: str, key: str, entry: Mapping[str, Any]) -> tuple[int, int]:
    """(control, target): from the Control/Target fields, else from a "C-T" key.

    A key that disagrees with the fields means a corrupt file: refuse it rather than guess
    which of the two is the real coupling.
    """
    key_match = _PAIR_KEY.match(key)
    from_key = None if key_match is None else (int(key_match[1]), int(key_match[2]))
    if "Control" in entry or "Target" in entry or from_key is None:
        if "Control" not in entry or "Target" not in entry:
            raise CalibrationError(src, f"{at} needs both 'Control' and 'Target'")
        pair = (
            _pair_index(src, f"{at}['Control']", entry["Control"]),
            _pair_index(src, f"{at}['Target']", entry["Target"]),
        )
        if from_key is not None and from_key != pair:
            raise CalibrationError(src, f"{at} says {pair[0]}->{pair[1]}, contradicting its key")
    else:
        pair = from_key
    if pair[0] == pair[1]:
        raise CalibrationError(src, f"{at} couples qubit {pair[0]} to itself")
    return pair


def _parse_2q(src: str, section: Mapping[str, Any]) -> list[GateCalibration2Q]:
    gates: list[GateCalibration2Q] = []
    seen: dict[tuple[str, int, int], str] = {}
    for key, raw in section.items():
        for gate_name, raw_gate in _entry(src, f"{SECTION_2Q}[{key!r}]", raw).items():
            at = f"{SECTION_2Q}[{key!r}][{gate_name!r}]"
            entry = _entry(src, at, raw_gate)
            control, target = _pair(src, at, key, entry)
            name = _gate_name(gate_name)
            if (name, control, target) in seen:
                first = seen[(name, control, target)]
                raise CalibrationError(src, f"{at} repeats {name} {control}->{target} of {first!r}")
            seen[(name, control, target)] = key
            gates.append(
                GateCalibration2Q(
                    control=control,
                    target=target,
                    gate=name,
                    fidelity=_field(src, at, entry, "Fidelity(RB)", **_FIDELITY),
                    duration=_field(src, at, entry, "Duration (s)", **_POSITIVE),
                    fidelity_error=_field(src, at, entry, "Fidelity error", **_POSITIVE),
                )
            )
    return gates


def parse_calibration(data: Any, *, source: str, taken_at: datetime | None = None) -> Calibration:
    """Build a :class:`Calibration` from already-decoded JSON in Qmio's format.

    ``source`` names where the data came from; it is what error messages show.
    """
    if not isinstance(data, Mapping):
        raise CalibrationError(source, f"top level should be an object, got {type(data).__name__}")
    qubits = _parse_qubits(source, _section(source, data, SECTION_QUBITS))
    gates_1q = _parse_1q(source, _section(source, data, SECTION_1Q))
    gates_2q = _parse_2q(source, _section(source, data, SECTION_2Q))
    if not qubits:
        raise CalibrationError(source, f"section {SECTION_QUBITS!r} lists no qubits")
    return Calibration(
        source=source, taken_at=taken_at, qubits=qubits, gates_1q=gates_1q, gates_2q=gates_2q
    )


def _decode(source: str, text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(source, f"not valid JSON ({exc})") from None


def _taken_at(path: Path, mtime: float) -> datetime:
    """When the calibration was taken: the CESGA file-name stamp if any, else the mtime.

    The stamp carries no time zone; it is read as local time, since the files are written and
    read on the same site. Both branches return aware datetimes so they compare with each other.
    """
    match = _STAMP.search(path.stem)
    if match is not None:
        try:
            return datetime(*(int(g) for g in match.groups())).astimezone()
        except ValueError:  # e.g. month 13: not a stamp after all
            pass
    return datetime.fromtimestamp(mtime, tz=timezone.utc)


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read and parse one calibration file. Raises :class:`CalibrationError` naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise CalibrationError(path, f"cannot read ({exc.strerror or exc})") from None
    data = _decode(str(path), raw)
    return parse_calibration(data, source=str(path), taken_at=_taken_at(path, mtime))


def default_calibration() -> Calibration:
    """The calibration shipped with qmio-hpc: synthetic values, see make_default_calibration.py.

    Read through importlib.resources so it works from a wheel or zip. ``taken_at`` is None:
    the file's mtime would only say when the package was installed.
    """
    resource = resources.files("qmio_hpc")
    for part in _DEFAULT_RESOURCE:
        resource = resource.joinpath(part)
    try:
        text = resource.read_bytes()
    except OSError as exc:
        raise CalibrationError(
            DEFAULT_SOURCE, f"shipped file is missing ({exc}); is the package data installed?"
        ) from None
    return parse_calibration(_decode(DEFAULT_SOURCE, text), source=DEFAULT_SOURCE, taken_at=None)


def newest_calibration(directory: str | os.PathLike[str]) -> Calibration:
    """The newest ``*.json`` calibration in ``directory`` (by ``taken_at``, then mtime).

    Candidates are ordered by name stamp / mtime without parsing them (a calibration directory
    can hold years of daily files); the first one that parses wins. A newer file that does not
    parse (e.g. still being written) is skipped with a warning in the log, so one bad file does
    not take the QPU out of service; :class:`CalibrationError` only when none is usable.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CalibrationError(directory, "is not a directory")
    candidates: list[tuple[datetime, float, Path]] = []
    for path in directory.glob("*.json"):
        try:
            if not path.is_file():
                continue
            mtime = path.stat().st_mtime
        except OSError:
            continue
        candidates.append((_taken_at(path, mtime), mtime, path))
    if not candidates:
        raise CalibrationError(directory, "holds no *.json calibration file")
    candidates.sort(key=lambda c: (c[0], c[1], c[2].name), reverse=True)
    failures: list[str] = []
    for _, _, path in candidates:
        try:
            return load_calibration(path)
        except CalibrationError as exc:
            log.warning("skipping unusable calibration: %s", exc)
            failures.append(f"{path.name}: {exc.reason}")
    shown = "; ".join(failures[:3]) + ("; ..." if len(failures) > 3 else "")
    raise CalibrationError(directory, f"no usable calibration among {len(failures)} ({shown})")


def resolve_calibration(directory: str | os.PathLike[str] | None) -> Calibration:
    """The calibration to use: newest in ``directory`` if one is configured, else the default.

    A path to a single file is accepted too and loaded as is, so a user can pin one calibration.
    """
    if directory is None:
        return default_calibration()
    path = Path(directory)
    if path.is_file():
        return load_calibration(path)
    return newest_calibration(path)
