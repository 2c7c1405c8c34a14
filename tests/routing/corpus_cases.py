"""The corpus of real VirtualServices (tests/routing/corpus/): each file with the
catalog entry graysteps would be given for it (corpus/cases.yaml), and every chain of
strategies each case is run through.

`run_chain()` gives, for a case and a chain, the VirtualService graysteps makes (or the
refusal it must give); `first_route()` and `landing()` say where a request goes by Istio's
first-match rules, and `expected_landing()` where the strategy says it must go.
test_corpus.py checks the objects and validates every output with `istioctl validate`;
test_corpus_traffic.py sends each request of `requests_for()` through istiod and Envoy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from graysteps.errors import GraystepsError
from graysteps.model.strategy import STRATEGIES, Strategy, parse_strategy
from graysteps.routing.operations import apply_strategy

CORPUS = Path(__file__).parent / "corpus"

SINGLE = [[parse_strategy(n, 20 if n == "weight" else None)] for n in STRATEGIES]
CHAINS = SINGLE + [
    [parse_strategy("whitelist"), parse_strategy("weight", 30), parse_strategy("promote")],
    [parse_strategy("weight", 10), parse_strategy("linked"), parse_strategy("balanced")],
    [parse_strategy("promote"), parse_strategy("rollback"), parse_strategy("weight", 70)],
]


@dataclass
class Case:
    file: str
    service_name: str
    catalog_entry: dict
    refused: dict = field(default_factory=dict)
    root_host: str | None = None  # a delegate's: the host of the root VirtualService that delegates to it

    @property
    def path(self) -> Path:
        return CORPUS / self.file

    @property
    def documents(self) -> list:
        return [d for d in yaml.safe_load_all(self.path.read_text()) if d is not None]

    @property
    def destination_rules(self) -> list[dict]:
        return [d for d in self.documents if d.get("kind") == "DestinationRule"]

    def service(self, tmp_dir: Path):
        from graysteps.model.catalog import load_catalog

        catalog = tmp_dir / f"{self.path.stem}.catalog.yaml"
        catalog.write_text(yaml.safe_dump({"services": {self.service_name: self.catalog_entry}}))
        return load_catalog(str(catalog)).service(self.service_name)

    def original(self, service) -> dict:
        """The file's VirtualService, found by kind (by name when there are several), as render --from does."""
        from graysteps.commands.render import read_virtual_service_file

        return read_virtual_service_file(str(self.path), service.vs_name)

    def refusal(self, strategy: Strategy) -> str | None:
        return self.refused.get(strategy.name) or self.refused.get("all")


def cases() -> list[Case]:
    table = yaml.safe_load((CORPUS / "cases.yaml").read_text())
    return [Case(file, entry["service"], entry["catalog"], entry.get("refused") or {}, entry.get("root"))
            for file, entry in table.items()]


def chain_id(chain: list[Strategy]) -> str:
    return "-".join(s.label for s in chain)


def run_chain(case, service, chain):
    """(output, None) or (None, refusal message); a refusal must be the expected one."""
    vs = case.original(service)
    for strategy in chain:
        expected = case.refusal(strategy)
        if expected:
            with pytest.raises(GraystepsError, match=expected) as caught:
                apply_strategy(vs, service, strategy)
            assert "\n" not in caught.value.message
            return None, caught.value.message
        vs = apply_strategy(vs, service, strategy)
    return vs, None


# --- where a request lands: Istio's first-match semantics over http routes -------------

_STRING_KEYS = ("method", "authority", "scheme")


@dataclass(frozen=True)
class Request:
    path: str = "/"
    headers: tuple = ()  # ((name, value), ...), names lower-case
    source_labels: tuple = ()  # ((label, value), ...) of the calling workload
    gateway: str = "mesh"
    method: str = "GET"
    authority: str = "service"
    scheme: str = "http"
    port: int | None = None
    query: tuple = ()  # ((name, value), ...)
    source_namespace: str = "default"


def _string_match(rule: dict, value: str | None, ignore_case: bool = False) -> bool:
    import re

    if not rule:
        return True
    if value is None:
        return False
    if ignore_case:
        value = value.lower()
        rule = {k: v.lower() if isinstance(v, str) else v for k, v in rule.items()}
    if "exact" in rule:
        return value == rule["exact"]
    if "prefix" in rule:
        return value.startswith(rule["prefix"])
    if "regex" in rule:
        return re.fullmatch(rule["regex"], value) is not None
    raise ValueError(f"string match {rule} is not modelled here; extend _string_match")


_KNOWN_CLAUSE_KEYS = {"name", "uri", "headers", "withoutHeaders", "queryParams", "sourceLabels", "sourceNamespace",
                      "gateways", "ignoreUriCase", "port", *_STRING_KEYS}


