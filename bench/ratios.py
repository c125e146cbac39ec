"""Every ratio of issue 9's target table, each measured side by side in one run.

    scripts/slurm-cluster/start.sh && .venv/bin/python bench/ratios.py
    (options: [--pairs N] [--only NAME[,NAME]] [--quick] [--json] [--keep])

Why ratios: this machine is shared and noisy, so an absolute time says little. Each row times the
thing measured and a baseline a user could do by hand, in pairs, one right after the other,
alternating which goes first; ratio = measured / baseline per pair, and the row's figure is the
median of those ratios (the medians of the absolute times are printed beside it, never alone).
One untimed warm-up pair first (page cache, byte code, a runner or connection that starts once).

The baselines (issue 9, item 1): a bare ZMQ client process (``python -c`` with pyzmq and pickle:
a REQ socket, CURVE keys of the store's emulator, one ``("program", qasm, config_json)`` request,
qat-rpc's wire form, pickle protocol 4), raw ``sbatch`` on the same partition with the same
resources, ``python -c pass``, and a ``("version",)`` round trip to the same emulator.

Everything runs against one built-in emulator that this script starts (``--private``, in a
temporary job store; every job and every bare client uses it), on the local executor unless a
row says Slurm. Settings come from the script alone (QMIO_* and ZMQ_SERVER removed, the config
files pointed at paths that do not exist). Every program a side sends is a Bell circuit, 1000
shots, made unique by a comment (so neither a submission check cached per program text nor the
other side of the pair has seen it), except in row ``emulator-bell``, which repeats one text as a
variational loop's client would. Slurm jobs whose running is not what is measured (submission
only) are submitted held (``--hold``) on both sides and cancelled at once, untimed, so the
shared cluster is not clogged; a side whose job someone else cancels is run again, and said so.

Exit code: 0 when every row was measured (whether or not it meets its target: this is a
measurement); 1 when a row broke (it says why in one line); 2 on bad options.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import zmq

# The helpers of the other benchmarks (bench/ is this script's directory, so first on sys.path).
# Importing ``session`` also removes QMIO_* and ZMQ_SERVER from this process's environment.
from local_load import Side
from session import Bench

from qmio_hpc.channel import client_keys
from qmio_hpc.config import Settings
from qmio_hpc.jobs import JobManager
from qmio_hpc.protocol import ExecutionOptions, build_compiler_config
from qmio_hpc.store import JobDir

PY = sys.executable
SHOTS = 1000
OPTIONS = ExecutionOptions(shots=SHOTS)
CONFIG_JSON = build_compiler_config(OPTIONS)
BELL = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
        'measure q[0] -> c[0];\nmeasure q[1] -> c[1];\n')
#: Seconds between one Slurm job's end and the next submission in row slurm-wait. How soon
#: Slurm starts a job depends on the time since the last one ended (a timer's phase: 0.15-0.9 s
#: at once, ~1 s after a 1 s pause, ~0.5 s after 2.5 s); a fixed pause takes that noise out of
#: both sides alike.
SLURM_SETTLE = 2.5
SLURM_DOWN = "the Slurm test cluster is not running (scontrol ping failed): start it with " \
             "scripts/slurm-cluster/start.sh"

#: The baseline client, as a user would write it by hand: argv = address, keys directory,
#: config JSON, result file ('-': none), program... (one round trip each, on one socket).
BARE = r"""
import os, pickle, sys, zmq
address, keys, config, out, *programs = sys.argv[1:]
key = lambda name: open(os.path.join(keys, name), "rb").read().strip()
sock = zmq.Context().socket(zmq.REQ)
sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (
    key("worker.key"), key("client.key"), key("client.key_secret"))
sock.linger = 0
sock.connect(address)
for program in programs:
    sock.send(pickle.dumps(("program", program, config), protocol=4))
    reply = pickle.loads(sock.recv())
    if "results" not in reply:
        sys.exit(f"not a result: {reply!r:.300}")
if out != "-":
    with open(out + ".tmp", "w") as fh:
        fh.write(repr(reply))
    os.replace(out + ".tmp", out)
