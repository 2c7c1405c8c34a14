"""`up`, `status`, `down` and `env` of the sandbox, usable from any shell.

    up(SandboxDir(d), catalog=None)   # starts the supervisor detached, shows its progress, returns when ready
    check(SandboxDir(d))              # each component with its pid/port and a live health check
    down(SandboxDir(d))               # SIGTERM to the supervisor, waits until everything stopped
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from graysteps.errors import GraystepsError, InvalidInput
from graysteps_lab.sandbox.state import FAILED, READY, SandboxDir, pid_alive

STEP = "sandbox"
from graysteps_lab.paths import REPO_ROOT
EXAMPLE_CATALOG = REPO_ROOT / "examples" / "catalog.yaml"
UP_TIMEOUT = 45 * 60.0  # a cold build of the control plane took about 7 minutes on 2 cores (measured)
QUIET_NOTICE = 30.0  # print "still working" after this long without a progress line

Print = Callable[[str], None]


def resolve_catalog(path: str | None) -> str:
    """--catalog, else $GRAYSTEPS_CATALOG, else the repository's examples/catalog.yaml; validated."""
    from graysteps.model.catalog import load_catalog

    chosen = path or os.environ.get("GRAYSTEPS_CATALOG") or str(EXAMPLE_CATALOG)
    catalog = load_catalog(chosen)
    if not catalog.names():
        raise InvalidInput(f"catalog {chosen} lists no services; the sandbox needs at least one", step=STEP)
    return str(Path(chosen).resolve())


def up(sandbox: SandboxDir, *, catalog: str | None = None, workloads: bool = True, timeout: float = UP_TIMEOUT,
       out: Print = print) -> dict[str, Any]:
    """Start the sandbox in the background and wait until it is ready; returns its state.

    Already running: returns its state at once."""
    pid = sandbox.running_pid()
    if pid:
        out(f"sandbox already running in {sandbox} (supervisor pid {pid})")
        return sandbox.read_state()
    catalog_text = Path(resolve_catalog(catalog)).read_bytes()  # it may live in the directory emptied next
    if sandbox.marker.exists():
        orphans = _kill_leftovers(sandbox, None)  # servers of a supervisor that was killed hard
        if orphans:
            out(f"sandbox: stopped what an earlier sandbox in {sandbox} left running: {', '.join(orphans)}")
    sandbox.prepare_fresh()
    catalog_path = sandbox.path / "catalog.yaml"
    catalog_path.write_bytes(catalog_text)
    argv = [sys.executable, "-m", "graysteps_lab.sandbox.supervisor", "--dir", str(sandbox.path),
            "--catalog", str(catalog_path)]
    if not workloads:
        argv.append("--no-workloads")
    with open(sandbox.log_file, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=str(sandbox.path))  # survives this command
    out(f"sandbox: supervisor pid {proc.pid}, state in {sandbox}")
    return _follow(sandbox, proc, timeout, out)


def _follow(sandbox: SandboxDir, proc: subprocess.Popen, timeout: float, out: Print) -> dict[str, Any]:
    start = time.monotonic()
    shown, last_line = 0, time.monotonic()
    while True:
        try:
            lines = sandbox.progress_file.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines[shown:]:
            out(f"  {line}")
            last_line = time.monotonic()
        shown = len(lines)
        state = sandbox.read_state()
        if state.get("phase") == READY:
            return state
        dead = proc.poll() is not None
        if state.get("phase") == FAILED or dead:
            _wait_gone(sandbox, proc.pid, 60)
            why = state.get("error") or f"the supervisor exited with code {proc.poll()}"
            raise GraystepsError(f"the sandbox did not start: {why}; logs in {sandbox} "
                                 f"(supervisor.log, build.log, kube/*.log, envoy/envoy.log)", step=STEP)
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            down(sandbox, out=out)
            raise GraystepsError(f"the sandbox was not ready after {timeout:.0f}s and was stopped; "
                                 f"see {sandbox.log_file}", step=STEP)
        if time.monotonic() - last_line > QUIET_NOTICE:
            out(f"  ... still working ({_minutes(elapsed)} so far; a first run builds the control plane)")
            last_line = time.monotonic()
        time.sleep(0.2)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _wait_gone(sandbox: SandboxDir, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) and not sandbox.pid_file.exists():
            return True
        if not pid_alive(pid):  # killed hard: nobody else will remove it
            sandbox.pid_file.unlink(missing_ok=True)
            return True
        time.sleep(0.1)
    return False


def down(sandbox: SandboxDir, *, timeout: float = 90.0, out: Print = print) -> bool:
    """Stop the sandbox; True if it was running. Safe to repeat."""
    pid = sandbox.running_pid()
    if pid is None:
        out(f"sandbox not running in {sandbox}")
        return False
    out(f"stopping the sandbox (supervisor pid {pid}) ...")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(sandbox, pid, timeout):
        leftovers = _kill_leftovers(sandbox, pid)
        raise GraystepsError(f"the supervisor (pid {pid}) did not stop within {timeout:.0f}s; killed "
                             f"{', '.join(leftovers) or 'nothing'}; see {sandbox.log_file}", step=STEP)
    left = [c for c in _process_components(sandbox.read_state()) if pid_alive(c["pid"])]
    if left:
        leftovers = _kill_leftovers(sandbox, pid)
        raise GraystepsError(f"the supervisor stopped but left {', '.join(c['name'] for c in left)} running; "
                             f"killed {', '.join(leftovers) or 'nothing'}", step=STEP)
    out(f"sandbox stopped in {time.monotonic() - t0:.1f}s")
    return True


