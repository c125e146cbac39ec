"""Pickle framing of the qat-rpc protocol, with a restricted unpickler.

qat-rpc speaks pickles (pyzmq's ``send_pyobj``). Unpickling bytes from the network can run any
code, so both ends here load with an allow-list: plain containers, strings, numbers and bytes
need no globals at all; the only globals allowed are those that numpy arrays and scalars
(raw readout values) are rebuilt from.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

#: (module, name) pairs a reply may reference. Everything else is refused.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "complex"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
})

#: Protocol 4 is understood by every Python the real server or CESGA's client runs on.
PICKLE_PROTOCOL = 4


class UnsafePickleError(pickle.UnpicklingError):
    """The payload references a global that is not on the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(f"refused to load {module}.{name} from the network")


def loads(payload: bytes) -> Any:
    """Unpickle ``payload`` with the allow-list; raises UnsafePickleError or UnpicklingError."""
    return _RestrictedUnpickler(io.BytesIO(payload)).load()


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=PICKLE_PROTOCOL)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_plain(obj: Any) -> Any:
    """Turn numpy arrays and scalars into lists and Python numbers, for JSON files."""
    if type(obj) in _PLAIN:  # most of a reply: bitstrings and counts
        return obj
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    return obj
