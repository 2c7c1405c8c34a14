"""Progressive delivery: run a schedule of routing steps, each gated by an
analysis of real metrics, and roll every service of the plan back to prod at
the first bad verdict.

For each step of a `graysteps.model.schedule.Schedule`:
1. apply: the step's strategies for all services, all-or-nothing, through the
   release machinery (`graysteps.steps.release.apply_plan`);
2. wait until the mesh serves the new routes: with istiod's debug address,
   until istiod holds every VirtualService written and every proxy
   acknowledged a push carrying it (`graysteps.adapters.istiod.IstioWait`,
   what `--wait` does for route/release); without one, a fixed `settle`;
3. analyse: poll Prometheus every `interval`; feed each (service, metric)
   `RatioTest` (gray vs prod, see graysteps.model.comparison) the counts since
   the previous poll; the first FAIL rolls back; the step advances once its
   pause is over and every test has its minimum of gray requests without a
   FAIL (or a PASS); no verdict by `maxDuration` rolls back too;
4. a `manual` pause then stops the run as `awaiting-approval` (Jenkins asks
   with an `input`) until it is resumed with `approve=<step>`.

The one thing to know: this module is the orchestrator *above* the other
steps: it reuses `release` to write routes, and setup.cfg's import-linter
contracts keep it out of the steps' independence list and forbid any other
step to import it. Each step, rollback, start
and end is written to the audit table, which is also the state a killed run
resumes from; alerts go to webhooks and never hold up a rollback.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.model.plan import Plan, PlanStep
from graysteps.model.schedule import Schedule, ScheduleStep
from graysteps.model.sequential import Decision
from graysteps.model.strategy import Strategy
from graysteps.steps.release import APPLIED, apply_plan

STEP = "progress"
PROFILES = ("gray", "prod")

ADVANCED = "advanced"
AWAITING = "awaiting-approval"
APPROVED = "approved"
ROLLED_BACK = "rolled-back"
WOULD_RUN = "would-run"

Out = Callable[[str], None]


@dataclass
class StepReport:
    index: int
    label: str
    status: str = ""
    reason: str = ""
    verdicts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    diff: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"step": self.index + 1, "label": self.label, "status": self.status, "reason": self.reason,
                "verdicts": self.verdicts, "seconds": round(self.seconds, 3)}


@dataclass
class ProgressResult:
    schedule: Schedule
    dry_run: bool
    actor: str
    run_id: str
    started_at: str
    result: str = ""  # promoted, rolled-back, awaiting-approval, dry-run, failed
    error: str = ""
    resumed_at: int | None = None  # 0-based step a resumed run went on from
    steps: list[StepReport] = field(default_factory=list)
    rollback_seconds: float | None = None  # from the bad verdict to every service routed back to prod
    # (written; with an IstioWait, until Istio serves it)

    @property
    def ok(self) -> bool:
        return self.result in ("promoted", AWAITING, "dry-run", ADVANCED)

    def to_dict(self) -> dict:
        return {"plan": self.schedule.name, "file": self.schedule.path, "sha256": self.schedule.sha256,
                "run": self.run_id, "actor": self.actor, "started_at": self.started_at, "dry_run": self.dry_run,
                "result": self.result, "error": self.error, "resumed_at_step": None if self.resumed_at is None else self.resumed_at + 1,
                "rollback_seconds": self.rollback_seconds, "steps": [s.to_dict() for s in self.steps]}


class Hooks:
    """What a run reports to and waits on; the CLI passes real ones, tests their own."""

    def __init__(self, *, out: Out = print, notifier: Any = None, db_url: str | None = None, record: bool = True):
        self.out = out
        self.notifier = notifier
        self.db_url = db_url
        self.record = record

    def alert(self, kind: str, schedule: Schedule, text: str, step: str = "") -> None:
        if self.notifier is None:
            return
        from graysteps.adapters.alerts import Event

        self.notifier.send(Event(kind, schedule.name, text, step, tuple(s.name for s in schedule.services)))

    def audit(self, action: str, schedule: Schedule, actor: str, reason: str | None, detail: dict) -> None:
        if not self.record:
            return
        from graysteps.adapters.audit.progress import record

        try:
            record(self.db_url, action=action, plan_name=schedule.name, actor=actor, reason=reason,
                   detail={"sha256": schedule.sha256, **detail})
        except GraystepsError as e:  # an audit database that is down never blocks a rollback
            self.out(f"warning: {e.message}")


# ------------------------------------------------------------------ metrics


class Snapshotter:
    """Reads the cumulative (requests, bad) counters of every (service, metric, profile) of a step."""

    def __init__(self, step: ScheduleStep, prometheus: Any):
        self.prometheus = prometheus
        self.queries: dict[tuple[str, str, str], tuple[str, str]] = {}
        for service, _ in step.strategies:
            for metric in step.analysis.metrics:
                for profile in PROFILES:
                    self.queries[(service.name, metric.kind, profile)] = metric.queries(
                        service, profile, step.analysis.destination)

    def read(self) -> dict[tuple[str, str, str], tuple[float, float]]:
        return {key: (self.prometheus.scalar(total), self.prometheus.scalar(bad))
                for key, (total, bad) in self.queries.items()}


def _increment(now: tuple[float, float], before: tuple[float, float]) -> tuple[float, float]:
    """Counter increase; a counter that went down was reset (an Envoy restart): count from zero."""
    requests, bad = now[0] - before[0], now[1] - before[1]
    if requests < 0 or bad < 0:
        return now
    return requests, min(bad, requests)


def analyse(step: ScheduleStep, prometheus: Any, *, out: Out, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic) -> tuple[bool, str, list[str]]:
    """Run the step's analysis for its pause (manual: until enough data); (passed, reason, verdict lines)."""
    from graysteps.model.comparison import Counts, RatioTest

    analysis = step.analysis
    pause = step.pause or 0.0
    if not analysis.enabled:
        sleep(pause)
        return True, "no analysis", []
    snap = Snapshotter(step, prometheus)
    tests = {(svc.name, m.kind): RatioTest(m.max_ratio, analysis.confidence, min_requests=analysis.min_requests)
             for svc, _ in step.strategies for m in analysis.metrics}
    what = {m.kind: m.label for m in analysis.metrics}
    previous = snap.read()
    start = clock()
    last_line = ""
    while True:
        sleep(analysis.interval)
        current = snap.read()
        for (service, kind), test in tests.items():
            gray = _increment(current[(service, kind, "gray")], previous[(service, kind, "gray")])
            prod = _increment(current[(service, kind, "prod")], previous[(service, kind, "prod")])
            test.add(Counts(*gray), Counts(*prod))
        previous = current
        verdicts = {key: test.decide() for key, test in tests.items()}
        lines = [f"{service} {v.describe(what[kind])}" for (service, kind), v in verdicts.items()]
        elapsed = clock() - start
        failed = [line for line, v in zip(lines, verdicts.values()) if v.decision is Decision.FAIL]
        if failed:
            return False, failed[0], lines
        settled = all(v.decision is Decision.PASS or v.enough for v in verdicts.values())
        if settled and elapsed >= pause:
            return True, "passed" if all(v.decision is Decision.PASS for v in verdicts.values()) else "no harm seen", lines
        if elapsed >= max(pause, analysis.max_duration):
            short = [line for line, v in zip(lines, verdicts.values()) if not (v.decision is Decision.PASS or v.enough)]
            return False, f"no verdict after {elapsed:.0f}s (analysis.maxDuration): {short[0] if short else lines[0]}", lines
        summary = "; ".join(lines)
        if summary != last_line and int(elapsed) % 5 == 0:
            out(f"    {elapsed:5.1f}s  {summary}")
            last_line = summary