"""


class Broke(Exception):
    """Something failed that a measurement cannot go on without (not a missed target)."""


class Cancelled(Broke):
    """Someone else cancelled our Slurm job (the test cluster is shared; tests clean up with
    scancel): that side is run again (``again_if_cancelled``)."""


def bell(tag: object) -> str:
    """A Bell circuit no one has sent before: the comment makes its text unique."""
    return f"{BELL}// {tag}\n"


def clock(action: Callable[[], object]) -> float:
    """Seconds ``action`` took."""
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


# -- the one generic helper -----------------------------------------------------------------------

@dataclass
class Pairs:
    """Side-by-side timings: per pair, the measured seconds, the baseline seconds, their ratio."""

    measured: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [m / b for m, b in zip(self.measured, self.baseline)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def pairs(measured: Callable[[], float], baseline: Callable[[], float], n: int,
          warmup: int = 1) -> Pairs:
    """Run ``n`` pairs, alternating which side goes first (so drift and whatever one side leaves
    warm for the next favour neither); each callable runs its side once and returns the seconds
    that count (its own set-up excluded). ``warmup`` untimed pairs first."""
    for _ in range(warmup):
        measured()
        baseline()
    out = Pairs()
    for index in range(n):
        if index % 2 == 0:
            m = measured()
            b = baseline()
        else:
            b = baseline()
            m = measured()
        out.measured.append(m)
        out.baseline.append(b)
    return out


# -- what the rows share --------------------------------------------------------------------------

class Lab:
    """One work directory with a local-executor job store and its environment
    (``local_load.Side``), the store's private emulator (``session.Bench``: it also cancels the
    Slurm jobs listed in ``bench.slurm_jobs`` at the end), and ways to run each side."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.side = Side("ratios", work, None)
        self.side.store.mkdir(mode=0o700)
        self.bench = Bench(str(self.side.store))  # set before the emulator: cleanup() needs it
        self.env: dict[str, str] = self.side.env
        # No config file, as for a user of this machine: paths that do not exist (os.devnull,
        # which the other benchmarks use, exists, and would be parsed as an empty TOML file).
        self.env["QMIO_SITE_CONFIG"] = str(work / "no-site-config.toml")
        self.env["QMIO_USER_CONFIG"] = str(work / "no-user-config.toml")
        self.keys = self.side.store / "emulator" / "keys"
        qmio = Path(PY).with_name("qmio")
        self.qmio = str(qmio) if qmio.exists() else ""
        self._tags = itertools.count()
        self._done_job: str | None = None
        self._stores: dict[int, dict[str, str]] = {}
        self.retries = 0  # sides run again because someone else cancelled their Slurm job

    def start(self) -> None:
        """The emulator every row uses; jobs find it by its port (and prove it by its keys)."""
        port, self.address = self.bench.start_emulator()
        self.env["QMIO_EMULATOR_PORT"] = str(port)
        self.settings = Settings.load(environ=self.env)
        self.manager = JobManager(self.settings)

    # -- programs and processes -------------------------------------------------------------------

    def tag(self) -> int:
        return next(self._tags)

    def program_file(self, text: str) -> str:
        path = self.work / "programs" / f"p{self.tag()}.qasm"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return str(path)

    def qmio_argv(self, *args: str) -> list[str]:
        """The ``qmio`` a user types (the console script), else ``python -m qmio_hpc``."""
        return [self.qmio, *args] if self.qmio else [PY, "-m", "qmio_hpc", *args]

    def run(self, argv: list[str], env: dict[str, str] | None = None,
            timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(argv, env=self.env if env is None else env, cwd=self.work,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Broke(f"{_short(argv)} did not end within {timeout:g} s") from None
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-300:]
            raise Broke(f"{_short(argv)} exited {done.returncode}: {tail}")
        return done

    def timed(self, argv: list[str], env: dict[str, str] | None = None) -> float:
        return clock(lambda: self.run(argv, env))

    def bare_argv(self, programs: list[str], out: str = "-") -> list[str]:
        return [PY, "-c", BARE, self.address, str(self.keys), CONFIG_JSON, out, *programs]

    def bare(self, count: int = 1) -> float:
        """One bare client process, ``count`` round trips of fresh Bell circuits."""
        tag = self.tag()
        return self.timed(self.bare_argv([bell(f"bare {tag}.{k}") for k in range(count)]))

    # -- jobs -------------------------------------------------------------------------------------

    def done_job(self) -> str:
        """The id of a finished local job (made once, by ``qmio submit`` itself)."""
        if self._done_job is None:
            job_id = self.run(self.qmio_argv("submit", self.program_file(bell("done")),
                                             "-q")).stdout.strip()
            status = self.manager.wait(job_id, timeout=120)
            if status.name != "DONE":
                raise Broke(f"job {job_id} ended {status.name}: {status.detail}")
            local = self.manager.store.get(job_id).file("local.json")
            deadline = time.monotonic() + 30  # the runner records the end after the result
            while json.loads(local.read_text()).get("phase") != "finished":
                if time.monotonic() > deadline:
                    raise Broke(f"the local runner did not record the end of job {job_id}")
                time.sleep(0.02)
            self._done_job = job_id
        return self._done_job

    def prepared_job(self) -> JobDir:
        """A job directory as ``qmio submit`` leaves it for a batch step: the spec written (its
        program checked here, as the submitting process does), handed to no executor yet."""
        spec = self.manager.build_spec([{"name": "bell", "program": bell(f"step {self.tag()}")}],
                                       OPTIONS)
        return self.manager.store.create(spec)

    def store_with(self, count: int) -> dict[str, str]:
        """The environment of a new store holding ``count`` finished jobs: copies of a real one
        (every file of its directory; ids, executor records and spec's store path rewritten), so
        ``qmio status`` reads real job records, only not made one by one."""
        if count in self._stores:
            return self._stores[count]
        source = self.manager.store.get(self.done_job())
        root = self.work / f"store-{count}"
        for sub in ("jobs", "ids", "local/alloc", "local/queue"):
            (root / sub).mkdir(mode=0o700, parents=True)
        for number in range(1, count + 1):
            job_id, key = f"L{number}", f"{source.key}-{number:06d}"
            target = root / "jobs" / key
            shutil.copytree(source.path, target, ignore=shutil.ignore_patterns(".*"))  # no temps
            _patch_json(target / "scheduler.json", job_id=job_id)
            _patch_json(target / "local.json", id=job_id)
            spec = json.loads((target / "spec.json").read_text())
            spec["store"] = spec["connection"]["store"] = str(root)
            (target / "spec.json").write_text(json.dumps(spec))
            os.symlink(f"../jobs/{key}", root / "ids" / job_id)
            os.symlink(target, root / "local" / "alloc" / job_id)
        (root / "local" / "counter").write_text(str(count))
        self._stores[count] = {**self.env, "QMIO_STORE": str(root)}
        return self._stores[count]

    def slurm_env(self, hold: bool) -> dict[str, str]:
        """The Slurm executor, the QPU held as a GRES (as the test cluster models it)."""
        extra = {"QMIO_SLURM_EXTRA_DIRECTIVES": "--hold"} if hold else {}
        return {**self.env, "QMIO_EXECUTOR": "slurm", "QMIO_SLURM_QPU_HOLD": "gres", **extra}

    def raw_script(self, body: str, name: str) -> str:
        """A batch script asking for what qmio's asks for: partition, one node and task, the
        QPU GRES, the same time limit."""
        lines = ["#!/bin/bash", "#SBATCH --job-name=ratios-raw",
                 f"#SBATCH --partition={self.settings.get('slurm.partition')}",
                 "#SBATCH --nodes=1", "#SBATCH --ntasks=1",
                 f"#SBATCH --gres={self.settings.get('slurm.gres')}",
                 f"#SBATCH --time={self.settings.get('slurm.time')}",
                 f"#SBATCH --output={self.work}/raw-%j.out", body, ""]
        path = self.work / name
        path.write_text("\n".join(lines))
        return str(path)

    def sbatch(self, script: str, *options: str) -> str:
        """``sbatch``; the id is recorded, so that the clean-up cancels it if it is still there."""
        job_id = self.run(["sbatch", "--parsable", *options, script]).stdout.strip().split(";")[0]
        self.bench.slurm_jobs.append(job_id)
        return job_id

    def held(self, submit: Callable[[], str]) -> float:
        """Seconds ``submit`` took to submit a held job, which is then cancelled at once (not
        timed): the cluster is shared, and others' tests may count what waits in the partition."""
        began = time.perf_counter()
        job_id = submit()
        seconds = time.perf_counter() - began
        if job_id not in self.bench.slurm_jobs:
            self.bench.slurm_jobs.append(job_id)
        subprocess.run(["scancel", job_id], capture_output=True)
        return seconds

    def cleanup(self) -> None:
        """Slurm jobs and the emulator (``Bench.cleanup``), then the store's local queue owner,
        by the pid it recorded, if it is still ours."""
        self.bench.cleanup()
        pid_file = self.side.store / "local" / "owner.pid"
        try:
            pid = int(pid_file.read_text())
            if str(self.side.store).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, 15)
        except (OSError, ValueError):
            pass


