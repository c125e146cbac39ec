"""What a session saves over separate Slurm jobs, and what it costs over a raw ZMQ request, on the
real Slurm test cluster and a built-in emulator that this script starts and owns.

    scripts/slurm-cluster/start.sh && .venv/bin/python bench/session.py
    (options: [--jobs N] [--separate M] [--pairs K] [--rounds R] [--cancel-jobs C]
     [--parts 1,2,3] [--profile FILE])

Defaults: N=200, M=20, K=200, R=4, C=50. Takes under a minute on an idle cluster.
Three measurements, in one run; rounds and pairs alternate the two sides, and ratios are medians
of ratios measured side by side:

1. A variational loop. R rounds, each: M/R separate Slurm jobs (sbatch + batch step each) and a
   fresh session running N jobs (odd rounds separate first, even rounds session first). Every job
   is submit + wait + result, one after the other (each waits for the previous result). The QPU is
   one GRES, so a session holds it while it lives: each round's session is closed, and its
   allocation gone, before separate jobs run. The separate side is timed on fewer jobs (M in
   all): the comparison is of *per-job* times. Ratio = median over rounds of (separate per job) /
   (session per job), once for a serving session's jobs alone and once with the session's start
   (sbatch until it serves) spread over its N jobs. Target: session at least 50x faster.
2. The per-job overhead of a session over a raw request, from the submitting process: K pairs,
   each a raw ``QPUClient.run_program`` to the same emulator, then one session job (submit + wait
   + result) of the same program; overhead_i = session_i - raw_i (after 5 untimed warm-up pairs).
   Targets: median <= 2 ms, p99 <= 10 ms. Also where a session job's time goes, from wall-clock
   stamps here and the worker's stamps in the result file. ``--profile FILE`` also runs cProfile
   on K more session jobs, client side. For the worker's side, set BENCH_WORKER_PYTHON to a
   script that runs ``python -m cProfile -o FILE "$@"``: it becomes the sessions' interpreter.
3. From ``scancel`` of a session's allocation until every client sees its jobs final: C jobs of
   ~0.2 s each (a second emulator of ours, with --time-model) are queued into a serving session,
   its allocation is scancelled, and a separate process (a fresh JobManager) and this one poll
   ``statuses`` until all are final. Target: <= 5 s.

Before each measurement the script waits (up to 5 min) until no one else's job is in the qpu
partition, and says so if others' jobs ran meanwhile. Settings come from the script alone: QMIO_*
and ZMQ_SERVER are removed from the environment and no site or user config file is read. The job
store is a temporary directory (``tempfile``: under $TMPDIR, else /tmp; file creation speed there
shows in the session's figures), removed at the end unless --keep-store. Sessions and jobs still
alive at the end are cancelled; the emulators it started are stopped. Exit code: 0 when every
target is met, 1 when one is missed, 2 when the Slurm cluster is not running.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Nothing from the caller's environment or config files may change what is measured.
for _name in [n for n in os.environ if n.startswith("QMIO_") or n == "ZMQ_SERVER"]:
    del os.environ[_name]
os.environ["QMIO_SITE_CONFIG"] = os.devnull
os.environ["QMIO_USER_CONFIG"] = os.devnull

from qmio_hpc.channel import client_keys  # noqa: E402
from qmio_hpc.config import Settings  # noqa: E402
from qmio_hpc.jobs import JobManager  # noqa: E402
from qmio_hpc.protocol import ExecutionOptions  # noqa: E402
from qmio_hpc.sessions import STATUS_ACCEPTING, STATUS_CLOSED  # noqa: E402
from qmio_hpc.transport import QPUClient  # noqa: E402

BELL = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
        'measure q[0] -> c[0];\nmeasure q[1] -> c[1];\n')
SHOTS = 100
OPTIONS = ExecutionOptions(shots=SHOTS)
PROGRAMS = [{"name": "bell", "program": BELL, "checked": True}]
#: Part 3: each program takes shots x repetition_period = 0.2 s on the time-model emulator.
SLOW = ExecutionOptions(shots=100, repetition_period=0.002)

TARGET_RATIO = 50.0
TARGET_MEDIAN_MS = 2.0
TARGET_P99_MS = 10.0
TARGET_CANCEL_S = 5.0

# The separate process of part 3: a fresh manager that polls statuses from the moment it is told
# the allocation was scancelled (the monotonic clock is system-wide on Linux).
POLLER = r"""
import json, sys, time
from qmio_hpc.config import Settings
from qmio_hpc.jobs import JobManager
manager = JobManager(Settings.load(json.loads(sys.argv[1])))
manager.statuses([])  # imports done before the clock starts
print("ready", flush=True)
order = json.loads(sys.stdin.readline())
ids, t0 = order["ids"], order["t0"]
polls = 0
while True:
    statuses = manager.statuses(ids)
    polls += 1
    if all(s.final for s in statuses.values()) or time.monotonic() - t0 > 60:
        break
    time.sleep(0.02)
