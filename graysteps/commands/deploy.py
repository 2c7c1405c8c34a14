"""`graysteps deploy`: apply a service's Deployment and Service to prod or gray (server-side apply)."""

from __future__ import annotations

import argparse
import json
import sys

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument
from graysteps.commands._types import duration, input_file, int_in

NAME = "deploy"
HELP = "deploy a service's image to its prod or gray namespace (server-side apply), optionally wait for the rollout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="service name from the catalog, e.g. test-a")
    parser.add_argument("--env", required=True, help="prod or gray")
    parser.add_argument("--image", required=True,
                        help="image reference; pinned by digest when `graysteps build --push` recorded it")
    parser.add_argument("--replicas", default="1", help="replica count, 0-1000 (default 1); a HorizontalPodAutoscaler of the Deployment keeps its own")
    parser.add_argument("--wait", action="store_true", help="follow the rollout like `kubectl rollout status`")
    parser.add_argument("--timeout", type=duration, default=600.0, help="seconds --wait waits at most (default 600)")
    parser.add_argument("--progress-deadline", type=int_in(1, 999_999_999), default=600, metavar="SECONDS",
                        help="the Deployment's progressDeadlineSeconds (default 600)")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    parser.add_argument("--create-namespace", action="store_true", help="create the namespace when it is missing")
    parser.add_argument("--build-record", metavar="FILE", type=input_file,
                        help="build record with the pushed digest (default .graysteps/build-<service>.json)")
    parser.add_argument("--no-pin", action="store_true", help="deploy the image as given, not pinned by digest")
    parser.add_argument("--dry-run", action="store_true", help="ask the apiserver to validate only (dry run)")


def run(args: argparse.Namespace) -> int:
    from graysteps.model.catalog import load_catalog
    from graysteps.model.images import parse_image
    from graysteps.model.manifests import check_environment, pin_image, render_manifests
    from graysteps.steps.deploy import deploy
    from graysteps.adapters.kube.client import api_client

    check_environment(args.env)
    spec = load_catalog(args.catalog).service(args.service)
    image = parse_image(args.image)
    if not args.no_pin:
        image = pin_image(image, spec.name, args.build_record)
    manifests = render_manifests(spec, args.env, str(image), replicas=args.replicas,
                                 progress_deadline_seconds=args.progress_deadline)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    with api_client(args.kubeconfig) as api:
        result = deploy(manifests, api_client=api, create_namespace=args.create_namespace, dry_run=args.dry_run,
                        wait=args.wait, timeout=args.timeout, log=log)
    print(json.dumps(result.to_json(), indent=2))
    return 0
