"""Who does a change, for the audit record: the default actor and its check.

The actor defaults to $BUILD_USER_ID (Jenkins' build-user-vars plugin), else
$USER, else the login name; commands let the user override it (--actor).
Standard library only, so a command can check its actor before its first
write without loading the database layer (an urgent rollback, say).
"""

from __future__ import annotations

import getpass
import os
from typing import Mapping

from graysteps.errors import InvalidInput

ACTOR_MAX = 128  # the audit table's actor column


def default_actor(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    for name in ("BUILD_USER_ID", "USER"):
        if env.get(name):
            return env[name]
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def check_actor(actor: str | None) -> str:
    """The actor to record (default_actor() when None); InvalidInput when unusable."""
    actor = default_actor() if actor is None else actor
    if not actor or len(actor) > ACTOR_MAX or not actor.isprintable():
        raise InvalidInput(f"invalid actor {actor[:80]!r}: use 1-{ACTOR_MAX} printable characters")
    return actor
