"""Release plans: several services, each with its strategy, applied all-or-nothing.

A plan file is YAML (read with ruamel's round-trip loader, which builds only
plain data and keeps line numbers for error messages):

    plan: scenario-1              # optional name for reports (default: file stem)
    description: A on whitelist, B on prod
    services:
      - service: test-a
        strategy: whitelist
      - service: test-b
        strategy: weight
        weight: 20                # only with strategy `weight`: the gray share, 0-100

`load_plan` validates the whole file against the catalog before anything is
touched: every problem is named with file, line, service and field.

`apply_plan` then works in phases, so that a plan is either applied whole or
reported exactly:

1. read: every VirtualService is read once (nothing written yet);
2. check: every change is sent to the apiserver as a server-side dry run, so its
   schema and admission checks run before the first real write;
3. apply: services are written one by one, in plan order (read-modify-write
   with resourceVersion, see `graysteps.adapters.kube.istio`);
4. restore, only if a write failed: each service the plan already changed is
   put back to the spec it had just before the plan wrote it (a VirtualService
   the plan created is deleted). A restore is guarded by the resourceVersion
   the plan wrote: if someone else changed the object since, it is left alone
   and reported, never overwritten.

Every outcome is in the returned `PlanResult`, including services left changed
because a restore failed (e.g. the apiserver went away): nothing is left
half-applied without being reported.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from graysteps.errors import GraystepsError, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import Catalog, ServiceSpec
    from graysteps.model.strategy import Strategy

STEP = "release"
PLAN_KEYS = ("plan", "description", "services")
ENTRY_KEYS = ("service", "strategy", "weight")

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


@dataclass(frozen=True)
class PlanStep:
    """One line of a plan: a catalog service and the strategy it should get."""

    service: "ServiceSpec"
    strategy: "Strategy"
    line: int

    @property
    def label(self) -> str:
        s = self.strategy
        return f"{s.name} {s.weight}" if getattr(s, "weight", None) is not None else s.name


@dataclass(frozen=True)
class Plan:
    name: str
    path: str
    description: str
    steps: tuple[PlanStep, ...]
    sha256: str

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "service": st.service.name,
                "strategy": st.strategy.name,
                "weight": getattr(st.strategy, "weight", None),
                "virtual_service": f"{st.service.vs_namespace}/{st.service.vs_name}",
            }
            for st in self.steps
        ]


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


def _line(node: Any, key: Any = None) -> int:
    """1-based line of a ruamel node (or of one of its keys/items), 0 if unknown."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0
    try:
        if key is None:
            return lc.line + 1
        if isinstance(key, int):
            return lc.item(key)[0] + 1
        return lc.key(key)[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return lc.line + 1


def _read_yaml(path: str) -> tuple[Any, str]:
    """The plan document (bounded read, strict YAML) and the sha256 of its bytes."""
    from graysteps.adapters import reading

    try:
        raw = reading.read_bytes(path, what="plan file", document=True)
        text = reading.decode_text(raw, what="plan file", name=path)
        data = reading.parse_yaml(text, what="plan file", name=path, round_trip=True)
    except InvalidInput as e:
        e.step = STEP
        raise
    return data, hashlib.sha256(raw).hexdigest()


def _is_int(value: Any) -> bool:
    """A plain decimal YAML integer: not a bool, and not ruamel's ScalarInt (0x14, 0o24, 020, 2_0, -0)."""
    return type(value) is int


def load_plan(path: str, catalog: "Catalog") -> Plan:
    """Read and validate a plan file against `catalog`; raise InvalidInput naming
    every problem (file:line, service, field) and what is allowed."""
    from graysteps.model.strategy import parse_strategy

    data, digest = _read_yaml(path)
    problems: list[str] = []

    def bad(line: int, what: str) -> None:
        problems.append(f"{path}:{line}: {what}" if line else f"{path}: {what}")

    if not isinstance(data, dict):
        raise InvalidInput(f"plan file {path}: must be a mapping with a `services:` list (see examples/plans/)", step=STEP)
    for key in data:
        if key not in PLAN_KEYS:
            bad(_line(data, key), f"unknown key {key!r}; allowed: {', '.join(PLAN_KEYS)}")
    name = data.get("plan", Path(path).stem)
    if not isinstance(name, str) or not name.strip():
        bad(_line(data, "plan"), f"field 'plan': {name!r} must be a non-empty string")
        name = Path(path).stem
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        bad(_line(data, "description"), "field 'description': must be a string")
        description = ""
    entries = data.get("services")
    if not isinstance(entries, list) or not entries:
        bad(_line(data, "services") if "services" in data else 0, "field 'services': must be a non-empty list of {service, strategy[, weight]}")
        entries = []

    steps: list[PlanStep] = []
    seen: dict[str, int] = {}
    seen_vs: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(entries):
        line = _line(entries, i)
        where = f"services[{i}]"
        if not isinstance(entry, dict):
            bad(line, f"{where}: must be a mapping with keys service, strategy[, weight]; got {entry!r}")
            continue
        line = _line(entry) or line
        for key in entry:
            if key not in ENTRY_KEYS:
                bad(_line(entry, key), f"{where}: unknown field {key!r}; allowed: {', '.join(ENTRY_KEYS)}")
        svc_name = entry.get("service")
        if not isinstance(svc_name, str) or not svc_name:
            bad(_line(entry, "service") or line, f"{where}: field 'service' is missing or not a string: {svc_name!r}")
            continue
        where = f"{where} ({svc_name})"
        if svc_name in seen:
            bad(_line(entry, "service"), f"{where}: service listed twice (first at line {seen[svc_name]}); a plan gives each service one strategy")
            continue
        seen[svc_name] = _line(entry, "service")
        try:
            service = catalog.service(svc_name)
        except InvalidInput as e:
            bad(_line(entry, "service"), f"{where}: field 'service': {e.message}")
            continue
        strategy_name = entry.get("strategy")
        if not isinstance(strategy_name, str) or not strategy_name:
            bad(_line(entry, "strategy") or line, f"{where}: field 'strategy' is missing or not a string: {strategy_name!r}")
            continue
        weight = entry.get("weight")
        if "weight" in entry and not _is_int(weight):
            bad(_line(entry, "weight"), f"{where}: field 'weight': {weight!r} is not allowed; use an integer 0-100 (the gray share)")
            continue
        try:
            strategy = parse_strategy(strategy_name, weight)
        except InvalidInput as e:
            field_name = "weight" if "weight" in entry and "weight" in e.message.lower() else "strategy"
            bad(_line(entry, field_name), f"{where}: field '{field_name}': {e.message}")
            continue
        vs_key = (service.vs_namespace, service.vs_name)
        if vs_key in seen_vs:
            bad(_line(entry, "service"), f"{where}: uses VirtualService {vs_key[0]}/{vs_key[1]}, which {seen_vs[vs_key]} also uses; one plan writes each VirtualService once")
            continue
        seen_vs[vs_key] = svc_name
        steps.append(PlanStep(service=service, strategy=strategy, line=line))

    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise InvalidInput(f"invalid plan: {problems[0]}{more}", step=STEP)
    return Plan(name=str(name), path=path, description=str(description), steps=tuple(steps), sha256=digest)


# ---------------------------------------------------------------- applying


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


_UNREACHABLE_SIGNS = ("Connection refused", "Max retries exceeded", "NewConnectionError", "RemoteDisconnected", "timed out")


def _no_answer(error: BaseException) -> bool:
    """True when the error (or one it was raised from) is the apiserver not answering at all."""
    seen = 0
    while error is not None and seen < 10:
        if getattr(error, "status", None) is None and any(sign in str(error) for sign in _UNREACHABLE_SIGNS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def failure_reason(error: BaseException) -> str:
    """A one-line reason for an error from the kubernetes client or from graysteps."""
    if _no_answer(error):
        if isinstance(error, GraystepsError) and "unreachable" in error.message:
            return error.message
        why = "connection refused" if "Connection refused" in str(error) else type(error).__name__
        return f"apiserver unreachable ({why})"
    if isinstance(error, GraystepsError):
        return error.message
    status = getattr(error, "status", None)
    if status:
        import json

        body = getattr(error, "body", None)
        try:
            detail = json.loads(body).get("message", "") if body else ""
        except (ValueError, AttributeError):
            detail = ""
        return f"apiserver answered {status} {getattr(error, 'reason', '')}: {detail}".strip().rstrip(":")
    return (str(error).splitlines()[0] if str(error) else type(error).__name__)[:300]


def _rv(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


AfterWrite = Callable[[PlanStep, ServiceOutcome], None]


def apply_plan(
    plan: Plan,
    *,
    api_client: Any = None,
    dry_run: bool = False,
    actor: str | None = None,
    after_write: AfterWrite | None = None,
) -> PlanResult:
    """Apply `plan` all-or-nothing; return what happened to each service.

    `after_write(step, outcome)` is called after each service's real write
    (tests use it to stop the apiserver in the middle of a plan).
    Never raises for a cluster failure: the failure is in the result.
    """
    from graysteps.adapters.kube.istio import route

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
        out.diff = checked.diff
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
            if _no_answer(e):
                out.message += " [no answer: if this write reached the apiserver it may have landed; rerunning the plan converges]"
            break
        out.diff, out.created = res.diff, res.before is None
        out.before_resource_version, out.after_resource_version = _rv(res.before), _rv(res.after)
        if res.changed:
            out.status = APPLIED
            out.before_spec = copy.deepcopy((res.before or {}).get("spec"))
            written.append((st, out, res.before, res.after))
        else:
            out.status = UNCHANGED
        if after_write is not None:
            after_write(st, out)

    # Phase 4: put back what this run changed, newest first.
    if result.error:
        for st, out, before, after in reversed(written):
            _restore(st, out, before, after, api_client)
    result.finished_at = _now()
    return result


def _restore(st: PlanStep, out: ServiceOutcome, before: dict | None, after: dict, api_client: Any) -> None:
    """Put one VirtualService back to `before`, unless someone changed it since `after`."""
    from graysteps.adapters.kube.istio import update_virtual_service

    from kubernetes.client.exceptions import ApiException

    written_rv = _rv(after)
    try:
        if before is None:
            try:
                _delete_if_unchanged(st.service, written_rv, api_client)
            except ApiException as e:
                if e.status == 409:  # the precondition failed: someone wrote it after the plan
                    out.status = LEFT_TO_OTHER_WRITER
                    out.message = "not deleted: another writer changed it after the plan created it; check it by hand"
                    return
                if e.status != 404:
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


def _delete_if_unchanged(service: "ServiceSpec", written_rv: str | None, api_client: Any) -> None:
    from kubernetes import client

    group, version = service.api_version.split("/", 1)
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        group,
        version,
        service.vs_namespace,
        "virtualservices",
        service.vs_name,
        body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=written_rv)),
    )


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
        elif o.diff:
            ET.SubElement(case, "system-out").text = o.diff
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
