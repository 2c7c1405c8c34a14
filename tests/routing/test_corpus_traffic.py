"""The corpus through real Istio: for every case and every chain of strategies, each
request of `requests_for` (every match clause, with and without the whitelist cookie,
from a prod and a gray caller, through each gateway the VirtualService binds) goes
through istiod-configured Envoys, and must land where the strategy says
(`expected_landing`, from the route that took the request before graysteps).

The DestinationMesh (lab/graysteps_lab/world/destination_mesh.py) gives every
destination a backend that says who it is, and the case's own DestinationRules
decide which endpoint a subset is. Two changes are made to what Istio gets, the
same for the original and every output (`for_the_lab`):
- namespaces and hosts are lower-cased: the apiserver refuses the namespace `nsA`
  of Istio's delegate example, and DNS names are case-blind;
- `exportTo` is removed: the lab's callers and gateway live in their own namespaces,
  and graysteps never changes who may see a VirtualService;
- fault injection is removed: it decides whether a request gets through, not where
  it goes (one case delays every request 7 s), and test_corpus.py checks that
  graysteps keeps it.

A request that must land on one destination is sent 4 times, and all 4 must land
there. A split is sent SPLIT_REQUESTS times: only its destinations may answer, each
within SHARE_TOLERANCE of its share (more than 5 standard deviations at n=200).
"""

from __future__ import annotations

import copy
import json
import warnings

import pytest

from graysteps.routing.operations import profile_of
from graysteps_lab.world.destination_mesh import Target, concrete_host, gateways_of, namespace_of, qualified
from tests.routing.corpus_cases import CHAINS, cases, chain_id, expected_landing, first_route, requests_for, run_chain

pytestmark = pytest.mark.world

SPLIT_REQUESTS = 200
SHARE_TOLERANCE = 0.15
ROUTED = [c for c in cases() if "all" not in c.refused]  # a case refused under every strategy has no output


def for_the_lab(obj: dict) -> dict:
    """`obj` with namespaces and hosts lower-cased and fault injection removed (see the module's doc)."""
    def walk(node):
        if isinstance(node, dict):
            return {k: (v.lower() if k in ("host", "namespace") and isinstance(v, str) else
                        [h.lower() for h in v] if k == "hosts" and isinstance(v, list) else walk(v))
                    for k, v in node.items() if k not in ("fault", "exportTo")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    out = walk(copy.deepcopy(obj))
    out.setdefault("metadata", {}).setdefault("namespace", "default")
    return out


def in_namespace(obj: dict, namespace: str) -> dict:
    """`obj` in `namespace` unless it names its own: where graysteps finds a VirtualService (the
    catalog's namespace), and where a file's DestinationRule without one would be applied."""
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).setdefault("namespace", namespace)
    return obj


def root_of(case, vs: dict) -> list[dict]:
    """For a delegate (no hosts): the root VirtualService that hands it all of its host's traffic,
    for the host cases.yaml names as its `root` (default: <name>.<namespace>.svc.cluster.local)."""
    if (vs.get("spec") or {}).get("hosts"):
        return []
    name, namespace = vs["metadata"]["name"], namespace_of(vs)
    host = case.root_host or f"{name}.{namespace}.svc.cluster.local"
    return [for_the_lab({"metadata": {"name": f"{name}-root", "namespace": namespace},
                         "spec": {"hosts": [host], "http": [{"delegate": {"name": name, "namespace": namespace}}]}})]


def request_host(vs: dict, roots: list[dict]) -> str:
    """The Host a request for `vs` carries: its first host (its root's, for a delegate), qualified as
    Istio serves it, a wildcard made concrete."""
    carrier = vs if (vs.get("spec") or {}).get("hosts") else roots[0]
    return qualified(concrete_host(carrier["spec"]["hosts"][0].lower()), namespace_of(carrier).lower())


def targets_by_key(vss: list[dict], service) -> dict[str, Target]:
    """The key `landing()` gives each destination ("prod", "gray", or its JSON) -> the Target that serves it."""
    out: dict[str, Target] = {}
    for vs in vss:
        namespace = namespace_of(vs).lower()
        for route in (vs.get("spec") or {}).get("http") or []:
            for entry in route.get("route") or []:
                d = entry["destination"]
                key = profile_of(entry, service) or json.dumps(d, sort_keys=True)
                target = Target(qualified(d["host"].lower(), namespace), d.get("subset"))
                assert out.setdefault(key, target) == target, f"{key} is served by {out[key]} and {target}"
    assert len(set(out.values())) == len(out), f"two landing keys share a destination: {out}"
    return out


