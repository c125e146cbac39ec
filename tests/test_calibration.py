"""Calibration parsing, newest-in-directory selection, and the Qiskit Target built from it."""

from __future__ import annotations

import copy
import json
import os
import pickle
from datetime import datetime, timezone
from pathlib import Path

import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.random import random_circuit

from qmio_hpc.calibration import (
    Calibration,
    CalibrationError,
    default_calibration,
    load_calibration,
    newest_calibration,
    parse_calibration,
    resolve_calibration,
)
from qmio_hpc.target import NATIVE_GATES, build_target

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "qmio_calibration_example.json"
DEFAULT_FILE = REPO / "qmio_hpc" / "data" / "calibrations" / "qmio_default_calibration.json"

@pytest.fixture
def _example_present() -> None:
    """The public calibration example is part of the shared data: missing, the test fails
    (never a skip that would hide it in CI)."""
    if not EXAMPLE.is_file():
        pytest.fail(f"the public calibration example is missing: {EXAMPLE}")


needs_example = pytest.mark.usefixtures("_example_present")


def _raw_default() -> dict:
    return json.loads(DEFAULT_FILE.read_text())


def _write(path: Path, data, mtime: float | None = None) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _tiny(pairs=((0, 1),)) -> dict:
    """A minimal valid calibration on 3 qubits, in Qmio's format."""
    qubits = {
        f"q[{i}]": {
            "T1 (s)": 5e-5,
            "T2 (s)": 4e-5,
            "Drive Frequency (Hz)": 4.3e9,
            "Readout duration (s)": 4e-6,
            "Readout fidelity (RB)": 0.95,
            "Fidelity readout": 0.95,
        }
        for i in range(3)
    }
    q1 = {
        f"q[{i}]": {
            "SX": {"Gate duration (s)": 3.2e-08, "Fidelity(RB)": 0.999, "Fidelity error": 1e-4},
            "Rz": {"Gate duration (s)": 0, "Fidelity(RB)": 1.0},
        }
        for i in range(3)
    }
    q2 = {
        f"{c}-{t}": {
            "ECR": {"Control": c, "Target": t, "Duration (s)": 4.8e-07, "Fidelity(RB)": 0.98}
        }
        for c, t in pairs
    }
    return {"Qubits": qubits, "Q1Gates": q1, "Q2Gates(RB)": q2}


