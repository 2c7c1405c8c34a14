"""Real VirtualServices from public repositories (tests/routing/corpus/, each naming its
source and license), through every strategy and chain: idempotent, every foreign field
kept, rollback gives back the original, refusals in one line, and (world) every output
passes Istio's own validation."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from graysteps.model.strategy import parse_strategy
from graysteps.routing.operations import apply_strategy, is_graysteps_route
from tests.routing.corpus_cases import (CHAINS, CORPUS, cases, chain_id, expected_landing, first_route, landing,
                                        requests_for, run_chain)
from tests.routing.fixture_pairs import without_graysteps_marks

CASES = cases()
ROLLBACK = parse_strategy("rollback")


def test_the_corpus_has_at_least_20_real_virtualservices_each_naming_source_and_license():
    files = sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "cases.yaml")
    assert len(files) >= 20
    assert sorted(c.file for c in CASES) == files, "every corpus file needs an entry in corpus/cases.yaml"
    for name in files:
        head = (CORPUS / name).read_text().splitlines()[:2]
        assert head[0].startswith("# Source: https://github.com/") and head[1].startswith("# License: "), name


def identity(route: dict) -> str:
    return json.dumps({k: v for k, v in route.items() if k != "route"}, sort_keys=True)


def total_weight(entries: list) -> int:
    return 100 if len(entries) == 1 else sum(e.get("weight", 0) for e in entries)


@pytest.mark.parametrize("chain", CHAINS, ids=chain_id)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file[:-5])
def test_every_case_and_chain_is_idempotent_keeps_foreign_fields_and_rolls_back_to_the_original(case, chain, tmp_path):
    service = case.service(tmp_path)
    original = case.original(service)
    out, refused = run_chain(case, service, chain)
    if refused:
        return
    last = chain[-1]
    assert apply_strategy(out, service, last) == out, "not idempotent"

    # everything but spec.http and graysteps' own marks is exactly as it was
    bare = without_graysteps_marks(out)
    assert {k: v for k, v in bare.items() if k != "spec"} == {k: v for k, v in original.items() if k != "spec"}
    assert {k: v for k, v in bare["spec"].items() if k != "http"} == {
        k: v for k, v in original["spec"].items() if k != "http"}
    # every original route is still there, in order, with all its fields but its destinations
    kept = [r for r in out["spec"]["http"] if not is_graysteps_route(r)]
    assert [identity(r) for r in kept] == [identity(r) for r in original["spec"]["http"]]
    for before, after in zip(original["spec"]["http"], kept):
        if "route" in before:
            assert total_weight(after["route"]) == total_weight(before["route"]), "weights no longer add up"
            hosts = {json.dumps(e, sort_keys=True) for e in after["route"]}
            for entry in before["route"]:
                d = entry["destination"]
                if d.get("host", "").lower() not in service.own_hosts() or (
                        service.layout == "subsets" and d.get("subset") not in (None, *service.subsets.values())):
                    assert json.dumps(entry, sort_keys=True) in hosts, f"foreign destination {d} moved"

    rolled = apply_strategy(out, service, ROLLBACK)
    assert without_graysteps_marks(rolled) == original


@pytest.mark.parametrize("chain", CHAINS, ids=chain_id)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file[:-5])
def test_every_request_lands_where_the_last_strategy_says(case, chain, tmp_path):
    """Istio's first-match semantics over the routes before and after (corpus_cases.first_route):
    with or without the cookie, from a gray or a prod caller, on each path the routes match."""
    service = case.service(tmp_path)
    original = case.original(service)
    out, refused = run_chain(case, service, chain)
    if refused:
        return
    for request in requests_for(original):
        got = landing(first_route(out, request), service)
        want = expected_landing(first_route(original, request), service, chain[-1], request)
        assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-9 for k in got), (request, got, want)


@pytest.mark.world
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file[:-5])
def test_every_output_passes_istioctl_validate(case, istioctl, tmp_path):
    service = case.service(tmp_path)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    written = 0
    for chain in CHAINS:
        out, refused = run_chain(case, service, chain)
        if out is not None:
            (outputs / f"{chain_id(chain)}.yaml").write_text(yaml.safe_dump(out, sort_keys=False))
            written += 1
    original = tmp_path / "original.yaml"
    original.write_text(yaml.safe_dump(case.original(service), sort_keys=False))
    assert subprocess.run([str(istioctl), "validate", "-f", str(original)], capture_output=True, text=True,
                          timeout=60).returncode == 0, "the corpus file itself must be valid"
    if not written:
        assert case.refused.get("all"), case.file
        return
    done = subprocess.run([str(istioctl), "validate", "-f", str(outputs)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
