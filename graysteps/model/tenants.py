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


def validate_tenant_id(value: object) -> str:
    """The id itself, or InvalidInput naming the value and what is allowed."""
    if not is_valid_tenant_id(value):
        raise InvalidInput(f"invalid tenant id {shown(value)}: allowed are {ALLOWED}")
    return value  # type: ignore[return-value]


def validate_tenant_ids(values: Iterable[object]) -> list[str]:
    """All ids valid, duplicates dropped (first one kept), or InvalidInput for the first bad one."""
    return list(dict.fromkeys(validate_tenant_id(v) for v in values))

