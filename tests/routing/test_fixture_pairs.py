"""VirtualService before + strategy → VirtualService after, for every case in fixtures/."""

from __future__ import annotations

import copy

import pytest

from graysteps.routing.operations import apply_strategy, conforms, current_strategy, is_graysteps_route
from graysteps.model.strategy import parse_strategy
from tests.routing.fixture_pairs import cases, dump, review_comment

CASES = cases()
ROLLBACK = parse_strategy("rollback")


def test_there_is_a_fixture_pair_for_every_strategy_layout_and_api_version():
    settings = [c.settings for c in CASES]
    assert {s["strategy"] for s in settings} == {"whitelist", "weight", "balanced", "linked", "promote", "rollback"}
    assert {c.service().layout for c in CASES} == {"namespaces", "subsets"}
    versions = {c.after()["apiVersion"] for c in CASES}
    assert versions == {"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}
    assert all((c.path / "after.yaml").exists() for c in CASES), "run python -m tests.routing.fixture_pairs and review"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_golden_file_says_what_its_reviewer_checked_must_hold(case):
    comment = review_comment((case.path / "after.yaml").read_text())
    assert comment.startswith("# MUST HOLD: "), f"{case.name}/after.yaml: start it with '# MUST HOLD: ...' (reviewed by a person)"
    assert "REVIEW:" not in comment, f"{case.name}/after.yaml was regenerated and not reviewed yet"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_strategy_turns_before_into_after(case):
    before = case.before()
    kept = copy.deepcopy(before)
    got = apply_strategy(before, case.service(), case.strategy())
    assert dump(got) == dump(case.after())
    assert got == case.after()
    assert before == kept, "apply_strategy changed its argument"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_applying_the_same_strategy_again_changes_nothing(case):
    after = case.after()
    assert apply_strategy(after, case.service(), case.strategy()) == after
    assert conforms(after, case.service(), case.strategy())
    assert current_strategy(after) == case.strategy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rollback_after_the_strategy_removes_gray_routes_and_sends_everything_to_prod(case):
    service = case.service()
    rolled = apply_strategy(case.after(), service, ROLLBACK)
    http = rolled["spec"]["http"]
    assert not any(is_graysteps_route(r) for r in http)
    gray = service.destination("gray")
    for r in http:
        for d in r.get("route") or []:
            assert {k: d["destination"].get(k) for k in gray} != gray, r
    # rollback undoes the strategy: same as rolling back the VirtualService before it
    assert rolled == apply_strategy(case.before(), service, ROLLBACK)
