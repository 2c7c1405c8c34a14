"""`graysteps render`: print what graysteps would write, with no cluster involved.

    graysteps render --catalog FILE --service NAME --strategy STRATEGY [--weight N] [--from FILE]

prints the VirtualService that STRATEGY makes of the service's VirtualService
(`--from FILE`: an existing one, e.g. `kubectl get vs test-a -o yaml`; default:
the seed's base VirtualService) as YAML on stdout.

What to render is one mutually exclusive choice (`--strategy` here); another
kind of manifest is one more option in that group and one more function.
"""

from __future__ import annotations

import argparse

from graysteps.commands._cluster_options import add_catalog_argument
from graysteps.commands._types import input_file

NAME = "render"
HELP = "print the VirtualService a strategy produces (YAML on stdout; no cluster)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_catalog_argument(parser)
    parser.add_argument("--service", required=True, help="service name from the catalog, e.g. test-a")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--strategy", metavar="STRATEGY",
                      help="whitelist, weight, balanced, linked, promote or rollback")
    parser.add_argument("--weight", metavar="N", help="gray share in percent (0-100), with --strategy weight")
    parser.add_argument("--from", dest="from_file", metavar="FILE", type=input_file,
                        help="apply the strategy to this VirtualService (YAML) instead of a new one")
    what.add_argument("--env", metavar="ENV", help="prod or gray: print the Deployment and Service `deploy` applies")
    parser.add_argument("--image", metavar="IMAGE", help="image reference, with --env")
    parser.add_argument("--replicas", metavar="N", default="1", help="replica count, with --env (default 1)")


def run(args: argparse.Namespace) -> int:
    if args.env is not None:
        return render_workload(args)
    return render_virtual_service(args)


def render_workload(args: argparse.Namespace) -> int:
    """The Deployment and Service of `--service` in `--env` as multi-document YAML (graysteps.steps.deploy)."""
    import sys

    from graysteps.model.catalog import load_catalog
    from graysteps.model.manifests import check_environment, parse_replicas, render_manifests
    from graysteps.errors import InvalidInput

    check_environment(args.env)
    if args.image is None:
        raise InvalidInput("--env needs --image IMAGE, e.g. registry.example:5000/test-a:1.4.2")
    if args.weight is not None or args.from_file is not None:
        raise InvalidInput("--weight and --from go with --strategy, not with --env")
    replicas = parse_replicas(args.replicas)
    service = load_catalog(args.catalog).service(args.service)
    sys.stdout.write(render_manifests(service, args.env, args.image, replicas=replicas).to_yaml())
    return 0


def render_virtual_service(args: argparse.Namespace) -> int:
    """Validate everything first, then print: bad input leaves stdout empty.
    Warnings (a route that shadows the service's routes, ...) go to stderr."""
    import sys

    import yaml

    from graysteps.errors import InvalidInput
    from graysteps.model.catalog import load_catalog
    from graysteps.model.strategy import parse_strategy
    from graysteps.routing.operations import apply_strategy, warnings

    if getattr(args, "image", None) is not None:
        raise InvalidInput("--image goes with --env, not with --strategy")
    strategy = parse_strategy(args.strategy, args.weight)
    service = load_catalog(args.catalog).service(args.service)
    base = read_virtual_service_file(args.from_file, service.vs_name) if args.from_file else None
    rendered = apply_strategy(base, service, strategy)
    for warning in warnings(rendered, service, strategy):
        print(f"graysteps render: warning: {warning}", file=sys.stderr)
    sys.stdout.write(yaml.safe_dump(rendered, sort_keys=False, default_flow_style=False))
    return 0


def read_virtual_service_file(path: str, name: str | None = None) -> dict:
    """The VirtualService in a YAML file (bounded read, safe loader, duplicate keys
    refused), found by its kind among the file's documents; with several, the one
    named `name`. InvalidInput naming the file otherwise."""
    from graysteps.adapters import reading
    from graysteps.errors import InvalidInput

    text = reading.read_text(path, what="--from")
    documents = [d for d in reading.parse_yaml(text, what="--from", name=path, documents=True) if d is not None]
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == "VirtualService"]
    if len(found) > 1 and name is not None:
        named = [d for d in found if (d.get("metadata") or {}).get("name") == name]
        if len(named) == 1:
            return named[0]
    if len(found) != 1:
        names = ", ".join(str((d.get("metadata") or {}).get("name")) for d in found)
        what = f"{len(found)} VirtualServices ({names}) and none is named {name}" if found else "no VirtualService document"
        raise InvalidInput(f"--from {path}: {what}; give a file with the service's VirtualService")
    return found[0]
