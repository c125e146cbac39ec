"""qmio_hpc.qasm2_check against its oracle, Qiskit's own OpenQASM 2 parser.

The checker exists so that submitting needs no Qiskit; it is only right if it says what Qiskit's
``qasm2.loads(program, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)`` says. So every
program here is judged by both: hand-written valid programs (every construct, every gate), hand-
written invalid ones (one mistake each), and seeded single-token mutations of the valid ones.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from importlib.resources import files

import pytest

from qmio_hpc import qasm2_check
from qmio_hpc.qasm2_check import _BUILTIN, _CUSTOM, _DECLARED, _QELIB1, QASM2Invalid, check_qasm2

qasm2 = pytest.importorskip("qiskit.qasm2")

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'

VALID = [
    # the header, comments and whitespace
    HEADER + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n",
    "// a comment first\n\n  \t// another\r\nOPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\n",
    "OPENQASM 2.0; // trailing comment\nqreg q[1]; U(0,0,0) q[0]; // the end",
    "OPENQASM 2;\nqreg q[1];\nU(1,2,3) q[0];\n",
    "OPENQASM 02.0;\nqreg q[1];\n",
    "OPENQASM 2.00;\nqreg q[1];\n",
    "qreg q[1];\nU(pi, 0, pi) q[0];\n",  # no header: Qiskit's default mode allows it
    "",
    "// only a comment",
    "OPENQASM 2.0;\n;;\nqreg q[1];;\n",
    "OPENQASM 2.0; OPENQASM 2.0; qreg q[1];",
    "; OPENQASM 2.0; qreg q[1];",
    "barrier; OPENQASM 2.0; qreg q[1];",
    "gate sx a { sx a; }\nOPENQASM 2.0;\nqreg q[1];\nsx q[0];\n",
    "include 'qelib1.inc';\nqreg q[1];\nx q[0];\n",
    # registers
    "OPENQASM 2.0;\nqreg q[5];\nqreg r[3];\ncreg c[5];\ncreg d[1];\nqreg e[0];\ncreg f[0];\n",
    "qreg abc_DEF9[2];\ncreg b__[2];\nmeasure abc_DEF9 -> b__;\n",
    "qreg x[1];\nqreg h[1];\nCX x[0], h[0];\n",  # qelib1's names are free until it is included
    # every qelib1.inc gate (the 23 Qiskit defines for the include)
    HEADER + "qreg q[3];\nu3(0.1,0.2,0.3) q[0];\nu2(0.1,0.2) q[1];\nu1(0.5) q[2];\n"
    "cx q[0],q[1];\nid q[2];\nx q[0];\ny q[1];\nz q[2];\nh q[0];\ns q[1];\nsdg q[2];\n",
    HEADER + "qreg q[3];\nt q[0];\ntdg q[1];\nrx(pi/2) q[0];\nry(-pi/4) q[1];\nrz(1e-3) q[2];\n"
    "cz q[0],q[1];\ncy q[1],q[2];\nch q[2],q[0];\nccx q[0],q[1],q[2];\n",
    HEADER + "qreg q[2];\ncrz(0.3) q[0],q[1];\ncu1(0.4) q[1],q[0];\ncu3(1,2,3) q[0],q[1];\n",
    # every builtin legacy gate (defined even without the include)
    "qreg q[5];\nu0(3) q[0];\nu(1,2,3) q[1];\np(0.5) q[2];\nsx q[3];\nsxdg q[4];\n"
    "swap q[0],q[1];\ncswap q[0],q[1],q[2];\ncrx(0.1) q[0],q[1];\ncry(0.2) q[1],q[2];\n",
    "qreg q[5];\ncp(0.1) q[0],q[1];\ncsx q[1],q[2];\ncu(1,2,3,4) q[2],q[3];\nrxx(0.5) q[0],q[4];\n"
    "rzz(0.5) q[3],q[4];\nrccx q[0],q[1],q[2];\nrc3x q[0],q[1],q[2],q[3];\n",
    "qreg q[5];\nc3x q[0],q[1],q[2],q[3];\nc3sqrtx q[1],q[2],q[3],q[4];\n"
    "c4x q[0],q[1],q[2],q[3],q[4];\n",
    HEADER + "qreg q[5];\nu0(-2) q[0];\nu0(1e300) q[1];\nu0(2.0) q[2];\nswap q[3],q[4];\n",
    # delay, once declared
    "opaque delay(t) q;\nqreg q[2];\ndelay(100) q[0];\ndelay(0) q;\n",
    "gate delay(t) a { U(0,0,0) a; }\nqreg q[1];\ndelay(9223372036854774784) q[0];\n",
    # gate and opaque definitions
    "gate g(theta, phi) a, b {\n  U(theta, phi, -theta) a;\n  CX a, b;\n  barrier a, b;\n}\n"
    "qreg q[2];\ng(0.1, 0.2) q[0], q[1];\n",
    HEADER + "gate bell a, b { h a; cx a, b; }\ngate two a,b { bell a,b; bell b,a; barrier; }\n"
    "qreg q[4];\nbell q[0], q[1];\ntwo q[2], q[3];\n",
    "gate empty a { }\nopaque black(x, y) a, b, c;\nqreg q[3];\nempty q[0];\n"
    "black(1, 2) q[0], q[1], q[2];\n",
    "opaque o(a,a) b,b;\nqreg q[2];\no(1,2) q[0],q[1];\n",  # Qiskit checks no names in opaque
    "gate g(U) CX { U(U,0,0) CX; }\nqreg q[1];\ng(1) q[0];\n",
    "gate g() a, { U(0,0,0) a, ; }\nqreg q[1];\ng() q[0];\n",
    HEADER + "gate x2 x { x x; }\nqreg q[1];\nx2 q[0];\n",
    "gate h a { U(pi/2,0,pi) a; }\nqreg q[1];\nh q[0];\n",
    "gate u(a,b,c) q { U(a,b,c) q; }\nqreg q[1];\nu(1,2,3) q[0];\n",
    "gate g(a) b { U(a/(0*a), ln(a-a), sqrt(-a)) b; }\nqreg q[1];\ng(1) q[0];\n",
    "gate g(a) b { u0(a) b; }\nqreg q[1];\ng(0.5) q[0];\n",
    # Qiskit: a gate with parameters may be applied without parentheses where Python does not
    # construct a custom gate from them (gate bodies, the program's own gates, empty registers)
    HEADER + "gate g(a) b { U b; rx b; }\ngate k(a) b { }\nqreg q[1];\nqreg e[0];\nk q[0];\n"
    "rx e;\n",
    # parameter expressions
    "qreg q[1];\nU(1.5e3, .5, 5.) q[0];\nU(2E-2, 1e+2, 0.0) q[0];\nU(00.5, 1.e5, 7) q[0];\n",
    "qreg q[1];\nU(-pi, +pi, --pi) q[0];\nU(2^3^2, -2^2, 2^-1) q[0];\n"
    "U((1+2)*3/4-5, 1/3, 0) q[0];\n",
    "qreg q[1];\nU(sin(1), cos(2), tan(3)) q[0];\nU(exp(1), ln(2), sqrt(4)) q[0];\n"
    "U(sin(0.5,), 1/sin(pi), 0) q[0];\n",
    "qreg q[1];\nU(1e400, 1e400-1e400, exp(1000)) q[0];\nU(0^-1, (-8)^(1/3), sin(1e400)) q[0];\n",
    "qreg q[1];\nU(1,2,3,) q[0];\nU(((((1))))*(2), 3, 4) q[0];\n",
    # broadcasting, measure, reset, barrier
    HEADER + "qreg q[3];\nqreg r[3];\ncreg c[3];\nh q;\ncx q, r;\ncx q[0], r;\n"
    "ccx q[0], q[1], r;\n",
    "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[1];\nmeasure q -> c;\nreset q[1];\nreset q;\n",
    "qreg q[2];\nqreg e[0];\ncreg f[0];\nbarrier;\nbarrier q[0], q[0], q;\nbarrier e;\n"
    "measure e -> f;\nreset e;\nCX e, e;\n",
    "qreg q[0];\nqreg r[2];\nCX q, r;\n",  # Qiskit: an empty register first escapes broadcasting
    # conditionals
    "qreg q[2];\ncreg c[2];\nif (c == 1) U(0,0,0) q[0];\nif(c==0)CX q[0],q[1];\n"
    "if (c == 3) measure q[1] -> c[0];\nif (c == 2) reset q;\n",
    "qreg q[1];\ncreg c[1];\nif (c == 500000000000000000000000000000) U(0,0,0) q[0];\n",
    HEADER + "qreg q[3];\ncreg c[3];\nif (c == 7) h q;\nif (c == 1) measure q -> c;\n",
    # Qiskit builds a gate's definition only for an 'if' (below), so these bodies never fail
    "gate g(t) a { U(1/t, ln(t), 0) a; u0(t) a; }\nqreg q[1];\ng(0) q[0];\n",
    "gate g(t) a { U(t, sqrt(t), t^0.5) a; }\ngate k(s) a { g(s*2) a; }\nqreg q[1];\ncreg c[1];\n"
    "if (c == 1) k(0.5) q[0];\n",
]

INVALID = [
    # header
    "OPENQASM 3.0;\nqreg q[1];\n",
    "OPENQASM 2.1;\nqreg q[1];\n",
    "OPENQASM 2.0\nqreg q[1];\n",
    "OPENQASM;\nqreg q[1];\n",
    "OPENQASM 2.;\nqreg q[1];\n",
    "OPENQASM 2.0e0;\nqreg q[1];\n",
    "OPENQASM 02;\nqreg q[1];\n",
    "openqasm 2.0;\nqreg q[1];\n",
    "qreg q[1];\nOPENQASM 2.0;\n",
    "OPENQASM 99999999999999999999999.0;\n",
    # include
    'OPENQASM 2.0;\ninclude "qelib1.inc"\nqreg q[1];\n',
    'OPENQASM 2.0;\ninclude "qelib1.inc";\ninclude "qelib1.inc";\n',
    'OPENQASM 2.0;\ninclude "no_such_file.inc";\n',
    "OPENQASM 2.0;\ninclude qelib1.inc;\n",
    'OPENQASM 2.0;\ninclude "qelib1.inc;\n',
    'gate h a { U(0,0,0) a; }\ninclude "qelib1.inc";\n',
    'qreg x[1];\ninclude "qelib1.inc";\n',
    # lexing
    HEADER + "qreg Q[1];\n",
    HEADER + "qreg _q[1];\n",
    HEADER + "qreg q[1];\nH q[0];\n",
    HEADER + "qreg q[01];\n",
    HEADER + "qreg q[1];\nrx(2pi) q[0];\n",
    HEADER + "qreg q[1];\nrx(1.5e) q[0];\n",
    HEADER + "qreg q[1];\nrx(.) q[0];\n",
    HEADER + "qreg q[1];\ncreg c[1];\nif (c = 1) x q[0];\n",
    HEADER + "qreg q[1];\n/* block comments do not exist */\n",
    HEADER + "qreg q[1]; # no hash comments\n",
    HEADER + "qreg q[1];\nx q[0]; \u00e9\n",
    HEADER + "qreg q[1];\nx q[0];\x0c\n",
    # registers
    HEADER + "qreg q[1];\nqreg q[2];\n",
    HEADER + "qreg q[1];\ncreg q[1];\n",
    HEADER + "qreg h[1];\n",
    "qreg sx[1];\n",
    HEADER + "qreg q[-1];\n",
    HEADER + "qreg q[1.0];\n",
    HEADER + "qreg q;\n",
    HEADER + "qreg q[99999999999999999999999];\n",
    HEADER + "qreg q[2]\nh q[0];\n",
    # gate applications
    HEADER + "qreg q[1];\nfoo q[0];\n",
    "qreg q[1];\nh q[0];\n",
    "qreg q[1];\ndelay(1) q[0];\n",
    HEADER + "qreg q[2];\ncx q[0];\n",
    HEADER + "qreg q[3];\ncx q[0], q[1], q[2];\n",
    HEADER + "qreg q[1];\nrx q[0];\n",  # Qiskit: no parentheses, then Python misses the angle
    HEADER + "qreg q[1];\nrx(1, 2) q[0];\n",
    HEADER + "qreg q[1];\nh(0.5) q[0];\n",
    HEADER + "qreg q[1];\nu3(1, 2) q[0];\n",
    HEADER + "qreg q[2];\nh q[2];\n",
    HEADER + "qreg q[2];\nh r[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nh c[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nc q[0];\n",
    HEADER + "qreg q[2];\ncx q[1], q[1];\n",
    HEADER + "qreg q[3];\nccx q[0], q[1], q[0];\n",
    HEADER + "qreg q[2];\nqreg r[3];\ncx q, r;\n",
    HEADER + "qreg q[2];\ncx q, q[1];\n",
    HEADER + "qreg q[2];\ncx q[0] q[1];\n",
    HEADER + "qreg q[2];\ncx q[0], q[1]\n",
    HEADER + "qreg q[1];\nu0(0.5) q[0];\n",
    "opaque delay(t) q;\nqreg q[1];\ndelay(-1) q[0];\n",
    "opaque delay(t) q;\nqreg q[1];\ndelay(1.5) q[0];\n",
    "qreg r[2];\nqreg q[0];\nCX q, r;\n",
    # expressions
    HEADER + "qreg q[1];\nrx(foo) q[0];\n",
    HEADER + "qreg q[1];\nrx(asin(0.5)) q[0];\n",
    HEADER + "qreg q[1];\nrx(1/0) q[0];\n",
    HEADER + "qreg q[1];\nrx(1/(pi-pi)) q[0];\n",
    HEADER + "qreg q[1];\nrx(ln(0)) q[0];\n",
    HEADER + "qreg q[1];\nrx(sqrt(-1)) q[0];\n",
    HEADER + "qreg q[1];\nrx(ln(1e400-1e400)) q[0];\n",
    HEADER + "qreg q[1];\nrx((1+2) q[0];\n",
    HEADER + "qreg q[1];\nrx(1+) q[0];\n",
    HEADER + "qreg q[1];\nrx(*2) q[0];\n",
    HEADER + "qreg q[1];\nrx() q[0];\n",
    HEADER + "qreg q[1];\nrx(sin()) q[0];\n",
    HEADER + "qreg q[1];\nrx(sin 1) q[0];\n",
    HEADER + "qreg q[1];\nrx(sin(1, 2)) q[0];\n",
    HEADER + "qreg q[1];\nrx(1 2) q[0];\n",
    HEADER + "qreg q[1];\nrx(,1) q[0];\n",
    # gate and opaque definitions
    HEADER + "gate g a { h a[0]; }\n",
    HEADER + "gate g a { g a; }\n",
    HEADER + "gate g a { h b; }\n",
    HEADER + "gate g(t) a { rx(s) a; }\n",
    HEADER + "gate g(t) a { rx(a) a; }\n",
    HEADER + "gate g(t) a { h t; }\n",
    HEADER + "gate g a, a { cx a, a; }\n",
    HEADER + "gate g a, b { cx a, a; }\n",
    HEADER + "gate g(t, t) a { }\n",
    HEADER + "gate g { }\n",
    HEADER + "gate g a { measure a -> c; }\n",
    HEADER + "gate g a { if (c==1) h a; }\n",
    HEADER + "gate g a { h a;\n",
    HEADER + "gate g a { }\ngate g a { }\n",
    HEADER + "gate h a { }\n",
    HEADER + "gate U a { }\n",
    "gate sx a, b { }\n",
    "opaque delay q;\n",
    "gate rx a { }\n",
    "gate sx a { }\ngate sx a { }\n",
    HEADER + "opaque g;\n",
    HEADER + "opaque g(t) a\n",
    HEADER + "gate g(pi) a { }\n",
    HEADER + "qreg q[1];\ngate q a { }\n",
    # measure, reset, barrier, if
    HEADER + "qreg q[2];\ncreg c[1];\nmeasure q -> c;\n",
    HEADER + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c;\n",
    HEADER + "qreg q[2];\ncreg c[2];\nmeasure q -> c[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nmeasure c -> q;\n",
    HEADER + "qreg q[2];\ncreg c[2];\nmeasure q[0] c[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[2];\n",
    HEADER + "qreg q[2];\nreset;\n",
    HEADER + "qreg q[2];\nreset q[5];\n",
    HEADER + "qreg q[2];\nbarrier q[3];\n",
    HEADER + "qreg q[2];\nbarrier 1;\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif (q == 1) x q[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif (d == 1) x q[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif (c == 1.0) x q[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif (c == 1) barrier q;\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif (c == 1) if (c == 1) x q[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif c == 1 x q[0];\n",
    HEADER + "qreg q[2];\ncreg c[2];\nif (c == -1) x q[0];\n",
    HEADER + "qreg q[0];\nqreg r[2];\ncreg c[1];\nif (c == 0) CX q, r;\n",
    # Qiskit: an opaque custom instruction shifts the gates defined after it in Python
    "opaque delay(t) q;\ngate g a, b { CX a, b; }\nqreg q[2];\ncreg c[1];\n"
    "if (c == 1) g q[0], q[1];\n",
    # an 'if' makes Qiskit build the definitions of the program's gates, with these values
    "gate g(t) a { U(1/t, 0, 0) a; }\nqreg q[1];\ncreg c[1];\nif (c == 1) g(0) q[0];\n",
    "gate g(t) a { U((-t)^0.5, 0, 0) a; }\nqreg q[1];\ncreg c[1];\nif (c == 1) g(1) q[0];\n",
    "gate k a { u0(0.5) a; }\ngate g a { k a; }\nqreg q[1];\ncreg c[1];\nif (c == 1) g q[0];\n",
    HEADER + "gate g a { u3 a; }\nqreg q[1];\ncreg c[1];\nif (c == 1) g q[0];\n",
    "gate g(t) a { U(t, 0, 0) a; }\ngate k a { g a; }\nqreg q[1];\ncreg c[1];\n"
    "if (c == 1) k q[0];\n",
    # statements that do not exist
    HEADER + "qreg q[2];\nq[0];\n",
    HEADER + "qreg q[2];\n{ h q[0]; }\n",
    HEADER + "qreg q[2];\nh q[0]; }\n",
]


def qiskit_verdict(program: str) -> str | None:
    """None if Qiskit's parser accepts ``program``, else its error in one line. A Rust panic in
    Qiskit's parser (pyo3's PanicException is a BaseException) counts as a refusal."""
    try:
        qasm2.loads(program, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - any failure is Qiskit saying no
        return f"{type(error).__name__}: {' '.join(str(error).split())}"
    return None


def our_verdict(program: str) -> str | None:
    try:
        check_qasm2(program)
    except QASM2Invalid as error:
        return str(error)
    return None


def disagreement(program: str) -> str | None:
    """None if both parsers judge ``program`` alike, else a report naming both verdicts."""
    theirs, ours = qiskit_verdict(program), our_verdict(program)
    if (theirs is None) == (ours is None):
        return None
    return (f"\n--- program ---\n{program}\n--- Qiskit: {theirs or 'valid'}"
            f"\n--- qasm2_check: {ours or 'valid'}\n")


@pytest.mark.parametrize("program", VALID)
def test_valid_programs_are_valid_for_both(program):
    assert qiskit_verdict(program) is None, f"the corpus is wrong:\n{program}"
    assert disagreement(program) is None, disagreement(program)


@pytest.mark.parametrize("program", INVALID)
def test_invalid_programs_are_invalid_for_both(program):
    assert qiskit_verdict(program) is not None, f"the corpus is wrong:\n{program}"
    assert disagreement(program) is None, disagreement(program)


def test_corpus_is_large_and_covers_every_gate():
    assert len(VALID) >= 40 and len(INVALID) >= 60
    assert len(set(INVALID)) == len(INVALID) and len(set(VALID)) == len(VALID)
    applied = set(re.findall(r"^\s*([a-z0-9]+)\b[^;]*;", "\n".join(VALID), re.MULTILINE))
    assert set(_CUSTOM) <= applied


# -- mutations

_PIECE = re.compile(r"""[ \t\r\n]+ | //[^\n]* | [0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?
                        | [A-Za-z_][A-Za-z0-9_]* | "[^"\n]*" | -> | == | .""",
                    re.VERBOSE | re.DOTALL)
