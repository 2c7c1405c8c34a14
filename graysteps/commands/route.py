"""`graysteps route`: apply a strategy to a service's VirtualService in the cluster.

    graysteps route --service NAME --strategy STRATEGY [--weight N] [--dry-run]
                    [--catalog FILE] [--kubeconfig FILE]

Creates the VirtualService when it is missing. A read-modify-write carrying the
resourceVersion, retried on conflicts (graysteps/routing/cluster.py).
`--dry-run` prints the diff and has the apiserver validate it (dryRun=All);
nothing is stored. Safe to repeat: the same strategy twice changes nothing.
`--wait` returns only once Istio serves the change (graysteps/commands/_wait_options.py).
"""

from __future__ import annotations

import argparse

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument
from graysteps.commands._wait_options import add_wait_arguments, istio_wait, served_line

NAME = "route"
HELP = "apply a routing strategy to a service's VirtualService (creates it if missing)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="service name from the catalog, e.g. test-a")
    parser.add_argument("--strategy", required=True, metavar="STRATEGY",
                        help="whitelist, weight, balanced, linked, promote or rollback")
    parser.add_argument("--weight", metavar="N", help="gray share in percent (0-100), with --strategy weight")
    parser.add_argument("--dry-run", action="store_true", help="print the diff; the apiserver validates, nothing is stored")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    add_wait_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graysteps.model.catalog import load_catalog
    from graysteps.adapters.kube.client import api_client
    from graysteps.adapters.kube.istio import route, written_change
    from graysteps.model.strategy import parse_strategy

    strategy = parse_strategy(args.strategy, args.weight)
    service = load_catalog(args.catalog).service(args.service)
    wait = None if args.dry_run else istio_wait(args, NAME)
    with api_client(args.kubeconfig) as client:
        if wait:
            wait.before()
        result = route(service, strategy, api_client=client, dry_run=args.dry_run)
    where = f"VirtualService {service.vs_namespace}/{service.vs_name}"
    if result.diff:
        print(result.diff, end="" if result.diff.endswith("\n") else "\n")
    if not result.changed:
        outcome = "unchanged (already as the strategy demands)"
    elif result.before is None:
        outcome = "would be created" if args.dry_run else "created"
    else:
        outcome = "would be updated" if args.dry_run else "updated"
    extras = []
    if result.created_destination_rule:
        extras.append(f"DestinationRule {service.vs_namespace}/{service.dr_name} {'would be ' if args.dry_run else ''}created")
    if result.conflicts:
        extras.append(f"{result.conflicts} conflict(s) with other writers, re-applied")
    print(f"{where}: {outcome}; strategy {strategy.label}" + "".join(f"; {e}" for e in extras), flush=True)
    if wait:
        print(f"{where}: " + served_line(wait.served([written_change(result.after) if result.changed else None])))
    return 0
