"""`graysteps progress` in the lab: a real apiserver, istiod configuring the gateway Envoy and the
sidecars, a real Prometheus scraping them, steady traffic. Each step is counted once Istio serves it
(--istiod), except in the test of a killed run, which uses the fixed --settle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from graysteps_lab.world.traffic import Traffic
from tests.fixtures.plans import REPO, run_cli
from tests.adapters.test_alerts import Receiver

pytestmark = pytest.mark.world

ANALYSIS = """\
analysis:
  minRequests: 40
  interval: 500ms
  maxDuration: 60s
  metrics: [success-rate, {name: latency-p99, maxMs: 100}]
"""


def write_plan(tmp_path, steps: str, extra: str = ANALYSIS) -> str:
    path = tmp_path / "progressive.yaml"
    path.write_text("plan: checkout\nservices: [test-a]\n" + textwrap.dedent(steps) + extra)
    return str(path)


def progress(lab, prometheus, plan, audit_db, *args, env=None):
    return run_cli("progress", "--plan", plan, "--catalog", lab.catalog_path, "--kubeconfig", str(lab.kube.kubeconfig),
                   "--prometheus", prometheus.url, "--db", audit_db, "--istiod", lab.istiod_url, *args,
                   env={**os.environ, **(env or {})})


def strategy_of(lab, service: str = "test-a") -> str:
    from kubernetes import client

    spec = lab.catalog.service(service)
    with lab.kube.api_client() as api:
        vs = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "networking.istio.io", "v1", spec.vs_namespace, "virtualservices", spec.vs_name)
    return vs["metadata"]["annotations"]["graysteps.io/strategy"]


def audit_rows(audit_db):
    from graysteps.adapters.audit.records import read_audit
    from graysteps.adapters.db.store import open_store

    store = open_store(audit_db)
    try:
        return [(r.action, r.reason, (r.detail or {}).get("step")) for r in read_audit(store, action_prefix="progress.")]
    finally:
        store.close()


def test_a_failing_gray_is_rolled_back_automatically_and_alerts_are_sent(lab, prometheus, audit_db, tmp_path):
    hook = Receiver()
    plan = write_plan(tmp_path, """\
        steps: [{weight: 30, pause: 60s}, balanced, promote]
        alerts: [{format: json, urlEnv: HOOK}, {format: slack, urlEnv: DEAD_HOOK}]
        """)
    lab.backend("test-a", "gray").misbehave(error_rate=0.3, seed=1)
    try:
        with Traffic(lab.ingress, lab.host("test-a"), rate=60) as traffic:
            t0 = time.monotonic()
            done = progress(lab, prometheus, plan, audit_db, env={
                "HOOK": hook.url("/hook"), "DEAD_HOOK": "http://127.0.0.1:9/nobody"})
            elapsed = time.monotonic() - t0
            time.sleep(0.5)
            after = traffic.since(time.monotonic() - 0.3)
    finally:
        hook.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ROLLBACK: test-a success-rate" in done.stdout
    assert "served by Istio" in done.stdout and "rollback served by Istio" in done.stdout
    *warnings, last = done.stderr.splitlines()
    assert last.startswith("graysteps progress: plan checkout") and "rolled-back" in last
    # the dead webhook only warned, once for the start and once for the rollback; the rollback went on
    assert len(warnings) == 2 and all(w.startswith("warning: webhook slack:DEAD_HOOK") for w in warnings)
    assert elapsed < 40  # long before the 60 s pause
    assert strategy_of(lab) == "rollback"
    assert after and all(profile == "prod" for _, profile, _ in after)
    assert [kind for _, body in hook.received for kind in [body["kind"]]] == ["start", "rollback"]
    rows = audit_rows(audit_db)
    assert rows[0][0] == "progress.started" and ("progress.step", "rolled-back", 0) in rows
    assert rows[-1][:2] == ("progress.finished", "rolled-back")


@pytest.mark.parametrize("services", [["test-a", "test-b"]])
def test_one_bad_service_rolls_every_service_of_the_plan_back(lab, prometheus, audit_db, tmp_path):
    plan = tmp_path / "two.yaml"
    plan.write_text("plan: pair\nservices:\n  - service: test-a\n  - service: test-b\n"
                    "    steps: [{weight: 50, pause: 60s}, promote]\n"
                    "steps: [{weight: 20, pause: 60s}, promote]\n" + ANALYSIS)
    lab.backend("test-b", "gray").misbehave(error_rate=0.3, seed=2)
    try:
        with Traffic(lab.ingress, lab.host("test-a"), rate=40), Traffic(lab.ingress, lab.host("test-b"), rate=40):
            done = progress(lab, prometheus, str(plan), audit_db)
    finally:
        lab.backend("test-b", "gray").misbehave()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "step 1/2: test-a weight 20, test-b weight 50" in done.stdout
    assert "ROLLBACK: test-b success-rate" in done.stdout
    assert [strategy_of(lab, s) for s in ("test-a", "test-b")] == ["rollback", "rollback"]


def test_a_slow_gray_is_rolled_back_by_its_latency(lab, prometheus, audit_db, tmp_path):
    plan = write_plan(tmp_path, "steps: [{weight: 30, pause: 60s}, promote]\n")
    lab.backend("test-a", "gray").misbehave(latency=0.3)  # every gray answer 300 ms; maxMs is 100
    try:
        with Traffic(lab.ingress, lab.host("test-a"), rate=60, workers=16):
            done = progress(lab, prometheus, plan, audit_db)
    finally:
        lab.backend("test-a", "gray").misbehave()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ROLLBACK: test-a latency-p99 100ms (gray <= 2x prod): gray is worse than 2x prod" in done.stdout
    assert strategy_of(lab) == "rollback"


def test_a_healthy_gray_goes_all_the_way_to_promote(lab, prometheus, audit_db, tmp_path):
    plan = write_plan(tmp_path, "steps: [{weight: 30, pause: 2s}, {weight: 60, pause: 1s}, promote]\n",
                      ANALYSIS.replace("minRequests: 40", "minRequests: 30"))
    with Traffic(lab.ingress, lab.host("test-a"), rate=60):
        done = progress(lab, prometheus, plan, audit_db, "--report", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "plan checkout: promoted"
    assert strategy_of(lab) == "promote"
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["advanced"] * 3
    assert [r[:2] for r in audit_rows(audit_db)][-1] == ("progress.finished", "promoted")


def test_a_manual_pause_waits_for_approval_and_a_killed_run_resumes(lab, prometheus, audit_db, tmp_path):
    plan = write_plan(tmp_path, "steps: [{weight: 30, pause: manual}, {weight: 50, pause: 60s}, promote]\n",
                      ANALYSIS.replace("minRequests: 40", "minRequests: 20"))
    with Traffic(lab.ingress, lab.host("test-a"), rate=60):
        first = progress(lab, prometheus, plan, audit_db)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "step 1 waits for approval: rerun with --approve 1" in first.stdout
        assert strategy_of(lab) == "weight=30"
        again = progress(lab, prometheus, plan, audit_db)  # not approved: still waiting, nothing changes
        assert again.returncode == 0 and "waits for approval" in again.stdout
        # approve, then kill the run during step 2's 60 s pause
        proc = subprocess.Popen(
            [sys.executable, "-m", "graysteps", "progress", "--plan", plan, "--catalog", lab.catalog_path,
             "--kubeconfig", str(lab.kube.kubeconfig), "--prometheus", prometheus.url, "--db", audit_db,
             "--istiod", lab.istiod_url, "--approve", "1"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while strategy_of(lab) != "weight=50" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert "step 1 approved" in out and strategy_of(lab) == "weight=50"
        resumed = progress(lab, prometheus, write_plan(tmp_path, "steps: [{weight: 30, pause: manual}, {weight: 50, pause: 2s}, promote]\n",
                                                       ANALYSIS.replace("minRequests: 40", "minRequests: 20")), audit_db)
        # the plan file changed (a shorter pause): that is a new run, from step 1
        assert "resuming" not in resumed.stdout
    rows = audit_rows(audit_db)
    assert ("progress.step", "approved", 0) in rows


def test_a_killed_run_resumes_at_the_step_it_was_in(lab, prometheus, audit_db, tmp_path):
    plan = write_plan(tmp_path, "steps: [{weight: 20, pause: 1s}, {weight: 50, pause: 4s}, promote]\n",
                      ANALYSIS.replace("minRequests: 40", "minRequests: 20"))
    argv = [sys.executable, "-m", "graysteps", "progress", "--plan", plan, "--catalog", lab.catalog_path,
            "--kubeconfig", str(lab.kube.kubeconfig), "--prometheus", prometheus.url, "--db", audit_db, "--settle", "1s"]
    with Traffic(lab.ingress, lab.host("test-a"), rate=60):
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 40
        while strategy_of(lab) != "weight=50" and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        resumed = progress(lab, prometheus, plan, audit_db)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "at step 2/3" in resumed.stdout and "step 1/3" not in resumed.stdout
    assert resumed.stdout.splitlines()[-1] == "plan checkout: promoted"


def test_bad_schedules_and_an_unreachable_prometheus_change_nothing(lab, prometheus, audit_db, tmp_path):
    from graysteps_lab.world.ports import free_port

    bad = write_plan(tmp_path, "steps: [{weight: 20}, promote]\n", "analysis: {metrics: [error-budget]}\n")
    done = progress(lab, prometheus, bad, audit_db)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("graysteps progress: invalid plan:") and "unknown metric 'error-budget'" in done.stderr
    assert done.stderr.count("\n") == 1
    good = write_plan(tmp_path, "steps: [{weight: 20}, promote]\n")
    done = run_cli("progress", "--plan", good, "--catalog", lab.catalog_path, "--kubeconfig", str(lab.kube.kubeconfig),
                   "--prometheus", f"http://127.0.0.1:{free_port()}", "--db", audit_db)
    assert done.returncode == 1 and done.stdout == ""
    assert "unreachable" in done.stderr and done.stderr.count("\n") == 1
    assert strategy_of(lab) == "rollback" and audit_rows(audit_db) == []
    done = run_cli("progress", "--plan", good, "--catalog", lab.catalog_path, "--kubeconfig", str(lab.kube.kubeconfig),
                   "--prometheus", prometheus.url, "--db", audit_db, "--istiod", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1 and done.stdout == ""
    assert "istiod's debug endpoint" in done.stderr and done.stderr.count("\n") == 1
    assert strategy_of(lab) == "rollback" and audit_rows(audit_db) == []


def test_dry_run_shows_the_first_change_and_writes_nothing(lab, prometheus, audit_db, tmp_path):
    plan = write_plan(tmp_path, "steps: [{weight: 20}, promote]\n")
    done = progress(lab, prometheus, plan, audit_db, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "step 1: weight 20: would-run" in done.stdout and "plan checkout: dry-run" in done.stdout
    assert strategy_of(lab) == "rollback" and audit_rows(audit_db) == []


def test_a_step_istio_does_not_serve_in_time_is_rolled_back(lab, prometheus, audit_db, tmp_path):
    from graysteps.adapters.istiod import IstioWait
    from graysteps.adapters.prometheus import PrometheusClient
    from graysteps.model.schedule import load_schedule
    from graysteps.errors import GraystepsError
    from graysteps.steps.progress import Hooks, run_schedule

    class NeverServed(IstioWait):
        """istiod answers, but no proxy acknowledges the step within the timeout."""

        def served(self, changes):
            if self.calls == 0:
                self.calls += 1
                raise GraystepsError("Istio did not serve the change within 1s; these proxies have not "
                                     "acknowledged it: router~gw", step="progress")
            return super().served(changes)

    wait = NeverServed(lab.istiod_url, 10.0, step="progress")
    wait.calls = 0
    lines: list[str] = []
    schedule = load_schedule(write_plan(tmp_path, "steps: [{weight: 30, pause: 60s}, promote]\n"), lab.catalog)
    with lab.kube.api_client() as api:
        result = run_schedule(schedule, api_client=api, prometheus=PrometheusClient(prometheus.url), actor="test",
                              hooks=Hooks(out=lines.append, db_url=audit_db), wait=wait)
    assert result.result == "rolled-back", lines
    assert "Istio did not serve the step: Istio did not serve the change within 1s" in result.error
    assert any(line.startswith("  rollback served by Istio") for line in lines), lines  # the rollback itself is checked
    assert strategy_of(lab) == "rollback"
