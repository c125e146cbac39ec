#!/usr/bin/env python3
"""Generate qmio-hpc's built-in default calibration (SYNTHETIC data, not a measurement).

The file this writes, ``qmio_hpc/data/calibrations/qmio_default_calibration.json``, is in exactly
the JSON format of Qmio's calibration files (sections ``Qubits``, ``Q1Gates``, ``Q2Gates(RB)``,
the same field names, SI units, number styles and key order), so that the parser, the Qiskit
``Target`` and the emulator can run on a machine that has no access to a real calibration.

**Every value in it is synthetic**: drawn from a seeded pseudo-random generator within plausible
ranges for a 32-qubit superconducting QPU (T1/T2 tens of microseconds, single-qubit RB fidelities
around 0.999, ECR fidelities 0.97-0.99, readout fidelities 0.90-0.97, pulse durations on a 16 ns
grid). None of it was measured on, or copied from, the real Qmio. Do not use it to judge the
hardware.

The coupling map is our own design: four 8-qubit rings ("heavy squares": 4 corner qubits plus
4 edge qubits, ring ``r`` holding qubits ``8r .. 8r+7``) laid out 2 x 2 and joined by one bridge
between each pair of neighbouring rings, 32 ring edges + 4 bridges = 36 directed ECR pairs.
Within a ring the corner qubits (even positions) drive their neighbours, so every ring edge is
corner -> edge-qubit; the bridges join edge-qubits facing each other.

The generator uses only the standard library and a fixed seed, so rerunning it reproduces the
file byte for byte:

    python scripts/make_default_calibration.py            # rewrite the shipped file
    python scripts/make_default_calibration.py -o out.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

SEED = 20240611
NUM_QUBITS = 32
RING_SIZE = 8
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "qmio_hpc"
    / "data"
    / "calibrations"
    / "qmio_default_calibration.json"
)

# Ring positions, going round a square: 0 TL corner, 1 top, 2 TR corner, 3 right,
# 4 BR corner, 5 bottom, 6 BL corner, 7 left. Rings: 0 top-left, 1 top-right,
# 2 bottom-left, 3 bottom-right.
_BRIDGES = [
    # (ring, position) -> (ring, position): control -> target
    ((0, 3), (1, 7)),  # top-left right edge  -> top-right left edge
    ((2, 1), (0, 5)),  # bottom-left top edge -> top-left bottom edge
    ((1, 5), (3, 1)),  # top-right bottom edge -> bottom-right top edge
    ((3, 7), (2, 3)),  # bottom-right left edge -> bottom-left right edge
]


def coupling_map() -> list[tuple[int, int]]:
    """The directed ECR pairs (control, target) of the synthetic device, sorted like Qmio's file."""
    edges: list[tuple[int, int]] = []
    for ring in range(NUM_QUBITS // RING_SIZE):
        base = ring * RING_SIZE
        for pos in range(0, RING_SIZE, 2):  # corners drive both neighbouring edge qubits
            corner = base + pos
            edges.append((corner, base + (pos + 1) % RING_SIZE))
            edges.append((corner, base + (pos - 1) % RING_SIZE))
    for (rc, pc), (rt, pt) in _BRIDGES:
        edges.append((rc * RING_SIZE + pc, rt * RING_SIZE + pt))
    return sorted(edges)


def _sig(x: float, digits: int = 5) -> float:
    """Round to significant digits, the way Qmio's file prints its numbers (e.g. 1.5027e-05)."""
    return float(f"{x:.{digits}g}")


def _grid(x: float, step: float = 16e-9) -> float:
    """Snap a duration to the 16 ns grid the example file's pulse durations sit on."""
    return _sig(round(x / step) * step)


def generate(seed: int = SEED) -> dict:
    """Build the calibration dictionary (synthetic values, fixed seed)."""
    rng = random.Random(seed)
    qubits: dict[str, dict] = {}
    q1: dict[str, dict] = {}
    edges = coupling_map()
    for q in range(NUM_QUBITS):
        t1 = min(max(rng.lognormvariate(math.log(60e-6), 0.35), 18e-6), 160e-6)
        t2 = min(t1 * rng.uniform(0.35, 1.4), 1.9 * t1)
        is_corner = (q % RING_SIZE) % 2 == 0  # two frequency groups, as for fixed-frequency CR
        drive = rng.uniform(4.36e9, 4.48e9) if is_corner else rng.uniform(4.16e9, 4.30e9)
        readout_fid = round(rng.uniform(0.90, 0.97), 4)
        qubits[f"q[{q}]"] = {
            "T1 (s)": _sig(t1),
            "T2 (s)": _sig(t2),
            "Drive Frequency (Hz)": _sig(drive),
            "Measuring frequency (Hz)": _sig(rng.uniform(9.62e9, 10.29e9)),
            "Readout duration (s)": _sig(
                rng.choice([4.0e-6, 6.0e-6, 8.0e-6]) * rng.uniform(0.9, 1.25)
            ),
            "Readout fidelity (RB)": readout_fid,
            "Fidelity readout": readout_fid,
            "T1 error (s)": _sig(t1 * rng.uniform(0.04, 0.15)),
            "T2 error (s)": _sig(t2 * rng.uniform(0.05, 0.30)),
        }
        sx_error = min(max(rng.lognormvariate(math.log(8e-4), 0.5), 1.5e-4), 2.5e-3)
        q1[f"q[{q}]"] = {
            "SX": {
                "Gate duration (s)": rng.choices([3.2e-08, 4.8e-08, 6.4e-08], weights=[6, 3, 1])[0],
                "Fidelity(RB)": round(1.0 - sx_error, 5),
                "Fidelity error": _sig(sx_error * rng.uniform(0.1, 0.4)),
            },
            "Rz": {"Gate duration (s)": 0, "Fidelity(RB)": 1.0},
        }
    q2: dict[str, dict] = {}
    for control, target in edges:
        fidelity = round(rng.uniform(0.97, 0.99), 5)
        q2[f"{control}-{target}"] = {
            "ECR": {
                "Control": control,
                "Target": target,
                "Duration (s)": _grid(rng.uniform(320e-9, 640e-9)),
                "Fidelity(RB)": fidelity,
                "Fidelity error": _sig((1.0 - fidelity) * rng.uniform(0.1, 0.5)),
            }
        }
    return {"Qubits": qubits, "Q1Gates": q1, "Q2Gates(RB)": q2}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # indent=3 matches the layout of Qmio's own files.
    args.output.write_text(json.dumps(generate(args.seed), indent=3) + "\n", encoding="utf-8")
    pairs = len(coupling_map())
    print(f"wrote {args.output} ({NUM_QUBITS} qubits, {pairs} ECR pairs, seed {args.seed})")


if __name__ == "__main__":
    main()
