"""`graysteps release --plan` on the real apiserver: all-or-nothing, recorded."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.fixtures.plans import PLANS, run_cli

pytestmark = pytest.mark.world


def objects(kube):
    from kubernetes import client

    return client.CustomObjectsApi(kube.api_client())


def get_vs(kube, service) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    group, version = service.api_version.split("/", 1)
    try:
        return objects(kube).get_namespaced_custom_object(group, version, service.vs_namespace, "virtualservices", service.vs_name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def put_vs(kube, service, strategy: str, weight: int | None = None) -> dict:
    from graysteps.routing.operations import apply_strategy
    from graysteps.model.strategy import parse_strategy

    group, version = service.api_version.split("/", 1)
    body = apply_strategy(None, service, parse_strategy("rollback"))
    for route in body["spec"]["http"]:
        route["timeout"] = "7s"  # something graysteps does not own: must survive every strategy
    body = apply_strategy(body, service, parse_strategy(strategy, weight))
    return objects(kube).create_namespaced_custom_object(group, version, service.vs_namespace, "virtualservices", body)


def audit_rows(db_url: str, action_prefix: str = "release."):
    from graysteps.adapters.audit.records import read_audit
    from graysteps.adapters.db.store import open_store

    return read_audit(open_store(db_url), action_prefix=action_prefix)


def write_plan(tmp_path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_plan_sets_every_service_and_a_second_run_changes_nothing(kube, make_catalog, audit_db, tmp_path):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog()
    argv = ["release", "--plan", str(PLANS / "scenario-3.yaml"), "--catalog", catalog, "--kubeconfig", kube.kubeconfig,
            "--db", audit_db, "--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml")]
    first = run_cli(*argv, env=None)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "plan scenario-3: succeeded"
    cat = load_catalog(catalog)
    a, b = get_vs(kube, cat.service("test-a")), get_vs(kube, cat.service("test-b"))
    weights = sorted(d.get("weight") for r in a["spec"]["http"] for d in r["route"])
    assert weights == [20, 80]
    assert any("sourceLabels" not in m and "headers" in m for r in b["spec"]["http"] for m in r.get("match", []))
    versions = (a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"])

    second = run_cli(*argv)
    assert second.returncode == 0, second.stderr
    assert [line.split()[0] for line in second.stdout.splitlines()[:2]] == ["unchanged", "unchanged"]
    a2, b2 = get_vs(kube, cat.service("test-a")), get_vs(kube, cat.service("test-b"))
    assert (a2["metadata"]["resourceVersion"], b2["metadata"]["resourceVersion"]) == versions

    rows = audit_rows(audit_db)
    assert [(r.action, r.reason) for r in rows] == [
        ("release.started", "A at 80% prod / 20% gray, B on whitelist"), ("release.finished", "succeeded"),
        ("release.started", "A at 80% prod / 20% gray, B on whitelist"), ("release.finished", "succeeded"),
    ]
    assert rows[1].subject == "plan scenario-3" and rows[1].actor
    assert [s["status"] for s in rows[1].detail["services"]] == ["applied", "applied"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["result"] == "succeeded" and [s["status"] for s in report["services"]] == ["unchanged", "unchanged"]
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"


def test_dry_run_checks_with_the_apiserver_and_writes_nothing(kube, make_catalog, audit_db):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog()
    done = run_cli("release", "--plan", str(PLANS / "scenario-2.yaml"), "--catalog", catalog,
                   "--kubeconfig", kube.kubeconfig, "--db", audit_db, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[:2]] == ["would-change", "would-change"]
    assert "sourceLabels" in done.stdout  # the diff of test-b's linked route
    cat = load_catalog(catalog)
    assert get_vs(kube, cat.service("test-a")) is None and get_vs(kube, cat.service("test-b")) is None
    assert audit_rows(audit_db) == []


@pytest.mark.parametrize("plan_text, named", [
    ("services:\n  - service: test-A\n    strategy: whitelist\n", "test-A"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: 101\n", "101"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: abc\n", "abc"),
    ("services:\n  - service: test-a\n    strategy: weight\n    weight: 12.5\n", "12.5"),
    ("services:\n  - service: test-a\n    strategy: sideways\n", "sideways"),
    ("services:\n  - service: test-a\n    strategy: whitelist\n  - service: nosuch\n    strategy: rollback\n", "nosuch"),
])
def test_a_bad_plan_changes_nothing_anywhere(kube, make_catalog, audit_db, tmp_path, plan_text, named):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog()
    plan = write_plan(tmp_path, plan_text)
    done = run_cli("release", "--plan", plan, "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--db", audit_db)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and named in done.stderr and plan in done.stderr, done.stderr
    assert get_vs(kube, load_catalog(catalog).service("test-a")) is None
    assert audit_rows(audit_db) == []


def test_a_service_the_apiserver_refuses_stops_the_plan_before_any_write(kube, make_catalog, audit_db, refuse_writes,
                                                                      profile_namespaces):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog(["test-a", "test-b"])
    cat = load_catalog(catalog)
    refuse_writes(cat.service("test-b").vs_namespace, cat.service("test-b").vs_name)
    done = run_cli("release", "--plan", str(PLANS / "scenario-1.yaml"), "--catalog", catalog,
                   "--kubeconfig", kube.kubeconfig, "--db", audit_db)
    assert done.returncode == 1
    assert "failed-nothing-changed" in done.stderr and "test-b" in done.stderr
    assert get_vs(kube, cat.service("test-a")) is None  # test-a was never written


def test_when_a_later_service_fails_the_earlier_ones_are_put_back(kube, make_catalog, audit_db, refuse_writes,
                                                                  apiserver_proxy, tmp_path):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog(["test-a", "test-b", "test-c", "test-d"])
    cat = load_catalog(catalog)
    a_before = put_vs(kube, cat.service("test-a"), "weight", 50)  # test-a exists; test-b is created by the plan
    plan = write_plan(tmp_path, "plan: four\nservices:\n"
                      "  - {service: test-a, strategy: whitelist}\n  - {service: test-b, strategy: promote}\n"
                      "  - {service: test-c, strategy: linked}\n  - {service: test-d, strategy: rollback}\n")

    b, c = cat.service("test-b"), cat.service("test-c")
    apiserver_proxy.after_write("virtualservices", b.vs_namespace, b.vs_name,
                                lambda: refuse_writes(c.vs_namespace, c.vs_name))  # test-c's write will be refused

    done = run_cli("release", "--plan", plan, "--catalog", catalog, "--kubeconfig", apiserver_proxy.kubeconfig,
                   "--db", audit_db, "--report", str(tmp_path / "r.json"))
    error, out = done.stderr, done.stdout
    assert done.returncode == 1
    assert "failed-restored" in error and "test-c" in error and "STILL CHANGED" not in error
    status = {line.split()[1]: line.split()[0] for line in out.splitlines() if line.split()[0] != "plan"}
    assert status == {"test-a": "restored", "test-b": "restored", "test-c": "failed", "test-d": "not-attempted"}

    a_after = get_vs(kube, cat.service("test-a"))
    assert a_after["spec"] == a_before["spec"]  # the exact previous spec, timeout included
    for key in ("labels", "annotations"):  # and the strategy recorded on it
        assert a_after["metadata"].get(key) == a_before["metadata"].get(key)
    assert get_vs(kube, cat.service("test-b")) is None  # created by the plan, so deleted again
    assert get_vs(kube, cat.service("test-c")) is None and get_vs(kube, cat.service("test-d")) is None
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["result"] == "failed-restored" and report["still_changed"] == []
    assert report["services"][0]["before_spec"] == a_before["spec"]  # the snapshot the restore used
    assert [r.reason for r in audit_rows(audit_db)] == [None, "failed-restored"]


def test_a_restore_never_overwrites_someone_elses_later_change(kube, make_catalog, audit_db, refuse_writes,
                                                               apiserver_proxy):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog(["test-a", "test-b"])
    cat = load_catalog(catalog)
    a, b = cat.service("test-a"), cat.service("test-b")
    put_vs(kube, a, "rollback")

    def someone_edits_test_a_then_test_b_is_refused():
        group, version = a.api_version.split("/", 1)
        live = get_vs(kube, a)
        live["metadata"].setdefault("labels", {})["edited-by"] = "someone-else"
        objects(kube).replace_namespaced_custom_object(group, version, a.vs_namespace, "virtualservices", a.vs_name, live)
        refuse_writes(b.vs_namespace, b.vs_name)

    apiserver_proxy.after_write("virtualservices", a.vs_namespace, a.vs_name, someone_edits_test_a_then_test_b_is_refused)
    done = run_cli("release", "--plan", str(PLANS / "scenario-1.yaml"), "--catalog", catalog,
                   "--kubeconfig", apiserver_proxy.kubeconfig, "--db", audit_db)
    error, out = done.stderr, done.stdout
    assert done.returncode == 1
    assert "failed-partially-applied" in error and "STILL CHANGED: test-a" in error
    assert out.splitlines()[0].startswith("changed-by-other-writer")
    live = get_vs(kube, a)
    assert live["metadata"]["labels"]["edited-by"] == "someone-else"  # the other writer's change survives
