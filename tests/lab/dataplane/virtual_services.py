"""VirtualServices for the data-plane tests, made by graysteps' own strategies
(`graysteps.routing.operations.apply_strategy`) for the example catalog's
services, and the route destinations of their profiles."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from graysteps.model.catalog import ServiceSpec, load_catalog
from graysteps.routing.operations import apply_strategy
from graysteps.model.strategy import parse_strategy

CATALOG = str(Path(__file__).resolve().parents[3] / "examples" / "catalog.yaml")
SUBSETS_NAMESPACE = "shop"


def service_spec(service: str, layout: str = "namespaces") -> ServiceSpec:
    """The example catalog's service; `layout="subsets"` moves it into one namespace with subsets."""
    spec = load_catalog(CATALOG).service(service)
    if layout == "subsets":
        spec = dataclasses.replace(spec, layout="subsets",
                                   namespaces={"prod": SUBSETS_NAMESPACE, "gray": SUBSETS_NAMESPACE})
    return spec


def strategy_vs(service: str, strategy: str, weight: int | None = None, base: dict | None = None,
                layout: str = "namespaces") -> dict:
    """The VirtualService graysteps writes for `strategy` (on `base`, or a new one)."""
    return apply_strategy(base, service_spec(service, layout), parse_strategy(strategy, weight))


def destination(layout: str = "namespaces") -> Callable[[str, str], dict]:
    """(service, profile) -> the route destination graysteps writes for that profile."""
    return lambda service, profile: service_spec(service, layout).destination(profile)
