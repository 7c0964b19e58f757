"""A PostgreSQL server the tests start themselves: ``initdb`` + ``pg_ctl`` in a temporary directory.

The server listens on a free loopback port (127.0.0.1 only) and on a unix socket in its
own temporary directory, trusts local connections (nothing leaves the machine), runs with
``fsync=off`` (a test server: nothing here survives the session anyway) and is stopped and
deleted at the end. PostgreSQL refuses to run as root, so as root the cluster belongs to
the ``postgres`` system user (``nobody`` when there is none) and its commands run through
``runuser``. The binaries come from Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``), which ``make deps`` (part of ``make test``)
installs when missing: ``python3 -m tests.pg_server install`` -- this module uses only the
standard library so that step runs before any virtual environment exists.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresServer", "find_binaries", "install_postgres", "running_postgres"]

SUPERUSER = "ecrcrypt"


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (newest Debian version first), or ``None``."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if p.parent.name.isdigit()), key=lambda p: int(p.parent.name), reverse=True
    )
    for candidate in versions:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def install_postgres() -> str | None:
    """Install Debian's ``postgresql`` package if the binaries are missing; why not, or ``None`` when present."""
    if find_binaries() is not None:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "PostgreSQL (initdb, pg_ctl) is not installed: install Debian's postgresql package (make deps as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"installing postgresql failed ({' '.join(cmd)}): {done.stderr.strip()[-500:]}"
    return None if find_binaries() is not None else "the postgresql package installed no initdb/pg_ctl"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The system user the cluster runs as when we are root (``None``: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and there is neither a postgres nor a nobody user to run PostgreSQL as")


class PostgresServer:
    """A running throwaway cluster; :meth:`create_database` gives each test its own database."""

    def __init__(self, bin_dir: Path, base: Path, port: int, user: str | None) -> None:
        self.bin_dir, self.base, self.port, self.user = bin_dir, base, port, user
        self.data_dir, self.socket_dir = base / "data", base / "socket"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str) -> list[str]:
        return list(args) if self.user is None else ["runuser", "-u", self.user, "--", *args]

    def run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        self.socket_dir.mkdir(mode=0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.base, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off "
            "-c full_page_writes=off -c shared_buffers=16MB -c max_connections=60"
        )
        self.run(
            str(self.bin_dir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.base / "server.log"),
            "-o",
            options,
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(str(self.bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", str(self.data_dir))

    def create_database(self, template: str | None = None) -> str:
        """A new database, empty or a copy of the one at URL ``template`` (no one may be connected to it); its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        copy = "" if template is None else f' TEMPLATE "{template.rsplit("/", 1)[1]}"'
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster for the duration of the ``with`` block; ``RuntimeError`` if PostgreSQL cannot be had."""
    problem = install_postgres()
    bin_dir = find_binaries()
    if problem is not None or bin_dir is None:
        raise RuntimeError(problem or "PostgreSQL (initdb, pg_ctl) is not installed")
    base = Path(tempfile.mkdtemp(prefix="ecrcrypt-pg-"))
    server = PostgresServer(bin_dir, base, _free_port(), _run_as())
    try:
        for attempt in range(3):  # a free port may be taken between our probe and the server's bind
            try:
                server.start()
                break
            except RuntimeError:
                server.stop()
                if attempt == 2:
                    raise
                shutil.rmtree(server.data_dir, ignore_errors=True)
                shutil.rmtree(server.socket_dir, ignore_errors=True)
                server.port = _free_port()
                time.sleep(0.2)
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":  # python3 -m tests.pg_server install   (make deps)
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python3 -m tests.pg_server install")
    why = install_postgres()
    if why is not None:
        print(f"note: {why}; the PostgreSQL tests will be skipped", file=sys.stderr)
