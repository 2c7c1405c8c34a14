"""The Deployment and Service of one service in one environment, rendered from resources/k8s/.

Templates are parsed first (yaml.safe_load) and filled afterwards, value by
value, so no input can add or change YAML structure. Groovy reads the same
files with libraryResource; a wheel installs them under
<prefix>/share/graysteps/resources.
"""

from __future__ import annotations

import json
import os
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.model.images import ImageReference, parse_image, read_build_record

MANAGED_BY = "graysteps"  # the app.kubernetes.io/managed-by label of what deploy renders


ENVIRONMENTS = ("prod", "gray")


TEMPLATES = ("deployment.yaml", "service.yaml")


DEFAULT_PROGRESS_DEADLINE = 600


_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def resources_dir() -> Path:
    """resources/k8s: $GRAYSTEPS_RESOURCES/k8s, else the checkout's (next to the package), else the
    copy a wheel installs under <prefix>/share/graysteps/resources (setup.cfg's data_files)."""
    candidates = []
    if os.environ.get("GRAYSTEPS_RESOURCES"):
        candidates.append(Path(os.environ["GRAYSTEPS_RESOURCES"]) / "k8s")
    checkout = Path(__file__).resolve().parents[2]  # graysteps/steps/deploy.py -> the checkout
    candidates += [checkout / "resources" / "k8s",
                   Path(sys.prefix) / "share" / "graysteps" / "resources" / "k8s"]
    for candidate in candidates:
        if all((candidate / t).is_file() for t in TEMPLATES):
            return candidate
    raise GraystepsError(f"the Kubernetes templates {', '.join(TEMPLATES)} were not found in "
                         f"{', '.join(map(str, candidates))}; set GRAYSTEPS_RESOURCES to the library's resources/",
                         )


def check_environment(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise InvalidInput(f"--env {env!r} is not allowed: use one of {', '.join(ENVIRONMENTS)}")
    return env


def parse_replicas(value: object) -> int:
    """A replica count 0-1000 (int or its decimal text); InvalidInput otherwise."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) > 1000:
        raise InvalidInput(f"--replicas {value!r} is not allowed: use an integer from 0 to 1000")
    return int(text)


def label_value(text: str) -> str:
    """`text` made a valid label value (≤63 chars of [A-Za-z0-9-_.], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")
    return value if _LABEL_VALUE_RE.match(value) else "unknown"


def image_version(image: ImageReference) -> str:
    """The `version` label: the tag, else the digest's first 12 hex digits."""
    if image.tag:
        return label_value(image.tag)
    if image.digest:
        return image.digest.split(":", 1)[1][:12]
    return "latest"


def pin_image(image: ImageReference, service: str, record_path: str | None = None) -> ImageReference:
    """`image` pinned by the digest `graysteps build --push` recorded for the same repository:tag."""
    if image.digest:
        return image
    record = read_build_record(service, record_path)
    if record is None or not record.digest:
        return image
    built = parse_image(record.image, what="build record image")
    if (built.repository, built.tag) != (image.repository, image.tag):
        return image
    return image.pinned(record.digest)


def deployment_ref(spec: Any, env: str) -> tuple[str, str]:
    """(namespace, name) of the Deployment of catalog service `spec` in `env`.

    Namespace layout (the seed's): `<service>` in the env's namespace. Subsets
    layout (one namespace): `<service>-<env>`.
    """
    check_environment(env)
    name = f"{spec.name}-{env}" if getattr(spec, "layout", "namespaces") == "subsets" else spec.name
    return spec.namespaces[env], name


@dataclass(frozen=True)
class Manifests:
    """The rendered objects of one service in one environment."""

    service: str
    env: str
    image: str
    deployment: dict
    service_object: dict

    @property
    def objects(self) -> list[dict]:
        return [self.deployment, self.service_object]

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump_all(self.objects, sort_keys=False, default_flow_style=False)


def render_manifests(spec: Any, env: str, image: str, *, replicas: int = 1,
                     progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE,
                     template_dir: str | os.PathLike | None = None) -> Manifests:
    """The Deployment and Service of catalog service `spec` in `env`, running `image`.

    `spec` is a catalog ServiceSpec (name, layout, namespaces, port). Raises
    InvalidInput for an unknown env, a bad image reference or replica count.
    """
    import yaml

    check_environment(env)
    ref = parse_image(image)
    replicas = parse_replicas(replicas)
    service = spec.name
    namespace, deployment_name = deployment_ref(spec, env)
    version = image_version(ref)
    shared_namespace = getattr(spec, "layout", "namespaces") == "subsets"
    selector = {"app": service, "profile": env}
    labels = {
        **selector,
        "version": version,
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/instance": f"{service}-{env}",
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    # Subsets layout: one Service in front of both profiles; DestinationRule subsets split by `profile`.
    service_labels = ({"app": service, "app.kubernetes.io/name": service, "app.kubernetes.io/managed-by": MANAGED_BY}
                      if shared_namespace else labels)
    values = {
        "service": service, "namespace": namespace, "profile": env, "image": str(ref),
        "deployment_name": deployment_name,
        "replicas": replicas, "port": int(spec.port), "progress_deadline_seconds": progress_deadline_seconds,
        "labels": labels, "selector": selector,
        "service_labels": service_labels, "service_selector": {"app": service} if shared_namespace else selector,
    }
    directory = Path(template_dir) if template_dir else resources_dir()
    rendered = []
    for name in TEMPLATES:
        template = yaml.safe_load((directory / name).read_text(encoding="utf-8"))
        rendered.append(fill_template(template, values, where=str(directory / name)))
    return Manifests(service, env, str(ref), rendered[0], rendered[1])


_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


def fill_template(node: Any, values: Mapping[str, Any], *, where: str) -> Any:
    """A copy of the parsed template with every `${name}` filled from `values`.

    A scalar that is exactly `${name}` becomes the value itself (any type, a
    deep copy); placeholders inside longer strings are formatted as text.
    """
    if isinstance(node, dict):
        return {fill_template(k, values, where=where): fill_template(v, values, where=where) for k, v in node.items()}
    if isinstance(node, list):
        return [fill_template(v, values, where=where) for v in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        for name in _PLACEHOLDER.findall(node):
            if name not in values:
                raise GraystepsError(f"template {where} uses ${{{name}}}, which graysteps does not provide; "
                                     f"known: {', '.join(sorted(values))}")
        if whole:
            return json.loads(json.dumps(values[whole.group(1)]))
        return string.Template(node).substitute({k: str(v) for k, v in values.items()})
    return node
