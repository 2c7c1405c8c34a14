"""Shared fixtures. The real servers (the test world) are session-scoped and
live in tests/fixtures/, one module per server; the code that starts them is in
graysteps/testworld/ so the sandbox can reuse it."""

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.envoy",
    "tests.fixtures.mariadb",
    "tests.fixtures.images",
]
