"""`graysteps status [--service S...]`: which services are in gray, on which strategy, and their versions.

Read-only. One line per catalog service: the strategy recorded on its VirtualService and whether the
live routes still match it, and the version and readiness of its gray and prod Deployments
(graysteps/steps/status.py). Exits 1 when a service's routes were changed by hand.
"""

from __future__ import annotations

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument

NAME = "status"
HELP = "show each service's traffic strategy and its gray and prod versions (read-only)"


def add_arguments(parser) -> None:
    parser.add_argument("--service", nargs="+", metavar="S", help="only these catalog services (default: all)")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--report", metavar="FILE", help="also write the rows as JSON here")


def run(args) -> int:
    import json
    from pathlib import Path

    from graysteps.adapters.kube.errors import failure_reason
    from graysteps.adapters.kube.rest import connect
    from graysteps.errors import GraystepsError
    from graysteps.model.catalog import load_catalog
    from graysteps.steps.status import CHANGED, fleet_status, table

    catalog = load_catalog(args.catalog)
    services = ([catalog.service(n) for n in dict.fromkeys(args.service)] if args.service
                else list(catalog.services.values()))
    try:
        rows = fleet_status(services, connect(args.kubeconfig, 4))
    except Exception as e:  # noqa: BLE001 - any apiserver failure: one clear line
        raise GraystepsError(f"could not read the cluster: {failure_reason(e)}; check --kubeconfig and retry",
                             step=NAME) from e
    if args.report:
        from graysteps.adapters.files import write_json_atomically

        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(args.report, [r.to_dict() for r in rows], indent=2)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print("\n".join(table(rows)))
    changed = [r.service for r in rows if r.routes == CHANGED]
    if changed:
        raise GraystepsError(f"routes changed by hand (not what their strategy makes): {', '.join(changed)}; "
                             "rerun `graysteps route` with the strategy shown, or inspect with `graysteps render --from`",
                             step=NAME)
    return 0
