"""Replace a file in one step, so no reader ever sees it half-written.

Envoy's file watcher (LDS/RDS/CDS), the sandbox's state file and the build
record all rely on this: write a temp file in the same directory, then rename
it over the target (atomic on POSIX).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(path: str | os.PathLike, data: Any, **dumps_options: Any) -> Path:
    """`data` as JSON (json.dumps options, e.g. indent=1) at `path`, in one step."""
    return write_text_atomically(path, json.dumps(data, **dumps_options))


MAX_YAML_BYTES = 4 * 1024 * 1024


def read_yaml_documents(path: str | os.PathLike, *, max_bytes: int = MAX_YAML_BYTES) -> list:
    """Every non-empty document of a YAML file, read with a safe loader that
    refuses duplicate keys (yaml.YAMLError naming the line) and files larger
    than `max_bytes` (ValueError)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes // (1024 * 1024)} MiB")
    return [d for d in yaml.load_all(data.decode("utf-8"), Loader=UniqueKeyLoader) if d is not None]
