"""The ZMQ client against real sockets: the three failures are told apart and nothing hangs."""

from __future__ import annotations

import threading
from pathlib import Path
import time

import pytest
import zmq

from qmio_hpc import wire
from qmio_hpc.errors import (EndpointTimeoutError, EndpointUnreachableError, ProtocolError,
                             QPUError)
from qmio_hpc.protocol import ExecutionOptions
from qmio_hpc.transport import QPUClient
from tests.conftest import BELL_QASM, free_port, run_qmio


class SilentThenAnswering(threading.Thread):
    """A real server that swallows the first ``drop`` requests, then answers (with ``reply``).

    It is a ROUTER socket, which REQ clients see as a REP server but which may leave a request
    unanswered, like a wedged control server.
    """

    def __init__(self, port: int, drop: int, reply=None) -> None:
        super().__init__(daemon=True)
        self.port, self.drop, self.reply = port, drop, reply
        self.received = 0
        self.stop = threading.Event()

    def run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(f"tcp://127.0.0.1:{self.port}")
        while not self.stop.is_set():
            if not sock.poll(50):
                continue
            identity, empty, payload = sock.recv_multipart()
            self.received += 1
            if self.received <= self.drop:
                continue
            answer = (self.reply if isinstance(self.reply, bytes) else
                      wire.dumps(self.reply or {"echo": wire.loads(payload)[0]}))
            sock.send_multipart([identity, empty, answer])
        sock.close()
        ctx.term()


@pytest.fixture
def server():
    started = []

    def start(drop: int, reply=None):
        srv = SilentThenAnswering(free_port(), drop, reply)
        srv.start()
        time.sleep(0.1)
        started.append(srv)
        return srv
    yield start
    for srv in started:
        srv.stop.set()
        srv.join(5)


def test_nobody_listening_is_cannot_reach_naming_the_endpoint():
    port = free_port()
    client = QPUClient(f"tcp://127.0.0.1:{port}", connect_timeout=0.5, retries=2)
    began = time.monotonic()
    with pytest.raises(EndpointUnreachableError, match=f"cannot reach.*127.0.0.1:{port}"):
        client.request(("version",))
    assert time.monotonic() - began < 2.0


def test_no_answer_is_a_timeout_after_bounded_retries(server):
    srv = server(drop=10)
    client = QPUClient(f"tcp://127.0.0.1:{srv.port}", reply_timeout=0.3, retries=2)
    began = time.monotonic()
    with pytest.raises(EndpointTimeoutError, match=f"127.0.0.1:{srv.port}.*3 attempts"):
        client.request(("version",))
    assert srv.received == 3
    assert time.monotonic() - began < 5.0


def test_lazy_pirate_recreates_the_socket_and_gets_the_answer(server):
    srv = server(drop=1)
    retries = []
    with QPUClient(f"tcp://127.0.0.1:{srv.port}", reply_timeout=0.5, retries=2) as client:
        reply = client.request(("version",), on_retry=lambda n, why: retries.append(why))
    assert reply == {"echo": "version"} and srv.received == 2 and len(retries) == 1


def test_exception_reply_is_a_qpu_error(server):
    srv = server(drop=0, reply={"Exception": "ConnectionError('FPGA card #11 is stuck')"})
    with QPUClient(f"tcp://127.0.0.1:{srv.port}") as client:
        with pytest.raises(QPUError, match="FPGA card #11 is stuck") as info:
            client.run_program(BELL_QASM, ExecutionOptions(shots=10))
    assert info.value.endpoint == f"tcp://127.0.0.1:{srv.port}"


def test_unsafe_reply_is_refused_not_executed(server, tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))
    srv = server(drop=0, reply=pickle.dumps(Evil()))
    with QPUClient(f"tcp://127.0.0.1:{srv.port}") as client:
        with pytest.raises(ProtocolError, match="refused"):
            client.request(("version",))
    assert not (tmp_path / "pwned").exists()


def test_timeout_scales_with_the_work():
    client = QPUClient("tcp://127.0.0.1:1", reply_timeout=10, assumed_repetition_period=1e-4)
    assert client.work_timeout(ExecutionOptions(shots=1000)) == pytest.approx(10.15)
    slow = ExecutionOptions(shots=100_000, repetition_period=1e-3)
    assert client.work_timeout(slow) == pytest.approx(10 + 150)


def test_server_dying_mid_request_ends_the_wait_at_once(emulator_factory):
    emu = emulator_factory("--time-model")
    client = QPUClient(emu.endpoint, connect_timeout=0.5, reply_timeout=60, retries=1)
    killer = threading.Timer(0.5, emu.stop)
    killer.start()
    began = time.monotonic()
    with pytest.raises(EndpointUnreachableError, match="lost the connection"):
        client.run_program(BELL_QASM, ExecutionOptions(shots=1000, repetition_period=0.02))
    assert time.monotonic() - began < 5.0  # not the 60 s + 30 s deadline