# ------------------------------------------------------------------ running


def _plan_for(schedule: Schedule, name: str, pairs) -> Plan:
    return Plan(name=f"{schedule.name} {name}", path=schedule.path, description=schedule.description,
                steps=tuple(PlanStep(service=svc, strategy=strategy, line=0) for svc, strategy in pairs),
                sha256=schedule.sha256)


def _served(applied: Any, wait: Any, settle: float, sleep: Callable[[float], None]) -> str:
    """Wait until the mesh serves what `applied` (a PlanResult) wrote: Istio's own signal with
    `wait` (GraystepsError when it does not within its timeout), else `settle` seconds."""
    if wait is None:
        sleep(settle)
        return ""
    from graysteps.adapters.istiod import ConfigChange

    changes = [ConfigChange("VirtualService", *o.virtual_service.split("/", 1), o.after_resource_version)
               for o in applied.outcomes if o.status == APPLIED and o.after_resource_version]
    return wait.served(changes).describe()


def _apply_and_analyse(schedule: Schedule, step: ScheduleStep, *, api_client: Any, prometheus: Any, actor: str,
                       wait: Any, settle: float, sleep: Callable[[float], None], out: Out) -> tuple[bool, str, list[str]]:
    """Apply one step, wait until the mesh serves it, analyse it: (passed, reason, verdict lines)."""
    try:
        if wait is not None:
            wait.before()
    except GraystepsError as e:
        return False, f"istiod did not answer before the step was written: {e.message}", []
    applied = apply_plan(_plan_for(schedule, f"step {step.index + 1}", step.strategies), api_client=api_client,
                         actor=actor)
    if not applied.ok:
        return False, f"could not apply the step: {applied.error}", []
    try:
        served = _served(applied, wait, settle, sleep)
    except GraystepsError as e:
        return False, f"Istio did not serve the step: {e.message}", []
    if served:
        out(f"  {served}")
    try:
        return analyse(step, prometheus, out=out, sleep=sleep)
    except GraystepsError as e:
        return False, f"analysis failed: {e.message}", []


