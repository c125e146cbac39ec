"""Checking programs before any job exists: what the QPU would refuse is refused at submission.

Used by the submitting process (``JobManager.build_spec``: every door) and by the batch step for
programs that arrive by other doors. The parsers are other people's, so what passes here is what
they accept:

* OpenQASM 2: what Qiskit's ``qasm2`` accepts (with the legacy ``qelib1.inc`` gates, as the
  QPU's compiler reads them), judged by ``qasm2_check`` without importing Qiskit;
* OpenQASM 3: the reference grammar (``openqasm3``, the parser Qiskit's importer builds on) for
  the syntax, then Qiskit's importer for what it can judge (undefined gates, wrong arities). A
  program with pulse-level calibrations (``cal``, ``defcal``) or ``extern`` is checked for its
  syntax only: the QPU's compiler reads those, Qiskit's importer does not. An OpenQASM 3
  program may ``include "qelib1.inc"``, as CESGA's own examples do: QAT's parser reads that
  file's gates, Qiskit's importer knows only ``stdgates.inc`` (``qasm3_for_qiskit``).

Anything else is refused: every door sends OpenQASM text. Qiskit is imported only when an
OpenQASM 3 program needs checking (it takes about a second).
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from pathlib import Path

from .errors import ProgramError
from .protocol import language_of

#: OpenQASM 3 features that only the QPU's compiler reads (Qiskit's importer refuses them).
_QASM3_COMPILER_ONLY = re.compile(r"\b(defcalgrammar|defcal|cal|extern)\b")


_QELIB1_INCLUDE = re.compile(r'include\s+"qelib1\.inc"\s*;')


@functools.cache
def _qelib1_extra_gates() -> str:
    """The gates of Qiskit's ``qelib1.inc`` that ``stdgates.inc`` lacks (u0, u, sxdg, cu1, cu3,
    csx, rxx, rzz, rccx, ...), as OpenQASM 3 gate definitions: the two files ship with Qiskit."""
    import importlib.util  # noqa: PLC0415 - OpenQASM 3 only

    spec = importlib.util.find_spec("qiskit")
    libs = Path(list(spec.submodule_search_locations or [])[0]) / "qasm" / "libs"

    def read(name: str) -> str:
        return re.sub(r"//[^\n]*", "", (libs / name).read_text())
    known = set(re.findall(r"\bgate\s+(\w+)", read("stdgates.inc")))
    return "\n".join(m.group(0) for m in re.finditer(r"\bgate\s+(\w+)[^{]*\{[^}]*\}",
                                                     read("qelib1.inc"))
                     if m.group(1) not in known)


def qasm3_for_qiskit(program: str) -> str:
    """``program`` as Qiskit's OpenQASM 3 importer can read it: an ``include "qelib1.inc"`` (which
    QAT's parser accepts in OpenQASM 3) becomes ``stdgates.inc`` plus qelib1's other gates. Only
    for checking and simulating: the QPU is sent the program as the user wrote it."""
    if "qelib1.inc" not in program:
        return program
    return _QELIB1_INCLUDE.sub(lambda _: 'include "stdgates.inc";\n' + _qelib1_extra_gates(),
                               program, count=1)


def one_line(text: str, limit: int = 300) -> str:
    """Parser messages span lines; an error is one line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_program(name: str, program: str) -> None:
    """Raise ProgramError (one line, naming the program) if ``program`` is not valid."""
    if not isinstance(program, str) or not program.strip():
        raise ProgramError(f"program {name} is empty")
    language = language_of(program)
    if language == "qasm2":
        _check_qasm2(name, program)
    elif language == "qasm3":
        _check_qasm3(name, program)
    else:
        raise ProgramError(f"program {name} is not OpenQASM: it must begin with 'OPENQASM 2.0;' "
                           f"or 'OPENQASM 3.0;' (after comments, if any)")


def _syntax_error(exc: BaseException) -> str:
    """Where the reference parser stopped: it bails out with the offending token as the cause."""
    if str(exc):
        return one_line(exc)
    cause = exc.__cause__
    inner = cause.args[0] if cause is not None and cause.args else None
    token = getattr(inner, "offendingToken", None)
    if token is None:
        return "syntax error"
    return f"syntax error at line {token.line}, column {token.column + 1} ({token.text!r:.40})"


def _check_qasm2(name: str, program: str) -> None:
    """Qiskit's verdict without Qiskit's import: ``check_qasm2`` is held to ``qasm2.loads`` by a
    differential test (tests/test_qasm2_check.py)."""
    from .qasm2_check import QASM2Invalid, check_qasm2  # noqa: PLC0415

    try:
        check_qasm2(program)
    except QASM2Invalid as exc:
        raise ProgramError(f"program {name} is not valid OpenQASM 2: {one_line(exc)}") from None


def _check_qasm3(name: str, program: str) -> None:
    import openqasm3  # noqa: PLC0415

    said = io.StringIO()  # whatever ANTLR prints is not for the user's terminal
    try:
        with contextlib.redirect_stderr(said):
            openqasm3.parse(program)
    except Exception as exc:  # QASM3ParsingError (the parser's or the lexer's)
        raise ProgramError(f"program {name} is not valid OpenQASM 3: "
                           f"{_syntax_error(exc)}") from None
    if _QASM3_COMPILER_ONLY.search(program):
        return
    from qiskit import qasm3  # noqa: PLC0415

    try:
        qasm3.loads(qasm3_for_qiskit(program))
    except Exception as exc:  # QASM3ImporterError and the importer's other refusals
        raise ProgramError(f"program {name} is not valid OpenQASM 3: {one_line(exc)}") from None
