"""`graysteps rollback --all | --service S...` on the real apiserver."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.plans import run_cli
from tests.steps.test_release import audit_rows, get_vs, put_vs

pytestmark = pytest.mark.world


def prod_only(vs: dict, service) -> bool:
    """Every destination with traffic is the service's prod destination."""
    prod = service.destination("prod")
    dests = [d["destination"] for r in vs["spec"]["http"] for d in r.get("route", []) if d.get("weight", 100) > 0]
    return bool(dests) and all(d == prod for d in dests)


def statuses(stdout: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in stdout.splitlines() if not line.startswith("rollback:")}


@pytest.fixture
def fleet(kube, make_catalog):
    """Five catalog services: three on gray strategies, one on prod already, one without a VirtualService."""
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog(["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"])
    cat = load_catalog(catalog)
    put_vs(kube, cat.service("svc-a"), "whitelist")
    put_vs(kube, cat.service("svc-b"), "weight", 20)
    put_vs(kube, cat.service("svc-c"), "promote")
    put_vs(kube, cat.service("svc-d"), "rollback")
    return catalog, cat


def test_rollback_all_sends_every_service_to_prod_and_is_safe_to_repeat(kube, fleet, tmp_path):
    catalog, cat = fleet
    args = ("rollback", "--all", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--workers", "4")
    first = run_cli(*args, "--report", str(tmp_path / "r.json"))
    assert first.returncode == 0, first.stderr
    assert statuses(first.stdout) == {"svc-a": "rolled-back", "svc-b": "rolled-back", "svc-c": "rolled-back",
                                      "svc-d": "already-prod", "svc-e": "no-virtualservice"}
    for name in ("svc-a", "svc-b", "svc-c", "svc-d"):
        live = get_vs(kube, cat.service(name))
        assert prod_only(live, cat.service(name)), live
        assert all(r.get("timeout") == "7s" for r in live["spec"]["http"])  # what graysteps does not own stays
    versions = {n: get_vs(kube, cat.service(n))["metadata"]["resourceVersion"] for n in ("svc-a", "svc-b", "svc-c", "svc-d")}
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] and report["counts"] == {"rolled-back": 3, "already-prod": 1, "no-virtualservice": 1}

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert set(statuses(again.stdout).values()) == {"already-prod", "no-virtualservice"}
    assert {n: get_vs(kube, cat.service(n))["metadata"]["resourceVersion"] for n in versions} == versions


def test_rollback_of_named_services_leaves_the_others_alone(kube, fleet):
    catalog, cat = fleet
    done = run_cli("rollback", "--service", "svc-a", "svc-c", "--catalog", catalog, "--kubeconfig", kube.kubeconfig)
    assert done.returncode == 0, done.stderr
    assert statuses(done.stdout) == {"svc-a": "rolled-back", "svc-c": "rolled-back"}
    assert not prod_only(get_vs(kube, cat.service("svc-b")), cat.service("svc-b"))


def test_one_refused_service_does_not_stop_the_others_and_fails_the_command(kube, fleet, refuse_writes):
    catalog, cat = fleet
    b = cat.service("svc-b")
    refuse_writes(b.vs_namespace, b.vs_name)
    done = run_cli("rollback", "--all", "--catalog", catalog, "--kubeconfig", kube.kubeconfig)
    assert done.returncode == 1
    assert statuses(done.stdout)["svc-b"] == "failed"
    assert "1 of 5 services NOT rolled back (svc-b)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    for name in ("svc-a", "svc-c"):
        assert prod_only(get_vs(kube, cat.service(name)), cat.service(name))
    assert not prod_only(get_vs(kube, cat.service("svc-b")), b)


