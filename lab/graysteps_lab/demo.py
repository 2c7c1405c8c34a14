"""The demo: graysteps' main job on a fresh machine, as a release manager runs it.

    make demo                       # = python -m graysteps_lab.demo
    graysteps demo [--dir D] [--out reports/demo] [--keep]

1. brings the sandbox up (`graysteps sandbox up`: the first run builds the
   control plane, with progress);
2. deploys test-a 1.1.0 to gray, whitelists two tenants, takes their cookies
   from the cookie service (as the auth center does) and routes test-a by the
   whitelist;
3. verifies: whitelisted tenants reach gray, the others prod;
4. shifts to 20% gray, then balanced (50/50), then promotes (all gray);
5. rolls everything back in an emergency (`graysteps rollback --all`);
6. second act: a bad version (gray fails 8% of requests) is released on a
   schedule by `graysteps progress`, under steady traffic; the analysis of
   Prometheus' counters (gray vs prod) rolls it back by itself, and the chart
   `progressive.png` shows gray's and prod's error rates over time with the
   moment every request was back on prod.

Every step is a real `graysteps` command against the sandbox's apiserver. After
each routing change it waits until the sandbox's Envoy serves it (the
VirtualService watch), then sends requests as each kind of user and records
where every hop landed. It prints a report and writes
<out>/index.html + traffic.png (+ report.json and each verify's JUnit XML).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from graysteps.errors import GraystepsError

STEP = "demo"
SERVICE = "test-a"
GRAY_TAG = "1.1.0"
WHITELISTED = ("acme", "globex")
OTHER_TENANT = "initech"
REQUESTS_PER_KIND = 200
BAD_TAG = "1.2.0"
BAD_RATE = 0.08
TRAFFIC_RATE = 50
PROGRESSIVE_PLAN = f"""\
# The demo's second act: {SERVICE} {BAD_TAG} released on a schedule, each step gated by Prometheus.
plan: demo-progressive
services: [{SERVICE}]
steps:
  - {{weight: 10, pause: 15s}}
  - {{weight: 30, pause: 15s}}
  - {{strategy: balanced, pause: 15s}}
  - promote
analysis:
  minRequests: 40
  interval: 500ms
  maxDuration: 2m
  metrics: [success-rate, {{name: latency-p99, maxMs: 250}}]
