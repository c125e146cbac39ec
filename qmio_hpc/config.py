"""Settings, layered: defaults < site file < user file < environment < arguments.

Every setting remembers where its value came from, so ``qmio config`` can show it. The layers:

* defaults: the table ``FIELDS`` below;
* site file: ``/etc/qmio/config.toml`` (or the path in ``QMIO_SITE_CONFIG``), written by admins;
* user file: ``$XDG_CONFIG_HOME/qmio/config.toml`` (or ``QMIO_USER_CONFIG``);
* environment: ``QMIO_<NAME>`` with dots as underscores (``QMIO_SLURM_PARTITION``), and
  ``ZMQ_SERVER``, the variable CESGA's own tools use for the endpoint;
* arguments: keyword overrides from the API or CLI flags.

TOML files use sections for dotted names: ``[slurm]`` / ``partition = "qpu"``.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from .connection import BUILTIN_ENDPOINT
from .errors import ConfigError
from .protocol import MAX_SHOTS


def _default_store(env: Mapping[str, str]) -> str:
    # CESGA's control node does not mount $HOME but does mount $STORE.
    base = env.get("STORE") or env.get("HOME") or os.path.expanduser("~")
    return str(Path(base) / ".qmio-hpc")


class Field(NamedTuple):
    """One setting: its type, default and a line of help for ``qmio config``."""

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()


FIELDS: tuple[Field, ...] = (
    Field("store", str, _default_store, "job store root on the shared filesystem"),
    Field("endpoint", str, BUILTIN_ENDPOINT,
          "QPU control server, tcp://host:port, or 'emulator' for the built-in one"),
    Field("emulator_port", int, 5556, "port of the built-in emulator on 127.0.0.1"),
    Field("emulator_idle_exit", float, 900.0,
          "an emulator started on demand exits after this many idle seconds (0: never)"),
    Field("emulator_time_model", bool, False,
          "an emulator started on demand takes shots x repetition period per program"),
    Field("emulator_noise", bool, False,
          "an emulator started on demand simulates the calibration's noise (needs qiskit-aer)"),
    Field("executor", str, "auto", "where jobs run", ("auto", "local", "slurm")),
    Field("shots", int, 1000, "default shots per circuit"),
    Field("max_shots", int, 8192, "per-execution shot cap of the QPU; larger counts are split"),
    Field("connect_timeout", float, 10.0, "seconds to wait for a connection to the endpoint"),
    Field("reply_timeout", float, 60.0,
          "seconds to wait for a reply, on top of shots x repetition period"),
    Field("retries", int, 2, "times a query (version, couplings) is re-sent after a timeout; "
          "a program is never sent twice"),
    Field("assumed_repetition_period", float, 1e-4,
          "seconds per shot assumed for timeouts when repetition_period is not set"),
    Field("session.idle_timeout", float, 120.0,
          "a session with no job for this many seconds releases the QPU (0: never)"),
    Field("session.max_time", str, "01:00:00",
          "a session's time limit: seconds or Slurm's [D-]HH:MM:SS (its Slurm --time)"),
    Field("session.poll_interval", float, 1.0,
          "seconds between a session worker's looks at its queue directory, for clients that "
          "cannot reach its channel"),
    Field("session.bind", str, "",
          "address a session's worker listens on ('' = loopback locally, the node's address "
          "under Slurm)"),
    Field("calibration_dir", str, "", "directory of calibration files (newest wins); '' = built-in"),
    Field("slurm.partition", str, "qpu", "partition that holds the QPU"),
    Field("slurm.adapter", str, "auto",
          "how to talk to Slurm: pyslurm where it matches the running Slurm, else the CLI",
          ("auto", "cli", "pyslurm")),
    Field("slurm.qpu_hold", str, "exclusive", "how a job holds the QPU: the whole node or a GRES",
          ("exclusive", "gres")),
    Field("slurm.gres", str, "qpu:1", "GRES requested when slurm.qpu_hold = gres"),
    Field("slurm.time", str, "00:10:00", "time limit of a QPU job"),
    Field("slurm.reservation", str, "", "reservation to submit into"),
    Field("slurm.account", str, "", "account to charge"),
    Field("slurm.qos", str, "", "quality of service"),
    Field("slurm.extra_directives", list, [],
          "extra '#SBATCH' options, e.g. ['--mem=4G']; in the environment comma-separated, or a "
          "JSON array when an option holds a comma"),
    Field("slurm.modules", list, [], "modules to load in the batch script"),
    Field("slurm.template_dir", str, "", "directory with site overrides of the sbatch templates"),
    Field("slurm.python", str, "", "python that runs the batch step ('' = this interpreter)"),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}

#: Numeric settings: (low, high, low excluded). Every deadline finite, every count bounded.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "shots": (1, MAX_SHOTS, False),
    "max_shots": (1, MAX_SHOTS, False),
    "emulator_port": (1, 65535, False),
    "emulator_idle_exit": (0, 7 * 86400, False),
    "connect_timeout": (0, 3600, True),
    "reply_timeout": (0, 7 * 86400, True),
    "retries": (0, 100, False),
    "assumed_repetition_period": (0, 10, True),
    "session.idle_timeout": (0, 7 * 86400, False),
    "session.poll_interval": (0, 60, True),
}
_ENDPOINT = re.compile(r"^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):"
                       r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
                       r"|6553[0-5])$")


#: Settings that name a directory: ``~`` and ``$VAR``/``${VAR}`` are expanded, as a shell would
#: (a site file says ``store = "$LUSTRE/qmio"``, each user's own variable).
PATH_SETTINGS = ("store", "calibration_dir", "slurm.template_dir")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _expand_path(value: str, env: Mapping[str, str], name: str, origin: str) -> str:
    """``value`` with ``~`` and environment variables expanded; an unset variable is an error
    (a path that silently lost a part would put a store somewhere nobody meant)."""
    def variable(match: re.Match[str]) -> str:
        var = match.group(1) or match.group(2)
        if not env.get(var):
            raise ConfigError(f"setting '{name}' ({origin}): {value!r} uses ${var}, which is not "
                              f"set in the environment; set it, or write the path out")
        return env[var]
    home = env.get("HOME") or os.path.expanduser("~")
    value = _VARIABLE.sub(variable, value)
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    return os.path.expanduser(value)


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def env_name(name: str) -> str:
    return "QMIO_" + name.replace(".", "_").upper()


def _convert(field: Field, value: Any, origin: str) -> Any:
    """Coerce a raw value (TOML or environment text) to the field's type, or say what is wrong."""
    try:
        if field.kind is list:
            if isinstance(value, str) and value.lstrip().startswith("["):
                value = json.loads(value)  # an item holding a comma: '["--mail-type=END,FAIL"]'
            elif isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return list(value)
        if field.kind is bool:
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.strip().lower()]
            if isinstance(value, bool):
                return value
            raise ValueError("expected true or false")
        if field.kind in (int, float) and isinstance(value, bool):
            raise ValueError("expected a number")
        converted = field.kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting '{field.name}' from {origin}: {value!r} is not a valid "
                          f"{field.kind.__name__} ({exc})") from None
    if field.choices and converted not in field.choices:
        raise ConfigError(f"setting '{field.name}' from {origin}: {converted!r} is not one of "
                          f"{', '.join(field.choices)}")
    return converted


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        fh = path.open("rb")
    except FileNotFoundError:  # the common case: no site or user file, and no tomllib import
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    import tomllib  # noqa: PLC0415

    try:
        with fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    flat = _flatten(data)
    unknown = sorted(set(flat) - set(FIELDS_BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
                          f"'qmio config' lists the valid names")
    return flat


def site_config_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("QMIO_SITE_CONFIG", "/etc/qmio/config.toml"))