elapsed = time.monotonic() - t0
print(json.dumps({"elapsed": elapsed, "polls": polls,
                  "statuses": {k: [s.name, s.detail] for k, s in statuses.items()}}), flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def say(text: str = "") -> None:
    print(text, flush=True)


class Bench:
    def __init__(self, store: str) -> None:
        self.store = store
        self.emulators: list[subprocess.Popen] = []
        self.time_model_ports: set[int] = set()
        self.sessions: list[tuple[JobManager, str]] = []
        self.slurm_jobs: list[str] = []

    # -- set-up -----------------------------------------------------------------------------------

    def overrides(self, port: int) -> dict[str, Any]:
        """Settings for jobs on the emulator at ``port`` (with its options: a job uses no
        emulator whose options differ from its own)."""
        return {"store": self.store, "executor": "slurm", "slurm.qpu_hold": "gres",
                "slurm.partition": "qpu", "endpoint": "emulator", "emulator_port": port,
                "emulator_time_model": port in self.time_model_ports,
                **({"slurm.python": os.environ["BENCH_WORKER_PYTHON"]} if os.environ.get("BENCH_WORKER_PYTHON") else {})}

    def start_emulator(self, *extra: str) -> tuple[int, str]:
        """An emulator of our own on a free loopback port; whatever runs a job reuses it."""
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        if "--time-model" in extra:
            self.time_model_ports.add(port)
        log = open(os.path.join(self.store, f"emulator-{port}.log"), "ab")
        # the store's private emulator: the built-in endpoint uses no other (emulator.launcher)
        proc = subprocess.Popen([sys.executable, "-m", "qmio_hpc", "--store", self.store,
                                 "emulator", "--private", "--bind", address,
                                 "--idle-exit", "0", *extra],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        self.emulators.append(proc)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the emulator on {address} exited (code {proc.returncode}); "
                                   f"see {log.name}")
            try:
                keys = client_keys(Path(self.store) / "emulator" / "keys")
                with QPUClient(address, connect_timeout=1.0, reply_timeout=5.0,
                               retries=0, curve=keys) as client:
                    client.version()
                return port, address
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def manager(self, port: int) -> JobManager:
        return JobManager(Settings.load(self.overrides(port)))

    # -- sessions ---------------------------------------------------------------------------------

    def start_session(self, manager: JobManager) -> tuple[str, float]:
        """A session, once it serves; returns its id and the seconds from start to serving."""
        began = time.perf_counter()
        sid = manager.sessions.start(idle_timeout=120, max_time=900)
        self.sessions.append((manager, sid))
        deadline = time.monotonic() + 120
        while True:
            view = manager.sessions.view(sid)
            if view.status == STATUS_ACCEPTING:
                return sid, time.perf_counter() - began
            if view.status == STATUS_CLOSED or time.monotonic() > deadline:
                raise RuntimeError(f"session {sid} did not start serving: {view.status} "
                                   f"({view.reason})")
            time.sleep(0.05)

    def close_session(self, manager: JobManager, sid: str) -> None:
        """Close it and wait until its allocation has left the queue (the QPU GRES is free)."""
        manager.sessions.close([sid])
        deadline = time.monotonic() + 60
        while True:
            closed = manager.sessions.view(sid).status == STATUS_CLOSED
            listed = subprocess.run(["squeue", "-h", "-j", sid], capture_output=True,
                                    text=True).stdout.strip()
            if closed and not listed:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {sid} did not end within 60 s of its close")
            time.sleep(0.1)

    # -- one job each way -------------------------------------------------------------------------

    @staticmethod
    def check(data: dict[str, Any], shots: int = SHOTS) -> None:
        counts = data["results"][0]["reply"]["results"]["c"]
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == shots, counts

    def one_job(self, manager: JobManager, session: str | None,
                phases: list[dict[str, float]] | None = None) -> float:
        """Submit, wait, read the result; the seconds it took. With ``phases``, also append
        where the time went (wall clock here and, from the result file, in the worker)."""
        began = time.perf_counter()
        t_submit = time.time()
        job_id = manager.submit(PROGRAMS, OPTIONS, session=session)
        t_queued = time.time()
        if session is None:
            self.slurm_jobs.append(job_id)
        status = manager.wait(job_id, timeout=120)
        t_final = time.time()
        data = manager.result(job_id)
        elapsed = time.perf_counter() - began
        t_read = time.time()
        assert status.name == "DONE", (job_id, status)
        self.check(data)
        if phases is not None:
            phases.append({
                "submit": t_queued - t_submit,
                "to_worker": data["started"] - t_queued,
                "in_worker": data["finished"] - data["started"],
                "to_client": t_final - data["finished"],
                "read": t_read - t_final,
            })
        return elapsed

    # -- other people's jobs ---------------------------------------------------------------------

    def ours(self) -> set[str]:
        return set(self.slurm_jobs) | {sid for _, sid in self.sessions}

    def foreign(self) -> list[str]:
        """Jobs of others in the QPU partition now (they compete for the QPU GRES and the CPUs)."""
        lines = subprocess.run(["squeue", "-h", "-p", "qpu", "-o", "%i"], capture_output=True,
                               text=True).stdout.split()
        return [job for job in lines if job not in self.ours()]

    def wait_quiet(self, limit: float = 300.0) -> None:
        """Wait (up to ``limit`` s) until no job of others is in the QPU partition."""
        deadline = time.monotonic() + limit
        others = self.foreign()
        if others:
            say(f"    waiting for other jobs in the qpu partition to leave: {' '.join(others)}")
        while others and time.monotonic() < deadline:
            time.sleep(1.0)
            others = self.foreign()
        if others:
            say(f"    still there after {limit:g} s, measuring anyway: {' '.join(others)}")

    def foreign_since(self, since: float) -> list[str]:
        """Jobs of others in the QPU partition at any time since ``since`` (sacct; squeue if
        there is no accounting)."""
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 1))
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-r", "qpu", "-S", start, "-o",
                              "JobID"], capture_output=True, text=True)
        ids = out.stdout.split() if out.returncode == 0 else self.foreign()
        return sorted({job for job in ids if job not in self.ours()})

    # -- cleaning up ------------------------------------------------------------------------------

    def cleanup(self) -> None:
        for manager, sid in self.sessions:
            try:
                if manager.sessions.view(sid).status != STATUS_CLOSED:
                    manager.sessions.cancel([sid])
            except Exception as exc:  # keep cleaning
                say(f"cleanup: session {sid}: {exc}")
        if self.slurm_jobs:
            subprocess.run(["scancel", *self.slurm_jobs], capture_output=True)
        for proc in self.emulators:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# -- 1. a variational loop: session vs separate jobs -----------------------------------------------

