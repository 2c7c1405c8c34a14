"""argparse `type=` functions over graysteps.model.numbers: a bad number is a usage error (exit 2) naming the option."""

from __future__ import annotations

import argparse
from typing import Callable


def _strict(parse: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str):
        from graysteps.errors import InvalidInput

        try:
            return parse(text)
        except InvalidInput as e:
            raise argparse.ArgumentTypeError(e.message.strip()) from None

    convert.__name__ = parse.__name__
    return convert


def int_in(low: int, high: int) -> Callable[[str], object]:
    """ASCII digits only, from `low` to `high`."""
    from graysteps.model.numbers import parse_int

    return _strict(lambda text: parse_int(text, "", low, high))


def duration_in(low: float, high: float) -> Callable[[str], object]:
    from graysteps.model.numbers import parse_duration

    return _strict(lambda text: parse_duration(text, "", low, high))


def fraction_in(low: float, high: float, *, open_high: bool = False) -> Callable[[str], object]:
    from graysteps.model.numbers import parse_fraction

    return _strict(lambda text: parse_fraction(text, "", low, high, open_high=open_high))


positive_int = int_in(1, 1_000_000)
port_number = int_in(0, 65535)
duration = duration_in(0.0, 31_536_000.0)
