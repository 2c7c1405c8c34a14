"""Release plans: several services, each with its strategy, read from a YAML file.

    plan: scenario-1              # optional name for reports (default: file stem)
    description: A on whitelist, B on prod
    services:
      - service: test-a
        strategy: whitelist
      - service: test-b
        strategy: weight
        weight: 20                # only with strategy `weight`: the gray share, 0-100

The one thing to know: `load_plan` validates the whole file against the
catalog before anything is touched, and names every problem with file, line,
service and field. (ruamel's round-trip loader builds only plain data and keeps
line numbers.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graysteps.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import Catalog, ServiceSpec
    from graysteps.model.strategy import Strategy

STEP = "release"
PLAN_KEYS = ("plan", "description", "services")
ENTRY_KEYS = ("service", "strategy", "weight")
MAX_PLAN_BYTES = 1 << 20  # a plan is a short YAML file


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


def line_of(node: Any, key: Any = None) -> int:
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


def read_plan_yaml(path: str, *, step: str = STEP, max_bytes: int | None = None) -> tuple[Any, str]:
    """A plan file as ruamel's round-trip data (plain dicts/lists carrying `.lc` lines,
    duplicate keys refused) and the sha256 of its bytes, read within the document
    limits (graysteps.adapters.reading; `max_bytes` lowers the size limit). Every
    failure is one InvalidInput naming the file (and line). Shared by release plans
    and progressive plans (graysteps.model.schedule)."""
    from graysteps.adapters import reading

    limit = reading.limits(document=True)
    if max_bytes is not None:
        limit = reading.Limits(min(limit.max_bytes, max_bytes), limit.timeout)
    try:
        raw = reading.read_bytes(path, what="plan file", document=True, limit=limit)
        text = reading.decode_text(raw, what="plan file", name=path)
        data = reading.parse_yaml(text, what="plan file", name=path, round_trip=True)
    except InvalidInput as e:
        e.step = step
        raise
    return data, hashlib.sha256(raw).hexdigest()


def _is_int(value: Any) -> bool:
    """A plain decimal YAML integer: not a bool, and not ruamel's ScalarInt (0x14, 0o24, 020, 2_0, -0)."""
    return type(value) is int


def load_plan(path: str, catalog: "Catalog") -> Plan:
    """Read and validate a plan file against `catalog`; raise InvalidInput naming
    every problem (file:line, service, field) and what is allowed."""
    from graysteps.model.strategy import parse_strategy

    data, digest = read_plan_yaml(path)
    problems: list[str] = []

    def bad(line: int, what: str) -> None:
        problems.append(f"{path}:{line}: {what}" if line else f"{path}: {what}")

    if not isinstance(data, dict):
        raise InvalidInput(f"plan file {path}: must be a mapping with a `services:` list (see examples/plans/)", step=STEP)
    for key in data:
        if key not in PLAN_KEYS:
            bad(line_of(data, key), f"unknown key {key!r}; allowed: {', '.join(PLAN_KEYS)}")
    name = data.get("plan", Path(path).stem)
    if not isinstance(name, str) or not name.strip():
        bad(line_of(data, "plan"), f"field 'plan': {name!r} must be a non-empty string")
        name = Path(path).stem
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        bad(line_of(data, "description"), "field 'description': must be a string")
        description = ""
    entries = data.get("services")
    if not isinstance(entries, list) or not entries:
        bad(line_of(data, "services") if "services" in data else 0, "field 'services': must be a non-empty list of {service, strategy[, weight]}")
        entries = []

    steps: list[PlanStep] = []
    seen: dict[str, int] = {}
    seen_vs: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(entries):
        line = line_of(entries, i)
        where = f"services[{i}]"
        if not isinstance(entry, dict):
            bad(line, f"{where}: must be a mapping with keys service, strategy[, weight]; got {entry!r}")
            continue
        line = line_of(entry) or line
        for key in entry:
            if key not in ENTRY_KEYS:
                bad(line_of(entry, key), f"{where}: unknown field {key!r}; allowed: {', '.join(ENTRY_KEYS)}")
        svc_name = entry.get("service")
        if not isinstance(svc_name, str) or not svc_name:
            bad(line_of(entry, "service") or line, f"{where}: field 'service' is missing or not a string: {svc_name!r}")
            continue
        where = f"{where} ({svc_name})"
        if svc_name in seen:
            bad(line_of(entry, "service"), f"{where}: service listed twice (first at line {seen[svc_name]}); a plan gives each service one strategy")
            continue
        seen[svc_name] = line_of(entry, "service")
        try:
            service = catalog.service(svc_name)
        except InvalidInput as e:
            bad(line_of(entry, "service"), f"{where}: field 'service': {e.message}")
            continue
        strategy_name = entry.get("strategy")
        if not isinstance(strategy_name, str) or not strategy_name:
            bad(line_of(entry, "strategy") or line, f"{where}: field 'strategy' is missing or not a string: {strategy_name!r}")
            continue
        weight = entry.get("weight")
        if "weight" in entry and not _is_int(weight):
            bad(line_of(entry, "weight"), f"{where}: field 'weight': {weight!r} is not allowed; use an integer 0-100 (the gray share)")
            continue
        try:
            strategy = parse_strategy(strategy_name, weight)
        except InvalidInput as e:
            field_name = "weight" if "weight" in entry and "weight" in e.message.lower() else "strategy"
            bad(line_of(entry, field_name), f"{where}: field '{field_name}': {e.message}")
            continue
        vs_key = (service.vs_namespace, service.vs_name)
        if vs_key in seen_vs:
            bad(line_of(entry, "service"), f"{where}: uses VirtualService {vs_key[0]}/{vs_key[1]}, which {seen_vs[vs_key]} also uses; one plan writes each VirtualService once")
            continue
        seen_vs[vs_key] = svc_name
        steps.append(PlanStep(service=service, strategy=strategy, line=line))

    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise InvalidInput(f"invalid plan: {problems[0]}{more}", step=STEP)
    return Plan(name=str(name), path=path, description=str(description), steps=tuple(steps), sha256=digest)
