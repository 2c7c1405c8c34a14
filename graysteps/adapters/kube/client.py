"""The Kubernetes client, configured the usual way (kubernetes is imported lazily)."""

from __future__ import annotations

import os
from typing import Any

from graysteps.errors import GraystepsError


def _regular_file(path: str, where: str) -> None:
    """The kubernetes client opens and reads a kubeconfig as it is: a FIFO would block it forever, a device
    never end. Like every file graysteps reads (adapters.reading), it must be a regular file (stat does not block)."""
    from graysteps.adapters.reading import not_regular

    kind = not_regular(os.stat(path).st_mode)
    if kind:
        raise GraystepsError(f"kubeconfig {path} ({where}) is not a regular file: it is {kind}; "
                             "give the kubeconfig file itself")


def api_client(kubeconfig: str | None = None) -> Any:
    """An ApiClient from `kubeconfig`, else $KUBECONFIG, else ~/.kube/config,
    else the in-cluster service account."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            if not os.path.exists(kubeconfig):
                raise GraystepsError(f"kubeconfig {kubeconfig} not found; pass --kubeconfig FILE or set KUBECONFIG")
            _regular_file(kubeconfig, "--kubeconfig")
            return config.new_client_from_config(config_file=kubeconfig)
        default = os.path.expanduser("~/.kube/config")
        if os.environ.get("KUBECONFIG"):  # may list several files (':'-separated); they are merged
            for path in os.environ["KUBECONFIG"].split(os.pathsep):
                if path and os.path.exists(path):
                    _regular_file(path, "$KUBECONFIG")
            return config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
        if os.path.exists(default):
            return config.new_client_from_config(config_file=default)
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    except ConfigException as e:
        raise GraystepsError(
            f"no usable cluster credentials ({e}); pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account"
        ) from e