def test_namespace_filter_picks_the_services_whose_virtualservice_lives_there(kube, fleet):
    catalog, cat = fleet
    ns = cat.service("svc-a").vs_namespace
    done = run_cli("rollback", "--all", "--namespace", "elsewhere", "--catalog", catalog, "--kubeconfig", kube.kubeconfig)
    assert done.returncode == 2 and done.stdout == "" and "elsewhere" in done.stderr
    done = run_cli("rollback", "--all", "--namespace", ns, "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert statuses(done.stdout)["svc-a"] == "would-roll-back"
    assert not prod_only(get_vs(kube, cat.service("svc-a")), cat.service("svc-a"))  # dry run: nothing written


@pytest.mark.parametrize("args, named", [
    (["--service", "svc-A"], "svc-A"),
    (["--service", "nosuch"], "nosuch"),
    (["--all", "--workers", "0"], "0"),
])
def test_bad_input_is_refused_before_any_write(kube, fleet, args, named):
    catalog, cat = fleet
    done = run_cli("rollback", *args, "--catalog", catalog, "--kubeconfig", kube.kubeconfig)
    assert done.returncode == 2 and done.stdout == ""
    assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not prod_only(get_vs(kube, cat.service("svc-a")), cat.service("svc-a"))


def rollback_rows(db_url: str) -> list:
    return audit_rows(db_url, action_prefix="rollback")


def test_a_rollback_leaves_one_audit_row_with_who_what_and_each_outcome(kube, fleet, audit_db):
    catalog, cat = fleet
    args = ("rollback", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--db", audit_db, "--actor", "rm-alice")
    assert run_cli(*args, "--service", "svc-a", "svc-b", "--dry-run").returncode == 0
    assert rollback_rows(audit_db) == []  # a dry run changes nothing, so it records nothing

    done = run_cli(*args, "--all")
    assert done.returncode == 0, done.stderr
    [row] = rollback_rows(audit_db)
    assert (row.action, row.subject, row.actor, row.reason) == ("rollback", "rollback --all", "rm-alice", "succeeded")
    assert row.detail["counts"] == {"rolled-back": 3, "already-prod": 1, "no-virtualservice": 1}
    assert {s["service"]: s["status"] for s in row.detail["services"]}["svc-c"] == "rolled-back"


def test_a_bad_audit_database_url_is_refused_before_any_write_and_its_password_never_shown(kube, fleet):
    catalog, cat = fleet
    done = run_cli("rollback", "--all", "--catalog", catalog, "--kubeconfig", kube.kubeconfig,
                   "--db", "postgresql://release:s3cret@db.example/graysteps")
    assert done.returncode == 2 and done.stdout == ""
    assert "unsupported database 'postgresql'" in done.stderr and "s3cret" not in done.stderr
    assert not prod_only(get_vs(kube, cat.service("svc-a")), cat.service("svc-a"))


def test_an_unreachable_audit_database_never_stops_the_rollback_but_fails_the_command(kube, fleet):
    catalog, cat = fleet
    nobody_listens = "mysql+pymysql://release:s3cret@127.0.0.1:1/graysteps"
    done = run_cli("rollback", "--all", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--db", nobody_listens)
    assert done.returncode == 1
    for name in ("svc-a", "svc-b", "svc-c"):
        assert prod_only(get_vs(kube, cat.service(name)), cat.service(name))
    assert statuses(done.stdout)["svc-a"] == "rolled-back"
    assert "all 5 services are on prod; its audit record was not written" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout


def test_without_an_audit_database_a_rollback_says_it_is_not_recorded_and_creates_no_database(kube, fleet, tmp_path):
    import os

    catalog, cat = fleet
    env = {k: v for k, v in os.environ.items() if k != "GRAYSTEPS_DB"} | {"XDG_DATA_HOME": str(tmp_path / "data")}
    done = run_cli("rollback", "--service", "svc-a", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, env=env)
    assert done.returncode == 0, done.stderr
    assert "rollback: not recorded in an audit table (no --db, no $GRAYSTEPS_DB)" in done.stdout
    assert prod_only(get_vs(kube, cat.service("svc-a")), cat.service("svc-a"))
    assert not (tmp_path / "data").exists()  # no default SQLite file appears