def _connected(n: int, edges) -> bool:
    adj = {i: set() for i in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen, stack = set(), [0]
    while stack:
        q = stack.pop()
        if q not in seen:
            seen.add(q)
            stack.extend(adj[q] - seen)
    return len(seen) == n


# ---------------------------------------------------------------------------------------------
# parsing real and shipped files


@needs_example
def test_parse_public_example():
    cal = load_calibration(EXAMPLE)
    raw = json.loads(EXAMPLE.read_text())
    assert cal.source == str(EXAMPLE)
    assert cal.num_qubits == 32
    assert sorted(cal.qubits) == list(range(32))  # "q[0]" .. "q[31]": 0-based
    q0 = raw["Qubits"]["q[0]"]
    assert cal.qubits[0].t1 == q0["T1 (s)"]  # already seconds, no scaling
    assert cal.qubits[0].t2 == q0["T2 (s)"]
    assert cal.qubits[0].frequency == q0["Drive Frequency (Hz)"]
    assert cal.qubits[0].readout_fidelity == q0["Fidelity readout"]
    assert cal.qubits[0].readout_duration == q0["Readout duration (s)"]
    assert 1e-6 < cal.qubits[0].t1 < 1e-3
    assert 4e9 < cal.qubits[0].frequency < 5e9
    sx0 = cal.gate_1q(0, "sx")
    assert sx0.fidelity == raw["Q1Gates"]["q[0]"]["SX"]["Fidelity(RB)"]
    assert sx0.duration == raw["Q1Gates"]["q[0]"]["SX"]["Gate duration (s)"]
    assert cal.gate_1q(0, "rz").duration == 0.0 and cal.gate_1q(0, "rz").fidelity == 1.0
    expected = [(v["ECR"]["Control"], v["ECR"]["Target"]) for v in raw["Q2Gates(RB)"].values()]
    assert cal.coupling_map == expected
    assert len(cal.coupling_map) == len(raw["Q2Gates(RB)"]) == 33
    assert isinstance(cal.taken_at, datetime) and cal.taken_at.tzinfo is not None

    # Our shipped default has exactly this structure, but its own numbers and coupling map.
    example = raw
    ours = _raw_default()
    assert list(ours) == list(example)
    assert list(ours["Qubits"]) == list(example["Qubits"])
    assert list(ours["Qubits"]["q[0]"]) == list(example["Qubits"]["q[0]"])
    assert list(ours["Q1Gates"]["q[0]"]) == list(example["Q1Gates"]["q[0]"])
    assert list(ours["Q1Gates"]["q[0]"]["SX"]) == list(example["Q1Gates"]["q[0]"]["SX"])
    assert ours["Q1Gates"]["q[0]"]["Rz"] == example["Q1Gates"]["q[0]"]["Rz"]
    first = next(iter(example["Q2Gates(RB)"].values()))
    assert all(
        list(v) == ["ECR"] and list(v["ECR"]) == list(first["ECR"])
        for v in ours["Q2Gates(RB)"].values()
    )
    assert ours["Q2Gates(RB)"].keys() != example["Q2Gates(RB)"].keys()  # our own coupling map
    t1_ours = [q["T1 (s)"] for q in ours["Qubits"].values()]
    t1_example = [q["T1 (s)"] for q in example["Qubits"].values()]
    assert not set(t1_ours) & set(t1_example)


def test_parse_default():
    cal = default_calibration()
    raw = _raw_default()
    assert cal.source == "built-in default"
    assert cal.taken_at is None
    assert cal.num_qubits == 32 and sorted(cal.qubits) == list(range(32))
    assert cal.coupling_map == [
        (v["ECR"]["Control"], v["ECR"]["Target"]) for v in raw["Q2Gates(RB)"].values()
    ]
    assert len(cal.coupling_map) == 36
    assert _connected(32, cal.coupling_map)
    # plausible, in SI units
    for q in cal.qubits.values():
        assert 1e-5 < q.t1 < 2e-4 and 1e-5 < q.t2 <= 2 * q.t1
        assert 0.9 <= q.readout_fidelity <= 0.97
        assert 1e-6 < q.readout_duration < 2e-5
        assert 4e9 < q.frequency < 5e9
        assert 0.997 < cal.gate_1q(q.index, "sx").fidelity < 1.0
    for g in cal.gates_2q:
        assert g.gate == "ecr" and 0.97 <= g.fidelity <= 0.99 and 3e-7 <= g.duration <= 7e-7


def test_generator_reproduces_shipped_file(tmp_path):
    import runpy

    gen = runpy.run_path(str(REPO / "scripts" / "make_default_calibration.py"))
    out = tmp_path / "cal.json"
    gen["main"](["-o", str(out)])
    assert out.read_bytes() == DEFAULT_FILE.read_bytes()


def test_missing_values_become_none_and_key_fallback():
    raw = _tiny()
    raw["Qubits"]["q[1]"]["T1 (s)"] = None
    raw["Qubits"]["q[2]"]["T2 (s)"] = float("nan")
    del raw["Qubits"]["q[0]"]["Fidelity readout"]  # falls back to "Readout fidelity (RB)"
    del raw["Q2Gates(RB)"]["0-1"]["ECR"]["Control"]
    del raw["Q2Gates(RB)"]["0-1"]["ECR"]["Target"]  # the "C-T" key still says 0 -> 1
    cal = parse_calibration(raw, source="mem")
    assert cal.qubits[1].t1 is None and cal.qubits[2].t2 is None
    assert cal.qubits[0].readout_fidelity == 0.95
    assert cal.qubits[0].measure_frequency is None  # field absent from the file
    assert cal.coupling_map == [(0, 1)]


# ---------------------------------------------------------------------------------------------
# bad files


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: [1, 2], "top level"),
        (lambda d: d.pop("Q2Gates(RB)") and d, "Q2Gates(RB)"),
        (lambda d: d.pop("Qubits") and d, "Qubits"),
        (lambda d: d.update(Q1Gates=[1]) or d, "Q1Gates"),
        (lambda d: d["Qubits"]["q[0]"].update({"T1 (s)": "soon"}) or d, "T1 (s)"),
        (lambda d: d["Qubits"]["q[0]"].update({"T1 (s)": [1]}) or d, "T1 (s)"),
        (lambda d: d["Qubits"]["q[0]"].update({"Fidelity readout": 1.5}) or d, "Fidelity readout"),
        (lambda d: d["Qubits"].update({"QB3": {}}) or d, "QB3"),
        (lambda d: d["Q1Gates"]["q[0]"]["SX"].update({"Fidelity(RB)": True}) or d, "Fidelity(RB)"),
        (
            lambda d: d["Q1Gates"]["q[0]"]["SX"].update({"Gate duration (s)": -1e-8}) or d,
            "Gate duration",
        ),
        (lambda d: d["Q2Gates(RB)"]["0-1"]["ECR"].update(Control="0") or d, "Control"),
        (lambda d: d["Q2Gates(RB)"]["0-1"]["ECR"].update(Control=2) or d, "contradicting"),
        (lambda d: d["Q2Gates(RB)"]["0-1"]["ECR"].pop("Target") and d, "Target"),
        (
            lambda d: d["Q2Gates(RB)"].update({"x": {"ECR": {"Control": 1, "Target": 1}}}) or d,
            "itself",
        ),
        (
            lambda d: d["Q2Gates(RB)"].update({"y": {"ECR": {"Control": 0, "Target": 1}}}) or d,
            "repeats",
        ),
    ],
)
def test_bad_file_raises_calibration_error_naming_file(tmp_path, mutate, words):
    data = mutate(_tiny())
    path = _write(tmp_path / "bad_cal.json", data)
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    message = str(info.value)
    assert str(path) in message and words in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_missing_file_raises(tmp_path):
    with pytest.raises(CalibrationError, match="nope.json.*cannot read") as info:
        load_calibration(tmp_path / "nope.json")
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value) and again.reason == info.value.reason