def rollback_all(schedule: Schedule, *, api_client: Any, actor: str, wait: Any = None,
                 out: Out = lambda line: None) -> tuple[bool, str]:
    """Every service of the plan back to prod, all-or-nothing (as `release` does). With `wait`
    (an IstioWait) it then reports whether Istio serves the rollback; the rollback itself never
    waits for istiod (an unreachable istiod only gets a warning)."""
    back = Strategy("rollback")
    floor_read = False
    if wait is not None:
        try:
            wait.before()
            floor_read = True
        except GraystepsError as e:
            out(f"  warning: istiod did not answer before the rollback; it goes on unchecked: {e.message}")
    result = apply_plan(_plan_for(schedule, "rollback", [(svc, back) for svc in schedule.services]),
                        api_client=api_client, actor=actor)
    if not result.ok:
        still = f"; STILL CHANGED: {', '.join(result.changed)}" if result.changed else ""
        return False, f"rollback {result.result}: {result.error}{still}; run `graysteps rollback --all`"
    if floor_read:
        try:
            out(f"  rollback {_served(result, wait, 0.0, time.sleep)}")
        except GraystepsError as e:
            out(f"  warning: could not check that Istio serves the rollback: {e.message}")
    return True, "every service routed back to prod"


def run_schedule(
    schedule: Schedule,
    *,
    api_client: Any,
    prometheus: Any,
    actor: str,
    hooks: Hooks,
    dry_run: bool = False,
    approve: int | None = None,
    only_step: int | None = None,
    settle: float = 2.0,
    wait: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    resume: bool = True,
) -> ProgressResult:
    """Run (or resume) `schedule`; the outcome of every step is in the result. Never raises for a bad
    verdict or a cluster failure; raises InvalidInput for an `approve`/`only_step` that does not fit.

    `wait`: an IstioWait (graysteps.adapters.istiod): each step is analysed once Istio serves it;
    None: `settle` seconds after the write instead. istiod not answering before the first write
    raises GraystepsError (nothing changed)."""
    out = hooks.out
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = ProgressResult(schedule, dry_run, actor, uuid.uuid4().hex[:12], now)
    count = len(schedule.steps)
    for value, flag in ((approve, "--approve"), (only_step, "--step")):
        if value is not None and not 0 <= value < count:
            raise InvalidInput(f"{flag} {value + 1} is not a step of plan {schedule.name}: use 1-{count}", step=STEP)

    if prometheus is not None:  # reachable and answering before anything is changed, or PrometheusError
        prometheus.scalar("vector(1)")
    if wait is not None and not dry_run:  # istiod answers before anything is changed, or GraystepsError
        wait.before()
    if dry_run:
        first = schedule.steps[only_step or 0]
        check = apply_plan(_plan_for(schedule, f"step {first.index + 1}", first.strategies), api_client=api_client,
                           dry_run=True, actor=actor)
        report = StepReport(first.index, first.label, WOULD_RUN if check.ok else "refused", check.error,
                            diff=[o.diff for o in check.outcomes if o.diff])
        result.steps.append(report)
        result.result = "dry-run" if check.ok else "failed"
        result.error = check.error
        return result

    begin = 0
    state = None
    if resume and only_step is None:
        from graysteps.adapters.audit.progress import unfinished_run

        try:
            state = unfinished_run(hooks.db_url, schedule.name, schedule.sha256)
        except GraystepsError as e:
            out(f"warning: cannot read earlier runs ({e.message}); starting from step 1")
    if state is not None:
        result.run_id, begin = state.run_id, state.advanced
        if state.awaiting is not None:
            if approve != state.awaiting:
                n = state.awaiting + 1
                result.result = AWAITING
                result.resumed_at = state.awaiting
                result.error = f"step {n} waits for approval: rerun with --approve {n} to go on"
                return result
            hooks.audit("progress.step", schedule, actor, APPROVED, {"run": result.run_id, "step": approve})
            out(f"step {approve + 1} approved by {actor}")
            begin = approve + 1
        result.resumed_at = begin
        out(f"resuming run {state.run_id} (started {state.started_at} UTC by {state.actor}) at step {begin + 1}/{count}")
    elif approve is not None:
        raise InvalidInput(f"--approve {approve + 1}: no run of plan {schedule.name} waits for approval", step=STEP)
    else:
        begin = only_step or 0
        if begin == 0:  # one step at a time (a Jenkins stage each): the first one starts the run
            hooks.audit("progress.started", schedule, actor, schedule.description or None,
                        {"run": result.run_id, "file": schedule.path, "steps": schedule.summary()})
            hooks.alert("start", schedule, f"{count} steps: " + " → ".join(s.label for s in schedule.steps))
    last = only_step + 1 if only_step is not None else count

    for step in schedule.steps[begin:last]:
        report = StepReport(step.index, step.label)
        result.steps.append(report)
        t0 = time.monotonic()
        out(f"step {step.index + 1}/{count}: {step.label}")
        passed, reason, lines = _apply_and_analyse(schedule, step, api_client=api_client, prometheus=prometheus,
                                                   actor=actor, wait=wait, settle=settle, sleep=sleep, out=out)
        report.verdicts, report.seconds = lines, time.monotonic() - t0
        if not passed:
            t_bad = time.monotonic()
            ok, how = rollback_all(schedule, api_client=api_client, actor=actor, wait=wait, out=out)
            result.rollback_seconds = time.monotonic() - t_bad
            report.status, report.reason = ROLLED_BACK, reason
            result.result = "rolled-back" if ok else "failed"
            result.error = f"step {step.index + 1} ({step.label}): {reason}; {how}"
            out(f"  ROLLBACK: {reason}")
            out(f"  {how} in {result.rollback_seconds * 1000:.0f} ms")
            hooks.alert("rollback", schedule, f"{reason}; {how}", step.label)
            hooks.audit("progress.step", schedule, actor, ROLLED_BACK,
                        {"run": result.run_id, "step": step.index, "label": step.label, "why": reason, "verdicts": lines})
            hooks.audit("progress.finished", schedule, actor, result.result, result.to_dict())
            return result
        for line in lines:
            out(f"  {line}")
        status = AWAITING if step.manual and step.index + 1 < count else ADVANCED
        report.status, report.reason = status, reason
        hooks.audit("progress.step", schedule, actor, status,
                    {"run": result.run_id, "step": step.index, "label": step.label, "why": reason, "verdicts": lines})
        hooks.alert("paused" if status == AWAITING else "step", schedule, f"{status}: {reason}", step.label)
        out(f"  {status} ({reason}) after {report.seconds:.1f}s")
        if status == AWAITING:
            result.result = AWAITING
            result.error = f"step {step.index + 1} waits for approval: rerun with --approve {step.index + 1} to go on"
            return result

    if last < count:
        result.result = ADVANCED
        return result
    result.result = "promoted"
    hooks.audit("progress.finished", schedule, actor, result.result, result.to_dict())
    hooks.alert("finish", schedule, f"promoted after {count} steps")
    return result
