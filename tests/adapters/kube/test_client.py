import pytest

from graysteps.errors import GraystepsError
from graysteps.adapters.kube.client import api_client


def test_a_missing_kubeconfig_is_named_with_what_to_do(tmp_path):
    with pytest.raises(GraystepsError, match=rf"kubeconfig {tmp_path}/none not found; pass --kubeconfig FILE or set KUBECONFIG"):
        api_client(str(tmp_path / "none"))


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_kubeconfig_that_is_not_a_regular_file_is_refused_before_the_client_blocks_on_it(tmp_path, monkeypatch, how):
    """A FIFO with no writer blocked the kubernetes client's open() for ever; /dev/zero never ends."""
    import os

    os.mkfifo(tmp_path / "fifo")
    for path in (str(tmp_path / "fifo"), "/dev/zero", str(tmp_path)):
        monkeypatch.setenv("KUBECONFIG", path)
        with pytest.raises(GraystepsError, match=rf"kubeconfig {path} \(\S+\) is not a regular file"):
            api_client(path if how == "argument" else None)


def test_without_any_credentials_the_error_says_where_they_are_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(GraystepsError, match="no usable cluster credentials .*pass --kubeconfig FILE, set KUBECONFIG"):
        api_client()


@pytest.mark.world
def test_kubeconfig_comes_from_the_argument_or_the_environment(kube, monkeypatch):
    from kubernetes import client

    with api_client(kube.kubeconfig) as given:
        assert client.VersionApi(given).get_code().major == "1"
    monkeypatch.setenv("KUBECONFIG", kube.kubeconfig)
    with api_client() as from_env:
        assert from_env.configuration.host == kube.server
