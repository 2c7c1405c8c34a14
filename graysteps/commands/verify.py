"""`graysteps verify`: rollouts complete, VirtualService as its strategy demands, probes answered by the right profile."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument
from graysteps.commands._types import duration, fraction_in, http_url, int_in, output_file

NAME = "verify"
HELP = "verify a release: rollouts, the live VirtualService, and probes through the gateway; writes JUnit XML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="service name from the catalog, e.g. test-a")
    parser.add_argument("--gateway", metavar="URL", type=http_url,
                        help="http://HOST[:PORT] of the ingress gateway to probe through (no probes without it)")
    parser.add_argument("--gray-caller", metavar="URL", type=http_url,
                        help="http://HOST[:PORT] whose requests leave as a gray workload (its sidecar's outbound); "
                             "probes `linked` from the gray side")
    parser.add_argument("--junit", metavar="FILE", type=output_file, help="write the checks as JUnit XML (Jenkins `junit` step)")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    parser.add_argument("--env", action="append", choices=("prod", "gray"),
                        help="only check this environment's rollout (repeatable; default both)")
    parser.add_argument("--rollout-timeout", type=duration, default=0.0, metavar="SECONDS",
                        help="wait up to this long for unfinished rollouts (default 0: look once)")
    parser.add_argument("--path", default="/", help="request path for the probes (default /)")
    parser.add_argument("--tolerance", type=fraction_in(0, 1000), default=5.0, metavar="POINTS",
                        help="a weight passes within ± this many percentage points (default 5)")
    parser.add_argument("--confidence", type=fraction_in(0, 1000), default=0.99, help="confidence of the weight test (default 0.99)")
    parser.add_argument("--max-requests", type=int_in(1, 10_000_000), default=20000, help="request bound of the weight test (default 20000)")
    parser.add_argument("--fixed-requests", type=int_in(1, 100_000), default=20,
                        help="probes per fixed route (cookie, no cookie); all must match (default 20)")
    parser.add_argument("--concurrency", type=int_in(1, 256), default=4, help="probe connections (default 4)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of lines")


def run(args: argparse.Namespace) -> int:
    from graysteps.model.catalog import load_catalog
    from graysteps.errors import GraystepsError, InvalidInput
    from graysteps.adapters.kube.client import api_client
    from graysteps.steps.verify import ProbeSettings, validate_settings, verify

    if args.gray_caller and not args.gateway:
        raise InvalidInput("--gray-caller needs --gateway: the probes run only with a gateway to probe through")
    spec = load_catalog(args.catalog).service(args.service)
    settings = None
    if args.gateway:
        settings = ProbeSettings(args.gateway, gray_caller=args.gray_caller, path=args.path,
                                 fixed_requests=args.fixed_requests,
                                 tolerance=args.tolerance, confidence=args.confidence,
                                 max_requests=args.max_requests, concurrency=max(1, args.concurrency))
        validate_settings(settings)
    envs = tuple(dict.fromkeys(args.env)) if args.env else ("gray", "prod")
    log = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    with api_client(args.kubeconfig) as api:
        report = verify(spec, api_client=api, envs=envs, rollout_timeout=args.rollout_timeout,
                        settings=settings, log=log)
    if args.junit:
        path = Path(args.junit)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.to_junit(), encoding="utf-8")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    if not report.passed:
        names = "; ".join(c.name for c in report.failed)
        raise GraystepsError(f"{len(report.failed)} of {len(report.checks)} checks failed for {args.service}: "
                             f"{names}" + (f" (details in {args.junit})" if args.junit else ""))
    return 0
