"""The Jenkins jobs graysteps ships (pipelines/): write their config.xml, or sync them to a server.

The one thing to know: the server's credentials come from the caller (the
command reads JENKINS_USER / JENKINS_TOKEN from the environment), never from
the command line, and sync is safe to repeat: it creates or updates only the
jobs that differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from graysteps.adapters.jenkins import sync as jenkins_sync
from graysteps.adapters.jenkins.render import Source, render_all, write_all
from graysteps.errors import GraystepsError

STEP = jenkins_sync.STEP


def render_jobs(out: str, source: Source, services: Sequence[str]) -> list[Path]:
    """Write every job's config.xml under `out`; returns the paths written."""
    return list(write_all(out, source, services))


def sync_jobs(url: str, user: str, token: str, source: Source, services: Sequence[str], *, folder: str | None,
              dry_run: bool) -> tuple[str, list]:
    """Create or update the jobs on the Jenkins at `url`; returns (Jenkins' version, the changes)."""
    import jenkins
    import requests

    server = jenkins_sync.connect(url, user, token)
    try:
        server.get_whoami()  # first: it settles the auth that get_version then reuses
        version = server.get_version()
    except (jenkins.JenkinsException, requests.RequestException) as e:
        reason = "rejected the user or token" if "401" in str(e) or "403" in str(e) else f"did not answer ({e})"
        raise GraystepsError(f"Jenkins at {url} {reason}; check the URL and JENKINS_USER={user!r} / JENKINS_TOKEN",
                             step=STEP) from e
    try:
        changes = jenkins_sync.sync_jobs(server, render_all(source, services), folder=folder, dry_run=dry_run)
    except requests.RequestException as e:
        raise GraystepsError(f"lost Jenkins at {url}: {e}; rerun, sync is safe to repeat", step=STEP) from e
    return version, changes