def _patch_json(path: Path, **values: str) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def _short(argv: list[str]) -> str:
    words = [w if len(w) < 60 else w[:20] + "..." for w in argv[:6]]
    return shlex.join(words) + (" ..." if len(argv) > 6 else "")


def wait_gone(job_id: str, limit: float = 60.0) -> None:
    """Until Slurm no longer lists the job (its allocation ended: the QPU GRES is free again)."""
    deadline = time.monotonic() + limit
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True,
                         text=True).stdout.strip():
        if time.monotonic() > deadline:
            raise Broke(f"Slurm job {job_id} still listed {limit:g} s after it ended")
        time.sleep(0.05)


def ended_without_result(job_id: str, out: Path) -> None:
    """Raise if the raw job has left the queue and its result file is not there (after a grace
    for the file to show): Cancelled if someone cancelled it, else Broke."""
    if subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True,
                      text=True).stdout.strip():
        return
    time.sleep(1.0)
    if out.exists():
        return
    state = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State"],
                           capture_output=True, text=True).stdout.strip()
    kind = Cancelled if state.startswith("CANCELLED") else Broke
    raise kind(f"raw Slurm job {job_id} ended {state or 'unseen'} without a result")


def again_if_cancelled(lab: Lab, side: Callable[[], float],
                       attempts: int = 3) -> Callable[[], float]:
    """``side``, run again (up to ``attempts`` times) when someone else cancelled its job; each
    retry is counted in ``lab.retries`` and reported with the row."""
    def run() -> float:
        for _ in range(attempts - 1):
            try:
                return side()
            except Cancelled:
                lab.retries += 1
        return side()
    return run


