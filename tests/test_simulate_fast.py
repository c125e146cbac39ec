"""The emulator's statevector path against oracles nobody here wrote.

Exact: over a corpus of random OpenQASM 2 programs (qelib1 gates, parametrised ones, custom gate
definitions, several registers, partial measurement, measurements into out-of-order clbits, a
qubit measured into several clbits, a clbit measured twice), the distribution the emulator
samples from equals Qiskit's ``Statevector`` probabilities marginalised onto each program's
registers, to 1e-9. The marginalising is done here from the program's measure instructions, not
with the emulator's bookkeeping. Sampled: the counts of whole requests agree with those exact
distributions, and the fast path and the BasicSimulator path it replaced answer alike.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from qmio_hpc.emulator import simulate
from qmio_hpc.emulator.handler import Handler
from qmio_hpc.emulator.simulate import (
    exact_program, execute, load_circuit, memory_rows, sample_memory, shape_results)
from qmio_hpc.emulator.statevector import Unsupported, clbit_values, distribution
from qmio_hpc.protocol import ExecutionOptions, build_compiler_config

#: qelib1 gates as Qiskit's legacy loader knows them: name -> (parameters, qubits).
GATES: dict[str, tuple[int, int]] = {
    "u3": (3, 1), "u2": (2, 1), "u1": (1, 1), "u": (3, 1), "p": (1, 1), "id": (0, 1),
    "x": (0, 1), "y": (0, 1), "z": (0, 1), "h": (0, 1), "s": (0, 1), "sdg": (0, 1),
    "t": (0, 1), "tdg": (0, 1), "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "sx": (0, 1),
    "sxdg": (0, 1), "cx": (0, 2), "cy": (0, 2), "cz": (0, 2), "ch": (0, 2), "swap": (0, 2),
    "crx": (1, 2), "cry": (1, 2), "crz": (1, 2), "cu1": (1, 2), "cp": (1, 2), "cu3": (3, 2),
    "csx": (0, 2), "cu": (4, 2), "rxx": (1, 2), "rzz": (1, 2), "ccx": (0, 3),
    "cswap": (0, 3), "rccx": (0, 3), "rc3x": (0, 4), "c3x": (0, 4), "c3sqrtx": (0, 4),
    "c4x": (0, 5),
    "mygate": (1, 2),  # defined in the program: no matrix of Qiskit's own
}
CUSTOM = "gate mygate(theta) a, b { h a; cx a, b; rz(theta) b; sx a; }\n"
HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'


def random_program(rng: random.Random) -> str:
    """A program the QPU would accept: gates, and measurements after which a qubit sees no
    gate (but others may)."""
    width = rng.randint(1, 6)
    spare = rng.choice([0, 0, 2, 26])  # unused declared qubits, as Qmio programs have
    regs = [(f"r{i}", rng.randint(1, 4)) for i in range(rng.randint(1, 3))]
    lines = [HEADER, CUSTOM, f"qreg q[{width + spare}];\n"]
    lines += [f"creg {name}[{size}];\n" for name, size in regs]
    live = rng.sample(range(width + spare), width)  # the declared qubits in use, not measured
    clbits = [(name, i) for name, size in regs for i in range(size)]

    def measure(qubit: int) -> None:  # into one clbit or two, anywhere in any register
        for name, i in rng.sample(clbits, min(len(clbits), rng.choice([1, 1, 1, 2]))):
            lines.append(f"measure q[{qubit}] -> {name}[{i}];\n")

    for _ in range(rng.randint(0, 14)):
        if len(live) > 1 and rng.random() < 0.08:  # measured now; gates go on on the others
            measure(live.pop(rng.randrange(len(live))))
            continue
        name, (params, arity) = rng.choice([(n, g) for n, g in GATES.items() if g[1] <= len(live)])
        args = ",".join(f"q[{q}]" for q in rng.sample(live, arity))
        angles = ",".join(f"{rng.uniform(-2 * math.pi, 2 * math.pi):.6f}" for _ in range(params))
        lines.append(f"{name}({angles}) {args};\n" if params else f"{name} {args};\n")
        if rng.random() < 0.1:
            lines.append("barrier q;\n")
    for q in rng.sample(live, rng.randint(0, len(live))):  # partial, out-of-order measurement
        measure(q)
    return "".join(lines)


def oracle(program: str) -> dict[tuple[str, ...], float]:
    """Joint probability of each tuple of register values (wire order: bit 0 leftmost), from
    Qiskit's Statevector of the program without its measurements."""
    circuit = QuantumCircuit.from_qasm_str(program)
    used = sorted({circuit.find_bit(q).index for inst in circuit.data
                   if inst.operation.name != "barrier" for q in inst.qubits})
    index = {q: i for i, q in enumerate(used)}  # only these: not 2**32 amplitudes for 32 qubits
    source: dict[int, int] = {}  # clbit -> qubit, the last measurement into it wins
    unitary = QuantumCircuit(len(used))
    for inst in circuit.data:
        if inst.operation.name == "barrier":
            continue
        qubits = [index[circuit.find_bit(q).index] for q in inst.qubits]
        if inst.operation.name == "measure":
            source[circuit.find_bit(inst.clbits[0]).index] = qubits[0]
        else:
            unitary.append(inst.operation, qubits)
    layout = [[circuit.find_bit(bit).index for bit in creg] for creg in circuit.cregs]
    out: dict[tuple[str, ...], float] = defaultdict(float)
    probabilities = Statevector(unitary).probabilities_dict() if used else {"": 1.0}
    for bits, p in probabilities.items():
        value = bits[::-1]  # Qiskit prints qubit 0 rightmost
        key = tuple("".join(value[source[c]] if c in source else "0" for c in reg)
                    for reg in layout)
        out[key] += p
    return dict(out)


