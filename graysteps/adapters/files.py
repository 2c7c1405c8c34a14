"""Replace a file in one step, so no reader ever sees it half-written.

The sandbox's state file, reports and the build record rely on this: write a
temp file in the same directory, then rename it over the target (atomic on
POSIX). Reading files is graysteps.adapters.reading's job (bounded).
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

