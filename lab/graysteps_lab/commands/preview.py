"""`graysteps preview --plan FILE [--tenants a,b]`: where each hop of each kind of request
would land under a release plan, shown by real Envoys that a throwaway istiod configures,
before anything touches a cluster."""

from __future__ import annotations

import argparse

from graysteps.commands._cluster_options import add_catalog_argument

NAME = "preview"
HELP = "show where requests would land under a release plan, through a local istiod and real Envoys (no cluster)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", required=True, metavar="FILE", help="plan file (YAML), as for `graysteps release`")
    parser.add_argument("--tenants", metavar="A,B",
                        help="whitelisted tenants to show (they carry the catalog's gray cookie); "
                             "default: one generic whitelisted tenant")
    add_catalog_argument(parser)
    parser.add_argument("--requests", type=int, default=200, metavar="N",
                        help="requests per kind of caller (default 200; weights are shown as observed shares)")
    parser.add_argument("--no-forward-cookie", action="store_true",
                        help="services do not forward the Cookie header to the services they call")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from graysteps.model.catalog import load_catalog
    from graysteps.errors import InvalidInput
    from graysteps.model.plan import load_plan
    from graysteps_lab.preview import STEP, parse_tenants, preview_plan

    if not 1 <= args.requests <= 100_000:
        raise InvalidInput(f"--requests {args.requests} is not allowed: use 1-100000", step=STEP)
    tenants = parse_tenants(args.tenants)
    catalog = load_catalog(args.catalog)
    plan = load_plan(args.plan, catalog)
    result = preview_plan(plan, catalog, tenants=tenants, requests=args.requests,
                          forward_cookie=not args.no_forward_cookie)
    print(json.dumps(result.to_json(), indent=2) if args.json else "\n".join(result.lines()))
    return 0