"""

Print = Callable[[str], None]


@dataclass
class CommandRun:
    argv: list[str]
    exit_code: int
    output: str
    seconds: float

    @property
    def shown(self) -> str:
        return "graysteps " + " ".join(a if a and " " not in a else repr(a) for a in self.argv)


@dataclass
class TrafficSample:
    """Where requests of one kind landed: whole paths "test-a:gray>test-b:prod" -> count."""

    kind: str
    paths: dict[str, int]

    def share(self, hop: int, profile: str = "gray") -> float:
        """Percent of requests whose hop `hop` (0 = test-a, 1 = test-b) was served by `profile`."""
        total = sum(self.paths.values())
        hits = sum(n for p, n in self.paths.items()
                   if len(p.split(">")) > hop and p.split(">")[hop].split(":", 1)[1].split("!")[0] == profile)
        return 100.0 * hits / total if total else 0.0


@dataclass
class DemoStep:
    title: str
    why: str
    commands: list[CommandRun] = field(default_factory=list)
    live_ms: float | None = None  # from the routing command's end until the sandbox's Envoy served it
    watch_ms: float | None = None  # the sandbox's own figure: watch event -> Envoy serving
    traffic: list[TrafficSample] = field(default_factory=list)
    verify_passed: bool | None = None

    @property
    def ok(self) -> bool:
        return all(c.exit_code == 0 for c in self.commands)


@dataclass
class DemoResult:
    sandbox: str
    ingress: str
    cookie_service: str
    cookies: dict[str, str]
    steps: list[DemoStep]
    started_sandbox: bool
    seconds: float
    envoy_pids: list[int] = field(default_factory=list)  # Envoy's pid before and after: equal = never restarted
    html: str = ""
    chart: str = ""
    progressive: dict = field(default_factory=dict)  # the second act: timeline, rollback moment, chart

    @property
    def median_watch_ms(self) -> float | None:
        """Median over the routing steps of: watch event -> Envoy serving the new routes."""
        import statistics

        values = [s.watch_ms for s in self.steps if s.watch_ms is not None]
        return statistics.median(values) if values else None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_json(self) -> dict:
        return asdict(self)


class Demo:
    def __init__(self, sandbox, state: dict, out_dir: Path, *, requests: int, workloads: bool, out: Print):
        from graysteps.model.catalog import load_catalog

        self.sandbox = sandbox
        self.state = state
        self.out_dir = out_dir
        self.requests = requests
        self.workloads = workloads
        self.out = out
        self.catalog = load_catalog(state["catalog"])
        self.spec = self.catalog.service(SERVICE)
        self.host = self.spec.served_host  # the name Istio serves it under at the gateway
        self.cookies: dict[str, str] = {}
        self.steps: list[DemoStep] = []
        self.progressive: dict = {}

    # -- running commands ----------------------------------------------------------

    def graysteps(self, step: DemoStep, *argv: str, check: bool = True) -> CommandRun:
        from graysteps_lab.sandbox.client import command_env

        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "graysteps", *argv], capture_output=True, text=True,
                              env=command_env(self.state), stdin=subprocess.DEVNULL)
        run = CommandRun(list(argv), done.returncode, (done.stdout + done.stderr).rstrip(), time.monotonic() - t0)
        step.commands.append(run)
        self.out(f"  $ {run.shown}")
        for line in run.output.splitlines():
            self.out(f"    {line}")
        if check and done.returncode != 0:
            raise GraystepsError(f"step '{step.title}': `{run.shown}` failed (exit {done.returncode}): "
                                 f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no message'}",
                                 step=STEP, result=step)
        return run

    def wait_routes_live(self, step: DemoStep) -> None:
        """Until the sandbox's Envoy routes by the VirtualServices as stored now."""
        from graysteps.adapters.kube.client import api_client
        from graysteps_lab.sandbox.client import virtual_service_versions, wait_live
        from graysteps_lab.sandbox.report import live_note

        specs = [self.catalog.service(n) for n in self.catalog.names()]
        with api_client(self.state["env"]["KUBECONFIG"]) as api:
            versions = virtual_service_versions(api, specs)
        step.live_ms = wait_live(self.sandbox, versions) * 1000
        routes = self.sandbox.read_state().get("routes") or {}
        step.watch_ms = routes.get("ms_from_event")
        self.out(f"  {live_note(step)}")

    def measure(self, step: DemoStep) -> None:
        from graysteps.adapters.probe import by_path, probe

        kinds = [(f"{t} (pilot tenant)", self.cookies[t]) for t in WHITELISTED]
        kinds += [(f"{OTHER_TENANT} (other tenant)", self.cookies[OTHER_TENANT]), ("no cookie", None)]
        for kind, cookie in kinds:
            headers = {"Cookie": f"{cookie}; rememberMe=; channel=web"} if cookie else {}
            counts = probe(self.state["ingress"], self.host, self.requests, headers, key=by_path)
            sample = TrafficSample(kind, dict(counts))
            step.traffic.append(sample)
            paths = ", ".join(f"{p} {n}" for p, n in sorted(counts.items(), key=lambda x: -x[1]))
            self.out(f"  {kind:<26} test-a gray {sample.share(0):5.1f}%  test-b gray {sample.share(1):5.1f}%   "
                     f"[{paths}]")

    def verify(self, step: DemoStep, name: str) -> None:
        if not self.workloads:
            self.out("  (graysteps verify skipped: the sandbox runs without workloads, so there are no rollouts "
                     "to check; start it without --no-workloads)")
            return
        run = self.graysteps(step, "verify", "--service", SERVICE, "--gateway", self.state["ingress"],
                             "--junit", str(self.out_dir / f"verify-{name}.xml"), check=False)
        step.verify_passed = run.exit_code == 0
        if not step.verify_passed:
            raise GraystepsError(f"verify failed after step '{step.title}'; see {self.out_dir / f'verify-{name}.xml'}",
                                 step=STEP, result=step)

    def begin(self, title: str, why: str) -> DemoStep:
        step = DemoStep(title, why)
        self.steps.append(step)
        self.out("")
        self.out(f"== {len(self.steps)}. {title}")
        self.out(f"   {why}")
        return step

    # -- the release ---------------------------------------------------------------

    def take_cookie(self, tenant: str, *, expect_gray: bool | None = None, timeout: float = 10.0) -> str:
        """Ask the cookie service, as the auth center does at login; the cookie pair it sets.

        With `expect_gray`, ask again until its answer reflects a whitelist change just made
        (the service notices changes within its --generation-check interval)."""
        url = f"{self.state['cookie_service']}/v1/gray-cookie?" + urllib.parse.urlencode({"tenant": tenant})
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(url, timeout=5) as r:
                answer = json.loads(r.read())
                pair = r.headers["Set-Cookie"].split(";", 1)[0]
            if expect_gray is None or answer["gray"] == expect_gray or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.out(f"  cookie service: tenant {tenant} -> gray={answer['gray']}, Set-Cookie {pair}")
        return pair

    def run(self) -> None:
        step = self.begin("Before the release", "test-a and test-b run 1.0.0 on prod; every request lands on prod.")
        for tenant in (*WHITELISTED, OTHER_TENANT):
            self.cookies[tenant] = self.take_cookie(tenant)
        self.measure(step)

        step = self.begin(f"Release {SERVICE} {GRAY_TAG} to gray for two tenants",
                          f"Deploy to the gray namespace, whitelist {' and '.join(WHITELISTED)}, route {SERVICE} "
                          "by the whitelist cookie.")
        if self.workloads:
            self.graysteps(step, "deploy", "--service", SERVICE, "--env", "gray", "--no-pin", "--wait",
                           "--timeout", "120", "--image", f"sandbox.local/graysteps/{SERVICE}:{GRAY_TAG}")
        self.graysteps(step, "whitelist", "add", *WHITELISTED, "--reason", f"gray pilot of {SERVICE} {GRAY_TAG}")
        for tenant in (*WHITELISTED, OTHER_TENANT):  # their next login: the auth center asks again
            self.cookies[tenant] = self.take_cookie(tenant, expect_gray=tenant in WHITELISTED)
        self.graysteps(step, "route", "--service", SERVICE, "--strategy", "whitelist")
        self.wait_routes_live(step)
        self.measure(step)
        self.verify(step, "whitelist")
        self.graysteps(step, "status")  # what a release manager checks: who is in gray, on what, at which version

        for title, why, args, name in (
            ("Shift 20% of all traffic to gray", "The pilot looks good: a fifth of every request goes to gray.",
             ("--strategy", "weight", "--weight", "20"), "weight-20"),
            ("Balanced: 50/50", "Gray carries half the load (the seed's 灰度拉平).", ("--strategy", "balanced"),
             "balanced"),
            ("Promote", "All traffic to gray, the step before gray becomes prod.", ("--strategy", "promote"),
             "promote"),
        ):
            step = self.begin(title, why)
            self.graysteps(step, "route", "--service", SERVICE, *args)
            self.wait_routes_live(step)
            self.measure(step)
            self.verify(step, name)

        step = self.begin("Emergency rollback", "Something is wrong in 1.1.0: every service back to prod, at once.")
        self.graysteps(step, "rollback", "--all")
        self.wait_routes_live(step)
        self.measure(step)
        self.verify(step, "rollback")
        self.graysteps(step, "status")
        self.act_two()

    # -- the second act: a bad version on a schedule, rolled back by the analysis ---

    def misbehave(self, profile: str, error_rate: float) -> None:
        """Tell the sandbox's test-a backend of `profile` to fail this share of requests (the lab's admin path)."""
        from graysteps_lab.world.backend import MISBEHAVE_PATH

        url = next(c["url"] for c in self.state["components"] if c["name"] == f"backend {SERVICE}/{profile}")
        request = urllib.request.Request(url + MISBEHAVE_PATH, method="POST",
                                         data=json.dumps({"error_rate": error_rate}).encode())
        with urllib.request.urlopen(request, timeout=5) as r:
            r.read()

    def error_rates(self, plan: Path, wall0: float, seconds: float) -> dict[str, list[tuple[float, float | None]]]:
        """Gray's and prod's error rates since the act began, as the analysis saw them: the plan's own
        success-rate queries (every attempt Envoy made, retries included), from the sandbox's Prometheus."""
        from graysteps.model.schedule import load_schedule
        from graysteps_lab.world.prometheus import Prometheus

        time.sleep(2.0)  # the last scrape
        prom = Prometheus.__new__(Prometheus)
        prom.port = int(self.state["env"]["GRAYSTEPS_PROMETHEUS"].rsplit(":", 1)[1])
        analysis = load_schedule(str(plan), self.catalog).steps[0].analysis
        metric = next(m for m in analysis.metrics if m.kind == "success-rate")
        rates: dict[str, list[tuple[float, float | None]]] = {}
        for profile in ("gray", "prod"):
            total_q, bad_q = metric.queries(self.spec, profile, analysis.destination)
            total = dict(prom.query_range(total_q, wall0, wall0 + seconds))
            bad = dict(prom.query_range(bad_q, wall0, wall0 + seconds))
            # cumulative since the act began; a series that appears later started from 0 (a new counter)
            first = min(total) if total else None
            n0 = total[first] if first is not None and first - wall0 < 1.5 else 0.0
            b0 = bad.get(first, 0.0) if first is not None and first - wall0 < 1.5 else 0.0
            series, last_bad = [], b0
            for t in sorted(total):
                last_bad = bad.get(t, last_bad)
                n = total[t] - n0
                series.append((t - wall0, 100.0 * (last_bad - b0) / n if n > 0 else None))
            rates[profile] = series
        return rates

    def act_two(self) -> None:
        from graysteps_lab.world.traffic import Traffic

        step = self.begin(f"Act 2: {SERVICE} {BAD_TAG} on a schedule, rolled back by its metrics",
                          f"{BAD_TAG} fails {BAD_RATE:.0%} of its requests (prod 0.1%). `graysteps progress` shifts "
                          "10%, 30%, then 50/50 to gray, comparing gray with prod from Prometheus after each step; "
                          f"{TRAFFIC_RATE} requests/s flow all the while.")
        plan = self.out_dir / "progressive.yaml"
        plan.write_text(PROGRESSIVE_PLAN, encoding="utf-8")
        self.misbehave("prod", 0.001)
        self.misbehave("gray", BAD_RATE)
        wall0 = time.time()
        try:
            with Traffic(self.state["ingress"], self.host, rate=TRAFFIC_RATE) as traffic:
                wall0 = time.time() - (time.monotonic() - traffic.t0)
                time.sleep(2.0)
                started = time.monotonic() - traffic.t0
                run = self.graysteps(step, "progress", "--plan", str(plan), "--istiod", self.state["istiod"],
                                     "--report", str(self.out_dir / "progressive.json"), check=False)
                time.sleep(3.0)
            last_gray = traffic.last_seen("gray")
            back_on_prod = (last_gray - traffic.t0) if last_gray else None
        finally:
            self.misbehave("gray", 0.0)
            self.misbehave("prod", 0.0)
        timeline = traffic.timeline(1.0)
        self.progressive = {"plan": str(plan), "exit_code": run.exit_code, "started_s": started,
                            "back_on_prod_s": back_on_prod, "timeline": timeline, "rate": TRAFFIC_RATE,
                            "error_rates": self.error_rates(plan, wall0, time.time() - wall0)}
        self.wait_routes_live(step)
        if run.exit_code != 1 or "ROLLBACK" not in run.output:
            raise GraystepsError(f"act 2: the bad version was not rolled back (exit {run.exit_code}); see the output above",
                                 step=STEP, result=step)
        self.out(f"  the analysis rolled {SERVICE} back by itself: all traffic on prod "
                 f"{back_on_prod - started:.1f}s after the schedule started")


