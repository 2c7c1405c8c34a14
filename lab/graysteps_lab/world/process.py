"""One server process of the test world: started with its log in a file,
waited for until ready, stopped cleanly (its whole process group).

Every server module (envoy, mariadb, images, kube) builds on `ServerProcess`,
so they all fail the same way: a `WorldError` naming the server, what went
wrong and the tail of its log.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from graysteps.errors import GraystepsError

SETUP_HINT = "run tools/setup.sh (as root) to install the test world's tools"


class WorldError(GraystepsError):
    """A server of the test world is missing or could not be started."""


def require_executable(name: str, install_hint: str) -> str:
    """The absolute path of `name` on PATH (or /usr/sbin), else WorldError with the hint."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise WorldError(f"'{name}' is not installed: {install_hint}", step="testworld")
    return found


def log_tail(path: str | os.PathLike, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class ServerProcess:
    """A long-running child process with its output in `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: str | os.PathLike,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
    ):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: stop() reaches its children
            )
        except OSError as e:
            raise WorldError(f"{self.name} could not be started ({self.argv[0]}): {e}", step="testworld") from e
        finally:
            log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fail(self, what: str) -> WorldError:
        """A WorldError for this server, with the tail of its log."""
        return WorldError(
            f"{self.name} {what}; log {self.log_path}:\n{log_tail(self.log_path)}", step="testworld"
        )

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Poll `ready()` until it is true; stop and raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if not self.running:
                code = self.proc.returncode if self.proc else None
                raise self.fail(f"exited with code {code} before it was {what}")
            try:
                if ready():
                    return
            except Exception:  # not answering yet is the normal case while starting
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise self.fail(f"was not {what} after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # children that outlived their leader (same process group)
        _signal_group(self.proc, signal.SIGKILL)


class ManagedServer:
    """Base of the test world's server classes: `start()` is theirs, stopping and
    the context-manager protocol are shared. Subclasses set `self._process`."""

    _process: ServerProcess | None = None
    stop_timeout = 15.0

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        if self._process:
            self._process.stop(timeout=self.stop_timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
