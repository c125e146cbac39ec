"""DESIGN section 4, row by row: every Slurm state maps, and the job directory has the last word."""

from __future__ import annotations

import time

import pytest

from qmio_hpc.states import (RESULT_GRACE_SECONDS, SLURM_STATES, SchedulerState,
                             normalise_state, resolve)
from qmio_hpc.store import JobStore

EXPECTED = {
    "PENDING": "QUEUED", "CONFIGURING": "INITIALIZING", "RUNNING": "RUNNING",
    "COMPLETING": "RUNNING", "SUSPENDED": "RUNNING", "STOPPED": "RUNNING", "RESIZING": "RUNNING",
    "SIGNALING": "RUNNING", "STAGE_OUT": "RUNNING", "REQUEUED": "QUEUED",
    "REQUEUE_HOLD": "QUEUED", "REQUEUE_FED": "QUEUED", "RESV_DEL_HOLD": "QUEUED",
    "CANCELLED": "CANCELLED", "FAILED": "ERROR", "TIMEOUT": "ERROR", "NODE_FAIL": "ERROR",
    "BOOT_FAIL": "ERROR", "OUT_OF_MEMORY": "ERROR", "DEADLINE": "ERROR", "REVOKED": "ERROR",
    "SPECIAL_EXIT": "ERROR", "PREEMPTED": "ERROR",
}


@pytest.fixture
def job(tmp_path):
    return JobStore(tmp_path).create({})


def test_the_table_has_every_slurm_state_and_nothing_else():
    assert set(SLURM_STATES) == set(EXPECTED) | {"COMPLETED"}


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_each_row(state, job):
    job.set_state("running", "program 1 of 1")  # the step has said where it is
    assert resolve(SchedulerState("1", state), job).name == EXPECTED[state]


def test_pending_reason_goes_into_the_detail(job):
    status = resolve(SchedulerState("1", "PENDING", reason="JobHeldUser"), job)
    assert status.name == "QUEUED" and "JobHeldUser" in status.detail


def test_preempted_that_will_requeue_is_queued(job):
    assert resolve(SchedulerState("1", "PREEMPTED", will_requeue=True), job).name == "QUEUED"


def test_running_is_validating_while_the_step_checks_the_program(job):
    """Progress only moves forward: QUEUED, INITIALIZING until the step writes its first
    progress note, VALIDATING, RUNNING (issue 10, item 3)."""
    order = ["QUEUED", "INITIALIZING", "VALIDATING", "RUNNING"]
    seen = [resolve(SchedulerState("1", "PENDING"), job).name,
            resolve(SchedulerState("1", "RUNNING"), job).name]
    job.set_state("validating")
    seen.append(resolve(SchedulerState("1", "RUNNING"), job).name)
    job.set_state("running", "program 1 of 2")
    seen.append(resolve(SchedulerState("1", "RUNNING"), job).name)
    assert seen == order
    job.set_state("validating")
    assert resolve(SchedulerState("1", "RUNNING"), job).name == "VALIDATING"
    job.set_state("running", "program 1 of 2")
    status = resolve(SchedulerState("1", "RUNNING"), job)
    assert status.name == "RUNNING" and "program 1 of 2" in status.detail


def test_completed_is_done_only_with_a_complete_result(job):
    now = time.time()
    recent = SchedulerState("1", "COMPLETED", ended_at=now)
    assert resolve(recent, job, now=now).name == "RUNNING"  # grace for filesystem lag
    old = SchedulerState("1", "COMPLETED", ended_at=now - RESULT_GRACE_SECONDS - 1)
    status = resolve(old, job, now=now)
    assert status.name == "ERROR" and "no result" in status.detail
    job.write_result({"results": []})
    assert resolve(old, job, now=now).name == "DONE"


def test_a_complete_result_always_wins(job):
    job.write_result({"results": []})
    for state in ("FAILED", "CANCELLED", "TIMEOUT", "RUNNING"):
        assert resolve(SchedulerState("1", state), job).name == "DONE"
    assert resolve(None, job).name == "DONE"


def test_error_carries_the_reason_and_the_steps_message(job):
    job.write_error("QPUError", "the QPU at tcp://x:1 reported: boom")
    status = resolve(SchedulerState("1", "FAILED", exit_code="1:0"), job)
    assert status.name == "ERROR" and "exit code 1:0" in status.detail and "boom" in status.detail
    assert "time limit" in resolve(SchedulerState("1", "TIMEOUT"), job).detail


@pytest.mark.parametrize("setup,expected,word", [
    (lambda j: j.write_error("X", "it broke"), "ERROR", "it broke"),
    (lambda j: j.mark_cancelled(), "CANCELLED", "cancelled"),
    (lambda j: None, "ERROR", "lost"),
])
def test_unknown_to_the_scheduler_the_directory_decides_never_done(job, setup, expected, word):
    setup(job)
    status = resolve(None, job)
    assert status.name == expected and word in status.detail


def test_unknown_state_is_an_error_not_a_silent_default(job):
    status = resolve(SchedulerState("1", "WIBBLE"), job)
    assert status.name == "ERROR" and "WIBBLE" in status.detail


@pytest.mark.parametrize("raw,norm", [("CANCELLED by 0", "CANCELLED"), ("completed", "COMPLETED"),
                                      ("RUNNING+", "RUNNING")])
def test_normalise(raw, norm):
    assert normalise_state(raw) == norm
