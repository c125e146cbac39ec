"""``QmioBackend``: the Qmio QPU as a Qiskit ``BackendV2``, plus the seed API CESGA users have.

Two ways in:

* Qiskit: ``backend.run(circuits, shots=...)`` returns a ``QmioJob`` at once; all circuits go out
  as one job (one Slurm job holding the QPU).
* The seed API: ``with service.backend(name="qpu") as backend: backend.run(program=qasm, shots=100)``
  returns the server's reply dict, as CESGA's first client did. Inside an allocation (a user's own
  sbatch script on the QPU node) it talks to the endpoint directly; elsewhere it submits a job and
  waits for it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from qiskit import QuantumCircuit, transpile
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target

from .calibration import Calibration, resolve_calibration
from .circuits import check_circuit, to_qasm
from .connection import Connection
from .errors import ProgramError, QmioError
from .job import QmioJob
from .programs import check_program
from .protocol import MAX_SHOTS, RESULTS_FORMATS, ExecutionOptions
from .scheduler import in_allocation
from .session import current_session
from .target import build_target
from .transport import QPUClient

if TYPE_CHECKING:
    from .service import QmioRuntimeService
    from .session import Session


class NotConnectedError(QmioError, RuntimeError):
    """The seed API's ``run(program=...)`` was called outside ``with``/``connect()``."""


