"""Progressive plans: schedules read from YAML, one clear error for a bad one."""

from __future__ import annotations

import textwrap

import pytest

from graysteps.errors import InvalidInput
from graysteps.model.catalog import load_catalog
from graysteps.model.schedule import load_schedule, parse_duration
from graysteps_lab.world.fleet import write_catalog


@pytest.fixture
def catalog(tmp_path):
    return load_catalog(write_catalog(tmp_path / "catalog.yaml", ["test-a", "test-b"], prod_ns="prod", gray_ns="gray"))


def plan(tmp_path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


GOOD = """\
    plan: checkout
    services:
      - service: test-a
      - service: test-b
        steps: [whitelist, {weight: 10}, {weight: 10}, promote, promote]
    steps:
      - whitelist
      - {weight: 5, pause: 30s}
      - {weight: 20, pause: manual, analysis: {minRequests: 500}}
      - balanced
      - promote
    analysis:
      minRequests: 50
      metrics: [success-rate, {name: latency-p99, maxMs: 300, maxRatio: 1.5}]
    alerts:
      - {format: wecom, urlEnv: WECOM_HOOK}
"""


def test_a_schedule_runs_each_step_for_every_service_with_its_own_strategy(tmp_path, catalog):
    s = load_schedule(plan(tmp_path, GOOD), catalog)
    assert [st.label for st in s.steps] == ["whitelist", "test-a weight 5, test-b weight 10",
                                            "test-a weight 20, test-b weight 10", "test-a balanced, test-b promote",
                                            "promote"]
    assert [st.pause for st in s.steps] == [0.0, 30.0, None, 0.0, 0.0]
    assert s.steps[2].manual and s.steps[2].analysis.min_requests == 500
    assert s.steps[1].analysis.min_requests == 50
    assert [m.kind for m in s.steps[0].analysis.metrics] == ["success-rate", "latency-p99"]
    assert s.alerts[0].format == "wecom" and s.alerts[0].url_env == "WECOM_HOOK"


def test_default_queries_tell_gray_from_prod_by_envoy_cluster_name(tmp_path, catalog):
    s = load_schedule(plan(tmp_path, GOOD), catalog)
    latency = s.steps[0].analysis.metrics[1]
    test_a = s.services[0]
    total, bad = latency.queries(test_a, "gray", s.steps[0].analysis.destination)
    assert 'cluster_name=~"outbound\\\\|([0-9]+\\\\|[^|]*\\\\|)?test-a\\\\.gray\\\\.svc' in total
    assert 'le=~"500|500.0"' in bad  # 300 ms rounds up to Envoy's next histogram bound
    import re

    pattern = re.compile(r"outbound\|([0-9]+\|[^|]*\|)?test-a\.gray\.svc\.cluster\.local")
    assert pattern.fullmatch("outbound|test-a.gray.svc.cluster.local")  # the lab's translator
    assert pattern.fullmatch("outbound|80||test-a.gray.svc.cluster.local")  # istiod
    assert not pattern.fullmatch("outbound|80||test-a.prod.svc.cluster.local")


def test_a_query_can_point_at_istio_requests_total(tmp_path, catalog):
    s = load_schedule(plan(tmp_path, """\
        services: [test-a]
        steps: [{weight: 10}, promote]
        analysis:
          metrics:
            - name: success-rate
              query:
                total: sum(istio_requests_total{destination_service_name="$service",destination_workload_namespace="$namespace"})
                bad: sum(istio_requests_total{destination_service_name="$service",destination_workload_namespace="$namespace",response_code=~"5.."})
    """), catalog)
    total, bad = s.steps[0].analysis.metrics[0].queries(s.services[0], "prod", s.steps[0].analysis.destination)
    assert total == 'sum(istio_requests_total{destination_service_name="test-a",destination_workload_namespace="prod"})'
    assert bad.endswith('response_code=~"5.."})')


@pytest.mark.parametrize("text, message", [
    ("services: [test-a]\nsteps: [{weight: 10}, promote]\nanalysis: {metrics: [error-budget]}\n",
     "plan.yaml:3: analysis.metrics[0]: unknown metric 'error-budget'; known: success-rate, latency-p99"),
    ("services: [test-a]\nsteps: [{weight: 10}, promote]\nanalysis: {metrics: [{name: success-rate, maxRatio: 0.5}]}\n",
     "analysis.metrics[0] (success-rate).maxRatio: 0.5 is out of range; use a number 1-100"),
    ("services: [test-a]\nsteps: [{weight: 10}, promote]\nanalysis: {metrics: [{name: latency-p99}]}\n",
     "analysis.metrics[0] (latency-p99): maxMs is required"),
    ("services: [test-a]\nsteps: [{weight: 10}, promote]\nanalysis: {confidence: 1.5}\n",
     "analysis.confidence: 1.5 is out of range; use 0.5-0.9999"),
    ("services: [test-a]\nsteps: [{weight: 120}, promote]\n", "steps[0]: --weight 120 is not allowed"),
    ("services: [test-a]\nsteps: [{weight: 10, pause: soon}, promote]\n", "steps[0].pause: 'soon' is not a duration"),
    ("services: [test-a]\nsteps: [rollback, promote]\n", "steps[0]: 'rollback' is not a schedule step"),
    ("services: [test-a]\nsteps: [{weight: 10}, balanced]\n", "the last step must be `promote`"),
    ("services: [test-z]\nsteps: [promote]\n", "services[0]: "),
    ("services: [test-a]\nsteps: [promote]\nalerts: [{format: slack, url: 'https://hooks.slack.com/x'}]\n",
     "unknown key 'url'; allowed: format, urlEnv, name (a webhook URL is a secret"),
    ("services: [test-a]\nsteps: [promote]\nsteps: [promote]\n", "not valid YAML"),
])
def test_a_bad_schedule_gets_one_line_naming_the_place_and_what_is_allowed(tmp_path, catalog, text, message):
    with pytest.raises(InvalidInput) as e:
        load_schedule(plan(tmp_path, text), catalog)
    assert message in e.value.message
    assert "\n" not in e.value.message


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), (5, 5)])
def test_durations(text, seconds):
    assert parse_duration(text, "pause") == seconds


def test_show_prints_the_schedule_jenkins_makes_its_stages_from(tmp_path):
    import json

    from tests.fixtures.plans import EXAMPLE_CATALOG, PLANS, run_cli

    done = run_cli("progress", "--plan", str(PLANS / "progressive.yaml"), "--catalog", str(EXAMPLE_CATALOG), "--show",
                   "--report", str(tmp_path / "schedule.json"))
    assert done.returncode == 0, done.stderr
    shown = json.loads((tmp_path / "schedule.json").read_text())
    assert shown == json.loads(done.stdout)
    assert [s["label"] for s in shown["steps"]] == ["whitelist", "weight 5", "weight 20", "balanced", "promote"]
    assert [s["pause"] for s in shown["steps"]][2] == "manual" and shown["services"] == ["test-a", "test-b"]
