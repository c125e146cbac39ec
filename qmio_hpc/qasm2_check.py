"""OpenQASM 2 checked as Qiskit's parser checks it, without importing Qiskit.

Why: ``import qiskit`` costs about a second, most of what ``qmio submit`` costs, and submitting an
OpenQASM 2 program needs only a yes or no. ``check_qasm2`` says yes exactly when
``qiskit.qasm2.loads(program, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)`` does, with
its lenient defaults (the ``OPENQASM 2.0;`` header may be left out; trailing commas and empty
statements pass) and its quirks, each marked "Qiskit:". The rules are those of Qiskit's Rust
parser (crates/qasm2) and of ``qiskit/qasm2/parse.py``, which builds the circuit and fails in
cases of its own; tests/test_qasm2_check.py holds the two to the same verdicts.

Two differences are deliberate. An ``include`` of any file but ``qelib1.inc`` is refused: Qiskit
would read the file from the checking process's working directory (and, in 2.6, read the
expressions in it from the wrong file), while the QPU is sent the program text alone. Expressions
nested deeper than Python's recursion limit allows (hundreds of parentheses) are refused too.
"""

from __future__ import annotations

import math
import re

__all__ = ["QASM2Invalid", "check_qasm2"]


class QASM2Invalid(ValueError):
    """The program is not valid OpenQASM 2 as Qiskit's parser reads it; the message is one line,
    "line L, column C: what is wrong" where there is a place to name."""


#: Qiskit's legacy custom instructions, name -> (parameters, qubits), by where they are defined.
#: Generated from ``qasm2.LEGACY_CUSTOM_INSTRUCTIONS`` of Qiskit 2.6.2 by ``_qiskit_tables()`` in
#: tests/test_qasm2_check.py, which checks them against the installed Qiskit. In every program:
_BUILTIN = {"u0": (1, 1), "u": (3, 1), "p": (1, 1), "sx": (0, 1), "sxdg": (0, 1), "swap": (0, 2),
            "cswap": (0, 3), "crx": (1, 2), "cry": (1, 2), "cp": (1, 2), "csx": (0, 2),
            "cu": (4, 2), "rxx": (1, 2), "rzz": (1, 2), "rccx": (0, 3), "rc3x": (0, 4),
            "c3x": (0, 4), "c3sqrtx": (0, 4), "c4x": (0, 5)}
#: By ``include "qelib1.inc";`` (Qiskit does not read the file: it defines the paper's 23 gates):
_QELIB1 = {"u3": (3, 1), "u2": (2, 1), "u1": (1, 1), "cx": (0, 2), "id": (0, 1), "x": (0, 1),
           "y": (0, 1), "z": (0, 1), "h": (0, 1), "s": (0, 1), "sdg": (0, 1), "t": (0, 1),
           "tdg": (0, 1), "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "cz": (0, 2), "cy": (0, 2),
           "ch": (0, 2), "ccx": (0, 3), "crz": (1, 2), "cu1": (1, 2), "cu3": (3, 2)}
#: Once the program declares it with this signature (``opaque delay(t) q;``):
_DECLARED = {"delay": (1, 1)}
_CUSTOM = _BUILTIN | _QELIB1 | _DECLARED
_QELIB1_SYMBOLS = {name: ("gate", *shape, None) for name, shape in _QELIB1.items()}
#: What every program starts with: U, CX and the built-in gates.
_START_SYMBOLS = {"U": ("gate", 3, 1, None), "CX": ("gate", 0, 2, None),
                  **{name: ("gate", *shape, None) for name, shape in _BUILTIN.items()}}

#: Whitespace and comments, then one token: a number (not run into a word), a name, a string, a
#: symbol, something malformed (the last two alternatives), or the end of the program ("").
_TOKEN = re.compile(r"""(?:[ \t\r\n]+|//[^\n]*)*
    ( (?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_])
    | [A-Za-z][A-Za-z0-9_]* | "[^"\r\n]*" | '[^'\r\n]*' | -> | == | [-+*/^;,()\[\]{}]
    | [0-9.][A-Za-z0-9_.]* | . | \Z )""", re.VERBOSE | re.DOTALL)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_FUNCTIONS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
              "sqrt": math.sqrt}
