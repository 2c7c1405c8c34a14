"""The audit log: who changed what, when and why.

Generic on purpose: the whitelist writes `whitelist.add`, `whitelist.remove`
and `whitelist.sync`; the release plans write their own actions to the same
table. Call it inside your own transaction (pass the Connection or ORM
Session, or the WriteTransaction of `Store.write()`) so the audit row commits
or rolls back with the change it describes; pass a Store to write it in a
transaction of its own.

    from graysteps.adapters.audit.records import record_audit, read_audit
    record_audit(store, action="plan.release", subject="test-a",
                 reason="ticket 42", detail={"steps": [...]})

Who the actor is, and its check: graysteps/actor.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

from graysteps.adapters.actor import check_actor
from graysteps.errors import InvalidInput
from graysteps.adapters.db.models import AuditEntry

ACTION_MAX = 64
SUBJECT_MAX = 255


def utc_now() -> datetime:
    """Now, as the naive UTC datetime the tables store."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def fit_subject(subject: str) -> str:
    """The subject cut to the column's length (a long URL, say)."""
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def audit_row(
    *, actor: str, action: str, subject: str, reason: str | None, detail: Mapping[str, Any] | None, at: datetime
) -> dict[str, Any]:
    """One audit row as a dict for bulk inserts (values checked)."""
    if not action or len(action) > ACTION_MAX:
        raise InvalidInput(f"invalid audit action {action!r}: use 1-{ACTION_MAX} characters")
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "subject": fit_subject(subject),
        "reason": reason,
        "detail": None if detail is None else json.dumps(detail, sort_keys=True, ensure_ascii=False),
    }


def _connection(target: Any) -> tuple[Connection | None, Any]:
    """(connection, store) for a Connection, an ORM Session, a WriteTransaction or a Store."""
    if isinstance(target, Connection):
        return target, None
    if hasattr(target, "conn") and isinstance(target.conn, Connection):  # WriteTransaction
        return target.conn, None
    if hasattr(target, "connection") and hasattr(target, "commit") and not hasattr(target, "engine"):
        return target.connection(), None  # ORM Session
    if hasattr(target, "engine") and hasattr(target, "write"):  # Store
        return None, target
    raise TypeError(f"record_audit: need a Store, Connection, Session or WriteTransaction, not {type(target).__name__}")


def record_audit(
    target: Any,
    *,
    action: str,
    subject: str,
    actor: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Write one audit row; returns the row written (as a dict).

    `target`: a Store (own transaction) or a Connection / Session / WriteTransaction
    (the caller's transaction). `detail` is stored as JSON.
    """
    row = audit_row(
        actor=check_actor(actor), action=action, subject=subject, reason=reason, detail=detail, at=at or utc_now()
    )
    conn, store = _connection(target)
    if conn is not None:
        conn.execute(AuditEntry.__table__.insert(), row)
    else:
        with store.engine.connect().execution_options(graysteps_write=True) as own, own.begin():
            own.execute(AuditEntry.__table__.insert(), row)
    return row


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    detail: dict[str, Any] | None


def read_audit(
    target: Any,
    *,
    subject: str | None = None,
    action: str | None = None,
    action_prefix: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Audit rows, oldest first, filtered by exact subject / action or an action prefix (`whitelist.`)."""
    query = select(AuditEntry.__table__).order_by(AuditEntry.id)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if action_prefix is not None:
        query = query.where(AuditEntry.action.startswith(action_prefix, autoescape=True))
    if limit is not None:
        query = query.order_by(None).order_by(AuditEntry.id.desc()).limit(limit)
    conn, store = _connection(target)
    if conn is not None:
        rows = conn.execute(query).mappings().all()
    else:
        with store.read() as own:
            rows = own.execute(query).mappings().all()
    records = [
        AuditRecord(**{**row, "detail": None if row["detail"] is None else json.loads(row["detail"])}) for row in rows
    ]
    return sorted(records, key=lambda r: r.id)
