"""The restricted unpickler: plain data and numpy arrays load, anything else is refused."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from qmio_hpc import wire


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_plain_containers_round_trip():
    obj = {"results": {"c": {"00": 3}}, "t": (1, 2.5, None, True, b"x", complex(1, 2)),
           "s": {1, 2}}
    assert wire.loads(wire.dumps(obj)) == obj


def test_numpy_arrays_load_for_raw_results():
    arr = np.array([[0.9, -1.0], [1.1, 0.2]])
    assert np.array_equal(wire.loads(pickle.dumps({"c": arr}))["c"], arr)
    assert wire.loads(pickle.dumps(np.float64(1.5))) == 1.5


def test_code_execution_payload_is_refused():
    with pytest.raises(wire.UnsafePickleError, match="posix.system|os.system"):
        wire.loads(pickle.dumps(Boom()))


def test_arbitrary_class_is_refused():
    with pytest.raises(wire.UnsafePickleError):
        wire.loads(pickle.dumps(pytest.MonkeyPatch))


def test_to_plain_makes_json_safe():
    assert wire.to_plain({"a": np.array([1, 2]), 3: (np.int64(4),)}) == {"a": [1, 2], "3": [4]}
