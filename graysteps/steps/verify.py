"""Verify a release: (a) the prod and gray rollouts are complete, (b) the live
VirtualService is what its recorded strategy demands, (c) requests through the
gateway are answered by the profile the strategy promises.

    report = verify(spec, api_client=api, gateway="http://gateway:8080")
    report.passed; report.to_junit()   # Jenkins' `junit` step reads the XML

Probes count who answered by the backend's `x-graysteps-profile` header.
Fixed routes (cookie → gray, no cookie → prod, promote, rollback) must be
answered by the expected profile every time. A weight is checked by a
sequential test (graysteps.model.sequential): it stops as soon as the share is
clearly inside or outside weight ± tolerance, at the stated confidence, or at
the request bound (then the check fails as inconclusive).
"""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from xml.etree import ElementTree

from graysteps.adapters.kube.istio import read_virtual_service
from graysteps.adapters.kube.workloads import read_rollout, wait_for_rollout
from graysteps.model.manifests import ENVIRONMENTS, deployment_ref
from graysteps.errors import GraystepsError, InvalidInput
from graysteps.adapters.probe import by_profile, probe
from graysteps.adapters.urls import mask_url, url_problem
from graysteps.model.sequential import Decision, ShareTest

STEP = "verify"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Check:
    """One verification, as one JUnit test case."""

    name: str
    status: str
    message: str
    seconds: float = 0.0
    requests: int = 0
    details: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status.upper():7} {self.name}: {self.message}"


@dataclass
class VerifyReport:
    service: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]

    def to_json(self) -> dict:
        return {"service": self.service, "passed": self.passed,
                "checks": [{"name": c.name, "status": c.status, "message": c.message, "seconds": round(c.seconds, 3),
                            "requests": c.requests, **({"details": c.details} if c.details else {})}
                           for c in self.checks]}

    def to_junit(self) -> str:
        """JUnit XML: one <testsuite> for the service, one <testcase> per check."""
        suite_name = f"graysteps.steps.verify.{self.service}"
        suite = ElementTree.Element("testsuite", {
            "name": suite_name, "tests": str(len(self.checks)), "failures": str(len(self.failed)), "errors": "0",
            "skipped": str(sum(c.status == SKIPPED for c in self.checks)),
            "time": f"{sum(c.seconds for c in self.checks):.3f}",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        })
        for check in self.checks:
            case = ElementTree.SubElement(suite, "testcase", {
                "classname": suite_name, "name": check.name, "time": f"{check.seconds:.3f}"})
            if check.status == FAILED:
                ElementTree.SubElement(case, "failure", {"message": check.message, "type": "VerificationFailed"}
                                       ).text = check.message
            elif check.status == SKIPPED:
                ElementTree.SubElement(case, "skipped", {"message": check.message})
            ElementTree.SubElement(case, "system-out").text = check.message + (
                f"\nrequests: {check.requests}" if check.requests else "")
        root = ElementTree.Element("testsuites", {"name": "graysteps verify"})
        root.append(suite)
        ElementTree.indent(root)
        return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _timed(name: str, fn: Callable[[], Check]) -> Check:
    t0 = time.monotonic()
    try:
        check = fn()
    except GraystepsError as e:
        check = Check(name, FAILED, e.message)
    check.seconds = time.monotonic() - t0
    return check


# -- (a) rollouts ----------------------------------------------------------


def check_rollout(api_client, spec: Any, env: str, *, timeout: float = 0.0) -> Check:
    """The Deployment of `spec` in `env` has completed its rollout (waiting up to `timeout` s)."""
    namespace, name = deployment_ref(spec, env)
    title = f"rollout {env} ({namespace}/{name})"

    def look() -> Check:
        if timeout > 0:
            status = wait_for_rollout(api_client, namespace, name, timeout=timeout)
        else:
            _, status = read_rollout(api_client, namespace, name)
        return Check(title, PASSED if status.done else FAILED, status.message)

    return _timed(title, look)


# -- (b) the VirtualService --------------------------------------------------


