"""Build a service's image through any Docker API (Docker, podman), push it,
and record the pushed digest for the deploy step.

    result = build_image(BuildRequest(service="test-a", context="app/", tag="1.4.2",
                                      registry="registry.example:5000"), push=True)
    write_build_record(result)      # .graysteps/build-test-a.json, read by deploy

The endpoint is $DOCKER_HOST (or `docker_host=`). Push credentials come from
$REGISTRY_USER / $REGISTRY_PASSWORD, else from the docker config
($DOCKER_CONFIG/config.json, which the docker SDK reads itself); they never
appear in argv, in the build log or in the record.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.model.images import _DIGEST, REGISTRY_RE, TAG_RE, BuildResult, ImageReference, parse_image

STEP = "build"
LABEL_PREFIX = "io.graysteps"
PROFILES = ("prod", "gray")

PUSHED_DIGEST_RE = re.compile(rf"digest: ({_DIGEST})")
# How Docker and podman report a registry's 401 (distribution: "unauthorized: authentication required").
AUTH_FAILED_RE = re.compile(r"unauthorized|authentication required|no basic auth credentials", re.IGNORECASE)






@dataclass(frozen=True)
class BuildRequest:
    """What to build. `profile` is the environment the image is built for (a label)."""

    service: str
    context: str
    tag: str
    dockerfile: str = "Dockerfile"
    registry: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    profile: str = "gray"
    revision: str | None = None  # None: $GIT_COMMIT, else `git rev-parse HEAD` in the context

    @property
    def image(self) -> ImageReference:
        repository = f"{self.registry.rstrip('/')}/{self.service}" if self.registry else self.service
        return parse_image(f"{repository}:{self.tag}", what="image")




def validate_request(request: BuildRequest) -> None:
    """Raise InvalidInput for anything the build would fail on late (nothing built yet)."""
    from graysteps.model.catalog import check_service_name

    check_service_name(request.service)
    if not TAG_RE.match(request.tag or ""):
        raise InvalidInput(f"--tag {request.tag!r} is not a valid tag: use 1-128 of [A-Za-z0-9_.-], "
                           "not starting with '.' or '-'")
    if request.registry is not None and not REGISTRY_RE.match(request.registry):
        raise InvalidInput(f"--registry {request.registry!r} is not a registry address: use HOST[:PORT][/PATH], "
                           "e.g. registry.example:5000/team")
    if request.profile not in PROFILES:
        raise InvalidInput(f"--profile {request.profile!r} is not allowed: use one of {', '.join(PROFILES)}")
    context = Path(request.context)
    if not context.is_dir():
        raise InvalidInput(f"--context {request.context!r} is not a directory")
    dockerfile = context / request.dockerfile
    if not dockerfile.is_file():
        raise InvalidInput(f"--dockerfile {request.dockerfile!r} does not exist in the context {request.context!r}")
    for key in request.build_args:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise InvalidInput(f"--build-arg name {key!r} is not valid: use letters, digits and '_'")
    request.image  # noqa: B018 (raises InvalidInput when the combination is not a reference)


def git_revision(directory: str) -> str | None:
    """$GIT_COMMIT (Jenkins sets it), else `git rev-parse HEAD` in `directory`, else None."""
    env = os.environ.get("GIT_COMMIT")
    if env:
        return env
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def oci_labels(request: BuildRequest, revision: str | None, *, created: datetime.datetime | None = None) -> dict:
    """OCI annotation labels plus graysteps' own (service, profile).

    `created` defaults to $SOURCE_DATE_EPOCH (reproducible builds), else now."""
    if created is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        created = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch.isdigit()
                   else datetime.datetime.now(datetime.timezone.utc))
    labels = {
        "org.opencontainers.image.title": request.service,
        "org.opencontainers.image.version": request.tag,
        "org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{LABEL_PREFIX}.service": request.service,
        f"{LABEL_PREFIX}.profile": request.profile,
    }
    if revision:
        labels["org.opencontainers.image.revision"] = revision
    return labels


def registry_auth(registry: str | None, env: Mapping[str, str] | None = None) -> dict | None:
    """Credentials from $REGISTRY_USER / $REGISTRY_PASSWORD, or None (the docker config then applies)."""
    env = os.environ if env is None else env
    user, password = env.get("REGISTRY_USER"), env.get("REGISTRY_PASSWORD")
    if not user and not password:
        return None
    if not (user and password):
        raise InvalidInput("set both REGISTRY_USER and REGISTRY_PASSWORD, or neither (the docker config is used then)")
    auth = {"username": user, "password": password}
    if registry:
        auth["serveraddress"] = registry_host(registry)
    return auth


def registry_host(registry: str | None) -> str:
    """The registry's HOST[:PORT] (what credentials are for); Docker Hub when there is none."""
    return registry.split("/", 1)[0] if registry else "docker.io"


