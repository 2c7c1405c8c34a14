"""Options shared by the commands that read the catalog or talk to the cluster (no heavy imports here)."""

from __future__ import annotations

import argparse

from graysteps.commands._types import input_file

CATALOG_HELP = "service catalog (default: $GRAYSTEPS_CATALOG, else ./catalog.yaml)"
KUBECONFIG_HELP = "kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)"


def add_catalog_argument(parser: argparse.ArgumentParser, help: str = CATALOG_HELP) -> None:
    parser.add_argument("--catalog", metavar="FILE", type=input_file, help=help)


def add_kubeconfig_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="FILE", type=input_file, help=KUBECONFIG_HELP)
