"""The one way graysteps reads a number a user typed: strict, so that what runs is what was meant.

The one thing to know: an integer is ASCII digits only — no sign, no spaces, no
`+20`, no `-0`, no `٢٠` (Arabic-Indic digits, which `int()` accepts), no
leading zeros, at most 9 digits — and a duration is such an integer with an
optional decimal fraction (`0.5`), so it is always finite: no `nan`, `inf` or
`1e9`. Every refusal is InvalidInput naming the option, the value and the range.
"""

from __future__ import annotations

import re

from graysteps.errors import InvalidInput

_INTEGER = re.compile(r"(?:0|[1-9][0-9]{0,8})", re.ASCII)
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,9})?", re.ASCII)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def parse_int(value: object, what: str, low: int = 0, high: int = 999_999_999, *, unit: str = "") -> int:
    """`value` (an int, or its decimal text) as an int in [low, high]; InvalidInput otherwise."""
    allowed = f"use a whole number from {low} to {high}{unit} (ASCII digits only)"
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
    else:
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    if not low <= number <= high:
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    return number


def parse_duration(value: object, what: str, low: float = 0.0, high: float = 31_536_000.0) -> float:
    """Seconds as a finite float in [low, high] from text like `30` or `0.5`; InvalidInput otherwise."""
    allowed = f"use seconds from {low:g} to {high:g}, like 30 or 0.5"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = float(value)
    else:
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    if not low <= number <= high:  # also false for nan
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    return number


def parse_fraction(value: object, what: str, low: float, high: float, *, open_high: bool = False) -> float:
    """A plain decimal (like 0.99 or 5) in [low, high] (or [low, high) with `open_high`)."""
    bracket = ")" if open_high else "]"
    allowed = f"use a decimal number in [{low:g}, {high:g}{bracket}"
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    number = float(value)
    if not low <= number <= high or (open_high and number == high):
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: {allowed}")
    return number
