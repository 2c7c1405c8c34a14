"""The audit trail of releases and rollbacks, in the whitelist's audit table.

Two rows per real (not dry) run of `graysteps release`:
- `release.started`, written BEFORE the first write to the cluster: a run that
  is killed half-way still shows up, with the plan it was applying;
- `release.finished`, with the result (`succeeded`, `failed-restored`,
  `failed-partially-applied`, ...) as the reason and the whole per-service
  report as the detail.
The subject is `plan <name>`, the actor whoever ran it (graysteps.adapters.actor).

One row per real run of `graysteps rollback` when an audit database is
configured (`--db`, $GRAYSTEPS_DB; the Jenkins step binds one), written AFTER
the rollback, so that loading the database layer (~0.2 s) or a database that
is down never delays taking traffic off gray:
- `rollback`, subject `rollback --all` or `rollback <services>`, the outcome
  (`succeeded` or `failed`) as the reason, each service's outcome as the detail.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from graysteps.errors import GraystepsError

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.adapters.audit.records import AuditRecord

STARTED = "release.started"
FINISHED = "release.finished"
ROLLBACK = "rollback"


def _subject(plan_name: str) -> str:
    return f"plan {plan_name}"


@contextmanager
def _audit_store(db_url: str | None, action: str, step: str) -> Iterator[Any]:
    """The audit database, open; a database error becomes one GraystepsError naming `action`."""
    from sqlalchemy.exc import SQLAlchemyError

    from graysteps.adapters.db.store import open_store

    store = None
    try:
        store = open_store(db_url)
        yield store
    except SQLAlchemyError as e:
        raise GraystepsError(f"could not write the audit record ({action}): {str(e).splitlines()[0]}", step=step) from e
    finally:
        if store is not None:
            store.close()


def _write(db_url: str | None, step: str = "release", **row: Any) -> dict:
    """Write one audit row; returns it."""
    from graysteps.adapters.audit.records import record_audit

    with _audit_store(db_url, row["action"], step) as store:
        return record_audit(store, **row)


def record_plan_start(plan_name: str, *, description: str, detail: dict, actor: str,
                      db_url: str | None = None) -> "AuditRecord | None":
    """Record that `actor` starts applying plan `plan_name` (`detail`: file, digest, services).

    Returns the plan's previous `release.started` row when no `release.finished`
    followed it (that run was killed, or is still running), else None.
    """
    from graysteps.adapters.audit.records import read_audit, record_audit

    with _audit_store(db_url, STARTED, "release") as store:
        last = read_audit(store, subject=_subject(plan_name), action_prefix="release.", limit=1)
        record_audit(store, action=STARTED, subject=_subject(plan_name), actor=actor, reason=description or None,
                     detail=detail)
    return last[0] if last and last[0].action == STARTED else None


def record_plan_run(plan_name: str, *, outcome: str, detail: dict, actor: str, db_url: str | None = None) -> dict:
    """Record how a plan run ended (`outcome`: succeeded, failed-restored, …; `detail`: the
    per-service report); returns the row written."""
    return _write(db_url, action=FINISHED, subject=_subject(plan_name), actor=actor, reason=outcome, detail=detail)


def record_rollback(*, selection: str, ok: bool, detail: dict, actor: str, db_url: str) -> dict:
    """Record a fleet rollback; `selection` is what was asked: "--all", or the service names."""
    return _write(db_url, step="rollback", action=ROLLBACK, subject=f"rollback {selection}", actor=actor,
                  reason="succeeded" if ok else "failed", detail=detail)