def docker_client(docker_host: str | None = None):
    """A docker SDK client for `docker_host`, else $DOCKER_HOST / the default socket."""
    import docker

    try:
        if docker_host:
            return docker.DockerClient(base_url=docker_host, timeout=600)
        return docker.from_env(timeout=600)
    except docker.errors.DockerException as e:
        where = docker_host or os.environ.get("DOCKER_HOST") or "the default Docker socket"
        raise GraystepsError(f"cannot reach the Docker API at {where}: {e}; set DOCKER_HOST "
                             "(e.g. unix:///run/podman/podman.sock)", step=STEP) from e


def build_image(request: BuildRequest, *, push: bool = False, docker_host: str | None = None,
                log: Callable[[str], None] = print, auth: dict | None = None) -> BuildResult:
    """Build (and optionally push) the image for `request`; the log streams to `log` line by line."""
    import docker

    validate_request(request)
    revision = request.revision or git_revision(request.context)
    labels = oci_labels(request, revision)
    image = request.image
    auth = auth if auth is not None else (registry_auth(request.registry) if push else None)
    client = docker_client(docker_host)
    try:
        try:
            chunks = client.api.build(
                path=str(request.context), dockerfile=request.dockerfile, tag=str(image),
                buildargs=dict(request.build_args), labels=labels, rm=True, forcerm=True, decode=True,
            )
            image_id = _follow_build(chunks, log, image)
            if not image_id:
                image_id = client.images.get(str(image)).id
            result = BuildResult(request.service, request.profile, str(image), image_id, labels)
            if push:
                digest = _push(client, image, registry_host(request.registry), auth, log)
                result = BuildResult(**{**asdict(result), "pushed": True, "digest": digest})
        except docker.errors.APIError as e:
            raise GraystepsError(f"the Docker API refused the request for {image}: {e.explanation or e}",
                                 step=STEP) from e
        except docker.errors.DockerException as e:
            raise GraystepsError(f"Docker API error for {image}: {e}", step=STEP) from e
    finally:
        client.close()
    return result


def _follow_build(chunks: Iterable[dict], log: Callable[[str], None], image: ImageReference) -> str | None:
    image_id = None
    for chunk in chunks:
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise GraystepsError(f"building {image} failed: {detail.strip()}; see the build log above", step=STEP)
        text = chunk.get("stream")
        if text:
            for line in text.rstrip("\n").splitlines():
                log(line)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
    return image_id


def _push(client, image: ImageReference, registry: str, auth: dict | None, log: Callable[[str], None]) -> str:
    """Push `image` to `registry` (HOST[:PORT]); the registry's manifest digest. The credentials are never logged."""
    digest = None
    for chunk in client.api.push(image.repository, image.tag, stream=True, decode=True, auth_config=auth):
        if "error" in chunk:
            detail = (chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
            raise _push_failed(image, registry, auth, detail)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):  # Docker
            digest = aux["Digest"]
        status = chunk.get("status")
        if status:
            if "progressDetail" not in chunk or not chunk.get("progressDetail"):
                log(status)
            found = PUSHED_DIGEST_RE.search(status)  # Docker and podman: "<tag>: digest: sha256:… size: N"
            if found:
                digest = digest or found.group(1)
    if not digest:
        raise GraystepsError(f"pushed {image} but the Docker API reported no digest; deploy would not be pinned",
                             step=STEP)
    return digest


def _push_failed(image: ImageReference, registry: str, auth: dict | None, detail: str) -> GraystepsError:
    """The error for a failed push: an authentication failure says so first, naming the registry."""
    password = (auth or {}).get("password")
    if password:
        detail = detail.replace(password, "***")
    if not AUTH_FAILED_RE.search(detail):
        return GraystepsError(f"pushing {image} failed: {detail}; check the registry address and the credentials "
                              "(REGISTRY_USER/REGISTRY_PASSWORD or the docker config)", step=STEP)
    if auth:
        why = (f"the registry {registry} refused the credentials of user {auth.get('username')!r} "
               "(authentication failed): check REGISTRY_USER/REGISTRY_PASSWORD")
    else:
        why = (f"the registry {registry} requires a login (authentication failed) and was given no credentials "
               "it accepts: set REGISTRY_USER and REGISTRY_PASSWORD, or log in to it in the docker config")
    return GraystepsError(f"pushing {image} failed: {why}; the registry said: {detail}", step=STEP)