def submitted_id(stdout: str) -> str:
    found = re.search(r"Submitted job (\S+)", stdout)
    if not found:
        raise Broke(f"qmio submit printed no job id: {stdout.strip()[:200]!r}")
    return found.group(1)


# -- the rows -------------------------------------------------------------------------------------

def row_step(lab: Lab, n: int) -> Pairs:
    """The batch step on a prepared job directory, as the QPU node runs it: its own Python."""
    def step() -> float:
        job = lab.prepared_job()
        seconds = lab.timed([PY, "-m", "qmio_hpc.step", str(job.path)])
        if job.result() is None:
            raise Broke(f"the step wrote no result in {job.path}")
        return seconds
    return pairs(step, lab.bare, n)


def row_submit_wait(lab: Lab, n: int) -> Pairs:
    return pairs(lambda: lab.timed(lab.qmio_argv("submit", lab.program_file(bell(lab.tag())),
                                                 "--wait")), lab.bare, n)


def row_local_50(lab: Lab, n: int, jobs: int = 50) -> Pairs:
    """``jobs`` submissions back to back (each ``qmio submit FILE -q``, as a shell loop does),
    then until every one is final; against ``jobs`` bare client processes one after another."""
    def local() -> float:
        files = [lab.program_file(bell(lab.tag())) for _ in range(jobs)]
        began = time.perf_counter()
        ids = [lab.run(lab.qmio_argv("submit", f, "-q")).stdout.strip() for f in files]
        while True:
            statuses = lab.manager.statuses(ids)
            if all(s.final for s in statuses.values()):
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - began
        bad = {i: s.name for i, s in statuses.items() if s.name != "DONE"}
        if bad:
            raise Broke(f"{len(bad)} of {jobs} local jobs not DONE: {list(bad.items())[:3]}")
        return seconds
    return pairs(local, lambda: sum(lab.bare() for _ in range(jobs)), n, warmup=0)