_NUMBERS = ["0", "1", "2", "3", "5", "00", "01", "1.5", ".5", "5.", "1e3", "2.0", "100", "0.0",
            "-1", "99999999999999999999999", "1e400", "3.14"]
_NAMES = ["q", "r", "c", "h", "x", "cx", "rx", "u0", "delay", "U", "CX", "Q", "foo", "pi", "sin",
          "qreg", "creg", "gate", "opaque", "measure", "reset", "barrier", "if", "a", "b", "g",
          "OPENQASM", "include", "sx", "swap", "c4x", "id", "theta"]


def mutants(programs: list[str], count: int, seed: int = 20240531) -> list[str]:
    """``count`` distinct programs, each one of ``programs`` with one token deleted, duplicated,
    swapped with the next, or replaced by another number or name (and none of ``programs``)."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        pieces = _PIECE.findall(rng.choice(programs))
        tokens = [i for i, piece in enumerate(pieces) if not piece.isspace()
                  and not piece.startswith("//")]
        if not tokens:
            continue
        i = rng.choice(tokens)
        edit = rng.choice(["delete", "duplicate", "swap", "number", "name"])
        if edit == "delete":
            pieces[i] = ""
        elif edit == "duplicate":
            pieces[i] += rng.choice(["", " "]) + pieces[i]
        elif edit == "swap":
            j = tokens[min(tokens.index(i) + 1, len(tokens) - 1)]
            pieces[i], pieces[j] = pieces[j], pieces[i]
        elif edit == "number":
            numbers = [k for k in tokens if pieces[k][:1].isdigit() or pieces[k][:1] == "."]
            pieces[rng.choice(numbers or [i])] = rng.choice(_NUMBERS)
        else:
            names = [k for k in tokens if pieces[k][:1].isalpha()]
            pieces[rng.choice(names or [i])] = rng.choice(_NAMES)
        if "".join(pieces) not in programs:
            out.setdefault("".join(pieces))
    return list(out)


def test_mutated_programs_get_qiskits_verdict():
    programs = mutants(VALID, 2500)
    reports = [report for program in programs if (report := disagreement(program))]
    assert not reports, (f"{len(reports)} of {len(programs)} mutated programs judged differently:"
                         + "".join(reports[:15]))


def test_the_words_remembered_across_programs_change_no_verdict(monkeypatch):
    """The checker remembers the kind of every word it found valid, across programs, and starts
    again when it holds too many: with room for only a few, so that it starts again all the
    time, the mutants still get Qiskit's verdict, and the table never holds a keyword as a
    name."""
    monkeypatch.setattr(qasm2_check, "_KNOWN_MAX", len(qasm2_check._FIXED) + 5)
    programs = mutants(VALID, 600, seed=7)
    reports = [report for program in programs if (report := disagreement(program))]
    assert not reports, "".join(reports[:15])
    assert all(qasm2_check._known.get(word) == kind for word, kind in qasm2_check._FIXED.items())


# -- the table, the messages, the imports

def _qiskit_tables() -> tuple[dict[str, tuple[int, int]], ...]:
    """The checker's gate tables (_BUILTIN, _QELIB1, _DECLARED) as the installed Qiskit defines
    them; this generated them. A custom instruction that is not builtin is in _QELIB1 if
    ``include "qelib1.inc";`` makes it usable."""
    builtin, qelib1, declared = {}, {}, {}
    for custom in qasm2.LEGACY_CUSTOM_INSTRUCTIONS:
        application = (f"{custom.name}({','.join('0' * custom.num_params)}) "
                       + ",".join(f"q[{i}]" for i in range(custom.num_qubits)) + ";")
        included = qiskit_verdict(f'include "qelib1.inc"; qreg q[{custom.num_qubits}]; '
                                  + application) is None
        table = builtin if custom.builtin else qelib1 if included else declared
        table[custom.name] = (custom.num_params, custom.num_qubits)
    return builtin, qelib1, declared


def test_gate_tables_are_qiskits():
    assert (_BUILTIN, _QELIB1, _DECLARED) == _qiskit_tables()


def test_gate_table_covers_qiskits_qelib1_file():
    """Every gate of the qelib1.inc file Qiskit ships has the same signature in the table (Qiskit
    does not read the file: the table's "builtin" gates stand for the ones beyond the paper's)."""
    text = re.sub(r"//[^\n]*", "", (files("qiskit") / "qasm" / "libs" / "qelib1.inc").read_text())
    gates = re.findall(r"\bgate\s+(\w+)\s*(?:\(([^)]*)\))?\s*([^{]*)\{", text)
    assert len(gates) == len(_CUSTOM) - 1  # all but delay
    for name, params, qubits in gates:
        expected = (len(params.split(",")) if params.strip() else 0, len(qubits.split(",")))
        assert _CUSTOM[name] == expected, name


@pytest.mark.parametrize("program,start", [
    ("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];", "line 3, column 1: 'foo'"),
    ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncx q[0], q[2];', "line 4, column 12: "),
    ("qreg q[1];\nU(1/0, 0, 0) q[0];", "line 2, column 4: division by zero"),
])
def test_messages_are_one_line_and_name_the_place(program, start):
    with pytest.raises(QASM2Invalid) as caught:
        check_qasm2(program)
    assert str(caught.value).startswith(start) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("program", [
    'include "pyproject.toml";\n',  # exists in the repository, which is where the tests run
    "qreg q[1];\nU(" + "(" * 2000 + "1" + ")" * 2000 + ", 0, 0) q[0];\n",
])
def test_the_deliberate_differences(program):
    """Qiskit would read another include from the checking process's working directory (the QPU
    is sent the text alone), and it accepts expressions of any depth: both are refused here."""
    with pytest.raises(QASM2Invalid):
        check_qasm2(program)


def test_importing_the_checker_imports_no_qiskit():
    subprocess.run([sys.executable, "-c", "import qmio_hpc.qasm2_check, sys; "
                    "assert 'qiskit' not in sys.modules"], check=True)
