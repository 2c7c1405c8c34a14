"""`--wait`, `--wait-timeout` and `--istiod`, shared by route, release and rollback; progress
takes `--istiod` and `--wait-timeout` and waits whenever it knows istiod (no heavy imports here)."""

from __future__ import annotations

import argparse
import os

from graysteps.commands._types import duration, http_or_https_url

DEFAULT_TIMEOUT = 60.0


def add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true",
                        help="return only when Istio serves the change: istiod holds it and every proxy "
                             "acknowledged a push carrying it (istiod's sync status)")
    add_istiod_arguments(parser)


def add_istiod_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait-timeout", type=duration, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for Istio to serve a change before failing (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--istiod", metavar="URL", type=http_or_https_url,
                        help="istiod's HTTP debug address, e.g. http://istiod.istio-system:15014 "
                             "(default: $GRAYSTEPS_ISTIOD)")


def istio_wait(args: argparse.Namespace, step: str):
    """An IstioWait when --wait was given (checked: InvalidInput names what is wrong), else None."""
    from graysteps.errors import InvalidInput

    if not args.wait:
        return None
    if not (args.istiod or os.environ.get("GRAYSTEPS_ISTIOD")):
        raise InvalidInput("--wait needs istiod's debug address: --istiod http://HOST:15014 or $GRAYSTEPS_ISTIOD",
                           step=step)
    return istio_wait_if_known(args, step)


def istio_wait_if_known(args: argparse.Namespace, step: str):
    """An IstioWait when --istiod or $GRAYSTEPS_ISTIOD names istiod (checked), else None."""
    from graysteps.adapters.urls import mask_url, url_problem
    from graysteps.errors import InvalidInput

    url = args.istiod or os.environ.get("GRAYSTEPS_ISTIOD")
    if not url:
        return None
    problem = url_problem(url)  # --istiod was checked as it was parsed; $GRAYSTEPS_ISTIOD is checked here
    if problem:
        where = "--istiod" if args.istiod else "$GRAYSTEPS_ISTIOD"
        raise InvalidInput(f"{where} {mask_url(url)!r} is not allowed: {problem}, e.g. http://istiod.istio-system:15014",
                           step=step)
    if not 0 < args.wait_timeout <= 3600:
        raise InvalidInput(f"--wait-timeout {args.wait_timeout:g} is not allowed; use 0 < SECONDS <= 3600", step=step)
    from graysteps.adapters.istiod import IstioWait

    return IstioWait(url, args.wait_timeout, step=step)


def served_line(served) -> str:
    return served.describe()
