"""The `graysteps` command line: a thin shell over the Python steps.

Jenkins passes arguments as data: `graysteps --args-json-env VAR` reads the
argument list from the JSON array in environment variable VAR, so no value is
ever part of shell text.

Errors: whatever escapes a command becomes one line on stderr,
`graysteps <command>: <what failed>`: a GraystepsError with its exit code
(2 for bad input, which includes bad arguments, however they arrived), anything
else with exit 1 and its type named. The traceback is shown only with
`--debug` or GRAYSTEPS_DEBUG=1. When GRAYSTEPS_ERROR_FILE is set, the error is
also written there as JSON ({"step", "message", "type"}), which the Groovy
steps turn into `error "[step] …"`. Every message is passed through the URL
masker first: no password reaches stderr or the error file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import re
import sys
import traceback

from graysteps import __version__
from graysteps.adapters.urls import mask_text
from graysteps.errors import GraystepsError, InvalidInput


PLUGIN_GROUP = "graysteps.commands"


def _command_modules():
    """The product's commands (graysteps/commands/), then those that installed
    distributions add through the `graysteps.commands` entry-point group (the
    lab adds sandbox, demo and preview). Command modules import nothing heavy."""
    import graysteps.commands as package
    from importlib.metadata import entry_points

    modules = {}
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            modules[info.name.replace("_", "-")] = importlib.import_module(f"graysteps.commands.{info.name}")
    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name not in modules:
            modules[entry.name] = entry.load()
    for name in sorted(modules):
        yield modules[name]


class UsageError(InvalidInput):
    """Bad arguments (argparse's complaint), reported like every other bad input."""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str):
        command = self.prog.removeprefix("graysteps").strip()  # "" for the top level
        raise UsageError(f"{message} (see '{self.prog} --help')", step=command)


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `selected`, only that command gets its arguments
    (the others are listed by name and help), which keeps start-up short."""
    parser = OneLineErrorParser(
        prog="graysteps",
        description="Gray (canary) releases on Kubernetes + Istio.",
    )
    parser.add_argument("--version", action="version", version=f"graysteps {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error "
                                                              "(also GRAYSTEPS_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if selected is None or module.NAME == selected:
            module.add_arguments(command)
        command.set_defaults(_run=module.run, _step=module.NAME)
    return parser


def _write_error_file(step: str, message: str, kind: str) -> str:
    """Write the error file if one is asked for; '' or a note saying why it could not be written."""
    path = os.environ.get("GRAYSTEPS_ERROR_FILE")
    if not path:
        return ""
    details = {"step": step, "message": message, "type": kind}
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(details, f)
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        return f" (and GRAYSTEPS_ERROR_FILE {path!r} could not be written: {reason})"
    return ""


def _expand_json_args(argv: list[str]) -> list[str]:
    """`--args-json-env VAR` → the JSON list of strings held in $VAR (bad ones are bad input)."""
    if len(argv) < 2 or argv[0] != "--args-json-env":
        return argv
    name, rest = argv[1], argv[2:]
    raw = os.environ.get(name)
    if raw is None:
        raise InvalidInput(f"environment variable {name} is not set", step="--args-json-env")
    try:
        values = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(f"{name} is not JSON: {str(e).splitlines()[0][:200]}", step="--args-json-env") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"{name} must hold a JSON array of strings", step="--args-json-env")
    return values + rest


# C0 and C1 control characters and DEL, and lone surrogates (bytes that were not UTF-8):
# no argument needs one, and each would end up in a log line, an XML document or an audit row.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _check_characters(argv: list[str]) -> None:
    """Bad input when an argument holds a control character or is not valid UTF-8."""
    for number, value in enumerate(argv, 1):
        bad = _CONTROL.search(value)
        if bad is not None:
            char = bad.group()
            what = ("is not valid UTF-8" if "\ud800" <= char <= "\udfff"
                    else f"holds the control character U+{ord(char):04X}, which no argument may hold")
            shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            command = next((v for v in argv if not v.startswith("-")), "")
            raise InvalidInput(f"argument {number} {shown!r} {what}", step=command)


def _debug(argv: list[str]) -> bool:
    return os.environ.get("GRAYSTEPS_DEBUG", "") not in ("", "0") or "--debug" in argv


def _what_failed(error: BaseException) -> str:
    """One line for an unexpected exception: its type and the first line of its message."""
    if isinstance(error, OSError) and error.strerror:
        where = f" {error.filename!r}" if error.filename is not None else ""
        return f"{error.strerror}{where}"
    if isinstance(error, RecursionError):
        return "input nested too deeply to process"
    if isinstance(error, MemoryError):
        return "out of memory"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:500]}" if text else type(error).__name__


def _report(step: str, message: str, kind: str) -> None:
    message = " ".join(mask_text(message).split("\n"))
    note = _write_error_file(step, message, kind)
    prefix = f"graysteps {step}" if step else "graysteps"
    print(f"{prefix}: {message}{note}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    step = ""
    try:
        argv = _expand_json_args(argv)
        step = next((a for a in argv if not a.startswith("-")), "")
        _check_characters(argv)
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`graysteps ... | head`): stop quietly, as a
        # shell tool would, and keep Python's exit flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a reader that went away
    except GraystepsError as error:
        _report(step if error.step is None else error.step, error.message, type(error).__name__)
        return error.exit_code
    except KeyboardInterrupt:
        print("graysteps: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the guard: never a traceback unless asked for
        if _debug(argv):
            traceback.print_exc()
        _report(step, _what_failed(error), type(error).__name__)
        return 1


def _main(argv: list[str]) -> int:
    if argv in (["--version"], ["-V"]):  # answer before discovering commands
        print(f"graysteps {__version__}")
        return 0
    selected = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except GraystepsError as error:
        error.step = error.step or args._step
        raise


if __name__ == "__main__":
    raise SystemExit(main())
