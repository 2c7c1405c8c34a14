"""The audit trail of progressive releases, which is also their state.

Rows, subject `progress <plan>`, detail always carrying the plan's sha256 and a
run id:
- `progress.started`, before the first write;
- `progress.step`, once per step and outcome: `advanced`, `awaiting-approval`,
  `approved`, `rolled-back` (the reason), with the analysis verdicts;
- `progress.finished`, with the result (`promoted`, `rolled-back`, `failed`).

The one thing to know: `unfinished_run` reads these rows back, so a run that
was killed (or stopped at a manual pause) resumes at the step after the last
one that advanced, as long as the plan file is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graysteps.adapters.audit.releases import _audit_store

STARTED = "progress.started"
STEP = "progress.step"
FINISHED = "progress.finished"


def subject(plan_name: str) -> str:
    return f"progress {plan_name}"


def record(db_url: str | None, *, action: str, plan_name: str, actor: str, reason: str | None,
           detail: dict[str, Any]) -> dict:
    from graysteps.adapters.audit.records import record_audit

    with _audit_store(db_url, action, "progress") as store:
        return record_audit(store, action=action, subject=subject(plan_name), actor=actor, reason=reason, detail=detail)


@dataclass(frozen=True)
class RunState:
    run_id: str
    started_at: str
    actor: str
    advanced: int  # how many steps advanced (the next step to run is this, 0-based)
    awaiting: int | None  # 0-based step waiting for approval, if any


def unfinished_run(db_url: str | None, plan_name: str, sha256: str) -> RunState | None:
    """The plan's last run when it has no `progress.finished` row and ran this very file; else None."""
    from graysteps.adapters.audit.records import read_audit

    with _audit_store(db_url, "read progress", "progress") as store:
        rows = read_audit(store, subject=subject(plan_name), action_prefix="progress.")
    starts = [i for i, r in enumerate(rows) if r.action == STARTED]
    if not starts:
        return None
    run = rows[starts[-1]:]
    start = run[0]
    if any(r.action == FINISHED for r in run) or (start.detail or {}).get("sha256") != sha256:
        return None
    advanced, awaiting = 0, None
    for r in run[1:]:
        d = r.detail or {}
        if r.action != STEP:
            continue
        if r.reason in ("advanced", "approved"):
            advanced = max(advanced, int(d.get("step", 0)) + 1)
            if awaiting == d.get("step"):
                awaiting = None
        elif r.reason == "awaiting-approval":
            awaiting = int(d.get("step", 0))
    return RunState(str(start.detail.get("run")), f"{start.at:%Y-%m-%d %H:%M:%S}", start.actor, advanced, awaiting)
