"""The Kubernetes client, configured the usual way (kubernetes is imported lazily)."""

from __future__ import annotations

import os
from typing import Any

from graysteps.errors import GraystepsError


def api_client(kubeconfig: str | None = None) -> Any:
    """An ApiClient from `kubeconfig`, else $KUBECONFIG, else ~/.kube/config,
    else the in-cluster service account."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            if not os.path.exists(kubeconfig):
                raise GraystepsError(f"kubeconfig {kubeconfig} not found; pass --kubeconfig FILE or set KUBECONFIG")
            return config.new_client_from_config(config_file=kubeconfig)
        default = os.path.expanduser("~/.kube/config")
        if os.environ.get("KUBECONFIG"):  # may list several files (':'-separated); they are merged
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
