"""Run test-world servers by hand or for the sandbox/demo.

    python -m graysteps_lab.world up kube mariadb images --dir /tmp/world
        starts them, writes /tmp/world/world.json (how to reach each one),
        prints it and stays in the foreground until SIGTERM / Ctrl-C.
    python -m graysteps_lab.world down --dir /tmp/world
        stops the servers started by `up` in that directory.

Envoy is not listed: it needs a bootstrap; use graysteps_lab.world.envoy.Envoy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from graysteps_lab.world.process import WorldError

SERVERS = ("kube", "mariadb", "images")


def _start(name: str, workdir: Path, stack: ExitStack) -> dict:
    if name == "kube":  # the apiserver with istiod watching it and validating Istio writes, as in the tests
        from graysteps_lab.world.istiod import Istiod
        from graysteps_lab.world.kube import KubeWorld

        kube = stack.enter_context(KubeWorld(workdir / "kube"))
        istiod = stack.enter_context(Istiod(kube, workdir / "istiod"))
        istiod.register_validation()
        return {"kubeconfig": kube.kubeconfig, "server": kube.server, "etcd": kube.etcd_url,
                "istiod": istiod.debug_url, "xds_port": istiod.xds_port}
    if name == "mariadb":
        from graysteps_lab.world.mariadb import MariaDB

        db = stack.enter_context(MariaDB(workdir / "mariadb"))
        return {"url": db.url, "admin_url": db.admin_url, "port": db.port, "socket": db.socket}
    from graysteps_lab.world.images import Podman, Registry

    registry = stack.enter_context(Registry(workdir / "registry"))
    podman = stack.enter_context(Podman(workdir / "podman", insecure_registries=[registry.address]))
    return {"docker_host": podman.docker_host, "registry": registry.address}


def up(servers: list[str], workdir: Path) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        with ExitStack() as stack:
            try:
                world = {name: _start(name, workdir, stack) for name in servers}
            except WorldError as e:
                print(f"testworld up: {e.message}", file=sys.stderr)
                return 1
            (workdir / "world.json").write_text(json.dumps(world, indent=2), encoding="utf-8")
            (workdir / "world.pid").write_text(str(os.getpid()))
            print(json.dumps(world, indent=2), flush=True)
            while not stopping:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:  # removed only once every server has stopped: `down` waits for it
        (workdir / "world.pid").unlink(missing_ok=True)
    return 0


def down(workdir: Path, timeout: float = 60) -> int:
    pid_file = workdir / "world.pid"
    if not pid_file.exists():
        print(f"testworld down: nothing runs from {workdir} (no world.pid)", file=sys.stderr)
        return 1
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_file.exists():
        print(f"testworld down: process {pid} did not stop within {timeout:.0f}s", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graysteps_lab.world", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("up", help="start servers and stay in the foreground")
    start.add_argument("servers", nargs="+", choices=SERVERS)
    start.add_argument("--dir", required=True, type=Path, help="directory for the servers' data and logs")
    stop = sub.add_parser("down", help="stop the servers `up` started in --dir")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.action == "up":
        return up(list(dict.fromkeys(args.servers)), args.dir.resolve())
    return down(args.dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