def unsendable(request) -> str | None:
    """Why the lab cannot send `request` as Istio would see it (None: it can). Its ports are the
    lab's own (a `port` match cannot hold), its callers live in `default`, and the Host it sends
    is the VirtualService's (an `authority` match picks another virtual host first)."""
    if request.port is not None:
        return f"a match on port {request.port}"
    if request.source_namespace != "default":
        return f"a caller in namespace {request.source_namespace}"
    if request.authority != "service" or request.scheme != "http":
        return f"authority {request.authority!r}, scheme {request.scheme!r}"
    return None


def send_arguments(vs: dict, request) -> dict:
    """DestinationMesh.send's arguments for `request`: its gateway, caller, method, path, query and headers."""
    gateway = request.gateway
    if gateway != "mesh":
        gateway = gateway if "/" in gateway else f"{namespace_of(vs).lower()}/{gateway}"
    return dict(gateway=gateway, profile=dict(request.source_labels)["profile"], path=request.path,
                query=request.query, headers=dict(request.headers), method=request.method)


@pytest.mark.parametrize("case", ROUTED, ids=lambda c: c.file[:-5])
def test_traffic_through_istiod_and_envoy_lands_where_every_chain_says(case, destination_mesh, tmp_path):
    service = case.service(tmp_path)
    original = in_namespace(case.original(service), service.vs_namespace)
    outputs = {}
    for chain in CHAINS:
        out, refused = run_chain(case, service, chain)
        if out is not None:
            outputs[chain_id(chain)] = (chain, in_namespace(out, service.vs_namespace))
    assert outputs, f"{case.file}: every chain refused; list the case's refusal as `all`"
    roots = root_of(case, original)
    placed = [for_the_lab(vs) for vs in [original, *(out for _, out in outputs.values())]]
    rules = [for_the_lab(in_namespace(rule, service.vs_namespace)) for rule in case.destination_rules]
    destination_mesh.load(placed + roots, rules)
    targets = targets_by_key([original, *(out for _, out in outputs.values())], service)
    host = request_host(original, roots)
    assert all(g in destination_mesh.gateway_ports for g in gateways_of(placed[0]))

    answers: dict[tuple, tuple] = {}  # (output, request) -> what came back: one send per distinct pair
    requests = [r for r in requests_for(original) if not unsendable(r)]
    left_out = {unsendable(r) for r in requests_for(original)} - {None}
    if left_out:  # test_corpus.py still checks them by Istio's first-match rules
        warnings.warn(f"{case.file}: requests with {sorted(left_out)} are not sent through the lab")
    assert requests, f"{case.file}: the lab can send none of its requests ({sorted(left_out)})"
    wrong = []
    live = None
    for name, (chain, out) in outputs.items():
        text = json.dumps(out, sort_keys=True)
        for request in requests:
            want = expected_landing(first_route(original, request), service, chain[-1], request)
            if (text, request) not in answers:
                if live != text:
                    destination_mesh.route([for_the_lab(out), *roots])
                    live = text
                n = SPLIT_REQUESTS if len(want) > 1 else 4
                answers[(text, request)] = (n, destination_mesh.send(host, n, **send_arguments(original, request)))
            n, got = answers[(text, request)]
            problem = judge(want, got, n, targets)
            if problem:
                wrong.append(f"{name} {request}: {problem}")
    assert not wrong, f"{len(wrong)} requests landed elsewhere than the strategy says:\n" + "\n".join(wrong[:10])


def judge(want: dict, got, n: int, targets: dict[str, Target]) -> str | None:
    """None when the answers `got` (Counter by Target.key) fit the landing `want` ({key: share}), else why not."""
    if not want:
        served = [k for k in got if not k.startswith("HTTP ")]
        return f"no route should take it, but {served} answered" if served else None
    expected = {targets[k].key: share for k, share in want.items()}
    stray = set(got) - set(expected)
    if stray:
        return f"answered by {dict(got)}; only {expected} may answer"
    if len(expected) == 1:
        return None if got[next(iter(expected))] == n else f"answered by {dict(got)}; want all at {expected}"
    off = {k: got[k] / n for k, share in expected.items() if abs(got[k] / n - share) > SHARE_TOLERANCE}
    return f"shares {off} are off from {expected} (n={n})" if off else None
