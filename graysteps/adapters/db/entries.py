"""Reading and changing whitelist entries: the single-tenant operations and the bulk paths.

Bulk paths (sync of a million tenants): ids travel as ONE bound JSON array
parameter per chunk of 50,000 and the database unpacks it itself:
`JSON_TABLE` on MySQL/MariaDB, `json_each` on SQLite. That keeps SQL bound (no
id is ever part of SQL text) and avoids per-row parameter formatting in
Python, which dominates PyMySQL's executemany. On MySQL the array is bound as
bytes (PyMySQL sends bytes as a hex literal: no per-character escaping) into
the session variable @graysteps_ids, which the write and its audit row share.
Reading all ids on MySQL pages through the primary key with `JSON_ARRAYAGG`
(one JSON string per 100,000 ids), several times faster than fetching a
million one-column rows with PyMySQL.

Callers validate ids first (tenants.py) and hold the write lock (Store.write()).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from graysteps.adapters.audit.records import audit_row
from graysteps.adapters.db.models import WHITELIST_TABLE, AuditEntry, WhitelistEntry, timestamp_type

CHUNK = 50_000
READ_PAGE = 100_000

_MYSQL_IDS = "JSON_TABLE(@graysteps_ids, '$[*]' COLUMNS (tenant_id VARCHAR(64) CHARACTER SET ascii PATH '$')) AS jt"
_SQLITE_IDS = "(SELECT value AS tenant_id FROM json_each(:ids)) AS jt"


@dataclass(frozen=True)
class ChunkAudit:
    """One audit row per chunk of a bulk write; its detail is `head + <JSON list of the chunk's ids> + tail`.

    On MySQL the ids travel once per chunk (in the session variable @graysteps_ids)
    and serve both the write and the audit row.
    """

    action: str
    subject: str
    actor: str
    reason: str | None
    at: datetime
    detail: Callable[[int], tuple[str, str]]  # chunk number (1-based) → (head, tail)


def _is_mysql(conn: Connection) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


def _chunks(ids: Sequence[str], size: int | None = None) -> Iterable[Sequence[str]]:
    size = size or CHUNK
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def read_all_tenant_ids(conn: Connection) -> set[str]:
    """Every whitelisted tenant id."""
    if not _is_mysql(conn):
        return set(conn.execute(select(WhitelistEntry.tenant_id)).scalars())
    conn.exec_driver_sql("SET SESSION group_concat_max_len = 67108864")  # JSON_ARRAYAGG's limit (64 MiB)
    page = text(
        f"SELECT JSON_ARRAYAGG(tenant_id) FROM (SELECT tenant_id FROM {WHITELIST_TABLE} "
        "WHERE tenant_id > :after ORDER BY tenant_id LIMIT :n) AS page"
    )
    found: set[str] = set()
    after = ""
    while True:
        chunk = conn.execute(page, {"after": after, "n": READ_PAGE}).scalar()
        ids = json.loads(chunk) if chunk else []
        found.update(ids)
        if len(ids) < READ_PAGE:
            return found
        after = max(ids)  # ascii_bin order == Python str order for ASCII ids


def insert_entries(
    conn: Connection, ids: Sequence[str], *, note: str | None, actor: str, at: datetime, audit: ChunkAudit | None = None
) -> None:
    """Insert new entries (none of them present), chunk by chunk, with an audit row per chunk if asked."""
    source = _MYSQL_IDS if _is_mysql(conn) else _SQLITE_IDS
    statement = text(
        f"INSERT INTO {WHITELIST_TABLE} (tenant_id, note, added_by, added_at) "
        f"SELECT jt.tenant_id, :note, :actor, :at FROM {source}"
    ).bindparams(bindparam("at", type_=timestamp_type()))
    _write_chunks(conn, ids, statement, {"note": note, "actor": actor, "at": at}, audit)


def delete_entries(conn: Connection, ids: Sequence[str], *, audit: ChunkAudit | None = None) -> None:
    """Delete the entries of these ids, chunk by chunk, with an audit row per chunk if asked."""
    if _is_mysql(conn):
        statement = text(f"DELETE w FROM {WHITELIST_TABLE} AS w JOIN {_MYSQL_IDS} ON w.tenant_id = jt.tenant_id")
    else:
        statement = text(f"DELETE FROM {WHITELIST_TABLE} WHERE tenant_id IN (SELECT value FROM json_each(:ids))")
    _write_chunks(conn, ids, statement, {}, audit)


def _write_chunks(conn: Connection, ids: Sequence[str], statement, params: dict, audit: ChunkAudit | None) -> None:
    mysql = _is_mysql(conn)
    audit_table = AuditEntry.__table__
    if mysql and audit:
        audit_statement = text(
            f"INSERT INTO {audit_table.name} (at, actor, action, subject, reason, detail) "
            "VALUES (:at, :actor, :action, :subject, :reason, CONCAT(:head, @graysteps_ids, :tail))"
        ).bindparams(bindparam("at", type_=timestamp_type()))
    for number, (payload, encoded) in enumerate(_payloads(ids), 1):
        if mysql:
            # bytes: PyMySQL sends them as a hex literal (X'…'), several times cheaper than escaping a str
            conn.execute(text("SET @graysteps_ids = CONVERT(:ids USING utf8mb4)"), {"ids": encoded})
            conn.execute(statement, params)
        else:
            conn.execute(statement, {**params, "ids": payload})
        if audit is None:
            continue
        head, tail = audit.detail(number)
        row = {"at": audit.at, "actor": audit.actor, "action": audit.action, "subject": audit.subject,
               "reason": audit.reason}
        if mysql:
            conn.execute(audit_statement, {**row, "head": head, "tail": tail})
        else:
            conn.execute(audit_table.insert(), {**row, "detail": head + payload + tail})
    if mysql and ids:
        conn.execute(text("SET @graysteps_ids = NULL"))


def _payloads(ids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """(JSON text, its UTF-8 bytes) per chunk, made in a helper thread while the database works on the previous one."""
    def prepare(chunk: Sequence[str]) -> tuple[str, bytes]:
        payload = json.dumps(list(chunk))
        return payload, payload.encode("utf-8")

    if len(ids) <= CHUNK:
        yield from map(prepare, _chunks(ids))
        return
    with ThreadPoolExecutor(1) as pool:
        for future in [pool.submit(prepare, chunk) for chunk in _chunks(ids)]:
            yield future.result()


def present_among(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Which of these ids are whitelisted."""
    found: set[str] = set()
    for chunk in _chunks(ids, 1000):
        found.update(conn.execute(select(WhitelistEntry.tenant_id).where(WhitelistEntry.tenant_id.in_(chunk))).scalars())
    return found


def is_whitelisted(conn: Connection, tenant_id: str) -> bool:
    return conn.execute(select(WhitelistEntry.tenant_id).where(WhitelistEntry.tenant_id == tenant_id)).first() is not None








def audit_each(conn: Connection, action: str, ids: Sequence[str], *, actor: str, reason: str | None, at: datetime) -> None:
    rows = [audit_row(actor=actor, action=action, subject=t, reason=reason, detail=None, at=at) for t in ids]
    conn.execute(AuditEntry.__table__.insert(), rows)