def envoy_pid(state: dict) -> int | None:
    return next((c["pid"] for c in state.get("components", []) if c["name"] == "envoy"), None)


def reset_to_prod(state: dict) -> None:
    """A reused sandbox starts like a fresh one: every service on prod, no demo tenant whitelisted."""
    from graysteps.model.catalog import load_catalog
    from graysteps.adapters.kube.client import api_client
    from graysteps.steps.route import route
    from graysteps.model.strategy import parse_strategy
    from graysteps.steps.whitelist import remove_tenants
    from graysteps.adapters.db.store import open_store

    catalog = load_catalog(state["catalog"])
    with api_client(state["env"]["KUBECONFIG"]) as api:
        for name in catalog.names():
            route(catalog.service(name), parse_strategy("rollback"), api_client=api)
    store = open_store(state["env"]["GRAYSTEPS_DB"])
    try:
        remove_tenants(store, [*WHITELISTED, OTHER_TENANT], actor="graysteps-demo", reason="demo reset")
    finally:
        store.close()


def run_demo(sandbox_dir: str | None = None, out_dir: str = "reports/demo", *, keep: bool = False,
             workloads: bool = True, requests: int = REQUESTS_PER_KIND, out: Print = print) -> DemoResult:
    """Run the whole demo; returns what happened (also written to out_dir)."""
    from graysteps_lab.sandbox import control
    from graysteps_lab.sandbox.client import running_state
    from graysteps_lab.sandbox.report import write_report
    from graysteps_lab.sandbox.state import SandboxDir

    t0 = time.monotonic()
    sandbox = SandboxDir(sandbox_dir)
    started = sandbox.running_pid() is None
    out(f"graysteps demo: a gray release of {SERVICE} in a local sandbox ({sandbox})")
    out("")
    out("== 0. Sandbox up" + (" (the first run on a machine builds the control plane: about 7 minutes)" if started else ""))
    control.up(sandbox, workloads=workloads, out=out)
    state = running_state(sandbox)
    if not started:
        out("  reusing the running sandbox: resetting every service to prod first")
        reset_to_prod(state)
    workloads = any(c["name"] == "kube-controller-manager" for c in state.get("components", []))
    target = Path(out_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    demo = Demo(sandbox, state, target, requests=requests, workloads=workloads, out=out)
    failure: GraystepsError | None = None
    try:
        demo.run()
    except GraystepsError as e:
        failure = e
    finally:
        result = DemoResult(str(sandbox), state["ingress"], state["cookie_service"], demo.cookies, demo.steps,
                            started, time.monotonic() - t0, [envoy_pid(state), envoy_pid(sandbox.read_state())],
                            progressive=demo.progressive)
        result.html, result.chart = write_report(result, target)
        if started and not keep:
            out("")
            control.down(sandbox, out=out)
    out("")
    out(f"report: {result.html}")
    out(f"chart:  {result.chart}")
    if keep or not started:
        out(f"the sandbox keeps running: `graysteps sandbox status --dir {sandbox}`, "
            f"`graysteps sandbox down --dir {sandbox}`")
    if failure:
        raise failure
    out(f"demo finished in {result.seconds:.0f}s: every step passed; each routing change reached Envoy "
        f"{result.median_watch_ms} ms (median) after its watch event, and Envoy (pid {result.envoy_pids[0]}) "
        + ("was never restarted" if len(set(result.envoy_pids)) == 1 else "WAS RESTARTED"))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="sandbox state directory (default: $GRAYSTEPS_SANDBOX_DIR, "
                                      "else ~/.cache/graysteps/sandbox)")
    parser.add_argument("--out", default="reports/demo", help="where the HTML report goes (default reports/demo)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    parser.add_argument("--no-workloads", action="store_true",
                        help="skip kube-controller-manager/scheduler/kwok (and so the gray deploy)")
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_KIND,
                        help=f"requests per kind of user and step (default {REQUESTS_PER_KIND})")


def run_from_args(args: argparse.Namespace) -> int:
    from graysteps.errors import InvalidInput

    if not 1 <= args.requests <= 100_000:
        raise InvalidInput(f"--requests {args.requests} is not allowed: use 1-100000")
    run_demo(args.dir, args.out, keep=args.keep, workloads=not args.no_workloads, requests=args.requests)
    return 0


if __name__ == "__main__":
    from graysteps.cli import main as cli_main

    sys.exit(cli_main(["demo", *sys.argv[1:]]))
