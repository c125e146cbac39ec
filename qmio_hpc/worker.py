"""A session's worker: ``python -m qmio_hpc.worker SESSION_DIR``.

It runs inside the session's allocation (a Slurm job on the QPU partition, or a local runner that
holds the local QPU lock), keeps one connection to the endpoint, and serves the session's jobs in
submission order until the session is closed, cancelled, idle for too long, out of time, or its
allocation is ended underneath it. Two threads, so that clients get answers while the QPU works:

* the main thread owns the channel (``channel.ChannelServer``), watches the queue directory and
  the session's marks, and decides when to stop;
* the executor thread runs one job at a time with the shared client (``step.execute``: the same
  checks, result files and error records as a batch step) and reports each end to the main thread
  over an inproc socket.

However it ends, no job is left unfinished: jobs that never started end CANCELLED ("the session
ended before it ran"), and a job the end caught running ends ERROR, saying it may have run on the
QPU. Every outcome is claimed first (``JobDir.claim_outcome``), so a late result cannot overwrite
it. The worker imports no Qiskit except to check OpenQASM 2 programs, once.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from .channel import ChannelServer, decode
from .connection import Connection
from .errors import QmioError
from .fifo import FifoQueue
from .sessions import BATCH_LINGER, ended_before_it_ran, session_lock
from .step import execute
from .store import JobDir, JobStore, SessionDir
from .transport import QPUClient

log = logging.getLogger("qmio_hpc.worker")

DONE_ENDPOINT = "inproc://qmio-worker-done"
#: Longest the main loop sleeps; also how soon a SIGTERM is acted on.
TICK = 0.2
#: Re-check that an on-demand emulator is still there after this long without a request.
EMULATOR_RECHECK = 60.0


def entry_job_id(entry: Path) -> str:
    """Queue entries are named ``<sequence number>-<job id>``."""
    return entry.name.split("-", 1)[1]


def channel_host(spec: dict[str, Any]) -> str:
    """Loopback on the local executor; this node's address in a Slurm allocation (clients on the
    login node must reach it), unless the session's spec names one."""
    if spec.get("bind"):
        return str(spec["bind"])
    if os.environ.get("SLURM_JOB_ID"):
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"
    return "127.0.0.1"


