"""Fixture pairs, as jenkins-job-builder keeps them: each directory under
fixtures/ holds `strategy.yaml` (service, strategy, weight, catalog), an
optional `before.yaml` (the live VirtualService; absent = none yet) and
`after.yaml` (what graysteps must make of it).

Every after.yaml starts with a comment saying what must hold in it, written by
the person who reviewed it; the test refuses a fixture without one.

`python -m tests.routing.fixture_pairs NEW_CASE` writes a missing after.yaml
from the current code, for a human to review before it is committed; it never
overwrites an existing one. `--regenerate [CASE...]` rewrites existing ones
(all, or the named cases): it prints the diff of each file it changes and keeps
its leading comment, which the reviewer must then check still holds.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
CATALOGS = HERE / "catalogs"
EXAMPLE_CATALOG = HERE.parents[1] / "examples" / "catalog.yaml"


@dataclass
class Case:
    name: str
    path: Path

    @property
    def settings(self) -> dict:
        return yaml.safe_load((self.path / "strategy.yaml").read_text())

    @property
    def catalog_path(self) -> str:
        name = self.settings.get("catalog")
        return str(CATALOGS / name) if name else str(EXAMPLE_CATALOG)

    def service(self):
        from graysteps.model.catalog import load_catalog

        return load_catalog(self.catalog_path).service(self.settings["service"])

    def strategy(self):
        from graysteps.model.strategy import parse_strategy

        s = self.settings
        return parse_strategy(s["strategy"], s.get("weight"))

    def before(self) -> dict | None:
        f = self.path / "before.yaml"
        return yaml.safe_load(f.read_text()) if f.exists() else None

    def after(self) -> dict:
        return yaml.safe_load((self.path / "after.yaml").read_text())


def cases() -> list[Case]:
    return [Case(p.name, p) for p in sorted(FIXTURES.iterdir()) if (p / "strategy.yaml").exists()]


def dump(obj: dict) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def without_graysteps_marks(vs: dict) -> dict:
    """`vs` without graysteps' own labels and annotations (what rollback may leave different)."""
    import copy

    vs = copy.deepcopy(vs)
    md = vs["metadata"]
    for part in ("labels", "annotations"):
        kept = {k: v for k, v in (md.get(part) or {}).items() if not k.startswith("graysteps.io/")}
        if kept:
            md[part] = kept
        else:
            md.pop(part, None)
    return vs


def review_comment(text: str) -> str:
    """The leading `#` lines of a fixture file: what its reviewer says must hold."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def _write(names: list[str], regenerate: bool) -> None:
    from graysteps.routing.operations import apply_strategy

    for case in cases():
        target = case.path / "after.yaml"
        if (names and case.name not in names) or (target.exists() and not regenerate):
            continue
        old = target.read_text() if target.exists() else ""
        comment = review_comment(old) or "# REVIEW: say here what must hold in this file, then delete this line\n"
        new = comment + dump(apply_strategy(case.before(), case.service(), case.strategy()))
        if new == old:
            continue
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                                   f"{target} (committed)", f"{target} (current code)"))
        target.write_text(new)
        print(f"wrote {target}: REVIEW IT (and its comment)")


if __name__ == "__main__":
    args = sys.argv[1:]
    _write([a for a in args if a != "--regenerate"], "--regenerate" in args)
