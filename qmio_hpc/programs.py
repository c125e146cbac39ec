"""Checking programs before any job exists: what the QPU would refuse is refused at submission.

Used by the submitting process (``JobManager.build_spec``: every door) and by the batch step for
programs that arrive by other doors. The parsers are other people's, so what passes here is what
they accept:

* OpenQASM 2: Qiskit's ``qasm2`` (with the legacy ``qelib1.inc`` gates, as the QPU's compiler
  reads them);
* OpenQASM 3: the reference grammar (``openqasm3``, the parser Qiskit's importer builds on) for
  the syntax, then Qiskit's importer for what it can judge (undefined gates, wrong arities). A
  program with pulse-level calibrations (``cal``, ``defcal``) or ``extern`` is checked for its
  syntax only: the QPU's compiler reads those, Qiskit's importer does not.

Anything else is refused: every door sends OpenQASM text. Qiskit is imported only when a
program needs checking (it takes about a second).
"""

from __future__ import annotations

import contextlib
import io
import re

from .errors import ProgramError
from .protocol import language_of

#: OpenQASM 3 features that only the QPU's compiler reads (Qiskit's importer refuses them).
_QASM3_COMPILER_ONLY = re.compile(r"\b(defcalgrammar|defcal|cal|extern)\b")


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
    from qiskit import qasm2  # noqa: PLC0415 - a second's import, only when needed
    try:
        qasm2.loads(program, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    except qasm2.QASM2ParseError as exc:
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
        qasm3.loads(program)
    except Exception as exc:  # QASM3ImporterError and the importer's other refusals
        raise ProgramError(f"program {name} is not valid OpenQASM 3: {one_line(exc)}") from None