def test_a_program_that_got_no_answer_is_never_sent_twice(server):
    """On a real QPU the first copy may still be running: a second would run it twice."""
    srv = server(drop=10)
    client = QPUClient(f"tcp://127.0.0.1:{srv.port}", reply_timeout=0.3, retries=2,
                       assumed_repetition_period=1e-6)
    with pytest.raises(EndpointTimeoutError, match="may have run, so it was not sent again"):
        client.run_program(BELL_QASM, ExecutionOptions(shots=10))
    time.sleep(0.3)
    assert srv.received == 1  # the idempotent version request above is retried; this is not
    client.close()


def test_a_program_is_not_sent_where_there_is_no_connection():
    port = free_port()
    client = QPUClient(f"tcp://127.0.0.1:{port}", connect_timeout=0.3, retries=2)
    with pytest.raises(EndpointUnreachableError, match="cannot reach"):
        client.run_program(BELL_QASM, ExecutionOptions(shots=10))


# -- replies that are not results (issue 8, item 5) ---------------------------------------------
# A real server (the thread above) answers a real job's program with each malformed reply; the
# job, run by the real batch step on the local executor, must end ERROR with one line, and no
# result file may exist. Bell: one register c of 2 bits; 10 shots.

BAD_REPLIES = {
    "no results": {"execution_metrics": {}},
    "results not a mapping": {"results": [1, 2]},
    "counts short of the shots": {"results": {"c": {"00": 4, "11": 5}}},
    "counts past the shots": {"results": {"c": {"00": 10, "11": 1}}},
    "a negative count": {"results": {"c": {"00": 11, "11": -1}}},
    "a float count": {"results": {"c": {"00": 10.0}}},
    "a boolean count": {"results": {"c": {"00": True, "11": 9}}},
    "a bitstring too narrow": {"results": {"c": {"0": 10}}},
    "a bitstring too wide": {"results": {"c": {"000": 10}}},
    "not a bitstring": {"results": {"c": {"0x": 10}}},
    "counts not a mapping": {"results": {"c": [10]}},
    "a register the program lacks": {"results": {"c": {"00": 10}, "d": {"0": 10}}},
}
BAD_RAW_REPLIES = {
    "raw: too few shots": {"results": {"c": [[1.0] * 9, [1.0] * 9]}},
    "raw: a bit missing": {"results": {"c": [[1.0] * 10]}},
    "raw: not a number": {"results": {"c": [[1.0] * 9 + ["x"], [1.0] * 10]}},
    "raw: NaN": {"results": {"c": [[1.0] * 9 + [float("nan")], [1.0] * 10]}},
    "raw: infinity": {"results": {"c": [[float("inf")] * 10, [1.0] * 10]}},
    "raw: collapsed for 10 shots": {"results": {"c": [1.0, -1.0]}},
}


def _job_against(server, reply, tmp_path, *options: str):
    srv = server(drop=0, reply=reply)
    program = tmp_path / "bell.qasm"
    program.write_text(BELL_QASM)
    return run_qmio("--endpoint", f"tcp://127.0.0.1:{srv.port}", "submit", str(program),
                    "--shots", "10", *options, "--wait")


@pytest.mark.parametrize("case", sorted(BAD_REPLIES))
def test_a_reply_that_is_not_a_result_ends_the_job_error(qmio_env, server, tmp_path, case):
    out = _job_against(server, BAD_REPLIES[case], tmp_path)
    _assert_error_without_result(out, qmio_env)


@pytest.mark.parametrize("case", sorted(BAD_RAW_REPLIES))
def test_a_raw_reply_that_is_not_a_result_ends_the_job_error(qmio_env, server, tmp_path, case):
    out = _job_against(server, BAD_RAW_REPLIES[case], tmp_path, "--res-format", "raw")
    _assert_error_without_result(out, qmio_env)


def _assert_error_without_result(out, env) -> None:
    assert out.returncode == 4, (out.stdout, out.stderr)  # the endpoint failed
    assert "Traceback" not in out.stderr
    error_lines = [line for line in out.stderr.splitlines() if line.startswith("qmio: error")]
    assert len(error_lines) == 1 and "is not a result" in error_lines[0], out.stderr
    jobs = list((Path(env["QMIO_STORE"]) / "jobs").iterdir())
    assert len(jobs) == 1 and not (jobs[0] / "result.json").exists()
    assert (jobs[0] / "error.json").exists()


def test_a_well_formed_reply_of_that_server_is_a_result(qmio_env, server, tmp_path):
    """The same forging server, with a reply of the right shape: the check lets it through."""
    out = _job_against(server, {"results": {"c": {"00": 4, "11": 6}}}, tmp_path)
    assert out.returncode == 0, out.stderr
    counts = sorted(line.split()[:2] for line in out.stdout.splitlines()[-2:])
    assert counts == [["00", "4"], ["11", "6"]], out.stdout