def row_submit_slurm(lab: Lab, n: int) -> Pairs:
    """Submission alone: both sides submit held jobs (they never run)."""
    env = lab.slurm_env(hold=True)
    script = lab.raw_script("true", "raw-true.sbatch")

    def qmio() -> float:
        argv = lab.qmio_argv("submit", lab.program_file(bell(lab.tag())), "--executor", "slurm")
        return lab.held(lambda: submitted_id(lab.run(argv, env).stdout))
    return pairs(qmio, lambda: lab.held(lambda: lab.sbatch(script, "--hold")), n)


def row_backend_run(lab: Lab, n: int) -> Pairs:
    """``backend.run(circuit)`` per call in this process (Slurm executor, jobs held) against
    ``sbatch`` per call; the circuit is transpiled once, before, as a loop would."""
    from qiskit import QuantumCircuit, transpile  # noqa: PLC0415

    from qmio_hpc import QmioRuntimeService  # noqa: PLC0415
    backend = QmioRuntimeService(Settings.load(environ=lab.slurm_env(hold=True))).backend("qpu")
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    circuit = transpile(circuit, backend)
    script = lab.raw_script("true", "raw-true.sbatch")
    return pairs(lambda: lab.held(lambda: backend.run(circuit, shots=SHOTS).job_id()),
                 lambda: lab.held(lambda: lab.sbatch(script, "--hold")), n)


def row_slurm_wait(lab: Lab, n: int) -> Pairs:
    """Jobs that run: ``qmio submit --wait`` against sbatch of a script running the bare client
    (it writes the reply to a file) and a look for that file every 50 ms. Before each side, the
    previous allocation has left the queue, others' jobs in the partition are waited out, and
    then ``SLURM_SETTLE`` seconds pass."""
    env = lab.slurm_env(hold=False)

    def settle() -> None:
        lab.bench.wait_quiet(60)
        time.sleep(SLURM_SETTLE)

    def qmio() -> float:
        settle()
        argv = lab.qmio_argv("submit", lab.program_file(bell(lab.tag())), "--wait")
        began = time.perf_counter()
        try:
            out = lab.run(argv, env).stdout
        except Broke as exc:
            if "ended CANCELLED" in str(exc):
                raise Cancelled(str(exc)) from None
            raise
        seconds = time.perf_counter() - began
        job_id = submitted_id(out)
        lab.bench.slurm_jobs.append(job_id)
        wait_gone(job_id)
        return seconds

    def raw() -> float:
        settle()
        tag = lab.tag()
        out = lab.work / f"raw-{tag}.result"
        body = "exec " + shlex.join(lab.bare_argv([bell(f"raw {tag}")], str(out)))
        script = lab.raw_script(body, f"raw-{tag}.sbatch")
        began = time.perf_counter()
        job_id = lab.sbatch(script)
        looks = 0
        while not out.exists():
            looks += 1
            if looks % 20 == 0:  # once a second: has the job gone without a result?
                ended_without_result(job_id, out)
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        wait_gone(job_id)
        return seconds
    # every job has ended when a side returns: nothing is left to cancel
    return pairs(again_if_cancelled(lab, qmio), again_if_cancelled(lab, raw), n)


def versus_pass(*args: str) -> Callable[[Lab, int], Pairs]:
    """``qmio ARGS`` against ``python -c pass``: what the command costs over Python's start."""
    def row(lab: Lab, n: int) -> Pairs:
        argv = lab.qmio_argv(*[lab.done_job() if a == "ID" else a for a in args])
        return pairs(lambda: lab.timed(argv), lambda: lab.timed([PY, "-c", "pass"]), n)
    return row


def row_status_1000(lab: Lab, n: int) -> Pairs:
    """``qmio status`` (no id: it looks at every job and lists those not final) in a store of
    1000 finished jobs against the same in a store of 1."""
    many, one = lab.store_with(1000), lab.store_with(1)
    return pairs(lambda: lab.timed(lab.qmio_argv("status"), many),
                 lambda: lab.timed(lab.qmio_argv("status"), one), n)


