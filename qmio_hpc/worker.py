"""A session's worker: ``python -m qmio_hpc.worker SESSION_DIR``.

It runs inside the session's allocation (a Slurm job on the QPU partition, or a local runner that
holds the local QPU lock), keeps one connection to the endpoint, and serves the session's jobs in
submission order until the session is closed, cancelled, idle for too long, out of time, or its
allocation is ended underneath it.

One thread serves: while a request is on the QPU, the client's wait also serves the channel
(``transport.Background``), so clients are answered, and new ones admitted, while the QPU works,
and a job's end is told to its waiting client by the thread that wrote its result, with no
hand-off in between. (A second thread only fsyncs results afterwards: ``durable.Syncer``.)

However it ends, no job is left unfinished: jobs that never started end CANCELLED ("the session
ended before it ran"), and a job the end caught running ends ERROR, saying it may have run on the
QPU. Whoever removes a job's queue entry owns its end (``store.claim_entry``): the worker removes
it before it starts the job, a cancel or the end of the session before the job started. So a job
has one writer of its outcome, and a job without its entry and without an outcome is the
worker's: if the worker is gone, it may have run (``Sessions.settle``). The worker imports no
Qiskit except to check programs that the submitter did not check already.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import zmq

from .channel import ChannelServer
from .connection import Connection
from .durable import Syncer
from .errors import QmioError
from .fifo import FifoQueue
from .sessions import BATCH_LINGER, ended_before_it_ran, session_lock
from .step import Terminated, execute
from .store import JobDir, JobStore, SessionDir, claim_entry, read_json

log = logging.getLogger("qmio_hpc.worker")

#: Longest the idle loop sleeps; also how soon a SIGTERM is acted on.
TICK = 0.2
#: Re-check that an on-demand emulator is still there after this long without a request.
EMULATOR_RECHECK = 60.0
#: worker.json (usage, last jobs) is rewritten at most this often while jobs run.
PUBLISH_EVERY = 1.0
#: How long a client that queued a job is told nothing before a heartbeat answer.
QUEUED_WAIT = 60.0
#: The session's marks (cancelled, closed) are looked at this often at most, and at once when a
#: client says it wrote one (two stats fewer between a job's message and its request to the QPU).
MARKS_EVERY = 0.1
#: Waiting clients remembered at most (only the owner can connect; this bounds a runaway one).
MAX_WAITERS = 10_000


def entry_job_id(entry: Path) -> str:
    """Queue entries are named ``<sequence number>-<job id>``."""
    return entry.name.split("-", 1)[1]


def entry_number(name: str) -> int:
    return int(name.split("-", 1)[0])


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
        self.running: JobDir | None = None
        self.note: str | None = None  # the running job's progress, written once its request is out
        self.last_activity = time.monotonic()
        self.last_request = time.monotonic()
        self.waiters: list[tuple[bytes, int, set[str], float]] = []
        self.scan_due = True
        self.marks: tuple[float, bool, bool] | None = None  # when read, cancelled, closed
        self.hints: set[str] = set()  # queue entries clients said they made
        self.expected = 1  # the number of the job that should come next
        self.terminated = False
        self.published = 0.0
        self.syncer = Syncer("result.json", "error.json")
        self.info: dict[str, Any] = {
            "phase": "starting", "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": self.started, "deadline": self.deadline, "address": None,
            "jobs_done": 0, "busy_seconds": 0.0, "last_job_started": None,
            "last_job_completed": None, "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        }

    def publish(self, **changes: Any) -> None:
        self.info.update(changes)
        self.session.write_worker_info(dict(self.info))
        self.published = time.monotonic()

    # -- the channel (also served while a request is on the QPU: transport.Background) ----------

    @property
    def sockets(self) -> list[zmq.Socket]:
        return self.server.sockets

    def sent(self) -> None:
        """The request is on its way to the QPU: now write the running job's progress note
        (RUNNING in ``qmio status``), which need not delay the request."""
        note, self.note = self.note, None
        if self.running is not None and note is not None:
            with contextlib.suppress(OSError):  # a progress note is not worth a result
                self.running.set_state("running", note)

    def _note(self, message: str) -> None:
        self.note = message

    def handle(self, ready: set[zmq.Socket]) -> None:
        if self.server.zap in ready:
            while self.server.zap.poll(0):
                self.server.handle_zap()
        if self.server.socket in ready:
            for _ in range(1000):
                received = self.server.receive()
                if received is not None:
                    self._on_message(*received)
                if not self.server.socket.poll(0):
                    break
        if self.waiters:
            self._answer_waiters(time.monotonic())
        if self.terminated and self.running is not None:
            raise Terminated("the session ended while this job ran (its allocation was ended: "
                             "SIGTERM); the program may have run on the QPU")

    def _on_message(self, identity: bytes, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "queued" and isinstance(message.get("entry"), str):
            self.hints.add(message["entry"][:80])  # its queue entry: no need to list the queue
            job, request_id = message.get("job"), message.get("id")
            if (isinstance(job, str) and isinstance(request_id, int)
                    and len(self.waiters) < MAX_WAITERS):  # and its sender waits for it
                self.waiters.append((identity, request_id, {job[:80]},
                                     time.monotonic() + QUEUED_WAIT))
        elif op in ("queued", "close", "cancel"):
            self.scan_due = True  # the marks and the queue on disk say what to do
            self.marks = None
        elif op == "wait":
            jobs, request_id, timeout = (message.get("jobs"), message.get("id"),
                                         message.get("timeout"))
            if (not isinstance(jobs, list) or not isinstance(request_id, int)
                    or not isinstance(timeout, (int, float)) or len(self.waiters) >= MAX_WAITERS):
                return
            wanted = {str(j) for j in jobs[:1000]}
            final = {j: "final" for j in wanted if self._is_final(j)}
            if final:
                self.server.reply(identity, {"id": request_id, "final": final})
            else:
                deadline = time.monotonic() + min(max(float(timeout), 0.0), 60.0)
                self.waiters.append((identity, request_id, wanted, deadline))

    def _is_final(self, job_id: str) -> bool:
        try:
            job = self.store.get(job_id)
        except QmioError:
            return True
        return job.has_outcome() and job != self.running

    def _answer_waiters(self, now: float, finished: set[str] | None = None) -> None:
        still = []
        for identity, request_id, jobs, deadline in self.waiters:
            final = {j: "final" for j in jobs if finished and j in finished}
            if final or now >= deadline:
                self.server.reply(identity, {"id": request_id, "final": final})
            else:
                still.append((identity, request_id, jobs, deadline))
        self.waiters = still

    # -- jobs ------------------------------------------------------------------------------------

    def _next_entry(self, scan: bool) -> Path | None:
        """The oldest queue entry. A client's hint names it when it is the very next number (it
        may be gone: ``_run`` claims it, or skips it); otherwise (or when ``scan``) the queue
        directory is listed."""
        entry = None
        if self.hints and not scan:
            name = min(self.hints)
            if entry_number(name) == self.expected:
                entry = self.queue.directory / name
        if entry is None and (scan or self.hints):
            entries = self.queue.entries()
            entry = entries[0] if entries else None
            self.hints = {h for h in self.hints if entry is not None and h >= entry.name}
        if entry is not None:
            self.hints.discard(entry.name)
            self.expected = entry_number(entry.name) + 1
            self.last_activity = time.monotonic()
        return entry

    def _run(self, entry: Path, client: Any) -> None:
        job_id = entry_job_id(entry)
        job = self.session.job(job_id.rsplit(".", 1)[1])
        if not claim_entry(entry):  # cancelled while it waited, or ended by someone else
            self._answer_waiters(time.monotonic(), {job_id})
            return
        # The job is ours to end from here on, whatever happens: nobody else writes its outcome.
        spec = read_json(job.file("spec.json"))
        if not isinstance(spec, dict):  # an entry without a job: nothing to run
            return
        if (self.connection.uses_builtin_emulator
                and time.monotonic() - self.last_request > EMULATOR_RECHECK):
            self.connection.ensure_endpoint()  # it may have exited while we idled
        began = time.time()
        self.running = job
        try:
            execute(job, lambda: client, durable=False, claim=lambda: True, spec=spec,
                    note=self._note)
        finally:
            self.running, self.note = None, None
        self.last_request = self.last_activity = time.monotonic()
        self._answer_waiters(time.monotonic(), {job_id})  # the waiting client first,
        self.syncer.add(job)  # then the result is made durable, in the background
        self.info["jobs_done"] += 1
        self.info["busy_seconds"] += time.time() - began
        self.info.update(last_job_started=began, last_job_completed=time.time())
        if time.monotonic() - self.published >= PUBLISH_EVERY:
            self.publish()

    # -- stopping --------------------------------------------------------------------------------

    def _should_stop(self) -> tuple[str, bool] | None:
        """Why to stop now, and whether that waits for an empty queue (a graceful close)."""
        if self.terminated:
            return "the allocation was ended (SIGTERM: cancelled or out of time)", False
        now = time.monotonic()
        if self.marks is None or now - self.marks[0] >= MARKS_EVERY:
            self.marks = (now, self.session.is_cancelled(), self.session.is_closed())
        _, cancelled, closed = self.marks
        if cancelled:
            return "the session was cancelled", False
        if self.deadline is not None and time.time() >= self.deadline:
            return "max_time was reached", False
        quiet = now - self.last_activity
        graceful = None
        if closed:
            graceful = self.session.closed_info().get("reason") or "the session was closed"
        elif (self.spec.get("mode") == "batch" and self.info["jobs_done"]
              and quiet >= BATCH_LINGER):
            graceful = "the batch's queue is empty"
        elif self.idle_timeout and quiet >= self.idle_timeout:
            graceful = f"idle for {self.idle_timeout:g} s (the idle timeout)"
        if graceful is None or self.hints or self.queue.entries():
            return None  # a graceful stop waits for an empty queue
        return graceful, True

    def _close_for_good(self, reason: str) -> bool:
        """No job may enter once we decide to stop: under the submitters' lock, look at the queue
        one last time; if it is still empty, mark the session closed. False if a job got in."""
        with session_lock(self.session):
            if self.queue.entries():
                return False
            self.session.mark_closed(reason)
            return True

    def _end_unfinished(self, reason: str) -> None:
        """Every job still queued gets its final state, now: none of them has started (a running
        one has been ended by its own step, which ``handle`` interrupted)."""
        for entry in self.queue.entries():
            if not claim_entry(entry):
                continue
            job_id = entry_job_id(entry)
            try:
                job = self.store.get(job_id)
            except QmioError:
                continue
            job.mark_cancelled(ended_before_it_ran(reason, job_id))

    # -- the loop --------------------------------------------------------------------------------

    def serve(self) -> int:
        context = zmq.Context()
        self.server = ChannelServer(context, self.session.file("keys"), channel_host(self.spec))
        client = self.connection.client()  # starts the built-in emulator here, if it is the one
        client.background = self
        poller = zmq.Poller()
        for sock in self.server.sockets:
            poller.register(sock, zmq.POLLIN)
        self.publish(phase="serving", address=self.server.address)
        log.info("session worker serving on %s (endpoint %s)", self.server.address,
                 self.connection.address)
        last_scan = time.monotonic()
        while True:
            stop = self._should_stop()
            if stop is not None and (not stop[1] or self._close_for_good(stop[0])):
                reason = stop[0]
                break
            scan = self.scan_due or time.monotonic() - last_scan >= self.poll_interval
            if scan or self.hints:
                if scan:
                    last_scan, self.scan_due = time.monotonic(), False
                entry = self._next_entry(scan)
                if entry is not None:
                    self._run(entry, client)
                    # straight on to the next: hinted, or (after a listed one) listed again
                    self.scan_due = scan and not self.hints
                    continue
            ready = dict(poller.poll(min(TICK, self.poll_interval) * 1000))
            if not ready and self.published < self.last_activity:
                self.publish()  # idle now: usage() and status() see the jobs just done
            self.handle({s for s in self.server.sockets if s in ready})
        self.syncer.flush()
        self.session.mark_closed(reason)
        with session_lock(self.session):  # no submitter is using a spare as it goes
            self.session.remove_spares()
        self._end_unfinished(reason)
        self._answer_waiters(float("inf"), {j for _, _, jobs, _ in self.waiters for j in jobs})
        self.publish(phase="ended", ended_at=time.time(), end_reason=reason,
                     refused_handshakes=self.server.refused)
        log.info("session worker ends: %s", reason)
        client.close()
        self.server.close()
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
        return worker.serve()
    except Exception as exc:  # the worker could not start or broke: end every job with why
        log.exception("session worker failed")
        reason = f"the session's worker failed: {exc}"
        session.mark_closed(reason)
        worker._end_unfinished(reason)
        worker.publish(phase="ended", ended_at=time.time(), end_reason=reason)
        return 1


if __name__ == "__main__":
    sys.exit(main())
