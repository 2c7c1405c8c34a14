"""Schema versions, applied in order; `upgrade()` brings any older database up to date.

`graysteps_schema_version` has one row per applied migration. A migration is
a function of a Connection; its table shapes are frozen here (never imported
from models.py, which only describes the newest version).

  1  whitelist entries + audit log (actor, action, subject, reason, time)
  2  audit `detail` (JSON text) + index on time; `graysteps_state` with the
     whitelist generation (cache invalidation across processes, writer lock)

Two processes upgrading at once: MySQL/MariaDB take the named lock
`GET_LOCK('graysteps_schema')`, SQLite holds `BEGIN IMMEDIATE`. MySQL commits
DDL implicitly, so a migration that fails halfway on MySQL can leave part of
its tables behind; each step therefore uses `checkfirst` and is safe to rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import Column, Index, MetaData, String, Table, Text, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from graysteps.errors import GraystepsError
from graysteps.adapters.db.models import (
    AUDIT_TABLE,
    TABLE_OPTIONS,
    WHITELIST_STATE,
    WHITELIST_TABLE,
    SchemaVersion,
    StateRow,
    long_text_type,
    row_id_type,
    tenant_id_type,
    timestamp_type,
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _v1_whitelist_and_audit(conn: Connection) -> None:
    md = MetaData()
    Table(
        WHITELIST_TABLE, md,
        Column("tenant_id", tenant_id_type(), primary_key=True),
        Column("note", String(255)),
        Column("added_by", String(128), nullable=False),
        Column("added_at", timestamp_type(), nullable=False),
        **TABLE_OPTIONS,
    )
    Table(
        AUDIT_TABLE, md,
        Column("id", row_id_type(), primary_key=True, autoincrement=True),
        Column("at", timestamp_type(), nullable=False),
        Column("actor", String(128), nullable=False),
        Column("action", String(64), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("reason", Text),
        Index("ix_graysteps_audit_subject", "subject"),
        **TABLE_OPTIONS,
    )
    md.create_all(conn, checkfirst=True)


def _v2_audit_detail_and_state(conn: Connection) -> None:
    audit_columns = {c["name"] for c in inspect(conn).get_columns(AUDIT_TABLE)}
    if "detail" not in audit_columns:
        detail_type = long_text_type().compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {AUDIT_TABLE} ADD COLUMN detail {detail_type}")
    md = MetaData()
    audit = Table(AUDIT_TABLE, md, autoload_with=conn)
    if "ix_graysteps_audit_at" not in {i["name"] for i in inspect(conn).get_indexes(AUDIT_TABLE)}:
        Index("ix_graysteps_audit_at", audit.c.at).create(conn)
    StateRow.__table__.create(conn, checkfirst=True)
    if conn.execute(select(StateRow.name).where(StateRow.name == WHITELIST_STATE)).first() is None:
        conn.execute(StateRow.__table__.insert().values(name=WHITELIST_STATE, generation=0))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "whitelist entries and audit log", _v1_whitelist_and_audit),
    Migration(2, "audit detail and whitelist generation", _v2_audit_detail_and_state),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The newest applied migration, 0 for an empty database."""
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        return 0
    return conn.execute(select(SchemaVersion.version).order_by(SchemaVersion.version.desc())).scalar() or 0


def upgrade(engine: Engine, target: int | None = None) -> list[int]:
    """Apply the missing migrations up to `target` (default: the newest); returns the versions applied."""
    target = LATEST if target is None else target
    if engine.dialect.name in ("mysql", "mariadb"):
        with engine.connect() as conn:
            got = conn.execute(text("SELECT GET_LOCK('graysteps_schema', 120)")).scalar()
            if got != 1:
                raise GraystepsError("another process holds the schema lock for 120 s; try again", step="whitelist schema")
            try:
                return _apply(conn, target, commit_each=True)
            finally:
                conn.execute(text("SELECT RELEASE_LOCK('graysteps_schema')"))
                conn.commit()
    with engine.connect().execution_options(graysteps_write=True) as conn:  # BEGIN IMMEDIATE on SQLite
        with conn.begin():
            return _apply(conn, target, commit_each=False)


def _apply(conn: Connection, target: int, *, commit_each: bool) -> list[int]:
    SchemaVersion.__table__.create(conn, checkfirst=True)
    have = current_version(conn)
    if have > LATEST:
        raise GraystepsError(
            f"the database schema is version {have}, newer than this graysteps knows ({LATEST}); "
            "upgrade graysteps",
            step="whitelist schema",
        )
    applied = []
    for migration in MIGRATIONS:
        if have < migration.version <= target:
            migration.apply(conn)
            conn.execute(
                SchemaVersion.__table__.insert().values(
                    version=migration.version,
                    name=migration.name,
                    applied_at=datetime.now(timezone.utc).replace(tzinfo=None),
                )
            )
            if commit_each:
                conn.commit()
            applied.append(migration.version)
    return applied
