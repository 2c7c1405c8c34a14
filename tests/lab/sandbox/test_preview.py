"""`graysteps preview`: the plan's VirtualServices served by a throwaway istiod to real Envoys, no cluster of yours."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.sandbox import REPO, graysteps

PLANS = REPO / "examples" / "plans"
CATALOG = REPO / "examples" / "catalog.yaml"


def preview(*args: str):
    return graysteps("preview", "--catalog", str(CATALOG), *args, timeout=120)


def rows(done) -> dict[str, dict[str, float]]:
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    return {f"{r['caller']} -> {r['service']}": r["shares"] for r in data["rows"]}


@pytest.mark.world
def test_scenario_2_shows_whitelisted_tenants_gray_on_both_hops_and_linked_b_following_its_caller():
    got = rows(preview("--plan", str(PLANS / "scenario-2.yaml"), "--tenants", "acme,globex", "--requests", "30",
                       "--json"))
    assert got == {
        "tenant acme (whitelisted) -> test-a": {"test-a:gray>test-b:gray": 100.0},
        "tenant globex (whitelisted) -> test-a": {"test-a:gray>test-b:gray": 100.0},
        "another tenant -> test-a": {"test-a:prod>test-b:prod": 100.0},
        "internal caller from gray -> test-a": {"test-a:prod>test-b:prod": 100.0},
        "internal caller from prod -> test-a": {"test-a:prod>test-b:prod": 100.0},
        "internal caller from gray -> test-b": {"test-b:gray": 100.0},
        "internal caller from prod -> test-b": {"test-b:prod": 100.0},
    }


@pytest.mark.world
def test_scenario_3_without_cookie_forwarding_loses_the_tenant_on_the_second_hop():
    forwarded = rows(preview("--plan", str(PLANS / "scenario-3.yaml"), "--requests", "200", "--json"))
    dropped = rows(preview("--plan", str(PLANS / "scenario-3.yaml"), "--requests", "200", "--json",
                           "--no-forward-cookie"))
    tenant = "a whitelisted tenant -> test-a"
    assert set(forwarded[tenant]) == {"test-a:prod>test-b:gray", "test-a:gray>test-b:gray"}
    assert set(dropped[tenant]) == {"test-a:prod>test-b:prod", "test-a:gray>test-b:prod"}
    # A's 20% split, observed on 200 requests (binomial sd 2.8 points: 4.5 sd either side)
    assert 7.0 <= forwarded[tenant]["test-a:gray>test-b:gray"] <= 33.0


@pytest.mark.world
def test_the_text_output_names_the_plan_and_each_kind_of_caller():
    done = preview("--plan", str(PLANS / "scenario-1.yaml"), "--requests", "10")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "plan scenario-1: A on whitelist, B on prod"
    assert any(l.split() == ["a", "whitelisted", "tenant", "->", "test-a", "test-a:gray>test-b:prod", "100%"]
               for l in lines)
    assert any(l.split() == ["another", "tenant", "->", "test-a", "test-a:prod>test-b:prod", "100%"] for l in lines)


@pytest.mark.parametrize("tenants", ["acme,", "acme,bad tenant", "x" * 65])
def test_bad_tenants_are_refused_by_name_before_envoy_starts(tenants):
    done = preview("--plan", str(PLANS / "scenario-1.yaml"), "--tenants", tenants)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_plan_naming_an_unknown_service_is_refused_with_its_line(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("plan: p\nservices:\n  - service: test-c\n    strategy: whitelist\n")
    done = preview("--plan", str(plan))
    assert done.returncode == 2 and done.stdout == ""
    assert f"{plan}:3" in done.stderr and "test-c" in done.stderr
