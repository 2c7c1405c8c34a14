"""The demo, end to end: a whole gray release in a fresh sandbox, as `make demo` runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.sandbox import REPO

pytestmark = pytest.mark.world


def test_the_demo_releases_verifies_shifts_promotes_and_rolls_back_and_writes_its_report(tmp_path):
    sandbox, out = tmp_path / "sandbox", tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "graysteps_lab.demo", "--dir", str(sandbox), "--out", str(out),
                           "--requests", "60"], capture_output=True, text=True, cwd=REPO, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "every step passed" in done.stdout
    assert not (sandbox / "supervisor.pid").exists(), "the demo stops the sandbox it started"

    report = json.loads((out / "report.json").read_text())
    steps = {s["title"]: s for s in report["steps"]}
    assert list(steps) == ["Before the release", "Release test-a 1.1.0 to gray for two tenants",
                           "Shift 20% of all traffic to gray", "Balanced: 50/50", "Promote", "Emergency rollback",
                           "Act 2: test-a 1.2.0 on a schedule, rolled back by its metrics"]

    def gray_share(title: str, kind: str) -> float:
        paths = next(t for t in steps[title]["traffic"] if t["kind"] == kind)["paths"]
        return sum(n for p, n in paths.items() if p.startswith("test-a:gray")) / sum(paths.values())

    kinds = ["acme (pilot tenant)", "globex (pilot tenant)", "initech (other tenant)", "no cookie"]
    assert [gray_share("Before the release", k) for k in kinds] == [0, 0, 0, 0]
    assert [gray_share("Release test-a 1.1.0 to gray for two tenants", k) for k in kinds] == [1, 1, 0, 0]
    overall = sum(gray_share("Shift 20% of all traffic to gray", k) for k in kinds) / 4  # 240 requests
    assert 0.08 <= overall <= 0.32
    assert [gray_share("Promote", k) for k in kinds] == [1, 1, 1, 1]
    assert [gray_share("Emergency rollback", k) for k in kinds] == [0, 0, 0, 0]
    assert all(s["verify_passed"] for s in report["steps"][1:6])
    # every change went live by file reload: one Envoy process throughout
    assert len(set(report["envoy_pids"])) == 1 and report["envoy_pids"][0]
    assert all(s["watch_ms"] is not None for s in report["steps"][1:])
    # act 2: the bad version was rolled back by the analysis, and all traffic was back on prod soon after
    act2 = report["progressive"]
    assert act2["exit_code"] == 1 and act2["back_on_prod_s"] - act2["started_s"] < 40
    progress_run = steps["Act 2: test-a 1.2.0 on a schedule, rolled back by its metrics"]["commands"][0]
    assert "ROLLBACK: test-a success-rate (gray <= 2x prod): gray is worse than 2x prod" in progress_run["output"]
    after = [cells for t, cells in act2["timeline"] if t > act2["back_on_prod_s"] + 1]
    assert after and all(set(cells) == {"prod"} for cells in after)
    assert (out / "progressive.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "progressive.png" in (out / "index.html").read_text()
    # the cookies came from the cookie service, which read the whitelist
    assert report["cookies"] == {"acme": "tenantGray=1", "globex": "tenantGray=1", "initech": "tenantGray=0"}

    def status_line(title: str, service: str) -> list[str]:
        run = next(c for c in steps[title]["commands"] if c["argv"] == ["status"])
        return next(line.split() for line in run["output"].splitlines() if line.startswith(service + " "))

    assert status_line("Release test-a 1.1.0 to gray for two tenants", "test-a")[:6] == [
        "test-a", "whitelist", "as", "set", "1.1.0", "1/1"]
    assert status_line("Emergency rollback", "test-a")[:4] == ["test-a", "rollback", "as", "set"]

    html = (out / "index.html").read_text()
    assert "<img src='traffic.png'" in html and "graysteps rollback --all" in html
    assert (out / "traffic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.glob("verify-*.xml")) == [
        "verify-balanced.xml", "verify-promote.xml", "verify-rollback.xml", "verify-weight-20.xml",
        "verify-whitelist.xml"]
