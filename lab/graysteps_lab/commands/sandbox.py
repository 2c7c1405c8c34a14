"""`graysteps sandbox up|down|status|env [--dir D]`: a local mesh driven live by the apiserver.

`up` starts a supervisor in the background (it outlives the command) and shows
its progress until everything is ready; `status` checks each component;
`down` stops them all. `env` prints the exports (KUBECONFIG, GRAYSTEPS_CATALOG,
GRAYSTEPS_DB) that point the other graysteps commands at the sandbox.
"""

from __future__ import annotations

import argparse

NAME = "sandbox"
HELP = "a local sandbox mesh (apiserver, istiod, Envoys driven live by VirtualServices, backends, cookie service)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    dir_help = "state directory (default: $GRAYSTEPS_SANDBOX_DIR, else ~/.cache/graysteps/sandbox)"
    up = sub.add_parser("up", help="start the sandbox in the background; return when it is ready")
    up.add_argument("--dir", help=dir_help)
    up.add_argument("--catalog", metavar="FILE",
                    help="services to run (default: $GRAYSTEPS_CATALOG, else the repository's examples/catalog.yaml)")
    up.add_argument("--no-workloads", action="store_true",
                    help="do not run kube-controller-manager, kube-scheduler and kwok (no Deployments roll out)")
    up.add_argument("--timeout", type=float, default=45 * 60, metavar="SECONDS",
                    help="give up (and stop it) if not ready by then (default 2700: a first run builds binaries)")
    for action, text in (("status", "each component with its pid, port and health (exit 1 if any is unhealthy, "
                                    "3 if not running)"),
                         ("down", "stop everything the sandbox started"),
                         ("env", "print shell exports pointing graysteps at the sandbox")):
        p = sub.add_parser(action, help=text)
        p.add_argument("--dir", help=dir_help)


def run(args: argparse.Namespace) -> int:
    from graysteps.errors import InvalidInput
    from graysteps_lab.sandbox import control
    from graysteps_lab.sandbox.state import SandboxDir

    sandbox = SandboxDir(args.dir)
    if args.action == "up":
        if args.timeout <= 0:
            raise InvalidInput(f"--timeout {args.timeout:g} is not allowed: use a positive number of seconds")
        control.up(sandbox, catalog=args.catalog, workloads=not args.no_workloads, timeout=args.timeout)
        state, rows = control.check(sandbox)
        print("\n".join(control.describe(sandbox, state, rows)))
        return 0 if all(r.healthy for r in rows) else 1
    if args.action == "down":
        control.down(sandbox)
        return 0
    if sandbox.running_pid() is None:
        print(f"sandbox not running in {sandbox}")
        return 3
    state, rows = control.check(sandbox)
    if args.action == "env":
        print("\n".join(control.env_lines(state)))
        return 0
    print("\n".join(control.describe(sandbox, state, rows)))
    return 0 if rows and all(r.healthy for r in rows) else 1