class QmioBackend(BackendV2):
    """The Qmio QPU (or the emulator standing in for it, per the ``endpoint`` setting)."""

    def __init__(self, service: "QmioRuntimeService", name: str = "qpu") -> None:
        super().__init__(provider=None, name=name,
                         description="Qmio QPU at CESGA, through qmio-hpc",
                         backend_version="1")
        self._service = service
        self._target: Target | None = None
        self._calibration: Calibration | None = None
        self._client: QPUClient | None = None
        self._connected = False
        self._session: "Session | None" = None
        self.options.set_validator("shots", (1, MAX_SHOTS))
        self.options.set_validator("memory", bool)
        self.options.set_validator("res_format", list(RESULTS_FORMATS))
        self.options.update_options(shots=service.settings.shots)  # the 'shots' setting

    @classmethod
    def _default_options(cls) -> Options:
        # seed_simulator is accepted because Qiskit's primitives always pass it; the QPU (and
        # the emulator behind the protocol) cannot be seeded per request, so it is not used.
        return Options(shots=1000, memory=False, repetition_period=None, optimization=None,
                       res_format="binary_count", transpile=False, qasm_version=2,
                       seed_simulator=None)

    @property
    def service(self) -> "QmioRuntimeService":
        return self._service

    @property
    def calibration(self) -> Calibration:
        """The calibration in use: the newest in ``calibration_dir``, else the built-in one."""
        if self._calibration is None:
            self._calibration = resolve_calibration(self._service.settings.calibration_dir or None)
        return self._calibration

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = build_target(self.calibration)
        return self._target

    @property
    def max_circuits(self) -> int | None:
        return None

    # -- the seed API -----------------------------------------------------------------------------

    def connect(self) -> None:
        if in_allocation(self._service.settings):
            self._client = Connection.from_settings(self._service.settings).client()
        self._connected = True

    def disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._connected = False

    def __enter__(self) -> "QmioBackend":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def _run_program(self, program: str, shots: int | None, **options: Any) -> dict[str, Any]:
        if not self._connected:
            raise NotConnectedError("Not connected to the server: use 'with service.backend("
                                    "name=\"qpu\") as backend:' or call backend.connect() first")
        opts = ExecutionOptions(shots=shots or self._service.settings.shots, **options)
        if self._client is not None:  # straight to the endpoint: checked here, as submit does
            check_program("program-0", program)
            return self._client.run_program(program, opts)
        manager = self._service.manager
        job_id = manager.submit([{"name": "program-0", "program": program}], opts)
        return QmioJob(self, job_id, manager).replies()[0]

    # -- Qiskit -----------------------------------------------------------------------------------

    def in_session(self, session: "Session") -> "QmioBackend":
        """This backend, with ``run`` going into ``session`` (what ``mode=session`` uses)."""
        bound = copy.copy(self)
        bound._session = session
        return bound

    def _session_for_run(self, explicit: "Session | None") -> "Session | None":
        """Where ``run`` goes: the session given, the one this backend is bound to, or that of
        the innermost ``with Session(...)`` on this backend's service."""
        if explicit is not None:
            return explicit
        if self._session is not None:
            return self._session
        active = current_session()
        if (active is not None and active.backend() == self.name
                and active.service.manager.store.root == self._service.manager.store.root):
            return active
        return None

    def run(self, run_input: QuantumCircuit | list[QuantumCircuit] | str | None = None,
            program: str | int | None = None, **options: Any) -> QmioJob | dict[str, Any]:
        """Three shapes, so that scripts written for each run unchanged:

        * Qiskit's: ``run(circuits, shots=..., ...)`` returns a ``QmioJob``;
        * the seed API: ``run(program=text, shots=...)`` returns the server's reply dict;
        * CESGA's qmio 0.1.3: ``run(circuit=text, shots=..., repetition_period=...,
          optimization=..., res_format=...)`` or ``run(text, shots)``, the reply dict too."""
        session = self._session_for_run(options.pop("_session", None))
        circuit = options.pop("circuit", None)
        if isinstance(circuit, QuantumCircuit) and run_input is None:
            run_input, circuit = circuit, None
        text = run_input if isinstance(run_input, str) else circuit
        if text is not None:  # CESGA's qmio 0.1.3: run(circuit=text, shots=...) or run(text, n)
            if not isinstance(text, str) or (program is not None and not isinstance(program, int)):
                raise ProgramError("run() takes a program text (circuit=..., as in qmio 0.1.3) "
                                   "and its shots, or program=... and shots=...")
            shots = program if program is not None else options.pop("shots", None)
            options.setdefault("optimization", 0)  # qmio 0.1.3's default: level 0, sent as such
            return self._run_program(text, shots, **options)
        if program is not None:
            return self._run_program(program, options.pop("shots", None), **options)
        if run_input is None:
            raise ProgramError("run() needs circuits (or program= for the seed API)")
        circuits = ([run_input] if isinstance(run_input, QuantumCircuit)
                    else list(run_input) if isinstance(run_input, (list, tuple)) else [])
        if not circuits or not all(isinstance(c, QuantumCircuit) for c in circuits):
            raise ProgramError("run() takes a QuantumCircuit or a non-empty list of them")
        unknown = sorted(set(options) - set(self.options.__dict__))
        if unknown:
            raise ProgramError(f"unknown run option(s) {', '.join(unknown)}; valid: "
                               f"{', '.join(sorted(self.options.__dict__))}")
        merged = {**self.options.__dict__, **options}
        exec_options = ExecutionOptions(
            shots=merged["shots"], repetition_period=merged["repetition_period"],
            optimization=merged["optimization"],
            res_format="raw" if merged["memory"] else merged["res_format"])
        if merged["transpile"]:
            circuits = transpile(circuits, target=self.target, optimization_level=1)
        for circuit in circuits:
            check_circuit(circuit, self.target)
        cal = self.calibration
        # Qiskit wrote these programs from circuits that passed check_circuit: the batch step
        # (or the session's worker) need not parse them again.
        programs = [{"name": c.name, "program": to_qasm(c, merged["qasm_version"]),
                     "metadata": c.metadata or {}, "checked": True} for c in circuits]
        calibration = {"source": cal.source,
                       "taken_at": cal.taken_at.isoformat() if cal.taken_at else None}
        job_id = self._service.manager.submit(
            programs, exec_options,
            meta={"memory": bool(merged["memory"]), "result": {"calibration": calibration}},
            session=session.session_id if session is not None else None)
        return QmioJob(self, job_id, self._service.manager)
