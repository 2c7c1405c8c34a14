"""Read a user's YAML file (a plan) for validation with line numbers.

`read_yaml(path, step=...)` returns (data, sha256 of the bytes). The data is
ruamel's round-trip form: plain dicts/lists that also carry `.lc` line
information, built by a loader that constructs no Python objects and refuses
duplicate keys. The one thing to know: every failure (missing, too large, not
UTF-8, not YAML) is one InvalidInput line naming the file (and line);
`line_of(node, key)` gives the line of a key or item for messages of your own.
"""

from __future__ import annotations

import hashlib
from typing import Any

from graysteps.errors import InvalidInput

MAX_BYTES = 1 << 20


def read_yaml(path: str, *, step: str, flag: str = "--plan", max_bytes: int = MAX_BYTES) -> tuple[Any, str]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise InvalidInput(f"plan file {path}: cannot read it ({e.strerror}); pass an existing YAML file with {flag}", step=step) from e
    if len(raw) > max_bytes:
        raise InvalidInput(f"plan file {path}: larger than {max_bytes >> 10} KiB; a plan is a short YAML file", step=step)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"plan file {path}: not UTF-8 ({e.reason} at byte {e.start})", step=step) from e
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = (getattr(e, "problem", None) or str(e)).splitlines()[0]
        raise InvalidInput(f"plan file {path}{where}: not valid YAML: {problem}", step=step) from e
    return data, hashlib.sha256(raw).hexdigest()


def line_of(node: Any, key: Any = None) -> int:
    """1-based line of a round-trip node (or of one of its keys / list items), 0 if unknown."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0
    try:
        if key is None:
            return lc.line + 1
        return (lc.item(key) if isinstance(key, int) else lc.key(key))[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return lc.line + 1
