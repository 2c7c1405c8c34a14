"""Pre-flight traffic preview of a release plan: no cluster of yours; a throwaway
lab apiserver and istiod, and real Envoys.

    result = preview_plan(plan, catalog, tenants=["acme"], workdir=tmp)
    print("\\n".join(result.lines()))

The plan's VirtualServices are rendered exactly as `graysteps release` would
write them (`apply_strategy` on the catalog's base VirtualService; services the
plan does not name are shown on prod, as `rollback` leaves them). They are
written to a throwaway apiserver (so Istio's validation sees them) and served
by istiod to a gateway Envoy (users) and one sidecar Envoy per caller profile
(a workload labelled `profile: prod|gray`, for `sourceLabels`), in front of a
backend for every service × profile; each service calls the next one in
catalog order (test-a → test-b), forwarding the cookie unless told not to.

Then requests are sent for each kind of caller, and each answer names the
profile that served every hop:
- a whitelisted tenant (cookie `<name>=<value>` from the catalog) entering at
  the first service;
- another tenant (the same cookie, not set to the gray value);
- an internal caller from gray and one from prod, calling each service directly.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graysteps.errors import InvalidInput

STEP = "preview"
DEFAULT_REQUESTS = 200


@dataclass
class PreviewRow:
    caller: str  # who sends the request
    service: str  # the service it calls first
    listener: str  # the Envoy listener it enters by
    paths: dict[str, int]  # "test-a:gray>test-b:prod" -> count

    def shares(self) -> list[tuple[str, float]]:
        total = sum(self.paths.values()) or 1
        return [(p, 100.0 * n / total) for p, n in sorted(self.paths.items(), key=lambda x: (-x[1], x[0]))]


@dataclass
class PreviewResult:
    plan: str
    description: str
    strategies: dict[str, str]  # service -> strategy label (services outside the plan: "prod (not in plan)")
    forward_cookie: bool
    requests: int
    rows: list[PreviewRow] = field(default_factory=list)
    virtual_services: list[dict] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"plan {self.plan}" + (f": {self.description}" if self.description else ""),
               "  " + ", ".join(f"{s}: {label}" for s, label in self.strategies.items()),
               f"  through istiod and real Envoys, no cluster of yours; {self.requests} requests per row; services "
               + ("forward" if self.forward_cookie else "do NOT forward") + " the cookie downstream",
               ""]
        width = max((len(self.caller_label(r)) for r in self.rows), default=0)
        for r in self.rows:
            landed = ", ".join(f"{p} {share:.0f}%" for p, share in r.shares())
            out.append(f"  {self.caller_label(r):<{width}}  {landed}")
        return out

    @staticmethod
    def caller_label(row: PreviewRow) -> str:
        return f"{row.caller} -> {row.service}"

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "description": self.description, "strategies": self.strategies,
                "forward_cookie": self.forward_cookie, "requests": self.requests,
                "rows": [{"caller": r.caller, "service": r.service, "listener": r.listener, "paths": r.paths,
                          "shares": {p: round(s, 2) for p, s in r.shares()}} for r in self.rows]}


def parse_tenants(text: str | None) -> list[str]:
    """"a,b" -> ["a", "b"], each a valid tenant id (InvalidInput names a bad one)."""
    from graysteps.model.tenants import validate_tenant_ids

    if text is None:
        return []
    names = [t.strip() for t in text.split(",")]
    if any(not t for t in names):
        raise InvalidInput(f"--tenants {text!r}: an empty name; use comma-separated tenant ids, e.g. acme,globex",
                           step=STEP)
    return validate_tenant_ids(names)


def plan_virtual_services(plan: Any, catalog: Any) -> tuple[list[dict], dict[str, str]]:
    """The VirtualService of every catalog service after the plan, and each one's strategy label."""
    from graysteps.routing.operations import apply_strategy
    from graysteps.model.strategy import parse_strategy

    by_service = {st.service.name: st for st in plan.steps}
    vss, labels = [], {}
    for name in catalog.names():
        spec = catalog.service(name)
        step = by_service.get(name)
        if step is None:
            vss.append(apply_strategy(None, spec, parse_strategy("rollback")))
            labels[name] = "prod (not in the plan)"
        else:
            vss.append(apply_strategy(None, spec, step.strategy))
            labels[name] = step.label
    return vss, labels


def preview_plan(plan: Any, catalog: Any, *, tenants: list[str] = (), requests: int = DEFAULT_REQUESTS,
                 forward_cookie: bool = True, workdir: str | Path | None = None) -> PreviewResult:
    from graysteps.adapters.probe import by_path
    from graysteps_lab.sandbox.supervisor import default_calls
    from graysteps_lab.world.istiod import istio_lab
    from graysteps_lab.world.mesh import LocalMesh

    names = catalog.names()
    vss, labels = plan_virtual_services(plan, catalog)
    calls = default_calls(names)

    def destination(service: str, profile: str) -> dict:
        return catalog.service(service).destination(profile)

    entry = catalog.service(names[0])
    gray_cookie = f"{entry.cookie_name}={entry.cookie_value}"
    other_cookie = f"{entry.cookie_name}={'0' if entry.cookie_value != '0' else '1'}"
    users = [(f"tenant {t} (whitelisted)", gray_cookie) for t in tenants] or [("a whitelisted tenant", gray_cookie)]
    users.append(("another tenant", other_cookie))
    result = PreviewResult(plan.name, plan.description, labels, forward_cookie, requests, virtual_services=vss)
    with tempfile.TemporaryDirectory(prefix="graysteps-preview-") as tmp, \
            istio_lab(Path(workdir or tmp) / "lab") as (kube, istiod):
        mesh = LocalMesh(calls, vss, Path(workdir or tmp) / "mesh", kube=kube, istiod=istiod, destination=destination,
                         forward_cookie=forward_cookie)
        with mesh:
            def send(caller: str, service: str, listener: str, headers: dict) -> None:
                counts: Counter = mesh.probe(catalog.service(service).served_host, requests, headers,
                                             listener=listener, key=by_path)
                result.rows.append(PreviewRow(caller, service, listener, dict(counts)))

            for caller, cookie in users:
                send(caller, names[0], "ingress", {"Cookie": f"{cookie}; rememberMe=; channel=web"})
            for name in names:
                for profile in ("gray", "prod"):
                    send(f"internal caller from {profile}", name, f"outbound-{profile}", {})
    return result
