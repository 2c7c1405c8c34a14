"""How to open the whitelist database, and the writers' lock.

Which database: `--db URL`, else `$GRAYSTEPS_DB`, else the SQLite file
`${XDG_DATA_HOME:-~/.local/share}/graysteps/whitelist.db` (url.py).
URLs are SQLAlchemy URLs:
  sqlite:////var/lib/graysteps/whitelist.db
  mysql+pymysql://user:password@db.example:3306/graysteps?charset=utf8mb4
MySQL/MariaDB go through PyMySQL; `charset=utf8mb4` is added when missing.
MariaDB ≥ 10.6 or MySQL ≥ 8.0 is needed (JSON_TABLE, used by the bulk paths).
Opening a store upgrades an older schema (migrations.py).

Consistency with several writers (two syncs at once, a sync and an `add`):
every write transaction first locks the `whitelist` row of graysteps_state
(`SELECT … FOR UPDATE` on MySQL/MariaDB; `BEGIN IMMEDIATE`, the database
write lock, on SQLite), and only then reads the current entries. MySQL
connections run at READ COMMITTED, so what a writer reads after it got the
lock is the latest committed state, not a REPEATABLE READ snapshot taken
before the other writer committed. Writers therefore apply one after the
other, each to the result of the previous one. Readers (the cookie service)
never take the lock; SQLite runs in WAL mode so they are not blocked. Reads
of several statements (list, dry run) ask for a snapshot: REPEATABLE READ on
MySQL, the read transaction itself on SQLite.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy import create_engine, event, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from graysteps.adapters.urls import mask_url
from graysteps.errors import GraystepsError, InvalidInput
from graysteps.adapters.db.url import DB_ENV, URL_FORMS, check_db_url, resolve_db_url
from graysteps.adapters.db.models import WHITELIST_STATE, StateRow

SQLITE_BUSY_TIMEOUT_S = 60


def shown_url(url: object) -> str:
    """The URL with its password and query masked, for messages (adapters/urls.py)."""
    return mask_url(str(url))


def create_store_engine(url: str) -> Engine:
    check_db_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise InvalidInput(f"--db {shown_url(url)!r} is not a database URL; {URL_FORMS}") from e
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _sqlite_transactions(engine)
        return engine
    # MySQL or MariaDB: check_db_url lets no other backend through
    if "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return create_engine(parsed, isolation_level="READ COMMITTED", pool_pre_ping=True, pool_recycle=3600)


def _sqlite_transactions(engine: Engine) -> None:
    """Real transactions on SQLite: BEGIN ourselves (IMMEDIATE for writers), WAL for readers."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("graysteps_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class Store:
    """An opened whitelist database (schema up to date)."""

    url: str
    engine: Engine

    @property
    def is_mysql(self) -> bool:
        return self.engine.dialect.name in ("mysql", "mariadb")

    @contextlib.contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read transaction; `snapshot`: all its statements see one state (REPEATABLE READ on MySQL)."""
        with self._errors("read"), self.engine.connect() as conn:
            if snapshot and self.is_mysql:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator["WriteTransaction"]:
        """One write transaction holding the whitelist lock; commits on success, rolls back on error."""
        with self._errors("write"), self.engine.connect().execution_options(graysteps_write=True) as conn:
            with conn.begin():
                generation = conn.execute(
                    select(StateRow.generation).where(StateRow.name == WHITELIST_STATE).with_for_update()
                ).scalar_one()
                yield WriteTransaction(conn, generation)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as e:
            raise GraystepsError(
                f"could not {what} the whitelist database {shown_url(self.url)}: {_first_line(e)}; "
                f"check --db / ${DB_ENV} and that the database is reachable"
            ) from e

    def upgrade(self) -> list[int]:
        """Create or upgrade the schema (migrations.py); returns the versions applied."""
        from graysteps.adapters.db import migrations

        with self._errors("open"):
            return migrations.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()


class WriteTransaction:
    """The connection of a write transaction, and the whitelist generation it started from."""

    def __init__(self, conn: Connection, generation: int):
        self.conn = conn
        self.generation = generation

    def bump_generation(self) -> int:
        """Mark the whitelist changed (caches of other processes see a new generation)."""
        self.conn.execute(
            update(StateRow).where(StateRow.name == WHITELIST_STATE).values(generation=StateRow.generation + 1)
        )
        self.generation += 1
        return self.generation


def read_generation(conn: Connection) -> int:
    return conn.execute(select(StateRow.generation).where(StateRow.name == WHITELIST_STATE)).scalar_one()


def open_store(url: str | None = None, *, upgrade: bool = True) -> Store:
    """Open the database `url` (resolved as the module says) and upgrade its schema."""
    resolved = resolve_db_url(url)
    store = Store(resolved, create_store_engine(resolved))
    if upgrade:
        store.upgrade()
    return store


def open_existing_store(url: str | None = None) -> Store | None:
    """For read-only commands: the database as it is (no schema upgrade); reading never creates a
    database file or its folder. None when the default SQLite file does not exist yet (nothing was
    ever whitelisted); InvalidInput when `--db` or $GRAYSTEPS_DB names an SQLite file that does not
    exist (a typo must not read as "nobody is gray"). None too for a database without graysteps' tables."""
    resolved = resolve_db_url(url, create_dir=False)
    engine = create_store_engine(resolved)
    path = engine.url.database or ""
    if engine.url.get_backend_name() == "sqlite" and not os.path.exists(path):
        engine.dispose()
        if url or os.environ.get(DB_ENV):
            raise InvalidInput(f"no whitelist database at {path}: check --db / ${DB_ENV}, "
                               "or create it with `graysteps whitelist add` or `whitelist sync`")
        return None
    store = Store(resolved, engine)
    from graysteps.adapters.db import migrations

    with store.read() as conn:
        empty = migrations.current_version(conn) == 0
    if empty:  # a database without graysteps' tables yet (a fresh MySQL database): nothing is whitelisted
        store.close()
        return None
    return store


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    return str(orig if orig is not None else error).strip().splitlines()[0]
