"""Apply a release plan (graysteps.model.plan) all-or-nothing.

`apply_plan` works in phases, so that a plan is either applied whole or
reported exactly:

1. check: every service's change is sent to the apiserver as a dry run (its
   schema and admission checks, Istio's validation included, run before the
   first real write); nothing is written;
2. apply: services are routed one by one, in plan order (graysteps.steps.route);
3. restore, only if a write failed: each service the plan already changed is
   put back to the spec it had just before the plan wrote it (a VirtualService
   the plan created is deleted). A restore is guarded by the resourceVersion
   the plan wrote: if someone else changed the object since, it is left alone
   and reported, never overwritten.

The one thing to know: every outcome is in the returned `PlanResult`,
including services left changed because a restore failed (e.g. the apiserver
went away): nothing is left half-applied without being reported.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from graysteps.adapters.kube.errors import failure_reason, no_answer
from graysteps.adapters.kube.istio import delete_virtual_service, update_virtual_service
from graysteps.model.plan import Plan, PlanStep
from graysteps.steps.route import route

STEP = "release"

# Outcome states of one service in a plan run.
APPLIED = "applied"  # written by this run and kept
UNCHANGED = "unchanged"  # already as the plan wants it; nothing written
WOULD_CHANGE = "would-change"  # dry run: the apiserver accepted the change
FAILED = "failed"  # this service's write (or check) failed
NOT_ATTEMPTED = "not-attempted"  # a failure elsewhere stopped the plan first
RESTORED = "restored"  # written, then put back to its previous spec
RESTORE_FAILED = "restore-failed"  # written, and could NOT be put back: still changed
LEFT_TO_OTHER_WRITER = "changed-by-other-writer"  # written, then changed by someone else: left alone

STILL_CHANGED = (APPLIED, RESTORE_FAILED, LEFT_TO_OTHER_WRITER)


@dataclass
class ServiceOutcome:
    service: str
    strategy: str
    virtual_service: str
    status: str = NOT_ATTEMPTED
    message: str = ""
    diff: str = ""
    created: bool = False  # the plan created this VirtualService
    # The snapshot taken by the write: resourceVersions before/after, and the spec
    # before (kept for services this run wrote, so a failed restore can be done by hand).
    before_resource_version: str | None = None
    after_resource_version: str | None = None
    before_spec: dict | None = None
    warnings: list[str] = field(default_factory=list)  # route's warnings (e.g. a route that shadows the service's)

    @property
    def ok(self) -> bool:
        return self.status in (APPLIED, UNCHANGED, WOULD_CHANGE)


@dataclass
class PlanResult:
    plan: Plan
    dry_run: bool
    actor: str
    started_at: str
    finished_at: str = ""
    outcomes: list[ServiceOutcome] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(o.ok for o in self.outcomes)

    @property
    def changed(self) -> list[str]:
        """Services whose VirtualService this run left different from before it."""
        return [o.service for o in self.outcomes if o.status in STILL_CHANGED]

    @property
    def result(self) -> str:
        if self.ok:
            return "dry-run" if self.dry_run else "succeeded"
        if any(o.status in (RESTORE_FAILED, LEFT_TO_OTHER_WRITER) for o in self.outcomes):
            return "failed-partially-applied"
        if any(o.status == RESTORED for o in self.outcomes):
            return "failed-restored"
        return "failed-nothing-changed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.name,
            "file": self.plan.path,
            "sha256": self.plan.sha256,
            "actor": self.actor,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "dry_run": self.dry_run,
            "result": self.result,
            "error": self.error,
            "still_changed": self.changed,
            "services": [dataclasses.asdict(o) for o in self.outcomes],
        }


# ---------------------------------------------------------------- loading


# ---------------------------------------------------------------- applying


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _rv(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def apply_plan(
    plan: Plan,
    *,
    api_client: Any = None,
    dry_run: bool = False,
    actor: str | None = None,
) -> PlanResult:
    """Apply `plan` all-or-nothing; return what happened to each service.

    Never raises for a cluster failure: the failure is in the result.
    """
    if actor is None:
        from graysteps.adapters.actor import default_actor

        actor = default_actor()
    result = PlanResult(plan=plan, dry_run=dry_run, actor=actor, started_at=_now())
    outcomes = [
        ServiceOutcome(st.service.name, st.label, f"{st.service.vs_namespace}/{st.service.vs_name}") for st in plan.steps
    ]
    result.outcomes = outcomes

    # Phases 1+2: nothing is written. The server-side dry run reads the live
    # object, applies the strategy and has the apiserver validate the result.
    for st, out in zip(plan.steps, outcomes):
        try:
            checked = route(st.service, st.strategy, api_client=api_client, dry_run=True)
        except Exception as e:  # noqa: BLE001 - reported per service
            out.status, out.message = FAILED, f"check before any write failed: {failure_reason(e)}"
            result.error = f"{st.service.name}: {out.message}; nothing was changed"
            result.finished_at = _now()
            return result
        out.diff, out.warnings = checked.diff, list(checked.warnings)
        out.created = checked.before is None
        out.status = WOULD_CHANGE if checked.changed else UNCHANGED
    if dry_run:
        result.finished_at = _now()
        return result

    # Phase 3: the real writes, in plan order.
    written: list[tuple[PlanStep, ServiceOutcome, dict | None, dict]] = []
    for st, out in zip(plan.steps, outcomes):
        out.status = NOT_ATTEMPTED
    for st, out in zip(plan.steps, outcomes):
        try:
            res = route(st.service, st.strategy, api_client=api_client)
        except KeyboardInterrupt:  # Ctrl-C / an aborted build: put back what was written, then report
            out.status, out.message = FAILED, "interrupted during this write: it may or may not have landed; rerun the plan to converge"
            result.error = f"{st.service.name}: interrupted"
            break
        except Exception as e:  # noqa: BLE001
            out.status, out.message = FAILED, failure_reason(e)
            result.error = f"{st.service.name} failed: {out.message}"
            if no_answer(e):
                out.message += " [no answer: if this write reached the apiserver it may have landed; rerunning the plan converges]"
            break
        out.diff, out.created, out.warnings = res.diff, res.before is None, list(res.warnings)
        out.before_resource_version, out.after_resource_version = _rv(res.before), _rv(res.after)
        if res.changed:
            out.status = APPLIED
            out.before_spec = copy.deepcopy((res.before or {}).get("spec"))
            written.append((st, out, res.before, res.after))
        else:
            out.status = UNCHANGED

    # Phase 4: put back what this run changed, newest first.
    if result.error:
        for st, out, before, after in reversed(written):
            _restore(st, out, before, after, api_client)
    result.finished_at = _now()
    return result


def _restore(st: PlanStep, out: ServiceOutcome, before: dict | None, after: dict, api_client: Any) -> None:
    """Put one VirtualService back to `before`, unless someone changed it since `after`."""
    written_rv = _rv(after)
    try:
        if before is None:
            try:
                delete_virtual_service(st.service, written_rv, api_client=api_client)
            except Exception as e:  # noqa: BLE001 - ApiException or KubeRestError, both with .status
                if getattr(e, "status", None) == 409:  # the precondition failed: someone wrote it after the plan
                    out.status = LEFT_TO_OTHER_WRITER
                    out.message = "not deleted: another writer changed it after the plan created it; check it by hand"
                    return
                raise
            out.status, out.message = RESTORED, "deleted: the plan had created it"
            return

        class _ChangedSince(Exception):
            pass

        def put_back(current: dict | None) -> dict:
            if current is None or _rv(current) != written_rv:
                raise _ChangedSince(f"now at resourceVersion {_rv(current)}, the plan wrote {written_rv}")
            restored = copy.deepcopy(current)
            restored["spec"] = copy.deepcopy(before.get("spec") or {})
            for key in ("labels", "annotations"):  # the strategy the plan recorded goes too
                old = (before.get("metadata") or {}).get(key)
                if old is None:
                    restored["metadata"].pop(key, None)
                else:
                    restored["metadata"][key] = copy.deepcopy(old)
            return restored

        try:
            update_virtual_service(st.service, put_back, api_client=api_client)
        except _ChangedSince as e:
            out.status = LEFT_TO_OTHER_WRITER
            out.message = f"not restored: another writer changed it after the plan ({e}); check it by hand"
            return
        out.status, out.message = RESTORED, "put back to the spec it had before the plan"
    except Exception as e:  # noqa: BLE001
        out.status = RESTORE_FAILED
        out.message = f"STILL CHANGED: restore failed ({failure_reason(e)}); rerun the plan or `graysteps rollback --service {st.service.name}`"


# ---------------------------------------------------------------- artefacts


def write_json_report(result: PlanResult, path: str) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_junit_report(result: PlanResult, path: str) -> None:
    """One <testcase> per service; a failure element for every service not as planned."""
    import xml.etree.ElementTree as ET

    bad = [o for o in result.outcomes if not o.ok]
    suite = ET.Element(
        "testsuite",
        name=f"graysteps release {result.plan.name}",
        tests=str(len(result.outcomes)),
        failures=str(len(bad)),
        errors="0",
        timestamp=result.started_at,
    )
    for o in result.outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"release.{result.plan.name}", name=f"{o.service} {o.strategy}")
        if not o.ok:
            failure = ET.SubElement(case, "failure", type=o.status, message=o.message or o.status)
            failure.text = f"{o.virtual_service}: {o.status}: {o.message}"
        elif o.diff or o.warnings:
            ET.SubElement(case, "system-out").text = "".join(f"warning: {w}\n" for w in o.warnings) + o.diff
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
