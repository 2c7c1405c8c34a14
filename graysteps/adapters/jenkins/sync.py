"""Create or update graysteps' Jenkins jobs through python-jenkins, idempotently.

A job whose live config.xml already equals the rendered one (compared as XML, ignoring the `plugin`
version attributes and the order of job properties that Jenkins itself adds or reorders) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from graysteps.errors import GraystepsError

STEP = "jobs sync"
FOLDER_MODE = "com.cloudbees.hudson.plugins.folder.Folder"


@dataclass(frozen=True)
class JobChange:
    name: str  # full name, folder included
    action: str  # "created" | "updated" | "unchanged" (dry run: "would create" | "would update")


def canonical_xml(text: str) -> str:
    """A job config.xml in a form that does not change when Jenkins re-saves it."""
    from defusedxml import ElementTree as SafeET  # the server's XML is not ours: no entities, no DTDs
    from xml.etree import ElementTree as ET

    root = SafeET.fromstring(text.encode("utf-8"))
    for element in root.iter():
        element.attrib.pop("plugin", None)
        if element.text is not None and not element.text.strip():
            element.text = None
        element.tail = None
    for properties in root.iter("properties"):
        properties[:] = sorted(properties, key=lambda e: e.tag)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"))


def connect(url: str, user: str, token: str, timeout: float = 30):
    import jenkins

    return jenkins.Jenkins(url, username=user, password=token, timeout=timeout)


def _exists(server, name: str) -> bool:
    import jenkins

    try:
        return server.get_job_name(name) is not None
    except jenkins.NotFoundException:
        return False


def _ensure_folder(server, folder: str, dry_run: bool) -> list[JobChange]:
    """Create each missing level of `a/b/c`."""
    changes = []
    parts = folder.split("/")
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        if _exists(server, path):
            continue
        if not dry_run:
            server.create_folder(path)
        changes.append(JobChange(path, "would create folder" if dry_run else "created folder"))
    return changes


def sync_jobs(server, jobs: dict[str, str], *, folder: str | None = None, dry_run: bool = False) -> list[JobChange]:
    """Make every job in `jobs` (name → config.xml) exist on the server with that config.

    Returns what changed, job by job. Safe to repeat: a second run reports every job unchanged.
    """
    import jenkins

    changes = _ensure_folder(server, folder, dry_run) if folder else []
    for short_name, xml in jobs.items():
        name = f"{folder}/{short_name}" if folder else short_name
        try:
            if not _exists(server, name):
                if not dry_run:
                    server.create_job(name, xml)
                changes.append(JobChange(name, "would create" if dry_run else "created"))
            elif canonical_xml(server.get_job_config(name)) == canonical_xml(xml):
                changes.append(JobChange(name, "unchanged"))
            else:
                if not dry_run:
                    server.reconfig_job(name, xml)
                changes.append(JobChange(name, "would update" if dry_run else "updated"))
        except jenkins.JenkinsException as e:
            done = ", ".join(f"{c.name} {c.action}" for c in changes) or "nothing"
            raise GraystepsError(
                f"job {name}: {e}. Done before it: {done}. Fix the cause and rerun; sync is safe to repeat.",
                step=STEP, result=changes,
            ) from e
    return changes