class Worker:
    def __init__(self, session: SessionDir) -> None:
        self.session = session
        self.spec = session.spec()
        self.store = JobStore(session.path.parent.parent)
        self.connection = Connection.from_dict(self.spec["connection"])
        self.queue = FifoQueue(session.file("queue"))
        self.started = time.time()
        max_time = self.spec.get("max_time")
        self.deadline = self.started + float(max_time) if max_time else None
        self.idle_timeout = float(self.spec.get("idle_timeout") or 0)
        self.poll_interval = float(self.spec.get("poll_interval") or 1.0)
        self.todo: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self.dispatched: set[str] = set()
        self.running: JobDir | None = None
        self.pending = 0  # dispatched to the executor thread and not yet reported done
        self.last_activity = time.monotonic()
        self.waiters: list[tuple[bytes, int, set[str], float]] = []
        self.stop_reason: str | None = None
        self.terminated = False
        self.context = zmq.Context()
        self.info: dict[str, Any] = {
            "phase": "starting", "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": self.started, "deadline": self.deadline, "address": None,
            "jobs_done": 0, "busy_seconds": 0.0, "last_job_started": None,
            "last_job_completed": None, "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        }
        self._lock = threading.Lock()

    # -- records ----------------------------------------------------------------------------------

    def publish(self, **changes: Any) -> None:
        with self._lock:
            self.info.update(changes)
            self.session.write_worker_info(dict(self.info))

    # -- the executor thread ----------------------------------------------------------------------

    def _execute_jobs(self, client: QPUClient) -> None:
        done = self.context.socket(zmq.PUSH)
        done.connect(DONE_ENDPOINT)
        last_request = time.monotonic()
        while True:
            item = self.todo.get()
            if item is None:
                break
            job_id, entry = item
            try:
                job = self.store.get(job_id)
            except QmioError:
                self.queue.remove(entry)
                done.send(json.dumps([job_id, "lost"]).encode())
                continue
            if job.has_outcome():  # cancelled while it waited, or ended by someone else
                self.queue.remove(entry)
                done.send(json.dumps([job_id, "skipped"]).encode())
                continue
            if (self.connection.uses_builtin_emulator
                    and time.monotonic() - last_request > EMULATOR_RECHECK):
                self.connection.ensure_endpoint()  # it may have exited while we idled
            began = time.time()
            self.running = job
            execute(job, lambda: client, durable=False)
            last_request = time.monotonic()
            self.running = None
            self.queue.remove(entry)
            done.send(json.dumps([job_id, "final"]).encode())  # the waiting client first,
            job.sync("result.json", "error.json")  # then the result is made durable
            with self._lock:
                self.info["jobs_done"] += 1
                self.info["busy_seconds"] += time.time() - began
            self.publish(last_job_started=began, last_job_completed=time.time())
        done.close(linger=0)

    # -- the main loop ----------------------------------------------------------------------------

    def _scan_queue(self) -> None:
        """Hand every new queue entry to the executor thread, in name (= submission) order."""
        for entry in self.queue.entries():
            if entry.name in self.dispatched:
                continue
            job_id = entry_job_id(entry)
            self.dispatched.add(entry.name)
            self.pending += 1
            self.todo.put((job_id, entry))
            self.last_activity = time.monotonic()

    def _answer_waiters(self, now: float, finished: set[str] | None = None) -> None:
        still = []
        for identity, request_id, jobs, deadline in self.waiters:
            final = {j: "final" for j in jobs if finished and j in finished}
            if final or now >= deadline:
                self.server.reply(identity, {"id": request_id, "final": final})
            else:
                still.append((identity, request_id, jobs, deadline))
        self.waiters = still

    def _on_message(self, identity: bytes, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "queued":
            self._scan_queue()
        elif op == "wait":
            jobs = message.get("jobs")
            request_id = message.get("id")
            timeout = message.get("timeout")
            if (not isinstance(jobs, list) or not isinstance(request_id, int)
                    or not isinstance(timeout, (int, float))):
                return
            jobs = {str(j) for j in jobs[:1000]}
            final = {j: "final" for j in jobs if self._is_final(j)}
            if final:
                self.server.reply(identity, {"id": request_id, "final": final})
            else:
                deadline = time.monotonic() + min(max(float(timeout), 0.0), 60.0)
                self.waiters.append((identity, request_id, jobs, deadline))
        # "close" and "cancel" only wake the loop: the marks on disk say what to do

    def _is_final(self, job_id: str) -> bool:
        try:
            job = self.store.get(job_id)
        except QmioError:
            return True
        return (job.result() is not None or job.error() is not None
                or (job.is_cancelled() and job != self.running))

    def _should_stop(self) -> tuple[str, bool] | None:
        """Why to stop now, and whether that waits for an empty queue (a graceful close)."""
        if self.terminated:
            return "the allocation was ended (SIGTERM: cancelled or out of time)", False
        if self.session.is_cancelled():
            return "the session was cancelled", False
        if self.deadline is not None and time.time() >= self.deadline:
            return "max_time was reached", False
        if self.pending or self.queue.entries():
            return None
        quiet = time.monotonic() - self.last_activity
        if self.session.is_closed():
            return self.session.closed_info().get("reason") or "the session was closed", True
        if self.spec.get("mode") == "batch" and self.info["jobs_done"] and quiet >= BATCH_LINGER:
            return "the batch's queue is empty", True
        if self.idle_timeout and quiet >= self.idle_timeout:
            return f"idle for {self.idle_timeout:g} s (the idle timeout)", True
        return None

    def _close_for_good(self, reason: str) -> bool:
        """No job may enter once we decide to stop: under the submitters' lock, look at the queue
        one last time; if it is still empty, mark the session closed. False if a job got in."""
        with session_lock(self.session):
            self._scan_queue()
            if self.pending:
                return False
            self.session.mark_closed(reason)
            return True

    def _end_unfinished(self, reason: str) -> None:
        """Every job still queued or running gets its final state, now."""
        running = self.running
        for entry in self.queue.entries():
            try:
                job = self.store.get(entry_job_id(entry))
            except QmioError:
                continue
            if running is not None and job.key == running.key:
                continue
            if job.claim_outcome("worker"):
                job.mark_cancelled(ended_before_it_ran(reason, self._id_of(job)))
            self.queue.remove(entry)
        if running is not None and running.claim_outcome("worker"):
            running.write_error("SessionEnded", f"the session ended while this job ran "
                                                f"({reason}); the program may have run on the QPU")

    @staticmethod
    def _id_of(job: JobDir) -> str:
        record = job.scheduler_record() or {}
        return str(record.get("job_id", job.key))

    def serve(self) -> int:
        self.server = ChannelServer(self.context, self.session.file("keys"),
                                    channel_host(self.spec))
        done = self.context.socket(zmq.PULL)
        done.bind(DONE_ENDPOINT)
        client = self.connection.client()  # starts the built-in emulator here, if it is the one
        thread = threading.Thread(target=self._execute_jobs, args=(client,), daemon=True,
                                  name="qmio-executor")
        thread.start()
        poller = zmq.Poller()
        for sock in (*self.server.sockets, done):
            poller.register(sock, zmq.POLLIN)
        self.publish(phase="serving", address=self.server.address)
        log.info("session worker serving on %s (endpoint %s)", self.server.address,
                 self.connection.address)
        self._scan_queue()
        last_scan = time.monotonic()
        reason = None
        while reason is None:
            events = dict(poller.poll(TICK * 1000))
            now = time.monotonic()
            if self.server.zap in events:
                self.server.handle_zap()
            if self.server.socket in events:
                for _ in range(100):
                    received = self.server.receive()
                    if received is not None:
                        self._on_message(*received)
                    if not self.server.socket.poll(0):
                        break
            finished: set[str] = set()
            while done.poll(0):
                job_id, _what = json.loads(done.recv())
                finished.add(job_id)
                self.pending -= 1
                self.last_activity = now
            if finished or self.waiters:
                self._answer_waiters(now, finished)
            if now - last_scan >= self.poll_interval:
                self._scan_queue()  # the file fallback: clients that cannot reach the channel
                last_scan = now
            stop = self._should_stop()
            if stop is not None and (not stop[1] or self._close_for_good(stop[0])):
                reason = stop[0]
        return self._finish(reason, thread, done)

    def _finish(self, reason: str, thread: threading.Thread, done: zmq.Socket) -> int:
        self.session.mark_closed(reason)
        self._end_unfinished(reason)
        self.todo.put(None)
        if not self.terminated and self.running is None:
            thread.join(timeout=5)
        self._answer_waiters(float("inf"), {j for _, _, jobs, _ in self.waiters for j in jobs})
        self.publish(phase="ended", ended_at=time.time(), end_reason=reason,
                     refused_handshakes=self.server.refused)
        log.info("session worker ends: %s", reason)
        self.server.close()
        done.close(linger=0)
        return 0

    def on_sigterm(self, _signum: int, _frame: object) -> None:
        self.terminated = True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if len(argv) != 2:
        print("usage: python -m qmio_hpc.worker SESSION_DIR", file=sys.stderr)
        return 2
    os.umask(0o077)
    session = SessionDir(Path(argv[1]).resolve())
    worker = Worker(session)
    signal.signal(signal.SIGTERM, worker.on_sigterm)
    signal.signal(signal.SIGINT, worker.on_sigterm)
    try:
        code = worker.serve()
    except Exception as exc:  # the worker could not start or broke: end every job with why
        log.exception("session worker failed")
        reason = f"the session's worker failed: {exc}"
        session.mark_closed(reason)
        worker._end_unfinished(reason)
        worker.publish(phase="ended", ended_at=time.time(), end_reason=reason)
        code = 1
    sys.stdout.flush()
    os._exit(code)  # the executor thread may be inside a request: do not wait for it


if __name__ == "__main__":
    main()