#: Tokens that are their own kind: keywords and symbols.
_FIXED = {word: word for word in ("OPENQASM", "barrier", "creg", "gate", "if", "include",
                                  "measure", "opaque", "qreg", "reset", "pi", *_FUNCTIONS, "->",
                                  "==", *"-+*/^;,()[]{}")} | {"": "eof"}
#: Qiskit's binding powers (left, right): ^ is right-associative and binds tighter than unary minus.
_BINARY = {"+": (1, 2), "-": (1, 2), "*": (3, 4), "/": (3, 4), "^": (8, 7)}
_PREFIX_POWER = 5
_USIZE = 2 ** 64  # Qiskit reads sizes and indices as Rust usize (a larger one panics)


def check_qasm2(program: str) -> None:
    """Raise QASM2Invalid if Qiskit's parser (with the legacy qelib1.inc gates) would refuse
    ``program``; return None if it would accept it."""
    if not program.isascii():
        try:
            program.encode()
        except UnicodeEncodeError:  # Qiskit cannot hand such a string to its parser at all
            raise QASM2Invalid("the program is not valid Unicode text") from None
    parser = _Parser(program)
    try:
        parser.parse()
    except RecursionError:
        raise parser.error("an expression nested too deeply to check") from None


#: Keywords, symbols and the words found valid before, with their kinds (a word's kind depends on
#: the word alone; only an error's message needs its place). Replaced by a new one when full,
#: never emptied in place: a check in another thread keeps the one it started with.
_known = dict(_FIXED)
_KNOWN_MAX = 50_000


def _kinds(text: str, words: list[str]) -> list[str]:
    """The kind of each token, as Qiskit's lexer classifies it (it rejects the same text)."""
    global _known
    if len(_known) > _KNOWN_MAX:
        _known = dict(_FIXED)
    known = _known
    kinds = list(map(known.get, words))
    if None in kinds:
        for i, kind in enumerate(kinds):
            if kind is None:
                word = words[i]
                kinds[i] = known.get(word) or known.setdefault(word, _kind(text, i, word))
    # Qiskit: right after OPENQASM a number is a version ('2', '2.0', even '02.0').
    i = -1
    for _ in range(kinds.count("OPENQASM")):
        i = kinds.index("OPENQASM", i + 1)
        if kinds[i + 1] in ("int", "real") and _VERSION.fullmatch(words[i + 1]):
            kinds[i + 1] = "version"
    return kinds


def _kind(text: str, i: int, word: str) -> str:
    """The kind of the ``i``-th token, ``word``, if it is not a keyword or a symbol."""
    if word[0].isascii() and word[0].isalpha():
        if word[0].isupper() and word not in ("U", "CX"):
            raise _fail(text, i, f"'{word}': identifiers cannot start with a capital letter "
                                 "(only OPENQASM, U and CX do)")
        return "id"
    if word[0] in "0123456789." and _NUMBER.fullmatch(word):
        if word.isdigit() and word[0] == "0" and len(word) > 1:
            raise _fail(text, i, f"'{word}': integers cannot have leading zeroes")
        return "int" if word.isdigit() else "real"
    if word[0] in "\"'" and len(word) > 1:
        if not word.isascii():
            raise _fail(text, i, "a non-ASCII character in a string")
        return "string"  # Qiskit: single quotes pass too
    raise _fail(text, i, "unexpected " + ("'=' (a comparison is '==')" if word == "=" else
                                          "unterminated string" if word in "\"'" else repr(word)))


def _fail(text: str, token: int, message: str) -> QASM2Invalid:
    """The error at the ``token``-th token (its place is found again only now, when needed)."""
    offset = next(m for i, m in enumerate(_TOKEN.finditer(text)) if i == token).start(1)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return QASM2Invalid(f"line {line}, column {column}: {message}")