def ours(program: str) -> dict[tuple[str, ...], float]:
    """The same from the distribution the emulator samples, through its own bit bookkeeping."""
    exact = exact_program(load_circuit(program))
    outcomes = np.arange(exact.probabilities.size)
    columns = [clbit_values(outcomes, positions) for _, positions in exact.registers]
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for i, p in enumerate(exact.probabilities):
        out[tuple("".join(map(str, rows[i])) for rows in columns)] += float(p)
    return dict(out)


CORPUS = [random_program(random.Random(seed)) for seed in range(300)]


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_exact_distribution_matches_statevector(index):
    program = CORPUS[index]
    expected, got = oracle(program), ours(program)
    for key in expected.keys() | got.keys():
        assert abs(expected.get(key, 0.0) - got.get(key, 0.0)) < 1e-9, (key, program)


def marginals(joint: dict[tuple[str, ...], float], register: int) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for key, p in joint.items():
        out[key[register]] += p
    return out


@pytest.mark.parametrize("index", range(0, 300, 15))
def test_sampled_counts_follow_the_exact_distribution(index):
    program, shots = CORPUS[index], 20_000
    reply = execute(program, ExecutionOptions(shots=shots), seed=index)
    expected = oracle(program)
    names = [creg.name for creg in load_circuit(program).cregs]
    assert list(reply["results"]) == names
    for r, name in enumerate(names):
        counts = reply["results"][name]
        assert sum(counts.values()) == shots
        want = marginals(expected, r)
        for bits in want.keys() | counts.keys():
            p = want.get(bits, 0.0)
            sigma = math.sqrt(max(p * (1 - p), 1e-12) / shots)
            assert abs(counts.get(bits, 0) / shots - p) < 6 * sigma + 1e-9, (name, bits, program)


def basic_simulator_reply(program: str, res_format: str, shots: int, seed: int) -> dict:
    """The reply by the path the emulator had before: BasicSimulator memory strings."""
    circuit = load_circuit(program)
    rows, counts = memory_rows(circuit, sample_memory(circuit, shots, seed))
    return shape_results(rows, counts, res_format, np.random.default_rng(seed))


DETERMINISTIC = [  # one outcome each: both paths must give exactly the same reply
    HEADER + "qreg q[4];\ncreg c[3];\ncreg d[1];\nx q[0];\nmeasure q[0] -> c[0];\n"
    "measure q[1] -> c[1];\nmeasure q[2] -> c[2];\nx q[3];\nmeasure q[3] -> d[0];\n",
    HEADER + "qreg q[32];\ncreg a[2];\ncreg b[3];\nx q[7];\nx q[30];\nmeasure q[30] -> b[2];\n"
    "measure q[7] -> a[1];\nmeasure q[7] -> b[0];\nmeasure q[3] -> a[0];\n",
    HEADER + "qreg q[3];\ncreg c[4];\nx q[1];\nmeasure q[1] -> c[3];\nx q[2];\n"
    "measure q[2] -> c[0];\nmeasure q[0] -> c[0];\n",  # c[0] measured twice: the last wins
    HEADER + "qreg q[2];\ncreg e[0];\ncreg c[2];\nx q[1];\nmeasure q[1] -> c[0];\n",
    HEADER + "gate flip a, b { x a; cx a, b; }\nqreg q[2];\ncreg c[2];\nx q[0];\n"
    "flip q[1], q[0];\nu0(3) q[1];\nmeasure q[0] -> c[1];\nmeasure q[1] -> c[0];\n",
]


@pytest.mark.parametrize("res_format", ["binary_count", "binary", "squash_binary_result_arrays"])
@pytest.mark.parametrize("index", range(len(DETERMINISTIC)))
def test_fast_path_answers_as_the_basic_simulator_did(index, res_format):
    program = DETERMINISTIC[index]
    exact_program(load_circuit(program))  # the fast path takes it
    fast = execute(program, ExecutionOptions(shots=40, res_format=res_format), seed=1)["results"]
    assert fast == basic_simulator_reply(program, res_format, 40, 1)


@pytest.mark.parametrize("index", range(len(DETERMINISTIC)))
def test_raw_readouts_have_the_basic_simulators_signs(index):
    program = DETERMINISTIC[index]
    fast = execute(program, ExecutionOptions(shots=5, res_format="raw"), seed=2)["results"]
    old = basic_simulator_reply(program, "raw", 5, 2)
    assert fast.keys() == old.keys()
    for name in fast:
        assert np.array_equal(np.sign(fast[name]), np.sign(old[name])), name


