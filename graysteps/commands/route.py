"""`graysteps route`: apply a strategy to a service's VirtualService in the cluster.

    graysteps route --service NAME --strategy STRATEGY [--weight N] [--dry-run]
                    [--create-subsets] [--json] [--catalog FILE] [--kubeconfig FILE]

Creates the VirtualService when it is missing. A read-modify-write carrying the
resourceVersion, retried on conflicts (graysteps/adapters/kube/istio.py).
`--dry-run` prints the diff and has the apiserver validate it (dryRun=All);
nothing is stored. Safe to repeat: the same strategy twice changes nothing.
Warnings (a route that shadows the service's routes, a mixed route) are printed
after the outcome, and are in `--json`'s "warnings".
`--wait` returns only once Istio serves the change (graysteps/commands/_wait_options.py).
"""

from __future__ import annotations

import argparse
import sys

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
    parser.add_argument("--create-subsets", action="store_true",
                        help="subsets layout: add the catalog's prod/gray subset to the DestinationRule when missing "
                             "(never renames or removes one)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object instead of text")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    add_wait_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graysteps.adapters.istiod import written_change
    from graysteps.adapters.kube.client import api_client
    from graysteps.model.catalog import load_catalog
    from graysteps.model.strategy import parse_strategy
    from graysteps.steps.route import route

    strategy = parse_strategy(args.strategy, args.weight)
    service = load_catalog(args.catalog).service(args.service)
    wait = None if args.dry_run else istio_wait(args, NAME)
    with api_client(args.kubeconfig) as client:
        if wait:
            wait.before()
        result = route(service, strategy, api_client=client, dry_run=args.dry_run, create_subsets=args.create_subsets)
    change = [written_change(result.after) if result.changed else None]
    where = f"VirtualService {service.vs_namespace}/{service.vs_name}"
    if not result.changed:
        outcome = "unchanged (already as the strategy demands)"
    elif result.before is None:
        outcome = "would be created" if args.dry_run else "created"
    else:
        outcome = "would be updated" if args.dry_run else "updated"
    extras = []
    if result.created_destination_rule:
        extras.append(f"DestinationRule {service.vs_namespace}/{service.dr_name} {'would be ' if args.dry_run else ''}created")
    if result.added_subsets:
        extras.append(f"subset(s) {', '.join(result.added_subsets)} {'would be ' if args.dry_run else ''}added to "
                      f"DestinationRule {service.vs_namespace}/{service.dr_name}")
    if result.conflicts:
        extras.append(f"{result.conflicts} conflict(s) with other writers, re-applied")
    if args.json:
        import json

        served = wait.served(change) if wait else None
        print(json.dumps({"service": service.name, "virtualService": f"{service.vs_namespace}/{service.vs_name}",
                          "strategy": strategy.label, "changed": result.changed, "dryRun": args.dry_run,
                          "outcome": outcome, "createdDestinationRule": result.created_destination_rule,
                          "addedSubsets": result.added_subsets, "conflicts": result.conflicts,
                          "warnings": result.warnings, "diff": result.diff,
                          "served": served_line(served) if served else None}))
        return 0
    if result.diff:
        print(result.diff, end="" if result.diff.endswith("\n") else "\n")
    print(f"{where}: {outcome}; strategy {strategy.label}" + "".join(f"; {e}" for e in extras))
    for warning in result.warnings:
        print(f"warning: {warning}")
    if wait:
        sys.stdout.flush()  # the outcome is shown before the wait, which may take a while or fail
        print(f"{where}: " + served_line(wait.served(change)))
    return 0
