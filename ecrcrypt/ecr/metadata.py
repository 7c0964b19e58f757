"""The registry's metadata: repositories, their grants, stored objects and tags (private).

One SQLite database per registry (account + region): a file next to the blob store
for the embedded default, ``:memory:`` for tests. It holds identifiers, sizes and
grant ids only -- never key material. Blobs are committed to the store *before*
their row is written here, so a crash between the two leaves an orphan blob that
the next push of the same digest overwrites, never a row that points at nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

__all__ = ["RepositoryGrant", "ObjectRecord", "RegistryMetadata", "RepositoryRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS repositories (
    name            TEXT PRIMARY KEY,
    uid             TEXT NOT NULL,
    created_at      REAL NOT NULL,
    encryption_type TEXT NOT NULL,
    kms_key         TEXT,
    grants          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    repository  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    inner_size  INTEGER,
    pushed_at   REAL NOT NULL,
    blob_key    TEXT NOT NULL,
    PRIMARY KEY (repository, kind, digest)
);
CREATE TABLE IF NOT EXISTS tags (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    PRIMARY KEY (repository, tag)
);
"""


@attrs.frozen(kw_only=True)
class RepositoryGrant:
    """One of the grants a KMS repository holds; the token lets it be used before it is consistent."""

    role: str  # "ecr" (manifests) or "storage" (layers)
    grant_id: str
    grantee: str
    grant_token: str = attrs.field(repr=False, default="")


@attrs.frozen(kw_only=True)
class RepositoryRecord:
    name: str
    uid: str
    created_at: float
    encryption_type: str
    kms_key: str | None
    grants: tuple[RepositoryGrant, ...]


@attrs.frozen(kw_only=True)
class ObjectRecord:
    kind: str  # "layer" or "manifest"
    digest: str
    size: int  # plaintext bytes
    stored_size: int  # ciphertext bytes in the blob store
    inner_size: int | None  # KMS_DSSE: bytes of the inner message (the outer message's plaintext)
    pushed_at: float
    blob_key: str  # where the ciphertext lives in the blob store


class RegistryMetadata:
    """Thread-safe SQLite-backed metadata; ``path=None`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._path = None if path is None else Path(path)
        target = ":memory:" if self._path is None else str(self._path)
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        if self._path is not None:
            # WAL: a process killed mid-transaction leaves the database at the last commit.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"RegistryMetadata({str(self._path) if self._path else ':memory:'!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- repositories ------------------------------------------------------------------
    def insert_repository(self, record: RepositoryRecord) -> bool:
        """Insert; ``False`` when the name is taken (nothing written)."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM repositories WHERE name = ?", (record.name,)).fetchone():
                return False
            db.execute(
                "INSERT INTO repositories VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.name,
                    record.uid,
                    record.created_at,
                    record.encryption_type,
                    record.kms_key,
                    _dump_grants(record.grants),
                ),
            )
            return True

    def get_repository(self, name: str) -> RepositoryRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM repositories WHERE name = ?", (name,)).fetchone()
        return None if row is None else _repo(row)

    def list_repositories(self) -> list[RepositoryRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM repositories ORDER BY created_at, name").fetchall()
        return [_repo(r) for r in rows]

    def delete_repository(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM repositories WHERE name = ?", (name,))
            db.execute("DELETE FROM objects WHERE repository = ?", (name,))
            db.execute("DELETE FROM tags WHERE repository = ?", (name,))

    # -- objects -----------------------------------------------------------------------
    def _live(self, db: sqlite3.Connection, repository: RepositoryRecord) -> bool:
        """Whether ``repository`` (that very one: its uid) still exists, in the caller's transaction."""
        row = db.execute("SELECT uid FROM repositories WHERE name = ?", (repository.name,)).fetchone()
        return row is not None and row[0] == repository.uid

    def put_object(self, repository: RepositoryRecord, record: ObjectRecord) -> bool:
        """Record an object of ``repository``; ``False`` (nothing written) when that repository
        is gone, deleted or deleted and re-created under its name since the caller read it.

        Rows are keyed by name: checking liveness in a separate transaction would let a
        push racing a delete leave a ghost row that a later repository of the same name
        inherits, so the check and the insert share one transaction.
        """
        with self._tx() as db:
            if not self._live(db, repository):
                return False
            db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    repository.name,
                    record.kind,
                    record.digest,
                    record.size,
                    record.stored_size,
                    record.inner_size,
                    record.pushed_at,
                    record.blob_key,
                ),
            )
            return True

    def get_object(self, repository: str, kind: str, digest: str) -> ObjectRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT kind, digest, size, stored_size, inner_size, pushed_at, blob_key FROM objects "
                "WHERE repository = ? AND kind = ? AND digest = ?",
                (repository, kind, digest),
            ).fetchone()
        return None if row is None else ObjectRecord(**dict(zip(_OBJECT_FIELDS, row, strict=True)))

    def list_objects(self, repository: str, kind: str) -> list[ObjectRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, digest, size, stored_size, inner_size, pushed_at, blob_key FROM objects "
                "WHERE repository = ? AND kind = ? ORDER BY pushed_at, digest",
                (repository, kind),
            ).fetchall()
        return [ObjectRecord(**dict(zip(_OBJECT_FIELDS, r, strict=True))) for r in rows]

    def count_objects(self, repository: str) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM objects WHERE repository = ?", (repository,)).fetchone()
        return int(n)

    # -- tags --------------------------------------------------------------------------
    def put_tag(self, repository: RepositoryRecord, tag: str, digest: str) -> bool:
        """Tag an image of ``repository``; ``False`` (nothing written) when that repository is
        gone (as :meth:`put_object`), or when it holds no manifest ``digest``."""
        with self._tx() as db:
            if not self._live(db, repository):
                return False
            if not db.execute(
                "SELECT 1 FROM objects WHERE repository = ? AND kind = 'manifest' AND digest = ?",
                (repository.name, digest),
            ).fetchone():
                return False
            db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", (repository.name, tag, digest))
            return True

    def get_tag(self, repository: str, tag: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT digest FROM tags WHERE repository = ? AND tag = ?", (repository, tag)
            ).fetchone()
        return None if row is None else str(row[0])

    def tags_of(self, repository: str, digest: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY tag", (repository, digest)
            ).fetchall()
        return [str(r[0]) for r in rows]


_OBJECT_FIELDS = ("kind", "digest", "size", "stored_size", "inner_size", "pushed_at", "blob_key")


def _dump_grants(grants: tuple[RepositoryGrant, ...]) -> str:
    return json.dumps(
        [{"role": g.role, "grant_id": g.grant_id, "grantee": g.grantee, "grant_token": g.grant_token} for g in grants]
    )


def _repo(row: tuple[object, ...]) -> RepositoryRecord:
    name, uid, created_at, encryption_type, kms_key, grants = row
    return RepositoryRecord(
        name=str(name),
        uid=str(uid),
        created_at=float(created_at),  # type: ignore[arg-type]
        encryption_type=str(encryption_type),
        kms_key=None if kms_key is None else str(kms_key),
        grants=tuple(RepositoryGrant(**g) for g in json.loads(str(grants))),
    )


def now() -> float:
    return time.time()