def _clause_matches(clause: dict, request: Request, vs_gateways: list) -> bool:
    unknown = set(clause) - _KNOWN_CLAUSE_KEYS
    if unknown:
        raise ValueError(f"match keys {sorted(unknown)} are not modelled here; extend _clause_matches")
    headers, query = dict(request.headers), dict(request.query)
    if "uri" in clause and not _string_match(clause["uri"], request.path, clause.get("ignoreUriCase", False)):
        return False
    if any(k in clause and not _string_match(clause[k], getattr(request, k)) for k in _STRING_KEYS):
        return False
    if any(not _string_match(rule, headers.get(name.lower())) for name, rule in (clause.get("headers") or {}).items()):
        return False
    for name, rule in (clause.get("withoutHeaders") or {}).items():
        if name.lower() in headers and _string_match(rule, headers[name.lower()]):
            return False
    if any(not _string_match(rule, query.get(name)) for name, rule in (clause.get("queryParams") or {}).items()):
        return False
    if "port" in clause and clause["port"] != request.port:
        return False
    if clause.get("sourceNamespace") and clause["sourceNamespace"] != request.source_namespace:
        return False
    labels = dict(request.source_labels)
    if any(labels.get(k) != v for k, v in (clause.get("sourceLabels") or {}).items()):
        return False
    if clause.get("sourceLabels") and request.gateway != "mesh":
        return False  # Istio applies sourceLabels to sidecars only
    gateways = clause.get("gateways") or vs_gateways or ["mesh"]
    return request.gateway in gateways


def first_route(vs: dict, request: Request) -> dict | None:
    """The http route that takes `request` (None: no route matches)."""
    gateways = (vs.get("spec") or {}).get("gateways") or []
    for route in (vs.get("spec") or {}).get("http") or []:
        if not route.get("match") or any(_clause_matches(c, request, gateways) for c in route["match"]):
            return route
    return None


def landing(route: dict | None, service) -> dict:
    """{destination: share} for a route: prod and gray by profile, others by their JSON (shares sum to 1)."""
    from graysteps.routing.operations import profile_of

    if route is None or not route.get("route"):
        return {}
    entries = route["route"]
    weights = [100 if len(entries) == 1 else e.get("weight", 0) for e in entries]
    total = sum(weights) or 1
    out: dict = {}
    for entry, weight in zip(entries, weights):
        key = profile_of(entry, service) or json.dumps(entry["destination"], sort_keys=True)
        if weight:
            out[key] = out.get(key, 0) + weight / total
    return out


def _example(rule: dict | None) -> str | None:
    """A value the string match accepts (None for a regex: not synthesised)."""
    if not rule:
        return None
    return rule.get("exact", rule.get("prefix"))


def requests_for(vs: dict) -> list[Request]:
    """A request for each match clause of `vs` (plus a plain one), each with and without the
    whitelist cookie and from a gray and a prod caller, through each gateway the VS binds."""
    from dataclasses import replace

    base = [Request()]
    for route in (vs.get("spec") or {}).get("http") or []:
        for clause in route.get("match") or []:
            headers = ((k.lower(), _example(m)) for k, m in (clause.get("headers") or {}).items())
            query = ((k, _example(m)) for k, m in (clause.get("queryParams") or {}).items())
            r = Request(path=_example(clause.get("uri")) or "/", headers=tuple(h for h in headers if h[1] is not None),
                        query=tuple(q for q in query if q[1] is not None), port=clause.get("port"),
                        source_namespace=clause.get("sourceNamespace") or "default")
            for key in _STRING_KEYS:
                if _example(clause.get(key)) is not None:
                    r = replace(r, **{key: _example(clause[key])})
            base.append(r)
    gateways = (vs.get("spec") or {}).get("gateways") or ["mesh"]
    out = []
    for r in base:
        for cookie in (None, "a=b; tenantGray=1"):
            for profile in ("prod", "gray"):
                for gateway in gateways:
                    headers = r.headers + ((("cookie", cookie),) if cookie else ())
                    out.append(replace(r, headers=headers, source_labels=(("profile", profile),), gateway=gateway))
    return out


def expected_landing(original_route, service, strategy, request) -> dict:
    """Where `strategy` sends `request`, from the route that took it before graysteps:
    only the prod+gray share of a route with prod moves; everything else stays."""
    before = landing(original_route, service)
    opted_out = original_route is not None and original_route.get("name") in service.opt_out_routes
    if "prod" not in before or opted_out or strategy.name == "rollback":
        return before
    share = before.get("prod", 0) + before.get("gray", 0)
    headers, labels = dict(request.headers), dict(request.source_labels)
    if strategy.name == "promote":
        gray = share
    elif strategy.name in ("weight", "balanced"):
        total = 100 if len(original_route["route"]) == 1 else sum(e.get("weight", 0) for e in original_route["route"])
        units = round(share * total)
        gray = ((units * strategy.gray_weight() + 50) // 100) / total
    elif strategy.name == "whitelist":
        gray = share if "tenantGray=1" in headers.get("cookie", "") else 0
    else:  # linked: callers labelled profile=gray, through the mesh
        gray = share if labels.get("profile") == "gray" and request.gateway == "mesh" else 0
    out = {k: v for k, v in before.items() if k not in ("prod", "gray")}
    for key, value in (("gray", gray), ("prod", share - gray)):
        if value > 1e-9:
            out[key] = value
    return out
