"""`graysteps demo`: the main job in a local sandbox, end to end (see lab/graysteps_lab/demo.py)."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run a whole gray release in the local sandbox and write an HTML report with a traffic chart"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from graysteps_lab.demo import add_arguments as demo_arguments

    demo_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graysteps_lab.demo import run_from_args

    return run_from_args(args)