def check_virtual_service(vs: Mapping | None, spec: Any) -> tuple[Check, Any]:
    """(check, strategy): the live VS carries a strategy and conforms to it."""
    from graysteps.routing.operations import conforms, current_strategy, traffic_problem

    title = f"virtualservice {spec.vs_namespace}/{spec.vs_name} conforms to its strategy"
    if vs is None:
        return Check(title, FAILED, f"VirtualService {spec.vs_namespace}/{spec.vs_name} does not exist; "
                                    f"run `graysteps route --service {spec.name} --strategy ...`"), None
    strategy = current_strategy(vs)
    if strategy is None:
        return Check(title, FAILED, "the VirtualService records no graysteps strategy; "
                                    f"run `graysteps route --service {spec.name} --strategy ...`"), None
    label = strategy.label
    if not conforms(vs, spec, strategy):
        again = f"graysteps route --service {spec.name} --strategy {strategy.name}" + (
            f" --weight {strategy.weight}" if strategy.weight is not None else "")
        return Check(title, FAILED, f"the live routes are not what strategy {label} demands (changed by hand?); "
                                    f"rerun `{again}` or inspect them with `graysteps render --from`"), strategy
    problem = traffic_problem(vs, spec)
    if problem:
        return Check(title, FAILED, f"routes match strategy {label}, but {problem}; move that route after them "
                                    "or give it a match"), strategy
    return Check(title, PASSED, f"routes match strategy {label}"), strategy


# -- (c) probes through the gateway -----------------------------------------


@dataclass(frozen=True)
class ProbeSettings:
    gateway: str
    # http://HOST[:PORT] whose requests leave as a workload labelled `profile: gray` (its sidecar's
    # outbound): how `linked` is probed from the gray side. None: that probe is skipped, and says so.
    gray_caller: str | None = None
    path: str = "/"
    fixed_requests: int = 20
    tolerance: float = 5.0  # percentage points
    confidence: float = 0.99
    max_requests: int = 20000
    batch: int = 100
    concurrency: int = 4


GRAY_CALLER_CASE = "from a gray caller (profile: gray)"


def expectations(strategy: Any) -> list[tuple[str, bool, str | int]]:
    """What the strategy promises: (case, with_cookie, profile or gray weight %).

    Every case is probed through the gateway, except GRAY_CALLER_CASE, which is
    probed through ProbeSettings.gray_caller.
    """
    name, weight = strategy.name, strategy.gray_weight()
    if weight is not None:
        if weight in (0, 100):
            return [("all traffic", False, "gray" if weight == 100 else "prod")]
        return [("gray share", False, weight)]
    if name == "whitelist":
        return [("with the gray cookie", True, "gray"), ("without the gray cookie", False, "prod")]
    if name == "linked":
        return [("gateway traffic (no profile label)", False, "prod"), (GRAY_CALLER_CASE, False, "gray")]
    if name == "promote":
        return [("without the gray cookie", False, "gray"), ("with the gray cookie", True, "gray")]
    if name == "rollback":
        return [("without the gray cookie", False, "prod"), ("with the gray cookie", True, "prod")]
    raise GraystepsError(f"verify does not know strategy {name!r}", step=STEP)


def check_fixed(host: str, settings: ProbeSettings, case: str, headers: Mapping[str, str], profile: str,
                *, via: str | None = None) -> Check:
    """Every one of `fixed_requests` probes (through `via`, default the gateway) is answered by `profile`."""
    title = f"probe {case} -> {profile}"

    def look() -> Check:
        counts = probe(_url(settings, via), host, settings.fixed_requests, headers,
                       concurrency=min(settings.concurrency, settings.fixed_requests), key=by_profile)
        n = sum(counts.values())
        seen = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        if counts.get(profile, 0) == n:
            return Check(title, PASSED, f"all {n} requests answered by {profile}", requests=n, details=dict(counts))
        return Check(title, FAILED, f"expected all {n} requests answered by {profile}, got {seen}",
                     requests=n, details=dict(counts))

    return _timed(title, look)


