"""The tables, as SQLAlchemy 2.x models (the current schema version).

- `WhitelistEntry`: one gray tenant (unique id, note, added_by, added_at).
- `AuditEntry`: one change by someone (actor, action, subject, reason, time,
  optional JSON detail). Generic: the whitelist and the release plans use it.
- `StateRow`: named counters. Row `whitelist` holds the whitelist generation,
  bumped by every change; it is also the row every writer locks first.
- `SchemaVersion`: which migrations have run (see migrations.py).

Times are naive UTC. On MySQL/MariaDB the tenant id column is `ascii_bin`
(ids are ASCII; `Tenant-1` and `tenant-1` are different tenants), text
columns are utf8mb4.

The tables are created by migrations.py, never by `create_all`; a test checks
that the migrated schema equals these models.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

WHITELIST_TABLE = "graysteps_whitelist"
AUDIT_TABLE = "graysteps_audit"
STATE_TABLE = "graysteps_state"
SCHEMA_VERSION_TABLE = "graysteps_schema_version"

WHITELIST_STATE = "whitelist"  # the StateRow name of the whitelist generation / lock


def tenant_id_type() -> String:
    return String(64).with_variant(mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb")


def timestamp_type() -> DateTime:
    return DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def long_text_type() -> Text:
    return Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def row_id_type() -> BigInteger:
    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    return BigInteger().with_variant(Integer(), "sqlite")


# MySQL/MariaDB: InnoDB, utf8mb4 for text (ignored elsewhere).
TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class Base(DeclarativeBase):
    pass


class WhitelistEntry(Base):
    __tablename__ = WHITELIST_TABLE

    tenant_id: Mapped[str] = mapped_column(tenant_id_type(), primary_key=True)
    note: Mapped[str | None] = mapped_column(String(255))
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(timestamp_type())

    __table_args__ = (TABLE_OPTIONS,)


class AuditEntry(Base):
    __tablename__ = AUDIT_TABLE

    id: Mapped[int] = mapped_column(row_id_type(), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(timestamp_type())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(long_text_type())  # JSON text

    __table_args__ = (
        Index("ix_graysteps_audit_subject", "subject"),
        Index("ix_graysteps_audit_at", "at"),
        TABLE_OPTIONS,
    )


class StateRow(Base):
    __tablename__ = STATE_TABLE

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (TABLE_OPTIONS,)


class SchemaVersion(Base):
    __tablename__ = SCHEMA_VERSION_TABLE

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128))
    applied_at: Mapped[datetime] = mapped_column(timestamp_type())

    __table_args__ = (TABLE_OPTIONS,)
