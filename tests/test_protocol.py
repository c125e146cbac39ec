"""The wire protocol's pure functions: CompilerConfig, bit order, result shapes."""

from __future__ import annotations

import json

import pytest

from qmio_hpc.errors import ProgramError
from qmio_hpc.protocol import (ExecutionOptions, build_compiler_config, join_shots,
                               parse_compiler_config, program_request)
from qmio_hpc.results import (counts_of, memory_of, merge_replies, register_counts,
                              register_sizes)


def test_default_config_has_no_optimisations_as_the_seed_api_sends():
    """The seed API's default (the seed document's _config_build): optimizations null. (Every
    option against CESGA's qmio 0.1.3 builder itself: tests/test_interop.py.)"""
    data = json.loads(build_compiler_config(ExecutionOptions(shots=100)))["$data"]
    assert data["repeats"] == 100 and data["optimizations"] is None
    assert data["repetition_period"] is None and data["metrics"]["$value"] == 6


@pytest.mark.parametrize("fmt,expected", [("binary_count", (1, 3)), ("raw", (1, 2)),
                                          ("binary", (2, 2)),
                                          ("squash_binary_result_arrays", (2, 6))])
def test_results_formats_encode_cesgas_enum_values(fmt, expected):
    data = json.loads(build_compiler_config(ExecutionOptions(shots=5, res_format=fmt)))["$data"]
    rf = data["results_format"]["$data"]
    assert (rf["format"]["$value"], rf["transforms"]["$value"]) == expected


@pytest.mark.parametrize("level,flag", [(0, 1), (1, 18), (2, 30)])
def test_optimisation_levels_are_bare_tket_flags_as_cesgas_qmio_sends(level, flag):
    data = json.loads(build_compiler_config(ExecutionOptions(shots=5, optimization=level)))
    assert data["$data"]["optimizations"] == {
        "$type": "<enum 'qat.purr.compiler.config.TketOptimizations'>", "$value": flag}


def test_config_round_trips():
    opts = ExecutionOptions(shots=123, repetition_period=2e-4, optimization=2, res_format="raw")
    assert parse_compiler_config(build_compiler_config(opts)) == opts


@pytest.mark.parametrize("kwargs,word", [({"shots": 0}, "shots"), ({"shots": True}, "shots"),
                                         ({"shots": 10, "repetition_period": -1}, "repetition"),
                                         ({"shots": 10, "optimization": 7}, "optimization"),
                                         ({"shots": 10, "res_format": "nope"}, "res_format")])
def test_bad_options_name_what_is_wrong(kwargs, word):
    with pytest.raises(ProgramError, match=word):
        ExecutionOptions(**kwargs)


def test_program_request_is_the_three_tuple():
    assert program_request("P", "C") == ("program", "P", "C")


def test_big_endian_counts_become_qiskit_order():
    # x q[0]; measure q[0..2] -> c[0..2] gives '100' on the wire; Qiskit prints c[0] rightmost.
    reply = {"results": {"c": {"100": 10}}}
    assert counts_of(reply, "binary_count") == {"001": 10}
    assert register_counts(reply, "binary_count") == {"c": {"001": 10}}


def test_per_shot_registers_join_in_qiskit_layout():
    # two registers a (2 bits) and b (1 bit); wire order a[0] leftmost
    shots = {"a": ["10", "01"], "b": ["1", "0"]}
    assert join_shots(shots, ["a", "b"]) == ["1 01", "0 10"]


def test_raw_is_per_bit_lists_of_per_shot_readouts_thresholded_like_qat():
    # register c, 2 bits, 3 shots: c[0] reads 1,0,1 (negative = 1) and c[1] reads 0,0,1
    reply = {"results": {"c": [[-0.98, 1.01, -0.9], [0.97, 0.99, -1.1]]}}
    assert memory_of(reply, "raw") == ["01", "00", "11"]
    assert counts_of(reply, "raw") == {"01": 1, "00": 1, "11": 1}
    assert register_sizes(reply, "raw") == [("c", 2)]
    assert memory_of({"results": {"c": [0.0, 0.5]}}, "raw") == ["01"]  # QAT: 0 if v > 0


def test_raw_with_one_shot_collapses_to_one_value_per_bit():
    reply = {"results": {"c": [-0.9, 0.8]}}
    assert memory_of(reply, "raw") == ["01"]


def test_raw_several_registers_give_joint_counts():
    reply = {"results": {"a": [[-1.0, 1.0], [1.0, 1.0]], "b": [[-1.0, -1.0]]}}
    assert counts_of(reply, "raw", [("a", 2), ("b", 1)]) == {"1 01": 1, "1 00": 1}


def test_majority_formats_have_no_counts():
    with pytest.raises(ValueError, match="majority"):
        counts_of({"results": {"c": [0, 1]}}, "binary")
    assert register_sizes({"results": {"c": "01"}}, "squash_binary_result_arrays") == [("c", 2)]


def test_counts_of_several_registers_refuse_to_invent_a_joint_distribution():
    with pytest.raises(ValueError, match="joint"):
        counts_of({"results": {"a": {"1": 5}, "b": {"0": 5}}}, "binary_count")


def test_merge_split_executions():
    counts = [{"results": {"c": {"0": 3, "1": 1}}}, {"results": {"c": {"1": 2}}}]
    assert merge_replies(counts, "binary_count")["results"] == {"c": {"0": 3, "1": 3}}
    raw = [{"results": {"c": [[1.0, -1.0], [1.0, 1.0]]}}, {"results": {"c": [-1.0, 1.0]}}]
    merged = merge_replies(raw, "raw")
    assert merged["results"] == {"c": [[1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]}
    assert merged["execution_metrics"]["executions"] == 2