def test_statistics_agree_with_the_basic_simulator_path():
    """A few random programs: per-register counts of both paths are close (two samples)."""
    shots = 8000
    for program in CORPUS[1:200:40]:
        fast = execute(program, ExecutionOptions(shots=shots), seed=3)["results"]
        old = basic_simulator_reply(program, "binary_count", shots, 3)
        for name in old:
            for bits in fast[name].keys() | old[name].keys():
                a, b = fast[name].get(bits, 0) / shots, old[name].get(bits, 0) / shots
                p = (a + b) / 2
                assert abs(a - b) < 6 * math.sqrt(max(2 * p * (1 - p), 1e-12) / shots) + 1e-9


def test_raw_shots_line_up_across_registers():
    """Shot j of every register is the same shot: a Bell pair split over two registers reads
    the same in both, shot by shot (a client joins them into per-shot memory)."""
    program = HEADER + "qreg q[2];\ncreg c[1];\ncreg d[1];\nh q[0];\ncx q[0], q[1];\n" \
        "measure q[0] -> c[0];\nmeasure q[1] -> d[0];\n"
    reply = execute(program, ExecutionOptions(shots=500, res_format="raw"), seed=4)["results"]
    c, d = np.sign(reply["c"][0]), np.sign(reply["d"][0])
    assert len(c) == 500 and np.array_equal(c, d) and 150 < (c < 0).sum() < 350
    one = execute(program, ExecutionOptions(shots=1, res_format="raw"), seed=4)["results"]
    assert all(isinstance(v, float) for v in one["c"] + one["d"])  # one shot collapses


def test_what_the_statevector_cannot_run_goes_to_the_basic_simulator():
    program = HEADER + "qreg q[2];\ncreg c[2];\nx q[0];\nreset q[0];\nx q[1];\n" \
        "measure q[0] -> c[0];\nmeasure q[1] -> c[1];\n"
    with pytest.raises(Unsupported):
        distribution(load_circuit(program), 24)
    assert execute(program, ExecutionOptions(shots=30), seed=5)["results"] == {"c": {"01": 30}}


@pytest.mark.parametrize("body,words", [
    ("opaque magic a;\nqreg q[1];\ncreg c[1];\nmagic q[0];\nmeasure q[0] -> c[0];\n", "magic"),
    ("qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nif (c==1) x q[1];\n"
     "measure q[1] -> c[1];\n", "if_else"),
])
def test_what_neither_simulator_runs_is_refused_as_before(body, words):
    """An opaque gate, a conditional: the BasicSimulator path refuses them, as it always did."""
    program = HEADER + body
    with pytest.raises(Unsupported):
        distribution(load_circuit(program), 24)
    reply = Handler()(("program", program, build_compiler_config(ExecutionOptions(shots=3))))
    assert set(reply) == {"Exception"} and words in reply["Exception"]


def test_errors_keep_their_words():
    many = HEADER + "qreg q[26];\ncreg c[1];\n" + "".join(f"h q[{i}];\n" for i in range(26))
    with pytest.raises(ValueError, match="uses 26 qubits; the emulator simulates at most 24"):
        execute(many + "measure q[0] -> c[0];\n", ExecutionOptions(shots=1))
    with pytest.raises(ValueError, match="measures nothing"):
        execute(HEADER + "qreg q[1];\nh q[0];\n", ExecutionOptions(shots=1))


def test_openqasm3_takes_the_fast_path():
    program = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nbit[3] c;\nx q[1];\n' \
        "c = measure q;\n"
    exact_program(load_circuit(program))
    assert execute(program, ExecutionOptions(shots=7), seed=1)["results"] == {"c": {"010": 7}}


def test_a_seeded_emulator_answers_the_same_sequence_again():
    config = build_compiler_config(ExecutionOptions(shots=300, res_format="raw"))
    first, again = Handler(seed=11), Handler(seed=11)
    for program in CORPUS[:6]:
        assert first(("program", program, config)) == again(("program", program, config))
    assert execute(CORPUS[3], ExecutionOptions(shots=99), seed=5) == \
        execute(CORPUS[3], ExecutionOptions(shots=99), seed=5)


def test_recent_programs_are_remembered_per_device_size():
    """The cache of parsed programs is keyed by the text and the device's qubit count: a
    program too wide for a smaller device is still refused there."""
    program = HEADER + "qreg q[40];\ncreg c[1];\nx q[39];\nmeasure q[39] -> c[0];\n"
    assert execute(program, ExecutionOptions(shots=3), num_qubits=40)["results"] == \
        {"c": {"1": 3}}
    assert simulate._RECENT.get(program, 40) is not None
    with pytest.raises(ValueError, match="Unable to resolve hardware"):
        execute(program, ExecutionOptions(shots=3), num_qubits=32)
    huge = program + "// " + "x" * simulate._RecentPrograms.MAX_PROGRAM_CHARS + "\n"
    execute(huge, ExecutionOptions(shots=3), num_qubits=40)
    assert simulate._RECENT.get(huge, 40) is None
