"""Apiserver transports with one interface: `request(method, path, body, **query) -> dict`.

`connect()` gives `KubeRest`, a lean urllib3 transport, when the kubeconfig is
the simple kind (server, CA, client certificate/key or a bearer token), else
`ClientRest` over the kubernetes client (exec or auth-provider plugins, several
kubeconfig files, in-cluster credentials, proxies …). Both raise errors carrying
`.status`, `.reason` and `.body` like kubernetes' ApiException.

Why the lean one exists: importing the kubernetes package alone costs about
0.2 s, a third of an emergency `rollback --all`; urllib3 and the stdlib json
need none of it, and its pool is sized to the worker threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
import threading
from typing import Any
from urllib.parse import urlencode

CLUSTER_KEYS = {"server", "certificate-authority", "certificate-authority-data"}
REQUEST_TIMEOUT = 60.0  # seconds for connecting, and for each read of an answer
USER_KEYS = {"client-certificate", "client-certificate-data", "client-key", "client-key-data", "token"}


class KubeRestError(Exception):
    """The apiserver answered with an error status (attributes as in kubernetes' ApiException)."""

    def __init__(self, status: int, reason: str, body: str):
        super().__init__(f"({status})\nReason: {reason}\nHTTP response body: {body}")
        self.status, self.reason, self.body = status, reason, body


def _kubeconfig_path(kubeconfig: str | None) -> str | None:
    """The single kubeconfig file graysteps.adapters.kube.client.api_client would read, or None if
    it would read several files, none, or the in-cluster account."""
    if kubeconfig:
        return kubeconfig if os.path.isfile(kubeconfig) else None
    env = os.environ.get("KUBECONFIG")
    if env:
        return env if os.pathsep not in env and os.path.isfile(env) else None
    default = os.path.expanduser("~/.kube/config")
    return default if os.path.isfile(default) else None


def _named(items: list | None, name: str) -> dict | None:
    return next((i for i in items or [] if isinstance(i, dict) and i.get("name") == name), None)


def simple_credentials(kubeconfig: str | None) -> tuple[dict, dict, str] | None:
    """(cluster, user, directory of the file) of the current context when the
    kubeconfig uses only what this module supports; else None."""
    import yaml

    path = _kubeconfig_path(kubeconfig)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        context = _named(config.get("contexts"), config["current-context"])["context"]
        cluster = _named(config.get("clusters"), context["cluster"])["cluster"]
        user = _named(config.get("users"), context["user"])["user"] or {}
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return None  # the kubernetes client reports what is wrong with it
    if set(cluster) - CLUSTER_KEYS or set(user) - USER_KEYS or not str(cluster.get("server", "")).startswith("https://"):
        return None
    if ("client-certificate" in user or "client-certificate-data" in user) != ("client-key" in user or "client-key-data" in user):
        return None
    return cluster, user, os.path.dirname(os.path.abspath(path))


def _pem(entry: dict, key: str, directory: str) -> bytes | None:
    """The PEM bytes of `key` (a file path, relative to the kubeconfig) or `key-data` (base64)."""
    import base64

    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        with open(os.path.join(directory, entry[key]), "rb") as f:
            return f.read()
    return None


def _ssl_context(cluster: dict, user: dict, directory: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca = _pem(cluster, "certificate-authority", directory)
    if ca:
        context.load_verify_locations(cadata=ca.decode("ascii"))
    cert, key = _pem(user, "client-certificate", directory), _pem(user, "client-key", directory)
    if cert:
        with tempfile.TemporaryDirectory() as tmp:  # ssl loads a key pair from files only
            for name, data in (("cert.pem", cert), ("key.pem", key)):
                fd = os.open(os.path.join(tmp, name), os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            context.load_cert_chain(os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
    return context


class KubeRest:
    """JSON requests to one apiserver over a urllib3 pool of `pool_size` connections."""

    def __init__(self, kubeconfig: str | None, cluster: dict, user: dict, directory: str, pool_size: int):
        import urllib3

        self.kubeconfig, self.server = kubeconfig, cluster["server"].rstrip("/")
        self.headers = {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": "graysteps"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self.pool = urllib3.PoolManager(num_pools=1, maxsize=pool_size, ssl_context=_ssl_context(cluster, user, directory),
                                        timeout=urllib3.Timeout(connect=REQUEST_TIMEOUT, read=REQUEST_TIMEOUT))
        self._client, self._lock = None, threading.Lock()

    def request(self, method: str, path: str, body: dict | None = None, **query: str) -> dict:
        url = self.server + path + ("?" + urlencode({k: v for k, v in query.items() if v}) if any(query.values()) else "")
        data = None if body is None else json.dumps(body).encode()
        response = self.pool.request(method, url, body=data, headers=self.headers)
        text = response.data.decode("utf-8", "replace")
        if not 200 <= response.status < 300:
            raise KubeRestError(response.status, response.reason or "", text)
        return json.loads(text)

    def close(self) -> None:
        self.pool.clear()
        if self._client is not None:
            self._client.close()

    @property
    def api_client(self) -> Any:
        """A kubernetes ApiClient for the same kubeconfig, made on first use."""
        with self._lock:
            if self._client is None:
                from graysteps.adapters.kube.client import api_client

                self._client = api_client(self.kubeconfig)
            return self._client


class ClientRest:
    """The same `request` through the kubernetes client, for kubeconfigs KubeRest does not handle."""

    def __init__(self, api_client: Any):
        self.api_client = api_client

    def close(self) -> None:
        self.api_client.close()

    def request(self, method: str, path: str, body: dict | None = None, **query: str) -> dict:
        # _preload_content=False: the raw answer, parsed here (the keyword naming the
        # response type differs between client versions; these do not).
        response = self.api_client.call_api(
            path, method, query_params=[(k, v) for k, v in query.items() if v], body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"], _return_http_data_only=True, _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return json.loads(response.data)


def connect(kubeconfig: str | None, pool_size: int) -> KubeRest | ClientRest:
    """KubeRest when the kubeconfig is simple enough, else ClientRest over a
    kubernetes ApiClient whose pool holds `pool_size` connections."""
    simple = simple_credentials(kubeconfig)
    if simple is not None:
        return KubeRest(kubeconfig, *simple, pool_size)
    from kubernetes.client import rest

    from graysteps.adapters.kube.client import api_client

    client = api_client(kubeconfig)
    client.configuration.connection_pool_maxsize = pool_size
    client.rest_client = rest.RESTClientObject(client.configuration)
    return ClientRest(client)


@contextlib.contextmanager
def as_transport(given: Any = None, pool_size: int = 4):
    """`given` as a transport: a KubeRest/ClientRest as it is, a kubernetes
    ApiClient wrapped in ClientRest, or (None) one connected from the default
    kubeconfig for the duration of the block."""
    if isinstance(given, (KubeRest, ClientRest)):
        yield given
    elif given is not None:
        yield ClientRest(given)
    else:
        own = connect(None, pool_size)
        try:
            yield own
        finally:
            own.close()