def row_job_200(lab: Lab, n: int, count: int = 200) -> Pairs:
    """``qmio submit`` of 200 program files as one job, ``--wait``, local executor, against
    one bare client process making 200 round trips on one socket."""
    def job() -> float:
        files = [lab.program_file(bell(lab.tag())) for _ in range(count)]
        return lab.timed(lab.qmio_argv("submit", *files, "--wait"))
    return pairs(job, lambda: lab.bare(count), n)


def row_emulator_bell(lab: Lab, n: int) -> Pairs:
    """From one connected client in this process: a Bell circuit, 1000 shots, against
    ``("version",)``; the same socket, so only the emulator's work differs."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = client_keys(lab.keys)
    sock.linger = 0
    sock.rcvtimeo = 60_000
    sock.connect(lab.address)
    program = pickle.dumps(("program", BELL, CONFIG_JSON), protocol=4)
    version = pickle.dumps(("version",), protocol=4)

    def ask(payload: bytes, key: str) -> float:
        began = time.perf_counter()
        sock.send(payload)
        try:
            reply = pickle.loads(sock.recv())
        except zmq.Again:
            raise Broke("the emulator did not answer in 60 s") from None
        seconds = time.perf_counter() - began
        if key not in reply:
            raise Broke(f"the emulator's reply has no {key!r}: {reply!r:.200}")
        return seconds
    try:
        return pairs(lambda: ask(program, "results"), lambda: ask(version, "qat_rpc_version"), n,
                     warmup=5)
    finally:
        sock.close(linger=0)


@dataclass(frozen=True)
class Row:
    name: str
    measured: str
    baseline: str
    target: float
    pairs: int  # default; sized so that a full run takes about five minutes on two cores
    quick: int
    run: Callable[[Lab, int], Pairs]
    slurm: bool = False


ROWS: tuple[Row, ...] = (
    Row("step", "batch step, one Bell circuit", "bare ZMQ client process", 1.5, 100, 3, row_step),
    Row("submit-wait", "qmio submit --wait, local executor", "bare ZMQ client process", 3.0, 100,
        3, row_submit_wait),
    Row("local-50", "50 local jobs back to back, until all done", "50 bare client processes",
        3.0, 7, 1, row_local_50),
    Row("submit-slurm", "qmio submit --executor slurm", "raw sbatch", 12.0, 60, 3,
        row_submit_slurm, slurm=True),
    Row("backend-run", "backend.run(circuit) per call, one process", "sbatch per call", 1.2, 200,
        5, row_backend_run, slurm=True),
    Row("slurm-wait", "qmio submit --wait, Slurm", "raw sbatch + 50 ms poll for the result", 2.0,
        16, 2, row_slurm_wait, slurm=True),
    Row("status-id", "qmio status ID", "python -c pass", 2.0, 60, 3, versus_pass("status", "ID")),
    Row("help", "qmio --help", "python -c pass", 2.5, 60, 3, versus_pass("--help")),
    Row("status-1000", "qmio status, 1000 jobs", "the same with 1 job", 1.8, 40, 3,
        row_status_1000),
    Row("job-200", "one job of 200 programs", "200 bare round trips in one process", 1.3, 25, 1,
        row_job_200),
    Row("emulator-bell", "emulator, Bell 1000 shots", "('version',) round trip", 3.0, 500, 20,
        row_emulator_bell),
)


# -- running and reporting ------------------------------------------------------------------------

def slurm_up() -> bool:
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def measure(row: Row, lab: Lab, n: int, slurm: bool) -> dict[str, Any]:
    """One row's figures, or the one line that says why it could not be measured."""
    out: dict[str, Any] = {"name": row.name, "measured": row.measured, "baseline": row.baseline,
                           "target": row.target}
    if row.slurm and not slurm:
        return {**out, "error": SLURM_DOWN}
    began, retries = time.perf_counter(), lab.retries
    try:
        result = row.run(lab, n)
    except Exception as exc:  # noqa: BLE001 - the row reports it; the others go on
        return {**out, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400]}
    return {**out, "ratio": result.ratio, "pass": result.ratio <= row.target,
            "pairs": len(result.ratios), "ratios": result.ratios,
            "pair_seconds": list(zip(result.measured, result.baseline)),
            "measured_s": statistics.median(result.measured),
            "baseline_s": statistics.median(result.baseline),
            "seconds": time.perf_counter() - began, "retried": lab.retries - retries}


