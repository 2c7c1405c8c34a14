"""Image references and the build record that carries one from `build` to `deploy`.

An image is `[REGISTRY/]NAME[:TAG][@sha256:DIGEST]`, checked against Docker's
reference grammar; the record (`.graysteps/build-<service>.json`) is how deploy
pins the image build pushed to its digest.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from graysteps.adapters.files import write_text_atomically
from graysteps.errors import GraystepsError, InvalidInput


RECORD_DIR = ".graysteps"


# A Docker image reference, as distribution/reference's grammar (lower-case path components).
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"


_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"


_TAG = r"[\w][\w.-]{0,127}"


_DIGEST = r"sha256:[0-9a-f]{64}"


IMAGE_RE = re.compile(
    rf"^(?P<repository>(?:(?P<domain>{_DOMAIN})/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)


TAG_RE = re.compile(rf"^{_TAG}$")


REGISTRY_RE = re.compile(rf"^{_DOMAIN}(?:/{_COMPONENT})*$")


@dataclass(frozen=True)
class ImageReference:
    """`repository[:tag][@digest]`, checked against the Docker reference grammar."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def pinned(self, digest: str) -> "ImageReference":
        """The same image pinned to `digest` (the tag stays, for the reader; the digest wins)."""
        return ImageReference(self.repository, self.tag, digest)


def parse_image(text: str, *, what: str = "--image") -> ImageReference:
    """`text` as an image reference, else InvalidInput naming it and the allowed form."""
    m = IMAGE_RE.match(text or "")
    if not m or len(m.group("repository")) > 255:
        raise InvalidInput(
            f"{what} {text!r} is not a valid image reference: use [REGISTRY/]NAME[:TAG][@sha256:DIGEST] "
            "with a lower-case name, e.g. registry.example:5000/test-a:1.4.2")
    return ImageReference(m.group("repository"), m.group("tag"), m.group("digest"))


@dataclass(frozen=True)
class BuildResult:
    """What the build step did: the image it made and, if pushed, the digest in the registry."""

    service: str
    profile: str
    image: str  # repository:tag
    image_id: str
    labels: dict
    pushed: bool = False
    digest: str | None = None  # the registry's manifest digest, once pushed

    @property
    def pinned_image(self) -> str:
        """`repository:tag@digest` when the digest is known, else `repository:tag`."""
        ref = parse_image(self.image, what="image")
        return str(ref.pinned(self.digest)) if self.digest else str(ref)

    def to_json(self) -> dict:
        return {**asdict(self), "pinned_image": self.pinned_image}


def record_path(service: str, directory: str | os.PathLike = RECORD_DIR) -> Path:
    return Path(directory) / f"build-{service}.json"


def write_build_record(result: BuildResult, path: str | os.PathLike | None = None) -> Path:
    """Write the record deploy reads (atomically); returns its path."""
    target = Path(path) if path else record_path(result.service)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(target, json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")


def read_build_record(service: str, path: str | os.PathLike | None = None) -> BuildResult | None:
    """The build record for `service` (None when there is none); GraystepsError when unreadable."""
    source = Path(path) if path else record_path(service)
    if not source.is_file():
        if path:
            raise InvalidInput(f"--build-record {str(path)!r} does not exist")
        return None
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        data.pop("pinned_image", None)
        result = BuildResult(**data)
    except (ValueError, TypeError) as e:
        raise GraystepsError(f"build record {source} is not valid: {e}; rerun `graysteps build`", step="build") from e
    if result.service != service:
        raise InvalidInput(f"build record {source} is for service {result.service!r}, not {service!r}")
    return result