def user_config_path(env: Mapping[str, str]) -> Path:
    if env.get("QMIO_USER_CONFIG"):
        return Path(env["QMIO_USER_CONFIG"])
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(env.get("XDG_CONFIG_HOME") or Path(home) / ".config") / "qmio" / "config.toml"


class Settings:
    """The effective settings. Read values as ``settings.get("slurm.partition")`` or attributes
    for top-level names (``settings.store``); ``settings.origin(name)`` says where it came from."""

    def __init__(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        self._values = values
        self._origins = origins

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for field in FIELDS:
            default = field.default(env) if callable(field.default) else field.default
            values[field.name] = list(default) if isinstance(default, list) else default
            origins[field.name] = "default"

        def apply(raw: Mapping[str, Any], origin: str | Callable[[str], str]) -> None:
            for name, value in raw.items():
                if value is None:
                    continue
                where = origin(name) if callable(origin) else origin
                if name not in FIELDS_BY_NAME:
                    raise ConfigError(f"unknown setting '{name}' from {where}")
                values[name] = _convert(FIELDS_BY_NAME[name], value, where)
                origins[name] = where

        site = site_config_path(env)
        apply(_read_toml(site), f"site file {site}")
        user = user_config_path(env)
        apply(_read_toml(user), f"user file {user}")
        if env.get("ZMQ_SERVER"):
            apply({"endpoint": env["ZMQ_SERVER"]}, "environment ZMQ_SERVER")
        apply({f.name: env[env_name(f.name)] for f in FIELDS if env.get(env_name(f.name))},
              lambda name: f"environment {env_name(name)}")
        apply(dict(overrides or {}), "argument")
        for name in PATH_SETTINGS:
            if values[name]:
                values[name] = _expand_path(values[name], env, name, origins.get(name, "default"))
        values["store"] = str(Path(values["store"]).absolute())
        settings = cls(values, origins)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Every deadline finite, every count and port in range, the endpoint well formed: a
        bad value is refused here, naming the setting and where it came from."""
        endpoint = self._values["endpoint"]
        if endpoint != BUILTIN_ENDPOINT and not _ENDPOINT.match(endpoint) and not (
                endpoint.startswith("ipc://") and len(endpoint) > 6):
            raise ConfigError(f"setting 'endpoint' ({self.origin('endpoint')}): {endpoint!r} is "
                              f"neither 'emulator' nor a ZMQ address like tcp://host:5556 (port "
                              f"1-65535) or ipc:///path")
        store = Path(self._values["store"])
        if store.exists() and not store.is_dir():
            raise ConfigError(f"setting 'store' ({self.origin('store')}): {store} is a file, not "
                              f"a directory; point the job store at a directory")
        for name, (low, high, low_open) in BOUNDS.items():
            value = self._values[name]
            too_low = value <= low if low_open else value < low
            if not math.isfinite(value) or too_low or value > high:
                bound = f"{'above' if low_open else 'at least'} {low:g} and at most {high:g}"
                raise ConfigError(f"setting '{name}' ({self.origin(name)}): {value!r} must be a "
                                  f"finite number {bound}")

    def get(self, name: str) -> Any:
        return self._values[name]

    def origin(self, name: str) -> str:
        return self._origins[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def items(self) -> list[tuple[str, Any, str]]:
        return [(f.name, self._values[f.name], self._origins[f.name]) for f in FIELDS]

    def replace(self, **overrides: Any) -> "Settings":
        """A copy with some values set by argument (dotted names as ``slurm_partition``)."""
        values = dict(self._values)
        origins = dict(self._origins)
        for key, value in overrides.items():
            name = key if key in FIELDS_BY_NAME else key.replace("_", ".", 1)
            if name not in FIELDS_BY_NAME:
                raise ConfigError(f"unknown setting '{key}'")
            values[name] = _convert(FIELDS_BY_NAME[name], value, "argument")
            origins[name] = "argument"
        return Settings(values, origins)

    @property
    def uses_builtin_emulator(self) -> bool:
        return self._values["endpoint"] == BUILTIN_ENDPOINT

    @property
    def resolved_endpoint(self) -> str:
        """The address a client connects to (``connection.Connection.address``)."""
        from .connection import Connection  # noqa: PLC0415 - connection imports this module
        return Connection.from_settings(self).address