# ---------------------------------------------------------------------------------------------
# picking the newest


def test_newest_by_filename_stamp_then_mtime(tmp_path):
    # Name stamps (CESGA's naming) win over mtimes: the 2025 file is newest though oldest on disk.
    _write(tmp_path / "2024_05_01__10_00_00.json", _tiny([(0, 1)]), mtime=2_000_000_000)
    _write(tmp_path / "2025_01_02__03_04_05.json", _tiny([(1, 2)]), mtime=1_000_000_000)
    _write(tmp_path / "2023_12_31__23_59_59.json", _tiny([(2, 1)]), mtime=2_100_000_000)
    (tmp_path / "notes.txt").write_text("not a calibration")
    cal = newest_calibration(tmp_path)
    assert Path(cal.source).name == "2025_01_02__03_04_05.json"
    assert cal.coupling_map == [(1, 2)]
    assert (cal.taken_at.year, cal.taken_at.month, cal.taken_at.day, cal.taken_at.hour) == (
        2025,
        1,
        2,
        3,
    )


def test_newest_by_mtime_without_stamps(tmp_path):
    _write(tmp_path / "a.json", _tiny([(0, 1)]), mtime=1_700_000_000)
    _write(tmp_path / "b.json", _tiny([(1, 0)]), mtime=1_700_000_300)
    _write(tmp_path / "c.json", _tiny([(2, 1)]), mtime=1_700_000_100)
    cal = newest_calibration(tmp_path)
    assert Path(cal.source).name == "b.json" and cal.coupling_map == [(1, 0)]
    assert cal.taken_at == datetime.fromtimestamp(1_700_000_300, tz=timezone.utc)


def test_newest_skips_a_broken_newer_file(tmp_path, caplog):
    _write(tmp_path / "2024_01_01__00_00_00.json", _tiny([(0, 2)]))
    _write(tmp_path / "2024_06_01__00_00_00.json", "{truncated")
    cal = newest_calibration(tmp_path)
    assert Path(cal.source).name == "2024_01_01__00_00_00.json"
    assert "2024_06_01__00_00_00.json" in caplog.text


def test_newest_errors(tmp_path):
    with pytest.raises(CalibrationError, match="no \\*.json"):
        newest_calibration(tmp_path)
    _write(tmp_path / "x.json", "[]")
    with pytest.raises(CalibrationError, match="no usable calibration.*x.json"):
        newest_calibration(tmp_path)
    with pytest.raises(CalibrationError, match="not a directory"):
        newest_calibration(tmp_path / "missing")


def test_resolve(tmp_path):
    assert resolve_calibration(None).source == "built-in default"
    _write(tmp_path / "one.json", _tiny([(2, 0)]))
    assert resolve_calibration(tmp_path).coupling_map == [(2, 0)]
    assert resolve_calibration(tmp_path / "one.json").coupling_map == [(2, 0)]


