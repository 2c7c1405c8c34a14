"""Where `whitelist sync --source` may read from: the administrator's policy.

The one thing to know: the policy comes from the agent's environment or an
administrator's config file, never from the command's own arguments, so whoever
can start the whitelist-sync job (and so pick SOURCE) cannot widen it.

  files  under one of the allowed roots, symlinks resolved first:
         $GRAYSTEPS_SYNC_ROOTS (directories separated by ':'), else the config
         file's `sync.roots`, else the working directory (in Jenkins: the workspace).
  URLs   http(s) only, and only to a host on the allow-list:
         $GRAYSTEPS_SYNC_URL_HOSTS (comma-separated `host` or `host:port`), else
         the config file's `sync.url_hosts`; empty by default, so no URL is allowed.

The config file is $GRAYSTEPS_CONFIG, else /etc/graysteps/config.yaml (optional):

    sync:
      roots: [/srv/exports]
      url_hosts: [crm.example.com, 10.0.0.5:8443]
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import Mapping

from graysteps.adapters.urls import mask_url
from graysteps.errors import InvalidInput

ROOTS_ENV = "GRAYSTEPS_SYNC_ROOTS"
HOSTS_ENV = "GRAYSTEPS_SYNC_URL_HOSTS"
CONFIG_ENV = "GRAYSTEPS_CONFIG"
DEFAULT_CONFIG = "/etc/graysteps/config.yaml"
WHAT = "--source"


@dataclass(frozen=True)
class SourcePolicy:
    roots: tuple[str, ...]  # real paths of the directories files may be read from
    url_hosts: frozenset[str]  # lower-case `host` or `host:port`
    origin: str  # where the policy came from, for messages

    def check(self, location: str) -> None:
        """Nothing if `location` is allowed; InvalidInput saying why not (the source is never read)."""
        if location.lower().startswith(("http://", "https://")):
            self._check_url(location)
        elif "://" in location:
            raise InvalidInput(f"{WHAT} {mask_url(location)!r}: use a file path or an http(s):// URL")
        else:
            self._check_file(location)

    def _check_file(self, path: str) -> None:
        if "\0" in path:
            raise InvalidInput(f"{WHAT} {path!r}: a path holds no NUL character")
        real = os.path.realpath(path)
        for root in self.roots:
            if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
                return
        raise InvalidInput(
            f"{WHAT} {path!r}: outside the directories sync may read ({', '.join(self.roots)}; {self.origin}); "
            f"put the file there, or have an administrator set ${ROOTS_ENV}")

    def _check_url(self, url: str) -> None:
        shown = mask_url(url)
        try:
            parts = urllib.parse.urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            raise InvalidInput(f"{WHAT} {shown}: not a valid URL") from None
        if not host:
            raise InvalidInput(f"{WHAT} {shown}: a URL needs a host")
        if host not in self.url_hosts and f"{host}:{port}" not in self.url_hosts:
            allowed = ", ".join(sorted(self.url_hosts)) or "none"
            raise InvalidInput(
                f"{WHAT} {shown}: host {host!r} is not on the allow-list (allowed: {allowed}); "
                f"an administrator adds hosts with ${HOSTS_ENV} or sync.url_hosts in ${CONFIG_ENV}")


def _split(value: str, separator: str) -> list[str]:
    return [v.strip() for v in value.split(separator) if v.strip()]


def _config(env: Mapping[str, str]) -> tuple[dict, str]:
    path = env.get(CONFIG_ENV) or DEFAULT_CONFIG
    if not env.get(CONFIG_ENV) and not os.path.exists(path):
        return {}, ""
    from graysteps.adapters import reading

    text = reading.read_text(path, what="config file")
    data = reading.parse_yaml(text, what="config file", name=path) or {}
    sync = data.get("sync") if isinstance(data, dict) else None
    if sync is None:
        return {}, path
    if not isinstance(sync, dict) or not all(
            isinstance(sync.get(k, []), list) and all(isinstance(v, str) for v in sync.get(k, []))
            for k in ("roots", "url_hosts")):
        raise InvalidInput(f"config file {path}: `sync` must map roots and url_hosts to lists of strings")
    return sync, path


def load_policy(env: Mapping[str, str] | None = None, cwd: str | None = None) -> SourcePolicy:
    """The policy in force: environment first, then the config file, then the defaults."""
    env = os.environ if env is None else env
    config, config_path = _config(env)
    if env.get(ROOTS_ENV):
        roots, roots_origin = _split(env[ROOTS_ENV], os.pathsep), f"${ROOTS_ENV}"
    elif config.get("roots"):
        roots, roots_origin = config["roots"], f"sync.roots in {config_path}"
    else:
        roots, roots_origin = [cwd or os.getcwd()], "the working directory"
    if env.get(HOSTS_ENV):
        hosts = _split(env[HOSTS_ENV], ",")
    else:
        hosts = config.get("url_hosts") or []
    for root in roots:
        if not os.path.isabs(root):
            raise InvalidInput(f"sync root {root!r} ({roots_origin}) must be an absolute path")
    return SourcePolicy(
        roots=tuple(os.path.realpath(r) for r in roots),
        url_hosts=frozenset(h.lower() for h in hosts),
        origin=f"roots from {roots_origin}",
    )
