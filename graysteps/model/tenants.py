"""What a tenant id is: 1–64 characters of ASCII letters, digits, `.`, `_`, `:`, `-`.

Every value is checked here before it gets anywhere near the database, so an
id like `'; DROP TABLE x; --` is refused by name (and SQL is bound anyway).
"""

from __future__ import annotations

import re
from typing import Iterable

from graysteps.errors import InvalidInput

TENANT_ID_MAX = 64
ALLOWED = "1-64 characters of ASCII letters, digits, '.', '_', ':' and '-'"

_TENANT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def is_valid_tenant_id(value: object) -> bool:
    return isinstance(value, str) and _TENANT_ID.fullmatch(value) is not None


def shown(value: object, limit: int = 80) -> str:
    """The value as the user should see it in an error: quoted, escapes visible, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def masked(value: object, keep: int = 3) -> str:
    """A rejected value from a file, masked: at most a few leading characters, its length,
    and what is wrong with it; enough to find and fix the line, never the line itself
    (a source may be a file that was never meant to be shown, e.g. /etc/shadow)."""
    text = str(value)
    if not text:
        return "'' (empty)"
    head = text[: min(keep, len(text) // 4)]
    what = f"{len(text)} characters"
    if len(text) > TENANT_ID_MAX:
        what += f", more than {TENANT_ID_MAX}"
    else:
        position, char = next(((i, c) for i, c in enumerate(text, 1) if not _TENANT_ID.fullmatch(c)), (0, ""))
        if char:
            plain = char.isascii() and char.isprintable() and char != " "
            what += f"; character {position} is {char!r}" if plain else f"; character {position} is U+{ord(char):04X}"
    return f"{(head + '…')!r} ({what})"


def validate_tenant_id(value: object) -> str:
    """The id itself, or InvalidInput naming the value and what is allowed."""
    if not is_valid_tenant_id(value):
        raise InvalidInput(f"invalid tenant id {shown(value)}: allowed are {ALLOWED}")
    return value  # type: ignore[return-value]


def validate_tenant_ids(values: Iterable[object]) -> list[str]:
    """All ids valid, duplicates dropped (first one kept), or InvalidInput for the first bad one."""
    return list(dict.fromkeys(validate_tenant_id(v) for v in values))

