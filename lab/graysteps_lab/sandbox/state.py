"""The sandbox's state directory: where its servers keep data, logs and the
files through which `up`, `status` and `down` talk to the supervisor.

    <dir>/.graysteps-sandbox   marker: this directory belongs to a sandbox
    <dir>/supervisor.pid       the supervisor's pid while it runs
    <dir>/state.json           phase + components (name, pid, port, url) + routing state
    <dir>/progress.log         one line per start-up step, for `up` to show
    <dir>/supervisor.log       the supervisor's own log (tracebacks land here)

The state file is written atomically by the supervisor only; everybody else reads.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from graysteps.adapters.files import write_json_atomically
from graysteps.errors import InvalidInput

MARKER = ".graysteps-sandbox"
STARTING, READY, FAILED, STOPPING = "starting", "ready", "failed", "stopping"


def default_dir() -> Path:
    """$GRAYSTEPS_SANDBOX_DIR, else ~/.cache/graysteps/sandbox (the same from every shell)."""
    env = os.environ.get("GRAYSTEPS_SANDBOX_DIR")
    if env:
        return Path(env).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache, "graysteps", "sandbox").resolve()


class SandboxDir:
    """Paths and files of one sandbox state directory."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser().resolve() if path else default_dir()
        self.marker = self.path / MARKER
        self.pid_file = self.path / "supervisor.pid"
        self.state_file = self.path / "state.json"
        self.progress_file = self.path / "progress.log"
        self.log_file = self.path / "supervisor.log"

    def __str__(self) -> str:
        return str(self.path)

    # -- lifecycle of the directory -------------------------------------------

    def prepare_fresh(self) -> None:
        """Empty the directory for a new sandbox. Refuses a non-empty directory that
        is not a sandbox's (no marker), so a wrong --dir never deletes anything."""
        if self.path.exists():
            if not self.path.is_dir():
                raise InvalidInput(f"--dir {self.path}: exists and is not a directory; choose another --dir")
            if any(self.path.iterdir()) and not self.marker.exists():
                raise InvalidInput(f"--dir {self.path}: not empty and not a sandbox directory (no {MARKER}); "
                                   "choose an empty or new directory")
            for child in self.path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        self.marker.write_text("graysteps sandbox state directory; `graysteps sandbox down` stops it\n")

    # -- supervisor pid --------------------------------------------------------

    def running_pid(self) -> int | None:
        """The supervisor's pid if its pid file names a live process, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    # -- state -----------------------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_state(self, state: dict[str, Any]) -> None:
        write_json_atomically(self.state_file, state, indent=1)

    def progress(self, line: str) -> None:
        with open(self.progress_file, "a", encoding="utf-8") as f:
            f.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
