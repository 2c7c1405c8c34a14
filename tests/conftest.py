"""Shared fixtures, one module each in tests/fixtures/. The real servers (the test
world) are session-scoped; the code that starts them is the lab's
(lab/graysteps_lab/world/), which the sandbox reuses. Tests mirror the package:
tests/<layer>/test_<module>.py, the lab's under tests/lab/."""

import os

import pytest

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.envoy",
    "tests.fixtures.mariadb",
    "tests.fixtures.images",
    "tests.fixtures.backends",
    "tests.fixtures.jenkins",
    "tests.fixtures.mesh",
    "tests.fixtures.plans",
    "tests.fixtures.sandbox",
    "tests.fixtures.virtual_services",
    "tests.fixtures.whitelist",
    "tests.fixtures.workloads",
    "tests.fixtures.prometheus",
    "tests.fixtures.progress",
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
