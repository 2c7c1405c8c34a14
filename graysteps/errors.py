"""The one error family graysteps raises for things a user can act on.

The CLI turns a GraystepsError into one line on stderr, `graysteps <step>: <message>`,
and exit code `exit_code`. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GraystepsError(Exception):
    """An error that names what failed and what to do next.

    `step` is the operation (e.g. "route", "whitelist sync"); `result` may carry
    whatever the step had done before it failed, for reports.
    """

    exit_code = 1

    def __init__(self, message: str, *, step: str | None = None, result: object = None):
        super().__init__(message)
        self.message = message
        self.step = step
        self.result = result


class InvalidInput(GraystepsError):
    """Bad input from the user: nothing was changed."""

    exit_code = 2


class ConflictRetriesExhausted(GraystepsError):
    """A read-modify-write kept losing the race with other writers."""