def _apply(function, value: float) -> float:
    """``function(value)`` as Rust computes it: NaN where Python's math raises a domain error,
    infinity where it raises an overflow."""
    try:
        return function(value)
    except ValueError:
        return math.nan
    except OverflowError:
        return math.inf


def _arithmetic(op: str, left: float, right: float) -> float:
    """``left op right`` in IEEE 754 arithmetic, as Rust computes it (never raising)."""
    return (left + right if op == "+" else left - right if op == "-" else left * right
            if op == "*" else left / right if op == "/" else _power(left, right))


def _power(base: float, exponent: float) -> float:
    """``base ^ exponent`` as Rust's powf (IEEE 754 pow), which never raises."""
    odd = exponent.is_integer() and abs(math.fmod(exponent, 2)) == 1
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return -math.inf if base < 0 and odd else math.inf
    except ValueError:  # 0 to a negative power, or a negative base to a fraction
        if base == 0:
            return -math.inf if odd and math.copysign(1, base) < 0 else math.inf
        return math.nan


class _Parser:
    """One pass over the tokens, keeping Qiskit's symbol table. It builds no circuit, but it
    follows the cases where Qiskit's Python half fails while building one (see ``_emit``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words: list[str] = _TOKEN.findall(text)
        self.kinds = _kinds(text, self.words)
        self.pos = 0
        # name -> ("gate", params, qubits, index among the program's own gates or None),
        # ("qreg", size, first qubit) or ("creg", size, first bit)
        self.symbols: dict[str, tuple] = dict(_START_SYMBOLS)
        self.overridable = dict(_CUSTOM)  # custom instructions a gate, opaque or include may define
        self.own_gates = 0          # gates the program defines, as Qiskit's Rust half numbers them
        #: the gates Qiskit's Python half appends: (qubits, body; None for an opaque gate)
        self.built: list[tuple[int, list | None]] = []
        self.body: list[tuple[str, int | None, int, list | None]] = []  # of the gate being defined
        self.num_qubits = self.num_bits = 0
        self.params: dict[str, int] = {}    # in a gate body: its parameters
        self.qubits: dict[str, int] = {}    # in a gate body: its qubit arguments
        self.version_ok = True

    # -- tokens

    def error(self, message: str, token: int | None = None) -> QASM2Invalid:
        return _fail(self.text, self.pos if token is None else token, message)

    def _next(self) -> int:
        """Step over the current token; its index (the end stays put)."""
        token = self.pos
        if self.kinds[token] != "eof":
            self.pos += 1
        return token

    def _accept(self, kind: str) -> bool:
        if self.kinds[self.pos] == kind:
            self.pos += 1
            return True
        return False

    def _expect(self, kind: str, what: str) -> str:
        if self.kinds[self.pos] != kind:
            word = self.words[self.pos]
            raise self.error(f"expected {what}, found " + (f"'{word}'" if word else "the end"))
        self.pos += 1
        return self.words[self.pos - 1]

    def _integer(self, what: str) -> int:
        value = int(self._expect("int", what))
        if value >= _USIZE:
            raise self.error(f"{value} is too large", self.pos - 1)
        return value

    # -- statements

    def parse(self) -> None:
        statements = {"id": self._application, "qreg": self._register, "creg": self._register,
                      "include": self._include, "measure": self._measure, "reset": self._reset,
                      "barrier": self._barrier, "if": self._conditional, "opaque": self._opaque,
                      "gate": self._gate, "OPENQASM": self._version}
        while (kind := self.kinds[self.pos]) != "eof":
            if kind == ";":  # Qiskit: an empty statement passes
                self.pos += 1
            elif kind not in statements:
                raise self.error(f"'{self.words[self.pos]}' cannot start a statement")
            elif statements[kind]():  # Qiskit: the version may follow what adds no instruction
                self.version_ok = False

    def _version(self) -> int:
        if not self.version_ok:
            raise self.error("only the first statement may be the version 'OPENQASM 2.0;'")
        self._next()
        major, _, minor = self._expect("version", "a version number such as 2.0").partition(".")
        if int(major) != 2 or (minor and int(minor) != 0):
            raise self.error(f"only OpenQASM 2.0 is supported, not {self.words[self.pos - 1]}",
                             self.pos - 1)
        self._expect(";", "';'")
        return 0

    def _include(self) -> int:
        self._next()
        name = self._expect("string", "a file name in quotes")
        self._expect(";", "';'")
        if name[1:-1] != "qelib1.inc":
            raise self.error(f'only "qelib1.inc" can be included, not {name}', self.pos - 2)
        if self.overridable.keys() >= _QELIB1.keys() and not self.symbols.keys() & _QELIB1.keys():
            # the usual case, an include before any gate of its own: what _define does, at once
            self.overridable = {k: v for k, v in self.overridable.items() if k not in _QELIB1}
            self.symbols.update(_QELIB1_SYMBOLS)
            return 1
        for gate, (params, qubits) in _QELIB1.items():
            self._define(self.pos - 2, gate, params, qubits)
        return 1

    def _register(self) -> int:
        kind = self.words[self._next()]
        name = self._expect("id", "a register name")
        self._expect("[", "'['")
        size = self._integer("the register size")
        self._expect("]", "']'")
        self._expect(";", "';'")
        if name in self.symbols:
            raise self.error(f"'{name}' is already defined", self.pos - 5)
        self.symbols[name] = (kind, size, self.num_qubits if kind == "qreg" else self.num_bits)
        if kind == "qreg":
            self.num_qubits += size
        else:
            self.num_bits += size
        return 1

    def _define(self, token: int, name: str, params: int, qubits: int) -> bool:
        """Define a gate as Qiskit does; True if it is a new gate (not a custom instruction)."""
        if name in self.overridable:
            if self.overridable.pop(name) != (params, qubits):
                expected = _CUSTOM[name]
                raise self.error(f"'{name}' must take {expected[0]} parameter(s) and "
                                 f"{expected[1]} qubit(s), as Qiskit's '{name}' does", token)
            if self.symbols.setdefault(name, ("gate", params, qubits, None))[0] == "gate":
                return False
        if name in self.symbols:
            raise self.error(f"'{name}' is already defined", token)
        self.symbols[name] = ("gate", params, qubits, self.own_gates)
        self.own_gates += 1
        return True

    def _names(self, parenthesised: bool = False) -> list[int]:
        """Identifiers separated by commas, as token indices (Qiskit: a trailing comma passes)."""
        if parenthesised and not self._accept("("):
            return []
        names = []
        while self.kinds[self.pos] == "id":
            names.append(self._next())
            if not self._accept(","):
                break
        if parenthesised:
            self._expect(")", "')'")
        return names

    def _opaque(self) -> int:
        start = self._next()
        self._expect("id", "a gate name")
        params, qubits = self._names(parenthesised=True), self._names()
        self._expect(";", "';'")
        if not qubits:
            raise self.error("gates must act on at least one qubit", start)
        # Qiskit: the names of an opaque gate's arguments may repeat.
        self._define(start + 1, self.words[start + 1], len(params), len(qubits))
        # Qiskit: Python appends every opaque gate to its list of gates (``built``), even one
        # that defines a custom instruction, which Rust's numbering does not count: from then on
        # Rust's number for a gate of the program names an earlier entry in Python's list.
        self.built.append((len(qubits), None))
        return 1

    def _gate(self) -> int:
        start = self._next()
        self._expect("id", "a gate name")
        params, qubits = self._names(parenthesised=True), self._names()
        names = [self.words[token] for token in params + qubits]
        if len(set(names)) < len(names):
            raise self.error("a gate argument is named twice", start)
        if not qubits:
            raise self.error("gates must act on at least one qubit", start)
        brace = self.pos
        self._expect("{", "'{' and the gate body")
        self.params = {name: index for index, name in enumerate(names[:len(params)])}
        self.body = []
        self.qubits = {name: index for index, name in enumerate(names[len(params):])}
        while (kind := self.kinds[self.pos]) != "}":
            if kind == "id":
                self._application()
            elif kind == "barrier":
                self._barrier()
            elif kind == "eof":
                raise self.error("the gate body is not closed with '}'", brace)
            else:
                raise self.error(f"'{self.words[self.pos]}' cannot be in a gate body")
        self._next()
        self.params, self.qubits = {}, {}
        new = self._define(start + 1, self.words[start + 1], len(params), len(qubits))
        if new:
            self.built.append((len(qubits), self.body))
        return int(new)

    # -- quantum operations

    def _application(self, conditioned: bool = False) -> int:
        start = self._next()
        name = self.words[start]
        symbol = self.symbols.get(name)
        if symbol is None or symbol[0] != "gate":
            raise self.error(f"'{name}' is a {symbol[0]}, not a gate" if symbol else
                             f"'{name}' is not defined" + (" (it needs include \"qelib1.inc\";)"
                             if name in _QELIB1 and name in self.overridable else ""), start)
        _, num_params, num_qubits, own = symbol
        values = None  # Qiskit: a gate with parameters may be applied without parentheses...
        if self._accept("("):
            values = []
            while self.kinds[self.pos] != ")":
                values.append(self._expression())
                if not self._accept(","):
                    break
            self._expect(")", "')'")
            if len(values) != num_params:
                raise self.error(f"'{name}' takes {num_params} parameter(s), not {len(values)}",
                                 start)
        qargs = []
        while self.kinds[self.pos] == "id":
            qargs.append(self._qubit() if self.qubits else self._qarg("qreg"))
            if not self._accept(","):
                break
        if len(qargs) != num_qubits:
            raise self.error(f"'{name}' takes {num_qubits} qubit(s), not {len(qargs)}", start)
        self._expect(";", "';'")
        if self.qubits:  # in a gate body: single qubits, each once
            if len(set(qargs)) < len(qargs):
                raise self.error("a qubit is used twice in one gate application", start)
            self.body.append((name, own, num_params, values))
            return 1
        count = self._emit(start, qargs, conditioned)
        if count and own is None:
            self._construct(start, name, num_params, values)
        elif count and conditioned:
            # Qiskit: Python builds the gate as one of its own (see _opaque), and copies it into
            # the 'if', which builds its definition, and those of the gates in it, all the way down.
            qubits, body = self.built[own]
            if qubits != num_qubits:
                raise self.error(f"Qiskit applies the wrong gate here (of {qubits} qubits), "
                                 "because an opaque declaration shifted its gate list", start)
            self._expand(start, own, tuple(values or ()), set())
        return count

    def _construct(self, start: int, name: str, num_params: int, values: list | None) -> None:
        """Fail where Python's constructor of a custom gate would."""
        if values is None and num_params:
            raise self.error(f"'{name}' needs its {num_params} parameter(s)", start)
        if name in ("u0", "delay") and values:
            value = values[0]
            if not (math.isfinite(value) and value.is_integer()
                    and (name == "u0" or 0 <= value < 2 ** 63)):
                raise self.error(f"'{name}' takes a whole number"
                                 + (" from 0 to 2^63-1" if name == "delay" else ""), start)

    def _expand(self, start: int, own: int, params: tuple, done: set) -> None:
        """Fail where Python, building the definition of the program's gate ``own`` with
        ``params`` (and the definitions of the gates in it), would fail."""
        body, key = self.built[own][1], (own, repr(params))  # repr: -0.0 is not 0.0 here
        if body is None or key in done:  # an opaque gate has no definition
            return
        done.add(key)
        for name, inner, num_params, args in body:
            values = None if args is None else [self._evaluate(start, arg, params) for arg in args]
            if inner is None:
                self._construct(start, name, num_params, values)
            else:
                self._expand(start, inner, tuple(values or ()), done)

    def _evaluate(self, start: int, tree: float | tuple, params: tuple) -> float:
        """The value of a gate body's parameter expression, as Qiskit computes it when it builds
        the definition (it refuses what it cannot compute as a real number)."""
        if isinstance(tree, float):
            return tree
        op, *operands = tree
        if op == "param":
            if operands[0] >= len(params):
                raise self.error("Qiskit builds a gate body with too few parameters", start)
            return params[operands[0]]
        values = [self._evaluate(start, operand, params) for operand in operands]
        if op in _FUNCTIONS:
            if op == "ln" and values[0] <= 0 or op == "sqrt" and values[0] < 0:
                raise self.error(f"{op} of {values[0]:g} in a gate body", start)
            return _apply(_FUNCTIONS[op], values[0])
        if op == "neg":
            return -values[0]
        left, right = values
        if op == "/" and right == 0:
            raise self.error("division by zero in a gate body", start)
        if op == "^" and left < 0 and not right.is_integer():
            raise self.error(f"{left:g}^{right:g} is not a real number", start)
        return _arithmetic(op, left, right)

    def _qubit(self) -> tuple[int, None]:
        """A qubit argument of the gate being defined (no registers there)."""
        name = self.words[self._next()]
        if name in self.qubits:
            return self.qubits[name], None
        kind = ("a parameter" if name in self.params else
                f"a {self.symbols[name][0]}" if name in self.symbols else "not defined")
        raise self.error(f"'{name}' is {kind}, not a qubit of this gate", self.pos - 1)

    def _qarg(self, kind: str) -> tuple[int, int | None]:
        """A whole register (first index, size) or one of its bits (index, None)."""
        name = self._expect("id", "a quantum argument" if kind == "qreg" else "a classical one")
        symbol = self.symbols.get(name)
        if symbol is None or symbol[0] != kind:
            what = f"a {symbol[0]}" if symbol else "not defined"
            raise self.error(f"'{name}' is {what}, not a {kind}", self.pos - 1)
        if not self._accept("["):
            return symbol[2], symbol[1]
        index = self._integer("an index")
        self._expect("]", "']'")
        if index >= symbol[1]:
            raise self.error(f"index {index} is out of range for '{name}' of size {symbol[1]}",
                             self.pos - 2)
        return symbol[2] + index, None

    def _emit(self, start: int, qargs: list[tuple[int, int | None]], conditioned: bool) -> int:
        """How many instructions Qiskit makes of a gate applied to ``qargs``, broadcasting
        registers, or the error it raises while making them."""
        if len(qargs) <= 2 and all(size is None for _, size in qargs):  # Qiskit's fast path too
            if len(qargs) == 2 and qargs[0] == qargs[1]:
                raise self.error("a qubit is used twice in one gate application", start)
            return 1
        width, spans = 0, []
        for first, size in qargs:
            if size is not None:
                # Qiskit: a register of size 0 before a larger one escapes this check.
                if width and width != size:
                    raise self.error("registers of different sizes in one gate application", start)
                width = size
            end = first + (1 if size is None else size)
            if any(first < other_end and other < end for other, other_end in spans):
                raise self.error("a qubit is used twice in one gate application", start)
            spans.append((first, end))
        if width == 0:  # Qiskit: broadcasting over empty registers makes nothing
            return 0 if any(size is not None for _, size in qargs) else 1
        if any(size == 0 for _, size in qargs):
            # Qiskit: a register of size 0 broadcast against a larger one reads the qubits after it
            for i in range(width):
                qubits = [first if size is None else first + i for first, size in qargs]
                if max(qubits) >= self.num_qubits:
                    raise self.error("an empty register is broadcast past the last qubit", start)
                if conditioned and len(set(qubits)) < len(qubits):
                    raise self.error("an empty register is broadcast onto a qubit used twice",
                                     start)
        return width

    def _measure(self) -> int:
        start = self._next()
        qubit = self._qarg("qreg")
        self._expect("->", "'->'")
        bit = self._qarg("creg")
        self._expect(";", "';'")
        if qubit[1] != bit[1]:
            raise self.error("measure needs a qubit and a bit, or registers of one size", start)
        return 1 if qubit[1] is None else qubit[1]

    def _reset(self) -> int:
        self._next()
        size = self._qarg("qreg")[1]
        self._expect(";", "';'")
        return 1 if size is None else size

    def _barrier(self) -> int:
        """Qiskit: a barrier may name a qubit twice; with no arguments it covers every qubit."""
        self._next()
        if self._accept(";"):
            return int(bool(self.qubits) or self.num_qubits > 0)
        qubits = 0  # how many it covers
        while self.kinds[self.pos] == "id":
            size = self._qubit()[1] if self.qubits else self._qarg("qreg")[1]
            qubits += 1 if size is None else size
            if not self._accept(","):
                break
        self._expect(";", "';' after the barrier's arguments")
        return int(qubits > 0)

    def _conditional(self) -> int:
        start = self._next()
        self._expect("(", "'('")
        name = self._expect("id", "a classical register")
        self._expect("==", "'=='")
        self._expect("int", "an integer")  # Qiskit: of any size
        self._expect(")", "')'")
        symbol = self.symbols.get(name)
        if symbol is None or symbol[0] != "creg":
            what = f"a {symbol[0]}" if symbol else "not defined"
            raise self.error(f"'{name}' is {what}, not a creg", start + 2)
        kind = self.kinds[self.pos]
        if kind == "id":
            return self._application(conditioned=True)
        if kind in ("measure", "reset"):
            return self._measure() if kind == "measure" else self._reset()
        raise self.error("'if' can only condition a gate, measure or reset")

    # -- parameter expressions

    def _expression(self, power: int = 0) -> float | tuple:
        """One expression, parsed with Qiskit's binding powers and folded as Qiskit folds it (its
        errors for division by zero, ln and sqrt depend on the folded values): a number, or the
        tree of what depends on a gate's parameters, (operator, operands...) or ("param", i)."""
        start = self._next()
        kind, word = self.kinds[start], self.words[start]
        if kind in ("real", "int"):
            value = float(word)
        elif kind == "(":
            value = self._expression()
            self._expect(")", "')'")
        elif kind in _FUNCTIONS:
            self._expect("(", f"'(' after {kind}")
            value = self._expression()
            self._accept(",")  # Qiskit: sin(x,) passes
            self._expect(")", "')'")
            if isinstance(value, tuple):
                value = (kind, value)
            elif kind == "ln" and not value > 0 or kind == "sqrt" and not value >= 0:
                raise self.error(f"{kind} of {value:g}, which is out of its domain", start)
            else:
                value = _apply(_FUNCTIONS[kind], value)
        elif kind in ("+", "-"):
            value = self._expression(_PREFIX_POWER)
            if kind == "-":
                value = ("neg", value) if isinstance(value, tuple) else -value
        elif kind == "pi":
            value = math.pi
        elif kind == "id" and word in self.params:
            value = ("param", self.params[word])
        else:
            raise self.error("expected an expression, found " + (
                f"'{word}', which is not a parameter of this gate" if kind == "id" else
                f"'{word}'" if word else "the end"), start)
        while (op := self.kinds[self.pos]) in _BINARY and _BINARY[op][0] > power:
            at = self._next()
            right = self._expression(_BINARY[op][1])
            if op == "/" and right == 0:  # Qiskit: even x/0 with x a parameter
                raise self.error("division by zero", at)
            if isinstance(value, tuple) or isinstance(right, tuple):
                value = (op, value, right)
            else:
                value = _arithmetic(op, value, right)
        return value


if __name__ == "__main__":  # how long a check takes
    import timeit
    head = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\ncreg c[5];\n'
    bell = head + "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
    long = head + "".join(f"rz({i}*pi/7) q[{i % 5}];\ncx q[{i % 5}],q[{(i + 1) % 5}];\n"
                          for i in range(100)) + "measure q -> c;\n"
    for label, program in (("Bell", bell), ("200 gates", long)):
        best = min(timeit.repeat(lambda: check_qasm2(program), number=1, repeat=1000))
        print(f"{label}: {best * 1e6:.0f} us (min of 1000)")
