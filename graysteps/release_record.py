"""The audit trail of release plans, in the whitelist's audit table.

Two rows per real (not dry) run of `graysteps release`:
- `release.started`, written BEFORE the first write to the cluster: a run that
  is killed half-way still shows up, with the plan it was applying;
- `release.finished`, with the result (`succeeded`, `failed-restored`,
  `failed-partially-applied`, ...) as the reason and the whole per-service
  report as the detail.
The subject is `plan <name>`, the actor whoever ran it (see plans.default_actor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graysteps.errors import GraystepsError

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.plans import Plan, PlanResult

STARTED = "release.started"
FINISHED = "release.finished"


def _subject(plan: "Plan") -> str:
    return f"plan {plan.name}"


def _write(db_url: str | None, **row: Any) -> dict:
    from sqlalchemy.exc import SQLAlchemyError

    from graysteps.whitelist.audit import record_audit
    from graysteps.whitelist.store import open_store

    store = open_store(db_url)
    try:
        return record_audit(store, **row)
    except SQLAlchemyError as e:
        raise GraystepsError(f"could not write the audit record ({row['action']}): {str(e).splitlines()[0]}", step="release") from e
    finally:
        store.close()


def record_plan_start(plan: "Plan", *, actor: str, db_url: str | None = None) -> dict:
    """Record that `actor` starts applying `plan`; returns the row written."""
    detail = {"file": plan.path, "sha256": plan.sha256, "services": plan.summary()}
    return _write(db_url, action=STARTED, subject=_subject(plan), actor=actor, reason=plan.description or None, detail=detail)


def record_plan_run(result: "PlanResult", *, db_url: str | None = None) -> dict:
    """Record how a plan run ended (who, when, what, result); returns the row written."""
    return _write(
        db_url,
        action=FINISHED,
        subject=_subject(result.plan),
        actor=result.actor,
        reason=result.result,
        detail=result.to_dict(),
    )
