"""The seed's routing strategies as values: `Strategy(name, weight)`.

`parse_strategy` is the one gate for user input; it raises InvalidInput naming
the bad value and what is allowed. `Strategy.label` is the form graysteps
records on a VirtualService (`weight=20`) and `from_label` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from graysteps.errors import InvalidInput
from graysteps.model.numbers import parse_int

WHITELIST = "whitelist"
WEIGHT = "weight"
BALANCED = "balanced"
LINKED = "linked"
PROMOTE = "promote"
ROLLBACK = "rollback"
STRATEGIES = (WHITELIST, WEIGHT, BALANCED, LINKED, PROMOTE, ROLLBACK)


@dataclass(frozen=True)
class Strategy:
    name: str
    weight: int | None = None  # the gray share in percent; only for `weight`

    @property
    def label(self) -> str:
        return f"{self.name}={self.weight}" if self.name == WEIGHT else self.name

    def gray_weight(self) -> int | None:
        """Gray share of a weighted split (weight/balanced), else None."""
        if self.name == WEIGHT:
            return self.weight
        if self.name == BALANCED:
            return 50
        return None


def parse_weight(value: object) -> int:
    """An integer 0-100 (int or its decimal text); InvalidInput otherwise."""
    try:
        return parse_int(value, "--weight", 0, 100)
    except InvalidInput:
        raise InvalidInput(f"--weight {value!r} is not allowed: use an integer from 0 to 100 "
                           "(the gray share in percent; ASCII digits only)") from None


def parse_strategy(name: object, weight: object = None) -> Strategy:
    """The strategy `name` (with `weight` for `weight`); InvalidInput on bad input."""
    if name not in STRATEGIES:
        raise InvalidInput(f"--strategy {name!r} is not a strategy: use one of {', '.join(STRATEGIES)}")
    if name == WEIGHT:
        if weight is None:
            raise InvalidInput("--strategy weight needs --weight N: an integer from 0 to 100 (the gray share in percent)")
        return Strategy(WEIGHT, parse_weight(weight))
    if weight is not None:
        raise InvalidInput(f"--weight {weight!r} is only allowed with --strategy weight, not with --strategy {name}")
    return Strategy(name)


def from_label(label: str) -> Strategy | None:
    """Read back `Strategy.label`; None if it is not one graysteps writes."""
    name, _, weight = label.partition("=")
    try:
        return parse_strategy(name, weight if weight else None)
    except InvalidInput:
        return None
