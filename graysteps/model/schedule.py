"""Progressive plans: a schedule of routing steps, each with a pause and an
analysis, for one or several services released together.

    plan: checkout-2
    services:
      - service: test-a
      - service: test-b
        steps: [whitelist, {weight: 10}, promote]   # this service's own schedule
    steps:                                          # the plan's schedule (same length)
      - whitelist
      - {weight: 5, pause: 30s}
      - {weight: 20, pause: manual}                 # a person confirms (Jenkins: an input)
      - promote
    analysis:                                       # for every step; a step's own `analysis:` overrides keys
      minRequests: 100                              # gray requests before any verdict
      confidence: 0.99
      interval: 1s                                  # how often Prometheus is asked
      maxDuration: 5m                               # no verdict by then: roll back
      destination: 'outbound\\|([0-9]+\\|[^|]*\\|)?$service\\.$namespace\\.svc\\.cluster\\.local'
      metrics:
        - success-rate                              # maxRatio 2 (gray's error rate <= 2x prod's)
        - {name: latency-p99, maxMs: 500}           # requests slower than 500 ms, gray vs prod
    alerts:
      - {format: slack, urlEnv: SLACK_WEBHOOK_URL}  # the URL is a secret: named by env var, never written here

`load_schedule` reads and checks the whole file against the catalog and
raises one InvalidInput naming the file, line and what is allowed; nothing is
touched before it succeeds. The one thing to know: step i of the schedule is
applied to every service of the plan at once (each with its own strategy),
and its analysis compares gray with prod per service; the PromQL behind each
metric is a `string.Template` with $service, $namespace, $profile, $destination
and $le (for latency), so it can point at Envoy's cluster stats (the default)
or at Istio's `istio_requests_total`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from graysteps.errors import InvalidInput
from graysteps.model.plan import MAX_PLAN_BYTES
from graysteps.model.plan import line_of as _line
from graysteps.model.strategy import PROMOTE, ROLLBACK, STRATEGIES, WEIGHT, Strategy, parse_strategy

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import Catalog, ServiceSpec

STEP = "progress"
PLAN_KEYS = ("plan", "description", "services", "steps", "analysis", "alerts")
ENTRY_KEYS = ("service", "steps")
STEP_KEYS = ("strategy", "weight", "pause", "analysis")
ANALYSIS_KEYS = ("metrics", "minRequests", "confidence", "interval", "maxDuration", "destination", "prometheus")
ALERT_KEYS = ("format", "urlEnv", "name")
ALERT_FORMATS = ("json", "slack", "dingtalk", "wecom")
MANUAL = "manual"

# Envoy's cluster of a destination as istiod names it: outbound|<port>|<subset>|<fqdn>
# (e.g. outbound|80||test-a.gray.svc.cluster.local); the port and subset are optional here.
DEFAULT_DESTINATION = r"outbound\\|([0-9]+\\|[^|]*\\|)?$service\\.$namespace\\.svc\\.cluster\\.local"
ENVOY = 'cluster_name=~"$destination"'  # Istio's proxy stats tags (the lab's Envoy uses them too)
ENVOY_LATENCY_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                            600000, 1800000, 3600000)


@dataclass(frozen=True)
class MetricKind:
    name: str
    describes: str
    total: str  # PromQL: cumulative requests of one destination
    bad: str  # PromQL: cumulative bad requests of that destination
    thresholds: dict  # name -> (min, max, default or None when required)


METRICS = {
    "success-rate": MetricKind(
        "success-rate", "5xx answers",
        # every attempt: Envoy counts a retried attempt's answer under retry.upstream_rq_*
        total=f'sum({{__name__=~"envoy_cluster_(retry_)?upstream_rq",{ENVOY},response_code_class=~"[1-5]xx"}})',
        bad=f'sum({{__name__=~"envoy_cluster_(retry_)?upstream_rq",{ENVOY},response_code_class="5xx"}})',
        thresholds={"maxRatio": (1.0, 100.0, 2.0)},
    ),
    "latency-p99": MetricKind(
        "latency-p99", "requests slower than maxMs",
        total=f"sum(envoy_cluster_upstream_rq_time_count{{{ENVOY}}})",
        bad=(f"sum(envoy_cluster_upstream_rq_time_count{{{ENVOY}}})"
             # Prometheus 3 stores classic-histogram bounds as floats (le="100.0"); older ones as exposed
             f' - sum(envoy_cluster_upstream_rq_time_bucket{{{ENVOY},le=~"${{le}}|${{le}}.0"}})'),
        thresholds={"maxRatio": (1.0, 100.0, 2.0), "maxMs": (0.5, 3600000.0, None)},
    ),
}


@dataclass(frozen=True)
class Metric:
    kind: str
    max_ratio: float
    max_ms: float | None = None
    total_query: str = ""
    bad_query: str = ""

    @property
    def le(self) -> str:
        """The histogram bucket bound used for `maxMs`: the smallest Envoy bound >= maxMs."""
        if self.max_ms is None:
            return ""
        bound = next((b for b in ENVOY_LATENCY_BUCKETS_MS if b >= self.max_ms), ENVOY_LATENCY_BUCKETS_MS[-1])
        return f"{bound:g}"

    @property
    def label(self) -> str:
        limit = f" {self.max_ms:g}ms" if self.max_ms is not None else ""
        return f"{self.kind}{limit} (gray <= {self.max_ratio:g}x prod)"

    def queries(self, service: "ServiceSpec", profile: str, destination: str) -> tuple[str, str]:
        """(total, bad) PromQL for `service` in `profile`."""
        values = {"service": service.name, "namespace": service.namespaces[profile], "profile": profile, "le": self.le}
        values["destination"] = Template(destination).safe_substitute(values)
        return (Template(self.total_query).safe_substitute(values), Template(self.bad_query).safe_substitute(values))


@dataclass(frozen=True)
class Analysis:
    metrics: tuple[Metric, ...] = ()
    min_requests: int = 100
    confidence: float = 0.99
    interval: float = 1.0
    max_duration: float = 300.0
    destination: str = DEFAULT_DESTINATION
    prometheus: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.metrics)


@dataclass(frozen=True)
class ScheduleStep:
    index: int
    strategies: tuple[tuple["ServiceSpec", Strategy], ...]
    pause: float | None  # seconds; None = manual
    analysis: Analysis
    line: int

    @property
    def manual(self) -> bool:
        return self.pause is None

    @property
    def label(self) -> str:
        names = {_label(s) for _, s in self.strategies}
        if len(names) == 1:
            return names.pop()
        return ", ".join(f"{svc.name} {_label(s)}" for svc, s in self.strategies)

    @property
    def promotes(self) -> bool:
        return all(s.name == PROMOTE for _, s in self.strategies)


@dataclass(frozen=True)
class Alert:
    format: str
    url_env: str
    name: str


@dataclass(frozen=True)
class Schedule:
    name: str
    path: str
    description: str
    services: tuple["ServiceSpec", ...]
    steps: tuple[ScheduleStep, ...]
    alerts: tuple[Alert, ...]
    sha256: str

    def summary(self) -> list[dict[str, Any]]:
        return [{"step": st.index + 1, "label": st.label,
                 "pause": MANUAL if st.manual else st.pause,
                 "analysis": [m.label for m in st.analysis.metrics]} for st in self.steps]


def _label(strategy: Strategy) -> str:
    return f"weight {strategy.weight}" if strategy.name == WEIGHT else strategy.name


# ------------------------------------------------------------------ parsing helpers

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, what: str, *, maximum: float = 7 * 86400.0) -> float:
    """Seconds from `30s`, `1m30s`, `500ms`, `2h` or a number of seconds; ValueError naming `what`."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a duration; use e.g. 30s, 5m, 1h30m or a number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value.strip()):
        seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(value.strip()))
    else:
        raise ValueError(f"{what}: {value!r} is not a duration; use e.g. 30s, 5m, 1h30m or a number of seconds")
    if not (math.isfinite(seconds) and 0 <= seconds <= maximum):
        raise ValueError(f"{what}: {value!r} is out of range; use 0 to {maximum / 3600:g}h")
    return seconds


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Reader:
    def __init__(self, path: str):
        self.path = path

    def fail(self, node: Any, key: Any, what: str) -> None:
        line = _line(node, key) if node is not None else 0
        where = f"{self.path}:{line}" if line else self.path
        raise InvalidInput(f"invalid plan: {where}: {what}", step=STEP)

    # -- analysis ---------------------------------------------------------------------

    def analysis(self, node: Any, base: Analysis, where: str) -> Analysis:
        if node is None or node is False:
            return replace(base, metrics=()) if node is False else base
        if not isinstance(node, dict):
            self.fail(node, None, f"{where}: must be a mapping with keys {', '.join(ANALYSIS_KEYS)} (or false for none)")
        for key in node:
            if key not in ANALYSIS_KEYS:
                self.fail(node, key, f"{where}: unknown key {key!r}; allowed: {', '.join(ANALYSIS_KEYS)}")
        out = base
        if "minRequests" in node:
            v = node["minRequests"]
            if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10_000_000):
                self.fail(node, "minRequests", f"{where}.minRequests: {v!r} is out of range; use an integer 1-10000000")
            out = replace(out, min_requests=v)
        if "confidence" in node:
            v = node["confidence"]
            if not (_number(v) and 0.5 <= v <= 0.9999):
                self.fail(node, "confidence", f"{where}.confidence: {v!r} is out of range; use 0.5-0.9999 (e.g. 0.99)")
            out = replace(out, confidence=float(v))
        for key, attr, low, high in (("interval", "interval", 0.1, 600.0), ("maxDuration", "max_duration", 1.0, 86400.0)):
            if key in node:
                try:
                    seconds = parse_duration(node[key], f"{where}.{key}")
                except ValueError as e:
                    self.fail(node, key, str(e))
                if not low <= seconds <= high:
                    self.fail(node, key, f"{where}.{key}: {node[key]!r} is out of range; use {low:g}s to {high:g}s")
                out = replace(out, **{attr: seconds})
        if "destination" in node:
            v = node["destination"]
            if not isinstance(v, str) or "$service" not in v and "${service}" not in v:
                self.fail(node, "destination", f"{where}.destination: {v!r} must be a string naming $service (and usually $namespace)")
            out = replace(out, destination=v)
        if "prometheus" in node:
            v = node["prometheus"]
            if not isinstance(v, str) or not re.match(r"https?://", v):
                self.fail(node, "prometheus", f"{where}.prometheus: {v!r} must be an http(s):// URL")
            out = replace(out, prometheus=v)
        if "metrics" in node:
            items = node["metrics"]
            if not isinstance(items, list) or not items:
                self.fail(node, "metrics", f"{where}.metrics: must be a non-empty list of {', '.join(METRICS)}")
            metrics = [self.metric(items, i, item, f"{where}.metrics[{i}]") for i, item in enumerate(items)]
            out = replace(out, metrics=tuple(metrics))
        return out

    def metric(self, parent: Any, index: int, item: Any, where: str) -> Metric:
        spec = {"name": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            self.fail(parent, index, f"{where}: {item!r} is not a metric; use a name ({', '.join(METRICS)}) or {{name: ..., thresholds}}")
        name = spec["name"]
        kind = METRICS.get(name)
        if kind is None:
            self.fail(parent, index, f"{where}: unknown metric {name!r}; known: {', '.join(METRICS)}")
        node = item if isinstance(item, dict) else parent
        allowed = ("name", *kind.thresholds, "query")
        for key in spec:
            if key not in allowed:
                self.fail(node, key, f"{where} ({name}): unknown key {key!r}; allowed: {', '.join(allowed)}")
        values = {}
        for key, (low, high, default) in kind.thresholds.items():
            v = spec.get(key, default)
            if v is None:
                self.fail(node, None, f"{where} ({name}): {key} is required ({low:g}-{high:g})")
            if not (_number(v) and low <= v <= high):
                self.fail(node, key, f"{where} ({name}).{key}: {v!r} is out of range; use a number {low:g}-{high:g}")
            values[key] = float(v)
        total, bad = kind.total, kind.bad
        if "query" in spec:
            q = spec["query"]
            if not (isinstance(q, dict) and set(q) == {"total", "bad"} and all(isinstance(x, str) and x.strip() for x in q.values())):
                self.fail(node, "query", f"{where} ({name}).query: must be a mapping with PromQL strings `total` and `bad`")
            total, bad = q["total"], q["bad"]
        return Metric(name, values["maxRatio"], values.get("maxMs"), total, bad)

    # -- steps ------------------------------------------------------------------------

    def steps(self, node: Any, key: str, where: str, base: Analysis) -> list[tuple[Strategy, float | None, Analysis | None, int]]:
        items = node.get(key)
        if not isinstance(items, list) or not items:
            self.fail(node, key, f"{where}: must be a non-empty list, e.g. [whitelist, {{weight: 20}}, balanced, promote]")
        out = []
        for i, item in enumerate(items):
            w = f"{where}[{i}]"
            line = _line(items, i)
            spec = {"strategy": item} if isinstance(item, str) else item
            holder = item if isinstance(item, dict) else items
            if not isinstance(spec, dict):
                self.fail(items, i, f"{w}: {item!r} is not a step; use a strategy name or {{weight: N, pause: 30s, analysis: ...}}")
            for k in spec:
                if k not in STEP_KEYS:
                    self.fail(holder, k, f"{w}: unknown key {k!r}; allowed: {', '.join(STEP_KEYS)}")
            name = spec.get("strategy", WEIGHT if "weight" in spec else None)
            if name == ROLLBACK or name not in STRATEGIES:
                allowed = ", ".join(s for s in STRATEGIES if s != ROLLBACK)
                self.fail(holder, "strategy" if "strategy" in spec else None, f"{w}: {name!r} is not a schedule step; use one of {allowed} (a rollback is automatic)")
            try:
                strategy = parse_strategy(name, spec.get("weight"))
            except InvalidInput as e:
                self.fail(holder, "weight", f"{w}: {e.message}")
            pause: float | None = 0.0
            if "pause" in spec:
                if spec["pause"] == MANUAL:
                    pause = None
                else:
                    try:
                        pause = parse_duration(spec["pause"], f"{w}.pause")
                    except ValueError as e:
                        self.fail(holder, "pause", f"{e} (or `manual`)")
            analysis = self.analysis(spec["analysis"], base, f"{w}.analysis") if "analysis" in spec else None
            out.append((strategy, pause, analysis, line))
        return out


def load_schedule(path: str, catalog: "Catalog") -> Schedule:
    """Read and check a progressive plan against `catalog`; InvalidInput (one line) on any problem."""
    from graysteps.model.plan import read_plan_yaml

    data, digest = read_plan_yaml(path, step=STEP, max_bytes=MAX_PLAN_BYTES)
    r = _Reader(path)
    if not isinstance(data, dict):
        r.fail(None, None, "must be a mapping with `services:` and `steps:` (see examples/plans/progressive.yaml)")
    for key in data:
        if key not in PLAN_KEYS:
            r.fail(data, key, f"unknown key {key!r}; allowed: {', '.join(PLAN_KEYS)}")
    name = data.get("plan", Path(path).stem)
    if not isinstance(name, str) or not name.strip():
        r.fail(data, "plan", f"plan: {name!r} must be a non-empty string")
    description = data.get("description") or ""
    if not isinstance(description, str):
        r.fail(data, "description", "description: must be a string")
    base = Analysis(metrics=(r.metric([], 0, "success-rate", "analysis.metrics[0]"),))
    base = r.analysis(data.get("analysis"), base, "analysis")
    plan_steps = r.steps(data, "steps", "steps", base) if "steps" in data else None

    entries = data.get("services")
    if not isinstance(entries, list) or not entries:
        r.fail(data, "services" if "services" in data else None, "services: must be a non-empty list of {service[, steps]}")
    services: list[ServiceSpec] = []
    schedules: list[list] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        w = f"services[{i}]"
        if isinstance(entry, str):
            entry = {"service": entry}
        if not isinstance(entry, dict):
            r.fail(entries, i, f"{w}: must be a mapping with keys {', '.join(ENTRY_KEYS)}")
        for key in entry:
            if key not in ENTRY_KEYS:
                r.fail(entry, key, f"{w}: unknown key {key!r}; allowed: {', '.join(ENTRY_KEYS)}")
        svc = entry.get("service")
        if not isinstance(svc, str) or not svc:
            r.fail(entry, "service", f"{w}: field 'service' is missing or not a string")
        if svc in seen:
            r.fail(entry, "service", f"{w}: service {svc} is listed twice")
        seen.add(svc)
        try:
            spec = catalog.service(svc)
        except InvalidInput as e:
            r.fail(entry, "service", f"{w}: {e.message}")
        own = r.steps(entry, "steps", f"{w}.steps", base) if "steps" in entry else None
        if own is None and plan_steps is None:
            r.fail(entry, "service", f"{w} ({svc}): no schedule; give the plan `steps:` or this service its own")
        services.append(spec)
        schedules.append(own if own is not None else plan_steps)
    lengths = {len(s) for s in schedules}
    if len(lengths) > 1:
        r.fail(data, "services", f"services: every schedule must have the same number of steps (got {sorted(lengths)}); step N runs for all services at once")

    steps: list[ScheduleStep] = []
    for i in range(lengths.pop()):
        rows = [sched[i] for sched in schedules]
        pauses = [p for _, p, _, _ in rows]
        pause = None if any(p is None for p in pauses) else max(pauses)
        plan_row = plan_steps[i] if plan_steps is not None else rows[0]
        analysis = plan_row[2] if plan_row[2] is not None else next((a for _, _, a, _ in rows if a is not None), base)
        steps.append(ScheduleStep(i, tuple((svc, row[0]) for svc, row in zip(services, rows)), pause, analysis, plan_row[3]))
    if not steps[-1].promotes:
        r.fail(data, "steps", f"steps: the last step must be `promote` (all traffic to gray); got {steps[-1].label}")

    alerts: list[Alert] = []
    items = data.get("alerts") or []
    if not isinstance(items, list):
        r.fail(data, "alerts", "alerts: must be a list of {format, urlEnv}")
    for i, item in enumerate(items):
        w = f"alerts[{i}]"
        if not isinstance(item, dict):
            r.fail(items, i, f"{w}: must be a mapping with keys {', '.join(ALERT_KEYS)}")
        for key in item:
            if key not in ALERT_KEYS:
                hint = " (a webhook URL is a secret: put it in an environment variable and name it with urlEnv)" if key == "url" else ""
                r.fail(item, key, f"{w}: unknown key {key!r}; allowed: {', '.join(ALERT_KEYS)}{hint}")
        fmt = item.get("format", "json")
        if fmt not in ALERT_FORMATS:
            r.fail(item, "format", f"{w}.format: {fmt!r} is not known; use one of {', '.join(ALERT_FORMATS)}")
        env = item.get("urlEnv")
        if not isinstance(env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            r.fail(item, "urlEnv", f"{w}.urlEnv: {env!r} must name an environment variable holding the webhook URL")
        alerts.append(Alert(fmt, env, str(item.get("name") or f"{fmt}:{env}")))
    return Schedule(str(name), path, description, tuple(services), tuple(steps), tuple(alerts), digest)