# ---------------------------------------------------------------------------------------------
# the Target


def test_target_instructions_and_edges():
    cal = default_calibration()
    target = build_target(cal, dt=5e-10)
    assert target.num_qubits == 32
    assert target.dt == 5e-10
    assert set(target.operation_names) == set(NATIVE_GATES)
    all_qubits = {(q,) for q in range(32)}
    for name in ("sx", "x", "rz", "measure", "delay"):
        assert set(target[name]) == all_qubits, name
    assert set(target["ecr"]) == set(cal.coupling_map)
    assert len(target["ecr"]) == 36
    assert (cal.coupling_map[0][1], cal.coupling_map[0][0]) not in target["ecr"]  # directed

    sx = cal.gate_1q(5, "sx")
    assert target["sx"][(5,)].duration == sx.duration
    assert target["sx"][(5,)].error == pytest.approx(1 - sx.fidelity)
    assert target["x"][(5,)].duration == pytest.approx(2 * sx.duration)  # two SX pulses in QAT
    assert target["x"][(5,)].error == pytest.approx(1 - sx.fidelity**2)
    assert target["rz"][(5,)].duration == 0.0 and target["rz"][(5,)].error == 0.0
    assert target.operation_from_name("rz").params[0].__class__.__name__ == "Parameter"
    q5 = cal.qubits[5]
    assert target["measure"][(5,)].duration == q5.readout_duration
    assert target["measure"][(5,)].error == pytest.approx(1 - q5.readout_fidelity)
    g = cal.gates_2q[3]
    assert target["ecr"][(g.control, g.target)].error == pytest.approx(1 - g.fidelity)
    assert target["ecr"][(g.control, g.target)].duration == g.duration
    props = target.qubit_properties[5]
    assert (props.t1, props.t2, props.frequency) == (q5.t1, q5.t2, q5.frequency)


def test_target_unknown_values_stay_none():
    raw = _tiny()
    del raw["Q1Gates"]["q[2]"]
    raw["Qubits"]["q[1]"]["Fidelity readout"] = None
    raw["Qubits"]["q[1]"]["Readout fidelity (RB)"] = None
    target = build_target(parse_calibration(raw, source="mem"))
    assert target["sx"][(2,)].error is None and target["x"][(2,)].duration is None
    assert target["rz"][(2,)].error == 0.0
    assert target["measure"][(1,)].error is None
    assert set(target["ecr"]) == {(0, 1)}


def _ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


def _check_native(out: QuantumCircuit, target, cal: Calibration) -> None:
    edges = set(cal.coupling_map)  # from the calibration, not the Target under test
    for inst in out.data:
        name = inst.operation.name
        assert name in NATIVE_GATES or name == "barrier", name
        qubits = tuple(out.find_bit(q).index for q in inst.qubits)
        if name != "barrier":
            assert target.instruction_supported(name, qubits), (name, qubits)
        if len(qubits) == 2:
            assert name == "ecr" and qubits in edges, (name, qubits)


def _targets() -> list[tuple[str, Calibration]]:
    found = [("default", default_calibration())]
    if EXAMPLE.is_file():
        found.append(("example", load_calibration(EXAMPLE)))
    return found


@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize("which", [name for name, _ in _targets()])
def test_transpile_only_native_ops_on_coupled_pairs(level, which):
    cal = dict(_targets())[which]
    target = build_target(cal)
    ghz = transpile(_ghz(3), target=target, optimization_level=level, seed_transpiler=7)
    _check_native(ghz, target, cal)
    assert ghz.count_ops().get("ecr", 0) >= 2
    assert ghz.count_ops()["measure"] == 3
    rnd = random_circuit(5, 4, measure=True, seed=11)
    out = transpile(rnd, target=target, optimization_level=level, seed_transpiler=7)
    _check_native(out, target, cal)
    assert out.count_ops()["measure"] == 5


def test_transpile_ghz_big_enough_to_need_routing():
    cal = default_calibration()
    target = build_target(cal)
    out = transpile(_ghz(12), target=target, optimization_level=1, seed_transpiler=3)
    _check_native(out, target, cal)
    assert out.count_ops()["ecr"] >= 11


def test_target_copy_of_calibration_is_independent():
    # Building a Target must not mutate the calibration it reads.
    cal = default_calibration()
    before = copy.deepcopy(cal)
    build_target(cal)
    assert cal == before
