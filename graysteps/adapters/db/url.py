"""Which database: the URL from `--db`, else $GRAYSTEPS_DB, else the SQLite
file `${XDG_DATA_HOME:-~/.local/share}/graysteps/whitelist.db`, and a check
that the URL names a database graysteps supports.

Standard library only: a command checks its `--db` before its first write
without loading SQLAlchemy (an urgent rollback, say). `store.create_store_engine`
parses the URL fully when it opens the database, and runs this same check first.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Mapping

from graysteps.errors import InvalidInput

DB_ENV = "GRAYSTEPS_DB"
BACKENDS = ("sqlite", "mysql", "mariadb")
DRIVERS = {"sqlite": (None, "pysqlite"), "mysql": ("pymysql",), "mariadb": ("pymysql",)}  # what install_requires brings
URL_FORMS = "use sqlite:///PATH or mysql+pymysql://USER:PASS@HOST/DB"


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "graysteps" / "whitelist.db"


def resolve_db_url(url: str | None = None, env: Mapping[str, str] | None = None, *, create_dir: bool = True) -> str:
    """`url`, else $GRAYSTEPS_DB, else the default SQLite file (its folder created unless not `create_dir`)."""
    env = os.environ if env is None else env
    if url == "":
        raise InvalidInput(f"--db is empty: give a database URL, or leave --db out to use ${DB_ENV} or the default")
    if url:
        return url
    if env.get(DB_ENV):
        return env[DB_ENV]
    path = default_db_path(env)
    if create_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def check_db_url(url: str) -> str:
    """`url` if it names a supported database; InvalidInput otherwise.

    Messages name the scheme only: the rest of a URL may hold a password.
    """
    scheme, separator, rest = url.partition("://")
    backend = scheme.split("+", 1)[0]  # case-sensitive, as SQLAlchemy reads it
    if not separator or not scheme.replace("+", "").replace("_", "").isalnum():
        raise InvalidInput(f"--db: that is not a database URL; {URL_FORMS}")
    if backend not in BACKENDS:
        raise InvalidInput(f"--db: unsupported database {backend!r}; {URL_FORMS}")
    if backend == "sqlite" and rest.split("?", 1)[0] in ("", "/", "/:memory:"):
        raise InvalidInput("--db: an SQLite database needs a file (sqlite:///PATH), not an in-memory database")
    driver = scheme.partition("+")[2] or None
    if driver not in DRIVERS[backend]:
        raise InvalidInput(f"--db: driver {driver or 'default'!r} is not one graysteps ships for {backend}; {URL_FORMS}")
    if backend != "sqlite":
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 (raises for a port that is not 0-65535)
        except ValueError:
            raise InvalidInput(f"--db: the host or port of the {backend} URL is not valid; {URL_FORMS}") from None
        if not parts.hostname or not parts.path.strip("/"):
            raise InvalidInput(f"--db: a {backend} URL needs a host and a database name; {URL_FORMS}")
    return url