def check_share(host: str, settings: ProbeSettings, weight: int, headers: Mapping[str, str] | None = None) -> Check:
    """The gray share is `weight`% ± tolerance, by the sequential test."""
    title = f"probe gray share {weight}% ± {settings.tolerance:g}"

    def look() -> Check:
        test = ShareTest(weight / 100, settings.tolerance / 100, settings.confidence, max_trials=settings.max_requests)
        other: dict[str, int] = {}
        while True:
            n = min(settings.batch, settings.max_requests - test.trials)
            counts = probe(_url(settings), host, n, headers, concurrency=settings.concurrency, key=by_profile)
            for key, value in counts.items():
                if key not in ("gray", "prod"):
                    other[key] = other.get(key, 0) + value
            if other:
                return Check(title, FAILED, f"requests were not answered by prod or gray: {other}",
                             requests=test.trials + n)
            test.add(counts.get("gray", 0), counts.get("gray", 0) + counts.get("prod", 0))
            verdict = test.decide()
            if verdict.decision is not Decision.CONTINUE:
                break
        details = {"decision": verdict.decision.value, "gray": verdict.hits, "requests": verdict.trials,
                   "observed_percent": round(verdict.observed * 100, 2), "confidence": verdict.confidence,
                   "interval_percent": [round(x * 100, 2) for x in verdict.interval]}
        status = PASSED if verdict.decision is Decision.PASS else FAILED
        message = verdict.describe()
        if verdict.decision is Decision.INCONCLUSIVE:
            message += f" (request bound {settings.max_requests} reached; raise --max-requests or --tolerance)"
        return Check(title, status, message, requests=verdict.trials, details=details)

    return _timed(title, look)


def _url(settings: ProbeSettings, base: str | None = None) -> str:
    base = base or settings.gateway
    return base.rstrip("/") + (settings.path if settings.path.startswith("/") else "/" + settings.path)


def check_probes(spec: Any, strategy: Any, settings: ProbeSettings) -> list[Check]:
    cookie = {"Cookie": f"{spec.cookie_name}={spec.cookie_value}"}
    checks = []
    for case, with_cookie, expected in expectations(strategy):
        headers = cookie if with_cookie else {}
        if case == GRAY_CALLER_CASE:
            if settings.gray_caller:
                checks.append(check_fixed(spec.served_host, settings, case, headers, expected, via=settings.gray_caller))
            else:
                checks.append(Check(f"probe {case} -> {expected}", SKIPPED,
                                    "no --gray-caller given: requests from gray workloads were not probed"))
        elif isinstance(expected, int):
            checks.append(check_share(spec.served_host, settings, expected, headers))
        else:
            checks.append(check_fixed(spec.served_host, settings, case, headers, expected))
    return checks


# -- the step ------------------------------------------------------------------


def verify(spec: Any, *, api_client, gateway: str | None = None, envs: tuple[str, ...] = ENVIRONMENTS,
           rollout_timeout: float = 0.0, settings: ProbeSettings | None = None,
           log: Callable[[str], None] = lambda line: None) -> VerifyReport:
    """Run every check (all of them, even after a failure) and return the report."""
    if settings is None and gateway:
        settings = ProbeSettings(gateway)
    if settings:
        validate_settings(settings)
    report = VerifyReport(spec.name)

    def add(check: Check) -> None:
        report.checks.append(check)
        log(check.line())

    for env in envs:
        add(check_rollout(api_client, spec, env, timeout=rollout_timeout))
    t0 = time.monotonic()
    vs_check, strategy = check_virtual_service(read_virtual_service(spec, api_client=api_client), spec)
    vs_check.seconds = time.monotonic() - t0
    add(vs_check)
    if settings is None:
        add(Check("probes through the gateway", SKIPPED, "no --gateway given"))
    elif strategy is None:
        add(Check("probes through the gateway", SKIPPED, "no strategy to probe for (see the VirtualService check)"))
    else:
        for check in check_probes(spec, strategy, settings):
            add(check)
    return report


def validate_settings(settings: ProbeSettings) -> None:
    for flag, url in (("--gateway", settings.gateway), ("--gray-caller", settings.gray_caller)):
        if url is None and flag == "--gray-caller":
            continue  # optional: that probe is reported skipped
        problem = url_problem(str(url), ("http",))
        if problem:
            raise InvalidInput(f"{flag} {mask_url(str(url))!r} is not allowed: {problem}")
    if not re.fullmatch(r"[!-~]*", settings.path):  # http.client refuses the rest, after the checks that ran
        raise InvalidInput(f"--path {settings.path!r} is not allowed: use a URL path of printable ASCII, no spaces, e.g. /")
    if not 0 < settings.tolerance < 50:
        raise InvalidInput(f"--tolerance {settings.tolerance:g} is not allowed: use percentage points in (0, 50)")
    if not 0.5 <= settings.confidence < 1:
        raise InvalidInput(f"--confidence {settings.confidence:g} is not allowed: use a value in [0.5, 1), e.g. 0.99")
    if settings.max_requests < 1 or settings.batch < 1 or settings.fixed_requests < 1:
        raise InvalidInput("--max-requests, --batch and --fixed-requests must be positive integers")
