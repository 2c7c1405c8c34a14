"""Free TCP ports on the loopback interface, for servers started by the test world.

A port is handed out first and bound later, by another process (etcd, Envoy,
MariaDB...). In between, nothing else may take it. The kernel gives
"any port" binds (port 0) and the local side of outgoing connections from its
ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by
default), and the test world binds port 0 too (Envoy's admin, the backends).
So `free_port` picks from below that range, where the kernel never picks on
its own: a port handed out stays free until its server binds it.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

# Below this, ports belong to well-known services; never hand them out.
LOWEST_PORT = 10000
# The kernel's default ephemeral range, when /proc does not tell us.
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")

_handed_out: set[int] = set()
_lock = threading.Lock()
_random = random.SystemRandom()


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """(first, last) of the ports the kernel picks for port-0 binds and outgoing connections."""
    try:
        first, last = (int(field) for field in path.read_text().split())
        return first, last
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE


def candidate_ports(kernel_range: tuple[int, int]) -> range:
    """The ports `free_port` picks from: those below the kernel's range (empty if too few)."""
    ports = range(LOWEST_PORT, kernel_range[0])
    return ports if len(ports) >= 1000 else range(0)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now, never the same one twice per process.

    Picked at random below the kernel's ephemeral range, so no port-0 bind and
    no outgoing connection takes it before its server binds it; random, so two
    test runs on one machine rarely try the same one (and a port in use fails
    the bind check). On a machine whose ephemeral range leaves fewer than 1000
    ports below it, the kernel picks (bind to port 0), as a last resort.
    """
    candidates = candidate_ports(ephemeral_range())
    for _ in range(200):
        port = _random.choice(candidates) if candidates else _kernel_pick(host)
        with _lock:
            if port in _handed_out or (candidates and not _can_bind(host, port)):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"free_port: no free port found on {host} after 200 tries")


def _kernel_pick(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _can_bind(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
