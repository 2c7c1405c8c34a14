"""Shared fixtures. The real servers (the test world) are session-scoped and
live in tests/fixtures/, one module per server; the code that starts them is in
graysteps/testworld/ so the sandbox can reuse it."""

import os

import pytest

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.envoy",
    "tests.fixtures.mariadb",
    "tests.fixtures.images",
    "tests.fixtures.prometheus",
]


@pytest.fixture(scope="session", autouse=True)
def no_writes_to_the_users_home(tmp_path_factory):
    """Commands run without --db use the default SQLite file under $XDG_DATA_HOME:
    point it into the session's temp dir (subprocesses inherit it), never at ~."""
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before