def loop_side_by_side(bench: Bench, manager: JobManager, n: int, m: int, rounds: int
                      ) -> dict[str, Any]:
    per_round_sep = max(1, math.ceil(m / rounds))
    say(f"[1] {rounds} rounds, each: {per_round_sep} separate Slurm jobs and a fresh session "
        f"running {n} jobs (submit+wait+result, sequential)")
    say("    (odd rounds run the separate jobs first, even rounds the session first)")
    rows = []
    for r in range(1, rounds + 1):
        bench.wait_quiet()
        window = time.time()
        separate: list[float] = []
        if r % 2:
            separate = [bench.one_job(manager, None) for _ in range(per_round_sep)]
        sid, start_s = bench.start_session(manager)
        began = time.perf_counter()
        session_jobs = [bench.one_job(manager, sid) for _ in range(n)]
        session_s = time.perf_counter() - began
        bench.close_session(manager, sid)
        if not r % 2:
            separate = [bench.one_job(manager, None) for _ in range(per_round_sep)]
        others = bench.foreign_since(window)
        sep_job = statistics.fmean(separate)
        ses_job = session_s / n
        ses_job_with_start = (start_s + session_s) / n
        rows.append({"sep_job": sep_job, "ses_job": ses_job, "start": start_s,
                     "ses_job_with_start": ses_job_with_start,
                     "ses_median": statistics.median(session_jobs),
                     "ratio": sep_job / ses_job, "ratio_with_start": sep_job / ses_job_with_start,
                     "others": others})
        say(f"    round {r}: separate {sep_job * 1000:8.1f} ms/job ({per_round_sep} jobs) | "
            f"session {ses_job * 1000:6.2f} ms/job ({n} jobs, {session_s:.2f} s), start "
            f"{start_s:.2f} s | ratio {sep_job / ses_job:7.1f}x, with start "
            f"{sep_job / ses_job_with_start:6.1f}x"
            + (f" | other jobs in qpu meanwhile: {' '.join(others)}" if others else ""))
    out = {
        "sep_job": statistics.median(r["sep_job"] for r in rows),
        "ses_job": statistics.median(r["ses_job"] for r in rows),
        "start": statistics.median(r["start"] for r in rows),
        "ses_job_with_start": statistics.median(r["ses_job_with_start"] for r in rows),
        "ratio": statistics.median(r["ratio"] for r in rows),
        "ratio_with_start": statistics.median(r["ratio_with_start"] for r in rows),
        "separate_jobs": per_round_sep * rounds, "session_jobs": n * rounds, "n": n,
        "contended": sum(1 for r in rows if r["others"]),
    }
    say(f"    separate Slurm job       : {out['sep_job'] * 1000:9.1f} ms/job (median of rounds; "
        f"{out['separate_jobs']} jobs in all)")
    say(f"    job in a serving session : {out['ses_job'] * 1000:9.2f} ms/job (median of rounds; "
        f"{out['session_jobs']} jobs in all)")
    say(f"    session start (to serving): {out['start']:8.2f} s (median of rounds)")
    say(f"    {n} circuits: separate ~{out['sep_job'] * n:.1f} s (extrapolated from per-job), "
        f"session {out['ses_job'] * n:.2f} s, with its start {out['ses_job_with_start'] * n:.2f} s")
    say(f"    ratio separate/session (median of round ratios): {out['ratio']:.1f}x; with the "
        f"session's start: {out['ratio_with_start']:.1f}x")
    say(f"    {verdict(out['ratio'] >= TARGET_RATIO)}: serving session >= {TARGET_RATIO:g}x "
        f"faster per job")
    say(f"    {verdict(out['ratio_with_start'] >= TARGET_RATIO)}: {n} circuits in a session, its "
        f"start included, >= {TARGET_RATIO:g}x faster")
    return out


