"""The apiserver dies in the middle of a plan: the command fails clearly, says
exactly what is left changed, and rerunning the plan converges.

The fault is real: the kube-apiserver process is stopped (etcd keeps the data)
by a proxy in front of it, right after it answered the first service's write;
then it is started again on the same port and etcd."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.plans import REPO, run_cli
from tests.steps.test_release import audit_rows, get_vs, write_plan

pytestmark = pytest.mark.world

PLAN = ("plan: three\ndescription: three services at once\nservices:\n"
        "  - {service: test-a, strategy: whitelist}\n"
        "  - {service: test-b, strategy: linked}\n"
        "  - {service: test-c, strategy: weight, weight: 30}\n")


def test_apiserver_killed_after_the_first_write_is_reported_and_a_rerun_converges(
        kube, make_catalog, audit_db, tmp_path, apiserver_proxy):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog(["test-a", "test-b", "test-c"])
    cat = load_catalog(catalog)
    plan = write_plan(tmp_path, PLAN)
    argv = ["release", "--plan", plan, "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--db", audit_db,
            "--report", str(tmp_path / "r.json")]

    a = cat.service("test-a")
    apiserver_proxy.after_write("virtualservices", a.vs_namespace, a.vs_name, kube.stop_apiserver)
    proxied = [*argv[:argv.index("--kubeconfig") + 1], apiserver_proxy.kubeconfig, *argv[argv.index("--kubeconfig") + 2:]]
    try:
        failed = run_cli(*proxied)
    finally:
        if not kube.apiserver_running:
            kube.start_apiserver()

    message, out = failed.stderr, failed.stdout
    assert failed.returncode == 1
    assert "failed-partially-applied" in message and "STILL CHANGED: test-a" in message, message
    assert "apiserver unreachable" in message
    status = {line.split()[1]: line.split()[0] for line in out.splitlines() if not line.startswith("plan ")}
    assert status == {"test-a": "restore-failed", "test-b": "failed", "test-c": "not-attempted"}, out
    assert "rerun the plan" in out

    # What the report says is what the cluster holds: test-a changed, the others untouched.
    assert get_vs(kube, cat.service("test-a")) is not None
    assert get_vs(kube, cat.service("test-b")) is None and get_vs(kube, cat.service("test-c")) is None
    rows = audit_rows(audit_db)
    assert [(r.action, r.reason) for r in rows] == [("release.started", "three services at once"),
                                                   ("release.finished", "failed-partially-applied")]
    assert rows[1].detail["still_changed"] == ["test-a"]
    a = rows[1].detail["services"][0]
    assert a["created"] and a["before_spec"] is None and a["after_resource_version"]  # enough to undo it by hand

    rerun = run_cli(*argv)
    assert rerun.returncode == 0, rerun.stderr
    status = {line.split()[1]: line.split()[0] for line in rerun.stdout.splitlines() if not line.startswith("plan ")}
    assert status == {"test-a": "unchanged", "test-b": "applied", "test-c": "applied"}
    weights = sorted(d.get("weight") for r in get_vs(kube, cat.service("test-c"))["spec"]["http"] for d in r["route"])
    assert weights == [30, 70]
    assert audit_rows(audit_db)[-1].reason == "succeeded"


def test_a_plan_started_while_the_apiserver_is_down_fails_before_changing_anything(kube, make_catalog, audit_db, tmp_path):
    catalog = make_catalog(["test-a", "test-b", "test-c"])
    plan = write_plan(tmp_path, PLAN)
    kube.stop_apiserver()
    try:
        done = run_cli("release", "--plan", plan, "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--db", audit_db)
    finally:
        kube.start_apiserver()
    assert done.returncode == 1
    assert "failed-nothing-changed" in done.stderr and "nothing was changed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert [r.reason for r in audit_rows(audit_db)] == ["three services at once", "failed-nothing-changed"]


def test_rollback_with_the_apiserver_down_reports_every_service_as_failed(kube, make_catalog):
    catalog = make_catalog(["test-a", "test-b", "test-c"])
    kube.stop_apiserver()
    try:
        done = run_cli("rollback", "--all", "--catalog", catalog, "--kubeconfig", kube.kubeconfig)
    finally:
        kube.start_apiserver()
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("failed")]
    assert len(failed) == 3 and all("apiserver unreachable" in line for line in failed), done.stdout
    assert "3 of 3 services NOT rolled back" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_run_after_one_that_died_without_recording_its_end_warns_and_converges(kube, make_catalog, audit_db, tmp_path,
                                                                                 apiserver_proxy):
    from graysteps.model.catalog import load_catalog

    catalog = make_catalog(["test-a", "test-b", "test-c"])
    a = load_catalog(catalog).service("test-a")
    argv = ["release", "--plan", write_plan(tmp_path, PLAN), "--catalog", catalog, "--kubeconfig", kube.kubeconfig,
            "--db", audit_db, "--actor", "rm-bob"]

    # The first run is SIGKILLed right after its first write: no restore, no end recorded.
    proxied = [*argv[:argv.index("--kubeconfig") + 1], apiserver_proxy.kubeconfig, *argv[argv.index("--kubeconfig") + 2:]]
    started: list[subprocess.Popen] = []
    apiserver_proxy.after_write("virtualservices", a.vs_namespace, a.vs_name, lambda: started[0].kill())
    first = subprocess.Popen([sys.executable, "-m", "graysteps", *proxied], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(first)
    assert first.wait(timeout=60) == -9
    assert [r.action for r in audit_rows(audit_db)] == ["release.started"]

    rerun = run_cli(*argv)
    assert rerun.returncode == 0, rerun.stderr
    assert "warning: the run of plan three that rm-bob started at " in rerun.stderr
    assert "never recorded its end (killed, or still running)" in rerun.stderr
    again = run_cli(*argv)
    assert again.returncode == 0 and "never recorded its end" not in again.stderr
