"""Files that hold state: private modes whatever the umask, and SQLite files checked before use (private).

Every file ecrcrypt creates for state is 0600 and every folder 0700, whatever the
process umask: the databases name keys, grants and repositories, the key files are
keys. SQLite creates its ``-wal`` and ``-shm`` files with the mode of the database
file, so the database file is created here, private, before SQLite opens it.

:func:`database_problem` is the check made before a database file is trusted: SQLite
itself opens a 0-byte file as a fresh, empty database and reads a half-truncated or
damaged one until it meets a page it cannot parse, so a missing store would silently
become an empty one. The check reads the header (magic string, page size, the
in-header page count against the file's length when no WAL holds newer pages) and
then :func:`structure_problem` runs ``PRAGMA quick_check`` (structure of every b-tree page; SQLite keeps no checksum
of row payloads, so a flipped byte inside a value is caught only where the value is
authenticated by its owner).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

__all__ = [
    "create_private_file",
    "database_problem",
    "fsync_dir",
    "private_dir",
    "structure_problem",
    "write_new_private_file",
]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; an existing folder is left as it is."""
    if path.is_dir():
        return
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> bool:
    """Create an empty ``path`` with mode 0600; ``False`` when it already existed (left untouched)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return True


def write_new_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (0600, ``FileExistsError`` if it exists) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make new entries of ``directory`` durable (a crash after a create or rename must not lose them)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def database_problem(path: Path) -> str | None:
    """What is wrong with the SQLite file ``path`` (a phrase such as ``"is empty (0 bytes)"``), or ``None``.

    Another process may be writing the file meanwhile: a checkpoint grows it and rewrites its header,
    not necessarily in that order. So the header is read before the size (a size is then at least as
    new as the header it is compared with), and a truncation is reported only when it is still there
    three more looks, 20 ms apart, later: a checkpoint in progress is over by then, a truncated file
    stays truncated. A false "truncated" would tell the operator to restore a healthy file from an
    older backup.
    """
    problem = _database_problem(path)
    for _ in range(3):
        if problem is None or not problem.startswith("is truncated"):
            break
        time.sleep(0.02)
        problem = _database_problem(path)
    return problem


def _database_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "is empty (0 bytes)"
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "is not a SQLite database (damaged header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return "is not a SQLite database (damaged header)"
    change_counter, valid_for = header[24:28], header[92:96]
    pages = int.from_bytes(header[28:32], "big")
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if change_counter == valid_for and pages and not wal_pending and size < pages * page_size:
        return f"is truncated ({size} bytes of the {pages * page_size} its header records)"
    return None


def structure_problem(conn: sqlite3.Connection) -> str | None:
    """``PRAGMA quick_check`` on an open connection: what is damaged, or ``None``.

    Run on the connection that will be used (a separate read-only connection would leave
    ``-wal``/``-shm`` files behind), before anything is written through it.
    """
    try:
        result = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        return f"is damaged ({exc})"
    if result != ["ok"]:
        return f"is damaged ({result[0].splitlines()[-1] if result else 'quick_check failed'})"
    return None
