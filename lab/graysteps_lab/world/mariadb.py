"""A private MariaDB server (Debian's mariadb-server binaries, not the system
service): its own datadir, port and socket under `workdir`, a test database and
a test user.

    with MariaDB(workdir) as db:
        engine = sqlalchemy.create_engine(db.url)
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import (
    SETUP_HINT, ManagedServer, ServerProcess, WorldError, log_tail, require_executable,
)

INSTALL_HINT = f"apt-get install mariadb-server mariadb-client, or {SETUP_HINT}"


class MariaDB(ManagedServer):
    """One mariadbd on 127.0.0.1:`port` and unix socket `socket`.

    `.url` is the SQLAlchemy URL of the test user on the test database;
    `.admin_url` is root's (all privileges, no database selected).
    """

    stop_timeout = 30.0

    def __init__(self, workdir: str | os.PathLike, *, database: str = "graysteps", user: str = "graysteps",
                 ready_timeout: float = 60.0):
        for name in (database, user):
            if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", name):
                raise ValueError(f"MariaDB: database/user name {name!r} must be 1-32 letters, digits or _")
        self.workdir = Path(workdir)
        self.database = database
        self.user = user
        self.password = secrets.token_hex(12)
        self.root_password = secrets.token_hex(12)
        self.port: int | None = None
        self.socket = str(self.workdir / "mysqld.sock")
        self.ready_timeout = ready_timeout
        self._process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}?charset=utf8mb4"

    @property
    def admin_url(self) -> str:
        return f"mysql+pymysql://root:{self.root_password}@127.0.0.1:{self.port}/?charset=utf8mb4"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mariadbd.log"

    def start(self) -> "MariaDB":
        install_db = require_executable("mariadb-install-db", INSTALL_HINT)
        server = require_executable("mariadbd", INSTALL_HINT)
        as_root = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root without it
        datadir = self.workdir / "data"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (datadir / "mysql").is_dir():
            self._install_datadir(install_db, datadir, as_root)
        self.port = free_port()
        self._process = ServerProcess("mariadbd", [
            server, "--no-defaults", *as_root,
            f"--datadir={datadir}", f"--socket={self.socket}", f"--pid-file={self.workdir / 'mariadbd.pid'}",
            f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=32M", "--skip-log-bin", "--max-connections=200",
        ], self.log_path).start()
        self._process.wait_ready(self._root_can_connect, self.ready_timeout, "accepting connections on its socket")
        try:
            self._create_test_database()
        except Exception as e:
            self.stop()
            raise self._process.fail(f"did not accept the test database and users ({e})") from e
        return self

    def _install_datadir(self, install_db: str, datadir: Path, as_root: list[str]) -> None:
        log = self.workdir / "install-db.log"
        with open(log, "wb") as out:
            done = subprocess.run(
                [install_db, "--no-defaults", *as_root, f"--datadir={datadir}",
                 "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        if done.returncode != 0:
            raise WorldError(f"mariadb-install-db failed (exit {done.returncode}); log {log}:\n{log_tail(log)}",
                             step="testworld")

    def _connect_root(self, **kwargs):
        import pymysql

        return pymysql.connect(unix_socket=self.socket, user="root", password=kwargs.pop("password", ""),
                               connect_timeout=2, autocommit=True, **kwargs)

    def _root_can_connect(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        self._connect_root().close()
        return True

    def _create_test_database(self) -> None:
        with self._connect_root() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4")
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"CREATE OR REPLACE USER '{self.user}'@'{host}' IDENTIFIED BY %s", (self.password,))
                cur.execute(f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO '{self.user}'@'{host}'")
            cur.execute("CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (self.root_password,))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
