"""graysteps.adapters.prometheus: one clear line for an unreachable server or a bad query."""

from __future__ import annotations

import pytest

from graysteps.adapters.prometheus import PrometheusClient, PrometheusError
from graysteps_lab.world.ports import free_port


def test_an_unreachable_prometheus_is_one_clear_line():
    client = PrometheusClient(f"http://user:s3cret@127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(PrometheusError) as e:
        client.scalar("vector(1)")
    message = e.value.message
    assert "unreachable" in message and "s3cret" not in message and "user:***@" in message and "\n" not in message


def test_a_bad_query_names_the_query(prometheus):
    with pytest.raises(PrometheusError) as e:
        PrometheusClient(prometheus.url).scalar("sum(")
    assert "sum(" in e.value.message and "\n" not in e.value.message