def _process_components(state: dict) -> list[dict]:
    """Components that are processes of their own (not threads of the supervisor)."""
    return [c for c in state.get("components", []) if c.get("pid") and c.get("pid") != state.get("pid")]


def _started_here(sandbox: SandboxDir, pid: int) -> bool:
    """True if process `pid` was started for this sandbox: its command line names the
    directory (a pid from an old state file may belong to someone else by now)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return str(sandbox.path) in cmdline


def _kill_leftovers(sandbox: SandboxDir, supervisor_pid: int | None) -> list[str]:
    """SIGKILL the process group of each component (and the supervisor) still alive; their names."""
    killed = []
    targets = [(c["name"], c["pid"]) for c in _process_components(sandbox.read_state())]
    if supervisor_pid:
        targets.append(("supervisor", supervisor_pid))
    for name, pid in targets:
        if pid_alive(pid) and _started_here(sandbox, pid):
            try:
                os.killpg(pid, signal.SIGKILL)  # each server runs in its own process group
                killed.append(name)
            except (ProcessLookupError, PermissionError):
                pass
    sandbox.pid_file.unlink(missing_ok=True)
    return killed


# -- status ------------------------------------------------------------------------


@dataclass
class ComponentHealth:
    name: str
    pid: int | None
    port: int | None
    healthy: bool
    detail: str


def check(sandbox: SandboxDir) -> tuple[dict[str, Any], list[ComponentHealth]]:
    """The state file and a live health check of every component."""
    state = sandbox.read_state()
    running = sandbox.running_pid() is not None
    rows = []
    for c in state.get("components", []):
        if not running:
            rows.append(ComponentHealth(c["name"], c.get("pid"), c.get("port"), False, "supervisor not running"))
            continue
        ok, detail = _health(c, state)
        rows.append(ComponentHealth(c["name"], c.get("pid"), c.get("port"), ok, detail))
    return state, rows


def _health(c: dict, state: dict) -> tuple[bool, str]:
    if c.get("pid") and not pid_alive(c["pid"]):
        return False, f"process {c['pid']} is gone"
    name = c["name"]
    try:
        if name == "kube-apiserver":
            pki = Path(c["pki"])
            context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
            body = _get(c["health"], context=context)
            return body.strip() == "ok", f"/readyz: {body.strip()[:40]}"
        if name == "etcd":
            health = json.loads(_get(c["health"])).get("health")
            return health == "true", f"/health: {health}"
        if name == "envoy" or name.startswith("envoy "):
            body = _get(c["health"]).strip()
            ports = ", ".join(f"{k}:{v}" for k, v in (c.get("listeners") or {}).items())
            return body == "LIVE", f"{body}; listeners {ports}"
        if name.startswith("backend "):
            with urllib.request.urlopen(c["health"], timeout=3) as r:
                who = f"{r.headers.get('x-graysteps-service')}/{r.headers.get('x-graysteps-profile')}"
            expected = f"{c['service']}/{c['profile']}"
            calls = f"; calls {', '.join(c['calls'])}" if c.get("calls") else ""
            return who == expected, f"answers as {who} for {c['endpoint']}{calls}"
        if name == "route-sync":
            routes = state.get("routes") or {}
            if not routes:
                return False, "nothing applied yet"
            sync = state.get("route_sync") or {}
            if sync and not sync.get("watching"):
                return False, (f"not watching the apiserver ({sync.get('last_error') or 'starting'}); "
                               "istiod and Envoy keep the last routes")
            age = time.time() - routes.get("applied_at", 0)
            rejected = routes.get("rejected") or {}
            detail = (f"{len(routes.get('virtual_services', {}))} VirtualService(s) served by every Envoy, last change "
                      f"{routes.get('ms_from_event')} ms after its event, {age:.0f}s ago")
            if rejected:
                detail += f"; LEFT OUT: {', '.join(f'{k} ({v})' for k, v in rejected.items())}"
            return True, detail
        if c.get("health"):
            body = _get(c["health"])
            return True, f"{c['health'].rsplit('/', 1)[-1]}: {body.strip()[:60]}"
        return True, "process running"
    except Exception as e:  # noqa: BLE001 - any failure is "unhealthy", with its reason
        return False, f"{type(e).__name__}: {e}"


def _get(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=3, context=context) as r:
        return r.read().decode(errors="replace")


def describe(sandbox: SandboxDir, state: dict, rows: list[ComponentHealth]) -> list[str]:
    pid = sandbox.running_pid()
    lines = [f"sandbox {sandbox}: {state.get('phase', 'unknown') if pid else 'not running'}"
             + (f" (supervisor pid {pid})" if pid else "")]
    if not rows:
        return lines
    width = max(len(r.name) for r in rows)
    lines.append(f"  {'component':<{width}}  {'pid':>7}  {'port':>5}  health")
    for r in rows:
        lines.append(f"  {r.name:<{width}}  {r.pid or '-':>7}  {r.port or '-':>5}  "
                     f"{'ok ' if r.healthy else 'BAD'} {r.detail}")
    if pid and state.get("ingress"):
        host = next(iter((state.get("hosts") or {}).values()), "test-a")
        lines.append(f"  ingress: {state['ingress']}  (e.g. curl -H 'Host: {host}' -H 'Cookie: tenantGray=1' "
                     f"{state['ingress']})")
        lines.append(f"  cookie service: {state.get('cookie_service')}/v1/gray-cookie?tenant=T")
        lines.append(f"  use graysteps against it: eval \"$(graysteps sandbox env --dir {sandbox})\"")
    return lines


def env_lines(state: dict) -> list[str]:
    import shlex

    return [f"export {k}={shlex.quote(v)}" for k, v in sorted((state.get("env") or {}).items())]
