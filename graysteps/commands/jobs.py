"""`graysteps jobs render --out DIR` and `graysteps jobs sync --url URL [--folder F] [--dry-run]`.

render writes DIR/<job>/config.xml for every pipeline in pipelines/ (pipeline-from-SCM jobs that carry their
parameters, so the UI exists before the first run; SERVICE offers the catalog's services). sync creates or updates them through python-jenkins with
the user and API token from $JENKINS_USER / $JENKINS_TOKEN (never argv), and prints what changed.
"""

from __future__ import annotations

from graysteps.commands._cluster_options import add_catalog_argument
from graysteps.commands._types import http_or_https_url, output_dir

NAME = "jobs"
HELP = "render or sync the Jenkins jobs (parameterized pipelines) graysteps ships"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    render = sub.add_parser("render", help="write DIR/<job>/config.xml for every pipeline")
    render.add_argument("--out", required=True, metavar="DIR", type=output_dir, help="output directory")
    sync = sub.add_parser("sync", help="create or update the jobs on a Jenkins server (user/token from env)")
    sync.add_argument("--url", required=True, metavar="URL", type=http_or_https_url, help="Jenkins URL, e.g. https://jenkins.example.com/")
    sync.add_argument("--folder", metavar="F", help="put the jobs in this folder (a/b for nested); created if missing")
    sync.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    for p in (render, sync):
        p.add_argument("--repo", metavar="URL", help="git repository holding pipelines/ (default: $GRAYSTEPS_JOBS_REPO, "
                                                     "else this checkout's origin, else the checkout itself)")
        p.add_argument("--branch", default="main", metavar="B", help="branch the jobs build from (default: main)")
        p.add_argument("--credentials-id", metavar="ID", help="Jenkins credentials id for the repository, if private")
        add_catalog_argument(p, "catalog whose services the SERVICE choices offer (default: $GRAYSTEPS_CATALOG, "
                                "else ./catalog.yaml)")


def _default_repo() -> str | None:
    import os
    import subprocess

    if os.environ.get("GRAYSTEPS_JOBS_REPO"):
        return os.environ["GRAYSTEPS_JOBS_REPO"]
    for command, fmt in ((["git", "config", "--get", "remote.origin.url"], "{}"),
                         (["git", "rev-parse", "--show-toplevel"], "file://{}")):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except OSError:
            return None
        if out:
            return fmt.format(out)
    return None


_REPOSITORY_FORMS = "https://HOST/PATH, ssh://[USER@]HOST/PATH, git://HOST/PATH, file:///PATH or USER@HOST:PATH"


def check_repository_url(repo: str, step: str) -> None:
    """A git repository URL Jenkins can clone, with no password in it (that is --credentials-id's job)."""
    import re
    import urllib.parse

    from graysteps.adapters.urls import mask_url
    from graysteps.errors import InvalidInput

    shown = mask_url(repo)[:200]
    if repo.startswith("-") or any(c.isspace() for c in repo):
        raise InvalidInput(f"--repo {shown!r} is not a repository URL: no leading '-' or spaces; use {_REPOSITORY_FORMS}",
                           step=step)
    if re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!/?-)[^\s:]+", repo):  # scp-like git@host:org/repo.git
        return
    try:
        parts = urllib.parse.urlsplit(repo)
        parts.port  # noqa: B018 (raises for a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("https", "http", "ssh", "git", "file") or \
            (parts.scheme != "file" and not parts.hostname) or not parts.path.strip("/"):
        raise InvalidInput(f"--repo {shown!r} is not a repository URL; use {_REPOSITORY_FORMS}", step=step)
    if parts.password is not None:
        raise InvalidInput(f"--repo {shown!r} holds a password: keep it in Jenkins credentials and pass "
                           "--credentials-id ID", step=step)


def _source(args):
    import re

    from graysteps.errors import InvalidInput
    from graysteps.adapters.jenkins.render import Source

    repo = args.repo if args.repo is not None else _default_repo()  # an empty --repo is refused below, not defaulted
    if repo is None:
        raise InvalidInput("no repository for the Jenkinsfiles: pass --repo URL or set GRAYSTEPS_JOBS_REPO", step=f"jobs {args.jobs_command}")
    step = f"jobs {args.jobs_command}"
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", args.branch) or args.branch.startswith("-"):
        raise InvalidInput(f"--branch {args.branch!r} is not a branch name (letters, digits, . _ / -)", step=step)
    check_repository_url(repo, step)
    if args.credentials_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", args.credentials_id):
        raise InvalidInput(f"--credentials-id {args.credentials_id[:80]!r} is not a Jenkins credentials id "
                           "(1-128 letters, digits, . _ -)", step=step)
    return Source(repo=repo, branch=args.branch, credentials_id=args.credentials_id)


def _services(args) -> list[str]:
    """The catalog's services, for the SERVICE choices."""
    from graysteps.model.catalog import load_catalog

    return load_catalog(args.catalog).names()


def _render(args) -> int:
    from graysteps.steps.jobs import render_jobs

    for path in render_jobs(args.out, _source(args), _services(args)):
        print(f"wrote {path}")
    return 0


def _credentials(step: str) -> tuple[str, str]:
    import os

    from graysteps.errors import InvalidInput

    user, token = os.environ.get("JENKINS_USER"), os.environ.get("JENKINS_TOKEN")
    if not user or not token:
        raise InvalidInput("set JENKINS_USER and JENKINS_TOKEN (a Jenkins API token) in the environment; "
                           "they are never taken from the command line", step=step)
    return user, token


def _sync(args) -> int:
    import re

    from graysteps.adapters.urls import mask_url
    from graysteps.errors import InvalidInput
    from graysteps.steps.jobs import STEP as step
    from graysteps.steps.jobs import sync_jobs

    shown = mask_url(args.url)  # an http(s) URL with a host and a valid port: checked as it was parsed
    if args.folder is not None and not re.fullmatch(r"(?!\.\.?(/|$))[\w.-]+(/(?!\.\.?(/|$))[\w.-]+)*", args.folder, re.ASCII):
        raise InvalidInput(f"--folder {args.folder!r} is not a folder path (names of letters, digits, . _ -, joined by /)", step=step)
    source = _source(args)
    services = _services(args)
    user, token = _credentials(step)
    version, changes = sync_jobs(args.url, user, token, source, services, folder=args.folder, dry_run=args.dry_run)
    width = max(len(c.action) for c in changes)
    for change in changes:
        print(f"{change.action:<{width}}  {change.name}")
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in counts.items())
    print(f"jobs sync: Jenkins {version} at {shown}: {summary}" + (" (dry run: nothing written)" if args.dry_run else ""))
    return 0


def run(args) -> int:
    return _render(args) if args.jobs_command == "render" else _sync(args)
