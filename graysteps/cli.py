"""The `graysteps` command line: a thin shell over the Python steps.

Jenkins passes arguments as data: `graysteps --args-json-env VAR` reads the
argument list from the JSON array in environment variable VAR, so no value is
ever part of shell text.

Errors: a GraystepsError becomes one line on stderr and its exit code. When
GRAYSTEPS_ERROR_FILE is set, the error is also written there as JSON
({"step", "message", "type"}), which the Groovy steps turn into `error "[step] …"`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys

from graysteps import __version__
from graysteps.errors import GraystepsError


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


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `selected`, only that command gets its arguments
    (the others are listed by name and help), which keeps start-up short."""
    parser = OneLineErrorParser(
        prog="graysteps",
        description="Gray (canary) releases on Kubernetes + Istio.",
    )
    parser.add_argument("--version", action="version", version=f"graysteps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if selected is None or module.NAME == selected:
            module.add_arguments(command)
        command.set_defaults(_run=module.run, _step=module.NAME)
    return parser


def _write_error_file(step: str, error: GraystepsError) -> None:
    path = os.environ.get("GRAYSTEPS_ERROR_FILE")
    if not path:
        return
    details = {"step": step, "message": error.message, "type": type(error).__name__}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(details, f)


def _expand_json_args(argv: list[str]) -> list[str]:
    """`--args-json-env VAR` → the JSON list of strings held in $VAR."""
    if len(argv) < 2 or argv[0] != "--args-json-env":
        return argv
    name, rest = argv[1], argv[2:]
    raw = os.environ.get(name)
    if raw is None:
        raise SystemExit(f"graysteps: --args-json-env: environment variable {name} is not set")
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SystemExit(f"graysteps: --args-json-env: {name} is not JSON: {e}") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SystemExit(f"graysteps: --args-json-env: {name} must hold a JSON array of strings")
    return values + rest


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`graysteps ... | head`): stop quietly, as a
        # shell tool would, and keep Python's exit flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a reader that went away


def _main(argv: list[str] | None) -> int:
    argv = _expand_json_args(sys.argv[1:] if argv is None else list(argv))
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
        step = error.step or args._step
        print(f"graysteps {step}: {error.message}", file=sys.stderr)
        _write_error_file(step, error)
        return error.exit_code
    except KeyboardInterrupt:
        print("graysteps: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