def describe(figure: dict[str, Any]) -> str:
    if "error" in figure:
        return f"[{figure['name']}] BROKEN: {figure['error']}"
    low, q1, _, q3, high = _quartiles(figure["ratios"])
    return (f"[{figure['name']}] {figure['ratio']:.2f}x (target <= {figure['target']:g}x); "
            f"medians {_ms(figure['measured_s'])} vs {_ms(figure['baseline_s'])}; "
            f"{figure['pairs']} pairs in {figure['seconds']:.0f} s; pair ratios: min "
            f"{low:.2f}, quartiles {q1:.2f} {q3:.2f}, max {high:.2f}"
            + (f"; {figure['retried']} side(s) run again: someone else cancelled their job"
               if figure["retried"] else ""))


def _quartiles(values: list[float]) -> list[float]:
    ordered = sorted(values)
    if len(ordered) < 2:
        return ordered * 5
    return [ordered[0], *statistics.quantiles(ordered, n=4, method="inclusive"), ordered[-1]]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(figures: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'name':<14} {'measured':<45} {'baseline':<40} {'ratio':>7} {'target':>7} "
             f"{'result':<6} {'pairs':>5} {'median measured':>16} {'median baseline':>16}"]
    for f in figures:
        head = f"{f['name']:<14} {f['measured']:<45} {f['baseline']:<40}"
        if "error" in f:
            lines.append(f"{head} {'-':>7} {'<=' + format(f['target'], 'g') + 'x':>7} BROKEN")
            continue
        lines.append(f"{head} {f['ratio']:>6.2f}x {'<=' + format(f['target'], 'g') + 'x':>7} "
                     f"{'PASS' if f['pass'] else 'FAIL':<6} {f['pairs']:>5} "
                     f"{_ms(f['measured_s']):>16} {_ms(f['baseline_s']):>16}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [row.name for row in ROWS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, metavar="N",
                        help="pairs per row (default: each row's own, about 5 min in all)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"rows: {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="few pairs: a smoke test")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.rows = list(ROWS)
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown row(s) {', '.join(unknown)}; rows: {', '.join(names)}")
        args.rows = [row for row in ROWS if row.name in wanted]
    if args.pairs is not None and args.pairs < 1:
        parser.error("--pairs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    if args.json:  # the document alone goes to standard output; every line said goes to stderr
        sys.stdout = sys.stderr
    command = shlex.join([os.path.relpath(PY), *sys.argv])
    print(f"command: {command}\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    slurm = any(row.slurm for row in args.rows) and slurm_up()
    if any(row.slurm for row in args.rows) and not slurm:
        print(f"error: {SLURM_DOWN}; the Slurm rows cannot be measured", flush=True)
    work = Path(tempfile.mkdtemp(prefix="qmio-ratios-"))
    began = time.perf_counter()
    figures: list[dict[str, Any]] = []
    lab = Lab(work)
    try:
        lab.start()
        print(f"work directory {work}; emulator {lab.address} (ours); Bell circuit, {SHOTS} "
              f"shots", flush=True)
        for row in args.rows:
            n = args.pairs or (row.quick if args.quick else row.pairs)
            figures.append(measure(row, lab, n, slurm))
            print(describe(figures[-1]), flush=True)
    except Exception as exc:  # noqa: BLE001 - the set-up broke: one line, exit 1
        print(f"error: the set-up broke: {type(exc).__name__}: {' '.join(str(exc).split())}")
        return 1
    finally:
        lab.cleanup()
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - began
    print(f"\nmedian of pair ratios (measured / baseline), {elapsed:.0f} s in all; "
          f"command: {command}")
    print("\n".join(table(figures)), flush=True)
    if args.json:
        print(json.dumps({"command": command, "seconds": elapsed, "rows": figures}, indent=1),
              file=out)
    return 1 if any("error" in f for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
