"""free_port hands out ports that nothing else takes before their server binds them."""

from __future__ import annotations

import socket

from graysteps_lab.world.ports import LOWEST_PORT, candidate_ports, ephemeral_range, free_port


def test_ports_come_from_below_the_kernels_ephemeral_range_and_are_never_repeated():
    first, _ = ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(LOWEST_PORT <= p < first for p in ports)


def test_port_zero_binds_never_take_a_port_handed_out_but_not_yet_bound():
    # The race behind a flaky verify test: a mesh took its listener ports,
    # then Envoy's admin (port 0) got one of them, and the probe read the
    # admin page. Kernel picks must never land on a handed-out port.
    handed_out = {free_port() for _ in range(100)}
    for _ in range(3000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            assert s.getsockname()[1] not in handed_out


def test_a_port_in_use_is_never_handed_out(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as free:
            free.bind(("127.0.0.1", 0))
            untaken = free.getsockname()[1]
        # Only two candidates, the busy one first: free_port must skip it.
        picks = iter([taken, untaken])
        monkeypatch.setattr("graysteps_lab.world.ports.candidate_ports", lambda _: range(taken, taken + 1))
        monkeypatch.setattr("graysteps_lab.world.ports._random.choice", lambda _: next(picks))
        assert free_port() == untaken


def test_ephemeral_range_is_read_from_proc_and_falls_back_to_the_default(tmp_path):
    custom = tmp_path / "ip_local_port_range"
    custom.write_text("40000\t50000\n")
    assert ephemeral_range(custom) == (40000, 50000)
    assert ephemeral_range(tmp_path / "missing") == (32768, 60999)
    assert candidate_ports((40000, 50000)) == range(LOWEST_PORT, 40000)
    assert candidate_ports((10500, 60999)) == range(0)  # too few below: let the kernel pick
