"""The ``qmio`` console script: the plain forms of ``submit`` and ``status`` without click.

Those two are the commands run in loops (``for f in *.qasm; do qmio submit "$f" -q; done``,
``watch qmio status``), and importing click costs about as much as Python's own start. So this
module recognises their plain forms, with only the options listed below, and runs them through
``console``, the code the click commands run too. Anything else - another command, ``--help``, an
option not listed, ``--opt=value``, a value that is not plainly valid, an option given twice -
goes to click (``cli.main``), which parses it and reports every usage error. ``tests/
test_fast_cli.py`` checks that both doors print and exit alike.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

#: The commands with a fast form.
COMMANDS = ("submit", "status")


def options_of(command: str) -> dict[str, tuple[str, Any]]:
    """The options ``command``'s fast form knows: flag -> (parameter, the values it takes: None
    for an on/off flag, "count" for a positive number, else the names click's Choice accepts).
    (Built when asked: ``qmio --help`` does not pay for the settings' module.)"""
    if command == "status":
        return {"--json": ("as_json", None), "--all": ("show_all", None)}
    from .config import FIELDS_BY_NAME  # noqa: PLC0415
    from .protocol import RESULTS_FORMATS  # noqa: PLC0415
    return {"--wait": ("wait", None), "--json": ("as_json", None), "-q": ("quiet", None),
            "--quiet": ("quiet", None), "--shots": ("shots", "count"),
            "--executor": ("executor", FIELDS_BY_NAME["executor"].choices),
            "--res-format": ("res_format", tuple(RESULTS_FORMATS))}


def parse(argv: list[str]) -> tuple[str, list[str], dict[str, Any]] | None:
    """``(command, positional words, options)`` for a plain form, else None (click's turn)."""
    if not argv or argv[0] not in COMMANDS or "_QMIO_COMPLETE" in os.environ:
        return None
    command, known = argv[0], options_of(argv[0])
    words: list[str] = []
    options: dict[str, Any] = {}
    rest = iter(argv[1:])
    for word in rest:
        if (word == "-" and command == "submit") or not word.startswith("-"):
            words.append(word)
            continue
        if word not in known or known[word][0] in options:
            return None
        name, values = known[word]
        if values is None:
            options[name] = True
            continue
        value = next(rest, None)
        if value is None:
            return None
        if values == "count":  # a plain positive decimal, as click's IntRange(min=1) reads it
            if not (value.isascii() and value.isdigit() and value[0] != "0"):
                return None
            options[name] = int(value)
        elif value in values:
            options[name] = value
        else:
            return None
    if command == "submit" and not words:
        return None
    return command, words, options


def main() -> None:
    """Run ``qmio``: a plain ``submit`` or ``status`` here, everything else through click."""
    parsed = parse(sys.argv[1:])
    if parsed is None:
        from .cli import main as click_main  # noqa: PLC0415
        try:
            click_main()
            code: object = 0
        except SystemExit as exc:  # how click ends every command
            code = exc.code
        if code is None or isinstance(code, int):
            _exit(code or 0)
        raise SystemExit(code)
    from . import console  # noqa: PLC0415
    command, words, options = parsed
    run = console.handle_errors(_submit if command == "submit" else _status)
    run(words, **options)
    _exit(0)


def _exit(code: int) -> NoReturn:
    """End the process, without the interpreter's teardown where nothing can be lost by it.

    Freeing every module and object took 8 ms after a ``submit --wait`` of 200 programs (a tenth
    of what ``qmio`` adds to that job) and 10 ms after ``qmio --help``, a sixth of its time. The
    exit handlers still run first (they make the store's files durable: ``durable.syncer``), and
    the output was flushed line by line (``console.echo``). A command that used ZMQ (a socket
    may hold a message not sent yet) or left a thread Python would wait for ends the usual way."""
    threading = sys.modules.get("threading")
    if "zmq" in sys.modules or (threading is not None and any(
            thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
            for thread in threading.enumerate())):
        sys.exit(code)
    import atexit  # noqa: PLC0415

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # 'qmio status | head': the reader has what it wanted
            pass
    os._exit(code)


def _submit(files: list[str], executor: str | None = None, shots: int | None = None,
            **flags: Any) -> None:
    from . import console  # noqa: PLC0415
    overrides = {"store": None, "endpoint": None, "executor": executor}
    console.submit(console.make_manager(overrides), files, shots=shots,
                   executor_given=executor is not None, **flags)


def _status(job_ids: list[str], show_all: bool = False, as_json: bool = False) -> None:
    from . import console  # noqa: PLC0415
    overrides = {"store": None, "endpoint": None, "executor": None}
    console.status(console.make_manager(overrides), job_ids, show_all, as_json)
