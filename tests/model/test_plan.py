"""Plan files: the seed's three scenarios load; every mistake is named with
file, line, service and field before anything is touched. No servers needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from graysteps.errors import InvalidInput
from graysteps.model.plan import Plan, load_plan
from graysteps.steps.release import PlanResult, ServiceOutcome, write_json_report, write_junit_report
from graysteps_lab.world.fleet import write_catalog
from tests.fixtures.plans import EXAMPLE_CATALOG, PLANS


@pytest.fixture
def catalog():
    from graysteps.model.catalog import load_catalog

    return load_catalog(str(EXAMPLE_CATALOG))


def plan_file(tmp_path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("scenario, expected", [
    ("scenario-1", [("test-a", "whitelist", None), ("test-b", "rollback", None)]),
    ("scenario-2", [("test-a", "whitelist", None), ("test-b", "linked", None)]),
    ("scenario-3", [("test-a", "weight", 20), ("test-b", "whitelist", None)]),
])
def test_the_seeds_scenarios_load_as_plans(catalog, scenario, expected):
    plan = load_plan(str(PLANS / f"{scenario}.yaml"), catalog)
    assert plan.name == scenario
    assert [(s.service.name, s.strategy.name, s.strategy.weight) for s in plan.steps] == expected
    assert len(plan.sha256) == 64


@pytest.mark.parametrize("text, expected", [
    ("services:\n  - service: test-A\n    strategy: whitelist\n", ":2: services[0] (test-A): field 'service'"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: 101\n", ":4: services[0] (test-a): field 'weight'"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: -1\n", ":4: services[0] (test-a): field 'weight'"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: abc\n", "field 'weight': 'abc' is not allowed"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: 12.5\n", "field 'weight': 12.5 is not allowed"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: true\n", "field 'weight': True is not allowed"),
    ("services:\n  - service: test-a\n    strategy: sideways\n", ":3: services[0] (test-a): field 'strategy'"),
    ("services:\n  - service: test-a\n", "field 'strategy' is missing"),
    ("services:\n  - strategy: rollback\n", "field 'service' is missing"),
    ("services:\n  - service: test-a\n    strategy: rollback\n    colour: blue\n", ":4: services[0]: unknown field 'colour'"),
    ("services:\n  - service: test-a\n    strategy: rollback\n  - service: test-a\n    strategy: promote\n",
     ":4: services[1] (test-a): service listed twice (first at line 2)"),
    ("services: []\n", "field 'services': must be a non-empty list"),
    ("servces:\n  - service: test-a\n", "unknown key 'servces'"),
    ("- service: test-a\n", "must be a mapping with a `services:` list"),
    ("services:\n  - service: test-a\n    strategy: [whitelist\n", "not valid YAML"),
    ("services:\n  - service: test-a\n    strategy: !!python/object:os.system whitelist\n", "field 'strategy' is missing or not a string"),
])
def test_a_bad_plan_names_file_line_service_and_field(catalog, tmp_path, text, expected):
    path = plan_file(tmp_path, text)
    with pytest.raises(InvalidInput) as bad:
        load_plan(path, catalog)
    assert expected in bad.value.message
    assert path in bad.value.message
    assert "\n" not in bad.value.message


def test_every_problem_of_a_plan_is_named_at_once(catalog, tmp_path):
    path = plan_file(tmp_path, "services:\n  - {service: nosuch, strategy: rollback}\n  - {service: test-b, strategy: weight, weight: 200}\n")
    with pytest.raises(InvalidInput) as bad:
        load_plan(path, catalog)
    assert "nosuch" in bad.value.message and "200" in bad.value.message and "and 1 more" in bad.value.message


def test_a_missing_plan_file_says_so(catalog, tmp_path):
    with pytest.raises(InvalidInput, match="cannot read it"):
        load_plan(str(tmp_path / "absent.yaml"), catalog)


def test_two_services_sharing_one_virtualservice_are_refused(tmp_path):
    from graysteps.model.catalog import load_catalog

    path = tmp_path / "catalog.yaml"
    write_catalog(path, ["svc-a", "svc-b"], prod_ns="prod", gray_ns="gray", vs_names={"svc-b": "svc-a"})
    plan = plan_file(tmp_path, "services:\n  - {service: svc-a, strategy: rollback}\n  - {service: svc-b, strategy: promote}\n")
    with pytest.raises(InvalidInput, match="uses VirtualService prod/svc-a, which svc-a also uses"):
        load_plan(plan, load_catalog(str(path)))


def test_reports_name_each_service_and_fail_for_what_is_not_as_planned(catalog, tmp_path):
    plan = load_plan(str(PLANS / "scenario-1.yaml"), catalog)
    result = PlanResult(plan=plan, dry_run=False, actor="alice", started_at="t0", finished_at="t1", outcomes=[
        ServiceOutcome("test-a", "whitelist", "prod/test-a", "restore-failed", "STILL CHANGED: restore failed"),
        ServiceOutcome("test-b", "rollback", "prod/test-b", "failed", "apiserver unreachable"),
    ], error="test-b: write failed")
    assert result.result == "failed-partially-applied" and result.changed == ["test-a"]
    write_json_report(result, str(tmp_path / "r.json"))
    write_junit_report(result, str(tmp_path / "r.xml"))
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["actor"] == "alice" and data["still_changed"] == ["test-a"]
    assert [s["status"] for s in data["services"]] == ["restore-failed", "failed"]
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "2"
    assert [f.get("type") for f in suite.iter("failure")] == ["restore-failed", "failed"]
    assert isinstance(plan, Plan)
