"""`graysteps build`: build a service's image through the Docker API, optionally push it."""

from __future__ import annotations

import argparse
import json
import sys

from graysteps.errors import InvalidInput

from graysteps.commands._types import docker_endpoint, output_file

NAME = "build"
HELP = "build the service's image (Docker API: $DOCKER_HOST), optionally push it and record its digest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="service name (DNS-1123 label, e.g. test-a)")
    parser.add_argument("--context", required=True, metavar="DIR", help="build context directory")
    parser.add_argument("--dockerfile", default="Dockerfile", metavar="F",
                        help="Dockerfile path inside the context (default: Dockerfile)")
    parser.add_argument("--tag", required=True, help="image tag, e.g. 1.4.2 or the build number")
    parser.add_argument("--registry", metavar="R", help="registry (and path) to prefix, e.g. registry.example:5000/team")
    parser.add_argument("--push", action="store_true",
                        help="push to the registry; credentials from REGISTRY_USER/REGISTRY_PASSWORD or the docker config")
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="a build argument (repeatable); not for secrets, they stay in the image history")
    parser.add_argument("--profile", default="gray", choices=("prod", "gray"),
                        help="profile recorded in the image labels (default: gray)")
    parser.add_argument("--out", metavar="FILE", type=output_file,
                        help="where to record the result as JSON (default: .graysteps/build-<service>.json)")
    parser.add_argument("--docker-host", metavar="URL", type=docker_endpoint, help="Docker API endpoint (default: $DOCKER_HOST)")


def parse_build_args(pairs: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--build-arg {pair!r} is not KEY=VALUE")
        args[key] = value
    return args


def run(args: argparse.Namespace) -> int:
    from graysteps.model.images import write_build_record
    from graysteps.steps.build import BuildRequest, build_image

    request = BuildRequest(
        service=args.service, context=args.context, tag=args.tag, dockerfile=args.dockerfile,
        registry=args.registry, build_args=parse_build_args(args.build_arg), profile=args.profile,
    )
    # The build log goes to stderr; stdout carries only the result (JSON), for scripts.
    result = build_image(request, push=args.push, docker_host=args.docker_host,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    path = write_build_record(result, args.out)
    print(json.dumps({**result.to_json(), "record": str(path)}, indent=2, sort_keys=True))
    return 0