# -- 2. overhead over a raw ZMQ round trip ---------------------------------------------------------

def overhead_pairs(bench: Bench, manager: JobManager, address: str, pairs: int,
                   profile: str | None) -> dict[str, Any]:
    say(f"[2] {pairs} pairs: raw run_program to {address}, then one session job (same program)")
    bench.wait_quiet()
    say(f"    load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    sid, start_s = bench.start_session(manager)
    client = QPUClient(address, curve=client_keys(Path(bench.store) / "emulator" / "keys"))
    try:
        def raw() -> float:
            began = time.perf_counter()
            reply = client.run_program(BELL, OPTIONS)
            elapsed = time.perf_counter() - began
            assert sum(reply["results"]["c"].values()) == SHOTS, reply
            return elapsed

        for _ in range(5):  # warm-up, untimed: channel connection, imports, caches
            raw()
            bench.one_job(manager, sid)
        raw_s, ses_s, phases = [], [], []
        for _ in range(pairs):
            raw_s.append(raw())
            ses_s.append(bench.one_job(manager, sid, phases))
        if profile:
            import cProfile  # noqa: PLC0415
            import pstats  # noqa: PLC0415
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(pairs):
                bench.one_job(manager, sid)
            profiler.disable()
            profiler.dump_stats(profile)
            say(f"    client-side profile of {pairs} more session jobs written to {profile}")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    finally:
        client.close()
        bench.close_session(manager, sid)
    overhead_ms = [(s - r) * 1000 for s, r in zip(ses_s, raw_s)]
    ratios = [s / r for s, r in zip(ses_s, raw_s)]
    out = {"raw_ms": statistics.median(raw_s) * 1000, "ses_ms": statistics.median(ses_s) * 1000,
           "median_ms": statistics.median(overhead_ms), "p99_ms": percentile(overhead_ms, 99),
           "max_ms": max(overhead_ms), "ratio": statistics.median(ratios), "pairs": pairs}
    say(f"    raw round trip          : {out['raw_ms']:7.2f} ms (median)")
    say(f"    session job             : {out['ses_ms']:7.2f} ms (median)")
    say(f"    overhead session - raw  : median {out['median_ms']:6.2f} ms, p99 {out['p99_ms']:6.2f}"
        f" ms, max {out['max_ms']:6.2f} ms")
    say(f"    ratio session/raw       : {out['ratio']:6.2f}x (median of pair ratios)")
    say("    where a session job's time goes (median ms; wall clock, worker stamps from its "
        "result file):")
    words = {"submit": "submit() returns (client: files, queue entry, channel 'queued')",
             "to_worker": "until the worker starts the job (channel, queue scan, job checks)",
             "in_worker": "worker runs it (the QPU round trip is inside; raw alone is above)",
             "to_client": "result written until wait() returns (claim, write, channel reply)",
             "read": "status + result() read back by the client"}
    for key, text in words.items():
        values = [p[key] * 1000 for p in phases]
        say(f"      {statistics.median(values):6.2f} (p99 {percentile(values, 99):6.2f})  {text}")
    say(f"    {verdict(out['median_ms'] <= TARGET_MEDIAN_MS)}: median overhead <= "
        f"{TARGET_MEDIAN_MS:g} ms")
    say(f"    {verdict(out['p99_ms'] <= TARGET_P99_MS)}: p99 overhead <= {TARGET_P99_MS:g} ms")
    return out


# -- 3. scancel -> every client sees the jobs final ------------------------------------------------

def poll_final(manager: JobManager, ids: list[str], t0: float) -> tuple[float, dict]:
    while True:
        statuses = manager.statuses(ids)
        if all(s.final for s in statuses.values()) or time.monotonic() - t0 > 60:
            return time.monotonic() - t0, statuses
        time.sleep(0.02)


def scancel_to_final(bench: Bench, count: int) -> dict[str, Any]:
    port, address = bench.start_emulator("--time-model")
    say(f"[3] {count} jobs of ~{SLOW.shots * SLOW.repetition_period:.1f} s each queued into a "
        f"serving session (time-model emulator at {address}), then scancel of its allocation")
    manager = bench.manager(port)
    bench.wait_quiet()
    sid, _ = bench.start_session(manager)
    poller = subprocess.Popen([sys.executable, "-c", POLLER, json.dumps(bench.overrides(port))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert poller.stdout is not None and poller.stdin is not None
        if poller.stdout.readline().strip() != "ready":
            raise RuntimeError("the polling process did not start")
        ids = [manager.submit(PROGRAMS, SLOW, session=sid) for _ in range(count)]
        t0 = time.monotonic()
        subprocess.run(["scancel", sid], check=True)
        scancel_s = time.monotonic() - t0
        poller.stdin.write(json.dumps({"ids": ids, "t0": t0}) + "\n")
        poller.stdin.flush()
        here_s, here = poll_final(manager, ids, t0)
        child = json.loads(poller.stdout.readline())
        poller.wait(timeout=30)
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait()
    there_s = child["elapsed"]
    names = {job_id: name for job_id, (name, _) in child["statuses"].items()}
    tally = {word: sum(1 for v in names.values() if v == word)
             for word in ("DONE", "CANCELLED", "ERROR")}
    not_final = sorted(job_id for job_id, name in names.items()
                       if name not in ("DONE", "CANCELLED", "ERROR"))
    not_final += sorted(job_id for job_id, s in here.items() if not s.final)
    agree = all(here[job_id].name == names[job_id] for job_id in ids)
    worst = max(here_s, there_s)
    out = {"scancel_s": scancel_s, "separate_s": there_s, "submitter_s": here_s, "worst_s": worst,
           **tally, "not_final": len(not_final), "agree": agree, "count": count}
    say(f"    scancel itself             : {scancel_s:6.3f} s")
    say(f"    all final, separate process: {there_s:6.3f} s after scancel ({child['polls']} polls)")
    say(f"    all final, submitting one  : {here_s:6.3f} s after scancel")
    say(f"    outcomes: DONE {tally['DONE']}, CANCELLED {tally['CANCELLED']}, ERROR "
        f"{tally['ERROR']}, not final {len(not_final)}; both processes agree: {agree}")
    for word in ("CANCELLED", "ERROR"):
        example = next((detail for name, detail in child["statuses"].values() if name == word),
                       None)
        if example:
            say(f"    e.g. {word}: {example}")
    say(f"    {verdict(worst <= TARGET_CANCEL_S and not not_final)}: every client sees every job "
        f"final <= {TARGET_CANCEL_S:g} s after scancel")
    assert not not_final, f"jobs still not final 60 s after scancel: {not_final}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="session jobs per round (part 1)")
    parser.add_argument("--separate", type=int, default=20,
                        help="separate Slurm jobs in all, spread over the rounds (part 1)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (part 1)")
    parser.add_argument("--pairs", type=int, default=200, help="raw/session pairs (part 2)")
    parser.add_argument("--cancel-jobs", type=int, default=50, help="jobs queued (part 3)")
    parser.add_argument("--profile", metavar="FILE",
                        help="also cProfile --pairs more session jobs on the client side (part 2)")
    parser.add_argument("--keep-store", action="store_true", help="keep the temporary job store")
    parser.add_argument("--parts", default="1,2,3",
                        help="which parts to run, e.g. '2' for the overhead pairs alone")
    args = parser.parse_args()
    if subprocess.run(["scontrol", "ping"], capture_output=True).returncode != 0:
        print("the Slurm test cluster is not running: scripts/slurm-cluster/start.sh",
              file=sys.stderr)
        return 2
    others = subprocess.run(["squeue", "-h", "-o", "%i %P %T %j"], capture_output=True,
                            text=True).stdout.split("\n")
    others = [line for line in others if line.strip()]
    if others:
        say(f"note: {len(others)} job(s) already in the Slurm queue; they may compete for the "
            f"QPU GRES: {'; '.join(others[:5])}")
    store = tempfile.mkdtemp(prefix="qmio-bench-session-")
    bench = Bench(store)
    began = time.perf_counter()
    try:
        port, address = bench.start_emulator()
        say(f"store {store}; emulator {address} (ours); Bell circuit, {SHOTS} shots, "
            f"checked programs; load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        manager = bench.manager(port)
        parts = {part.strip() for part in args.parts.split(",")}
        loop = (loop_side_by_side(bench, manager, args.jobs, args.separate, args.rounds)
                if "1" in parts else None)
        pairs = (overhead_pairs(bench, manager, address, args.pairs, args.profile)
                 if "2" in parts else None)
        cancel = scancel_to_final(bench, args.cancel_jobs) if "3" in parts else None
    finally:
        bench.cleanup()
        if args.keep_store:
            say(f"store kept: {store}")
        else:
            shutil.rmtree(store, ignore_errors=True)
    rows: list[tuple[str, str, str, bool]] = []
    if loop is not None:
        rows += [
            ("per job: separate / serving session", f"{loop['ratio']:.1f}x",
             f">= {TARGET_RATIO:g}x", loop["ratio"] >= TARGET_RATIO),
            (f"{loop['n']} circuits: separate / session incl. start",
             f"{loop['ratio_with_start']:.1f}x",
             f">= {TARGET_RATIO:g}x", loop["ratio_with_start"] >= TARGET_RATIO)]
    if pairs is not None:
        rows += [
            ("session overhead over raw ZMQ, median", f"{pairs['median_ms']:.2f} ms",
             f"<= {TARGET_MEDIAN_MS:g} ms", pairs["median_ms"] <= TARGET_MEDIAN_MS),
            ("session overhead over raw ZMQ, p99", f"{pairs['p99_ms']:.2f} ms",
             f"<= {TARGET_P99_MS:g} ms", pairs["p99_ms"] <= TARGET_P99_MS)]
    if cancel is not None:
        rows += [
            ("scancel -> all jobs final, every client", f"{cancel['worst_s']:.2f} s",
             f"<= {TARGET_CANCEL_S:g} s", cancel["worst_s"] <= TARGET_CANCEL_S
             and not cancel["not_final"])]
    say()
    say(f"summary ({time.perf_counter() - began:.0f} s in all)")
    say(f"  {'measure':<48} {'measured':>10}  {'target':>9}  result")
    for name, value, target, ok in rows:
        say(f"  {name:<48} {value:>10}  {target:>9}  {verdict(ok)}")
    if loop is not None and loop["contended"]:
        say(f"  note: other jobs used the qpu partition during {loop['contended']} of the "
            f"part-1 rounds (listed above); those separate-job times include waiting for them")
    if loop is not None:
        say(f"  (separate per job {loop['sep_job'] * 1000:.0f} ms on {loop['separate_jobs']} "
            f"jobs; session per job {loop['ses_job'] * 1000:.2f} ms on {loop['session_jobs']} "
            f"jobs; session start {loop['start']:.2f} s)")
    if pairs is not None:
        say(f"  (raw round trip {pairs['raw_ms']:.2f} ms; session/raw {pairs['ratio']:.2f}x)")
    if cancel is not None:
        say(f"  (part 3: DONE {cancel['DONE']}, CANCELLED {cancel['CANCELLED']}, ERROR "
            f"{cancel['ERROR']})")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
