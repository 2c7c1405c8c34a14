"""The corpus of real VirtualServices (tests/routing/corpus/): each file with the
catalog entry graysteps would be given for it (corpus/cases.yaml), and every chain of
strategies each case is run through.

`outcomes()` yields, for every case and chain, the VirtualService graysteps makes (or
the refusal it must give). It is the hook for checks that need more than the object:
test_corpus.py validates every output with `istioctl validate`; a check that sends
traffic through istiod and Envoy takes the same outcomes, loads `outcome.rendered` and
`outcome.case.destination_rules` into the mesh and asks where each request lands
(`outcome.case.service` names prod and gray).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from graysteps.model.strategy import STRATEGIES, Strategy, parse_strategy

CORPUS = Path(__file__).parent / "corpus"

SINGLE = [[parse_strategy(n, 20 if n == "weight" else None)] for n in STRATEGIES]
CHAINS = SINGLE + [
    [parse_strategy("whitelist"), parse_strategy("weight", 30), parse_strategy("promote")],
    [parse_strategy("weight", 10), parse_strategy("linked"), parse_strategy("balanced")],
    [parse_strategy("promote"), parse_strategy("rollback"), parse_strategy("weight", 70)],
]


@dataclass
class Case:
    file: str
    service_name: str
    catalog_entry: dict
    refused: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return CORPUS / self.file

    @property
    def documents(self) -> list:
        return [d for d in yaml.safe_load_all(self.path.read_text()) if d is not None]

    @property
    def destination_rules(self) -> list[dict]:
        return [d for d in self.documents if d.get("kind") == "DestinationRule"]

    def service(self, tmp_dir: Path):
        from graysteps.model.catalog import load_catalog

        catalog = tmp_dir / f"{self.path.stem}.catalog.yaml"
        catalog.write_text(yaml.safe_dump({"services": {self.service_name: self.catalog_entry}}))
        return load_catalog(str(catalog)).service(self.service_name)

    def original(self, service) -> dict:
        """The file's VirtualService, found by kind (by name when there are several), as render --from does."""
        from graysteps.commands.render import read_virtual_service_file

        return read_virtual_service_file(str(self.path), service.vs_name)

    def refusal(self, strategy: Strategy) -> str | None:
        return self.refused.get(strategy.name) or self.refused.get("all")


def cases() -> list[Case]:
    table = yaml.safe_load((CORPUS / "cases.yaml").read_text())
    return [Case(file, entry["service"], entry["catalog"], entry.get("refused") or {}) for file, entry in table.items()]


def chain_id(chain: list[Strategy]) -> str:
    return "-".join(s.label for s in chain)
