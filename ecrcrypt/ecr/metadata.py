"""The registry's metadata: repositories, their grants, stored objects and tags.

One SQLite database per registry (account + region): a file next to the blob store
for the embedded default, a file at a path you choose on AWS (docs/aws.md),
``:memory:`` for tests. It holds identifiers, sizes and grant ids, and the AES256
service key only *wrapped* under a KMS key -- never plaintext key material. Blobs are
committed to the store *before* their row is written here, so a crash between the two
leaves an unrecorded blob (collected by ``ecr.gc``), never a row that points at nothing.

Crash consistency (``ecr.recovery``) rests on intents written here *before* the step
they announce: a repository intent before the first CreateGrant of a creation (with the
grant names) and, in the same transaction as the removal of the repository row, before
a deletion retires anything; a blob intent before a push opens its blob. The step that
completes an operation removes its intent in the transaction that records the result.

A database file is made by :meth:`RegistryMetadata.create` only; :meth:`RegistryMetadata.open`
refuses a missing, empty, truncated or damaged file with ``RegistryStateError`` naming
it, because SQLite would open it as a fresh, empty database and every repository would
be forgotten. The ``registry`` table records who the database belongs to (its store id,
account and Region) and what else must exist (the fingerprints and ids of the keys and
stores the registry was created with), so a replaced database or key is told apart.

The schema has a version (``PRAGMA user_version``) and forward-only migrations:
``_MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``, all pending steps in
one transaction at open; a database from a newer ecrcrypt is refused. Version 0 is the
unversioned schema of earlier releases (with or without the crash-consistency tables:
every step creates ``IF NOT EXISTS``). Any SQLite failure, at open or later, surfaces as
``RegistryStateError``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from ecrcrypt._statefile import create_private_file, database_problem, private_dir, structure_problem
from ecrcrypt.arns import AccountId, Region
from ecrcrypt.ecr.metadata_schema import SCHEMA_VERSION, steps
from ecrcrypt.errors import RegistryStateError, ValidationError

__all__ = [
    "defer_write",
    "SCHEMA_VERSION",
    "BlobIntent",
    "ImageLookup",
    "MetadataConnection",
    "MetadataOperations",
    "ObjectLookup",
    "ObjectRecord",
    "RegistryMetadata",
    "RepositoryGrant",
    "RepositoryIntent",
    "RepositoryRecord",
    "Snapshot",
]

# The schema, one definition for both backends (``ecr.metadata_schema``), rendered for SQLite.
_MIGRATIONS: tuple[tuple[str, ...], ...] = steps("sqlite")

# Keys of the ``registry`` table.
STORE_ID, ACCOUNT, REGION = "store_id", "account", "region"


@attrs.frozen(kw_only=True)
class RepositoryGrant:
    """One of the grants a KMS repository holds; the token lets it be used before it is consistent."""

    role: str  # "ecr" or "storage"
    grant_id: str
    grantee: str
    grant_token: str = attrs.field(repr=False, default="")
    #: the CreateGrant ``Name`` (``""`` for grants made before names were given)
    name: str = ""


@attrs.frozen(kw_only=True)
class RepositoryRecord:
    name: str
    uid: str
    created_at: float
    encryption_type: str
    kms_key: str | None
    grants: tuple[RepositoryGrant, ...]
    #: the uid is in every encryption context and grant constraint of the repository
    binds_uid: bool = False


@attrs.frozen(kw_only=True)
class RepositoryIntent:
    """A repository creation or deletion that has begun and not yet finished."""

    operation: str  # "create" or "delete"
    uid: str
    name: str
    encryption_type: str
    kms_key: str | None
    #: create: the grants to be made (names, no ids yet); delete: the grants to retire
    grants: tuple[RepositoryGrant, ...]
    owner: str
    started_at: float

    @classmethod
    def deleting(cls, record: RepositoryRecord, *, owner: str, started_at: float) -> RepositoryIntent:
        """The intent to delete ``record``: what finishing the deletion needs once the row is gone."""
        return cls(
            operation="delete",
            uid=record.uid,
            name=record.name,
            encryption_type=record.encryption_type,
            kms_key=record.kms_key,
            grants=record.grants,
            owner=owner,
            started_at=started_at,
        )


@attrs.frozen(kw_only=True)
class BlobIntent:
    """A blob a push is writing (or has committed and not yet recorded)."""

    blob_key: str
    repository_uid: str
    owner: str
    started_at: float


@attrs.frozen(kw_only=True)
class Snapshot:
    """One consistent read of what references blobs and grants (one transaction)."""

    repositories: tuple[RepositoryRecord, ...]
    intents: tuple[RepositoryIntent, ...]
    blob_intents: tuple[BlobIntent, ...]
    blob_keys: frozenset[str]


@attrs.frozen(kw_only=True)
class ObjectRecord:
    kind: str  # "layer" or "manifest"
    digest: str
    size: int  # plaintext bytes
    stored_size: int  # ciphertext bytes in the blob store
    inner_size: int | None  # KMS_DSSE: bytes of the inner message (the outer message's plaintext)
    pushed_at: float
    blob_key: str  # where the ciphertext lives in the blob store


@attrs.frozen(kw_only=True)
class ObjectLookup:
    """What one read found of an object of a repository (``MetadataOperations.find_object``)."""

    #: the repository (that very one: its uid) exists; when ``False`` nothing else was read
    live: bool
    #: the object's record, ``None`` when the repository holds no such object
    record: ObjectRecord | None = None


@attrs.frozen(kw_only=True)
class ImageLookup:
    """What one read found of an image of a repository (``MetadataOperations.find_image``)."""

    #: the repository (that very one: its uid) exists; when ``False`` nothing else was read
    live: bool
    #: the digest the image id names: the one asked for, or the one its tag points at (``None``: no such tag)
    digest: str | None = None
    #: the manifest's record, ``None`` when the repository holds no manifest of ``digest``
    record: ObjectRecord | None = None
    #: every tag of the manifest, sorted (empty when there is no manifest)
    tags: tuple[str, ...] = ()
    #: the manifest's ``image_manifests`` row (the image API's: media type as pushed, artifact type,
    #: subject, ECR's image size), of that very repository (its uid); all ``None`` when there is no
    #: manifest, or it was stored without one (``Repository.put_image`` before the image API)
    media_type: str | None = None
    artifact_media_type: str | None = None
    subject: str | None = None
    size_in_bytes: int | None = None


class MetadataConnection(Protocol):
    """What an operation runs its statements on: SQLite's connection, or psycopg's behind an adapter.

    Statements use ``?`` placeholders and the SQL both databases accept (``ON CONFLICT``,
    not SQLite's ``INSERT OR ...``), so every operation is written once for both backends.
    """

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...


def defer_write(db: MetadataConnection, sql: str, parameters: Sequence[Any] = ()) -> None:
    """Run a write whose result the operation never reads (no rows, no ``rowcount``).

    A backend whose connection can hold it back (PostgreSQL's ``defer``) sends it with the
    transaction's next statement or its ``COMMIT``, in one round trip; SQLite, in process,
    runs it at once. Either way it is part of the transaction and its failure fails it.
    """
    defer = getattr(db, "defer", None)
    if defer is None:
        db.execute(sql, parameters)
    else:
        defer(sql, parameters)


_T = TypeVar("_T")


class MetadataOperations:
    """The registry's reads and transactions over any SQL backend (SQLite or PostgreSQL).

    A backend supplies how a transaction runs (:meth:`_write`: SQLite serializes writers with
    ``BEGIN IMMEDIATE``; PostgreSQL runs SERIALIZABLE and re-runs the operation on a
    serialization failure, which is why an operation is a function of its connection and not
    a ``with`` block), how a read runs (:meth:`_read`), and where the database is. Every
    invariant (first writer wins, liveness checked in the writing transaction, intents'
    compare-and-set) lives here once.
    """

    def _write(self, op: Callable[[MetadataConnection], _T], *, durable: bool = True) -> _T:
        raise NotImplementedError

    @contextmanager
    def _read(self) -> Iterator[MetadataConnection]:
        raise NotImplementedError
        yield  # pragma: no cover

    @property
    def location(self) -> str:
        """Where the database is, for messages (a path, ``:memory:``, or a URL without its password)."""
        raise NotImplementedError

    @property
    def persistent(self) -> bool:
        """Whether the records outlive this object (a file or a server, not ``:memory:``)."""
        raise NotImplementedError

    @property
    def path(self) -> Path | None:
        """The database file, if the database is one."""
        return None

    def _state_error(self, message: str) -> RegistryStateError:
        return RegistryStateError(message, path=None if self.path is None else str(self.path))

    # -- the registry's own records ------------------------------------------------------
    def recorded(self, key: str) -> str | None:
        """The value recorded under ``key`` in the registry table, or ``None``."""
        with self._read() as db:
            row = db.execute("SELECT v FROM registry WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def record_once(self, key: str, value: str) -> str:
        """Record ``value`` under ``key`` unless something is there; return what is there.

        Records are written once: what a registry was created with never changes under it.
        """

        def op(db: MetadataConnection) -> str:
            db.execute("INSERT INTO registry VALUES (?, ?) ON CONFLICT DO NOTHING", (key, value))
            return str(db.execute("SELECT v FROM registry WHERE k = ?", (key,)).fetchone()[0])

        return self._write(op)

    def record_once_many(self, values: Mapping[str, str]) -> dict[str, str | None]:
        """Record all of ``values`` in one transaction unless one of their keys is already there
        (then nothing is written); return what is recorded under each key afterwards."""
        keys = list(values)
        if not keys:
            return {}  # nothing to record (and ``IN ()`` is not SQL PostgreSQL accepts)
        marks = ",".join("?" * len(keys))

        def op(db: MetadataConnection) -> dict[str, str | None]:
            taken = db.execute(f"SELECT 1 FROM registry WHERE k IN ({marks})", keys).fetchone()  # noqa: S608
            if taken is None:
                db.executemany("INSERT INTO registry VALUES (?, ?)", list(values.items()))
            rows = dict(db.execute(f"SELECT k, v FROM registry WHERE k IN ({marks})", keys).fetchall())  # noqa: S608
            return {k: None if rows.get(k) is None else str(rows[k]) for k in keys}

        return self._write(op)

    @property
    def store_id(self) -> str | None:
        """The random id given to this database when it was created (``None``: not recorded)."""
        return self.recorded(STORE_ID)

    def _claim_for(self, account: AccountId | str, region: Region | str) -> None:
        """What ``create`` does on either backend once the schema is there: give the database its
        random id and claim it for ``account`` in ``region`` (one of another registry is refused).
        The database is closed when that fails, so a refused ``create`` leaves nothing open."""
        acct = str(account if isinstance(account, AccountId) else AccountId(account))
        reg = str(region if isinstance(region, Region) else Region(region))
        try:
            self.record_once(STORE_ID, uuid.uuid4().hex)
            self.check_identity(account=acct, region=reg, record=True)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        raise NotImplementedError

    def check_identity(self, *, account: str, region: str, record: bool = False) -> None:
        """Refuse a database that belongs to another registry; ``record``: claim an unclaimed one."""
        for key, expected in ((ACCOUNT, account), (REGION, region)):
            found = self.record_once(key, expected) if record else self.recorded(key)
            if found is None and not self.persistent:
                found = self.record_once(key, expected)  # an in-memory database belongs to its first user
            if found != expected:
                raise self._state_error(
                    f"the registry database {self.location} belongs to "
                    f"{'no registry' if found is None else f'the registry of {key} {found}'}, not to {key} "
                    f"{expected}: open the database of this registry (or restore it from backup)",
                )

    # -- repositories ------------------------------------------------------------------
    def get_repository(self, name: str) -> RepositoryRecord | None:
        with self._read() as db:
            row = db.execute(_SELECT_REPOSITORIES + " WHERE r.name = ?", (name,)).fetchone()
        return None if row is None else _repo(row)

    def list_repositories(self) -> list[RepositoryRecord]:
        with self._read() as db:
            rows = db.execute(_SELECT_REPOSITORIES + " ORDER BY r.created_at, r.name").fetchall()
        return [_repo(r) for r in rows]

    # -- repository policies -------------------------------------------------------------
    def get_repository_policy(self, name: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT document FROM repository_policies WHERE repository = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_repository_policy(self, name: str, document: str) -> bool:
        """Store the policy text of repository ``name``; ``False`` (nothing written) when it does not exist."""

        def op(db: MetadataConnection) -> bool:
            if not db.execute("SELECT 1 FROM repositories WHERE name = ?", (name,)).fetchone():
                return False
            db.execute(
                "INSERT INTO repository_policies VALUES (?, ?) "
                "ON CONFLICT (repository) DO UPDATE SET document = excluded.document",
                (name, document),
            )
            return True

        return self._write(op)

    def delete_repository_policy(self, name: str) -> bool:
        """``False`` when the repository had no policy."""

        def op(db: MetadataConnection) -> bool:
            return int(db.execute("DELETE FROM repository_policies WHERE repository = ?", (name,)).rowcount) > 0

        return self._write(op)

    @staticmethod
    def _live(db: MetadataConnection, repository: RepositoryRecord) -> bool:
        """Whether ``repository`` (that very one: its uid) still exists, in the caller's transaction."""
        row = db.execute("SELECT uid FROM repositories WHERE name = ?", (repository.name,)).fetchone()
        return row is not None and row[0] == repository.uid

    def put_object(
        self, repository: RepositoryRecord, record: ObjectRecord, *, replacing: str | None = None
    ) -> ObjectRecord | None:
        """Record an object of ``repository`` unless one is recorded already: the first writer wins.

        Returns the record now in force -- ``record`` itself, or the earlier one (the caller
        then discards its own blob) -- or ``None`` (nothing written) when that repository is
        gone, deleted or deleted and re-created under its name since the caller read it.
        ``replacing`` names the blob key of an existing record the caller found missing
        from the store: only that record may be replaced. The push's blob intent (if any)
        goes in the same transaction, so the blob is always held by an intent or a record.

        Rows are keyed by name: checking liveness in a separate transaction would let a
        push racing a delete leave a ghost row that a later repository of the same name
        inherits, so the check and the insert share one transaction.
        """

        def op(db: MetadataConnection) -> ObjectRecord | None:
            # Liveness and the record in force in one statement (as find_object), in this transaction.
            row = db.execute(_FIND_OBJECT, (record.kind, record.digest, repository.name)).fetchone()
            if row is None or row[0] != repository.uid:
                return None
            current = _object_or_none(row[1:])
            if current is not None and (replacing is None or current.blob_key != replacing):
                return current
            defer_write(db, "DELETE FROM blob_intents WHERE blob_key = ?", (record.blob_key,))
            defer_write(
                db,
                "INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, kind, digest) DO UPDATE "
                "SET size = excluded.size, stored_size = excluded.stored_size, inner_size = excluded.inner_size, "
                "pushed_at = excluded.pushed_at, blob_key = excluded.blob_key",
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
            return record

        return self._write(op)

    def get_object(self, repository: str, kind: str, digest: str) -> ObjectRecord | None:
        with self._read() as db:
            row = db.execute(
                _SELECT_OBJECTS + " WHERE repository = ? AND kind = ? AND digest = ?", (repository, kind, digest)
            ).fetchone()
        return None if row is None else ObjectRecord(**dict(zip(_OBJECT_FIELDS, row, strict=True)))

    def get_objects(self, repository: str, digests: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ObjectRecord]:
        """The records of the (kind, digest) pairs ``repository`` holds, in one statement (those it
        does not hold are absent): what a manifest's references need, one read instead of one each."""
        wanted = set(digests)
        if not wanted:
            return {}
        kinds = sorted({k for k, _ in wanted})
        names = sorted({d for _, d in wanted})
        sql = (
            _SELECT_OBJECTS
            + f" WHERE repository = ? AND kind IN ({','.join('?' * len(kinds))})"
            + f" AND digest IN ({','.join('?' * len(names))})"
        )
        with self._read() as db:
            rows = db.execute(sql, (repository, *kinds, *names)).fetchall()
        found = (ObjectRecord(**dict(zip(_OBJECT_FIELDS, r, strict=True))) for r in rows)
        return {(o.kind, o.digest): o for o in found if (o.kind, o.digest) in wanted}

    def find_object(self, repository: RepositoryRecord, kind: str, digest: str) -> ObjectLookup:
        """Whether ``repository`` (that very one: its uid) is live and its object's record, in one statement.

        A pull used to read them in two statements: the repository's row (liveness), then the
        object's. One statement is as safe, and never less: it reads one snapshot (PostgreSQL
        takes one per statement, even in autocommit; SQLite runs one statement in one read
        transaction), and a deletion removes the repository row and its object rows in one
        transaction (:meth:`begin_delete`), so the statement sees both or neither -- exactly what
        the two reads saw when no commit fell between them, the only case where they agreed. What
        the two reads could do and this cannot: see the repository live, then miss its object
        because a deletion committed in between (a "layer not found" for a repository that is
        gone), or see the object of a repository re-created under the same name since the
        liveness check (objects are keyed by name; here the object row is joined to the row whose
        uid was checked). A deletion committed *after* the read is what it always was: the
        reader already holds the record, and its blob is either still there or reported missing.
        """
        with self._read() as db:
            row = db.execute(_FIND_OBJECT, (kind, digest, repository.name)).fetchone()
        if row is None or row[0] != repository.uid:
            return ObjectLookup(live=False)
        return ObjectLookup(live=True, record=_object_or_none(row[1:]))

    def find_image(
        self, repository: RepositoryRecord, *, tag: str | None = None, digest: str | None = None
    ) -> ImageLookup:
        """Liveness, the digest a tag points at (or ``digest``), the manifest's record, its tags and its
        ``image_manifests`` row (media type, artifact type, subject, size), in one statement.

        Give exactly one of ``tag`` and ``digest``. The same argument as :meth:`find_object`
        (one snapshot; a deletion removes the repository's row, objects and tags together) makes
        this as safe as the five reads it replaces (liveness, tag, manifest, tags, manifest row),
        and more consistent: the tag, the manifest it points at, its tags and its media type are of
        one moment, where a tag moved between the reads could return a manifest with another
        image's tags or media type. The manifest row is keyed by the repository's uid, not its
        name, and joined on the uid of the very repository row whose liveness is checked, so it
        belongs to the repository the rest of the answer belongs to. The separate reads could mix
        two: a repository deleted and re-created under the name between the liveness check and
        the object's read gave the new repository's object (objects are keyed by name) with the
        caller's uid's row (a deletion leaves the old uid's rows behind, unreachable). An image
        deletion removes the object and its row in one transaction (``records.delete_image``),
        and the row is joined to the object: it is seen with its manifest or not at all.
        """
        if (tag is None) == (digest is None):
            raise ValidationError("find_image takes exactly one of tag and digest")
        with self._read() as db:
            if tag is not None:
                rows = db.execute(_FIND_IMAGE_BY_TAG, (tag, repository.name)).fetchall()
            else:
                rows = db.execute(_FIND_IMAGE_BY_DIGEST, (digest, repository.name)).fetchall()
        if not rows or rows[0][0] != repository.uid:
            return ImageLookup(live=False)
        first = rows[0]
        found = digest if tag is None else (None if first[1] is None else str(first[1]))
        record = _object_or_none(first[2:9])
        tags = tuple(str(r[9]) for r in rows if r[9] is not None)
        if record is None:
            return ImageLookup(live=True, digest=found)
        media_type, artifact_media_type, subject, size = first[10:14]
        return ImageLookup(
            live=True,
            digest=found,
            record=record,
            tags=tags,
            media_type=None if media_type is None else str(media_type),
            artifact_media_type=None if artifact_media_type is None else str(artifact_media_type),
            subject=None if subject is None else str(subject),
            size_in_bytes=None if size is None else int(size),
        )

    def list_objects(self, repository: str, kind: str) -> list[ObjectRecord]:
        with self._read() as db:
            rows = db.execute(
                _SELECT_OBJECTS + " WHERE repository = ? AND kind = ? ORDER BY pushed_at, digest", (repository, kind)
            ).fetchall()
        return [ObjectRecord(**dict(zip(_OBJECT_FIELDS, r, strict=True))) for r in rows]

    def count_objects(self, repository: str) -> int:
        with self._read() as db:
            (n,) = db.execute("SELECT COUNT(*) FROM objects WHERE repository = ?", (repository,)).fetchone()
        return int(n)

    # -- tags --------------------------------------------------------------------------
    def put_tag(self, repository: RepositoryRecord, tag: str, digest: str) -> bool:
        """Tag an image of ``repository``; ``False`` (nothing written) when that repository is
        gone (as :meth:`put_object`), or when it holds no manifest ``digest``."""

        def op(db: MetadataConnection) -> bool:
            # The repository's liveness and the manifest's presence in one statement, in this transaction.
            row = db.execute(_FIND_MANIFEST_DIGEST, (digest, repository.name)).fetchone()
            if row is None or row[0] != repository.uid or row[1] is None:
                return False
            defer_write(
                db,
                "INSERT INTO tags VALUES (?, ?, ?) "
                "ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest",
                (repository.name, tag, digest),
            )
            return True

        return self._write(op)

    def get_tag(self, repository: str, tag: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT digest FROM tags WHERE repository = ? AND tag = ?", (repository, tag)).fetchone()
        return None if row is None else str(row[0])

    def tags_of(self, repository: str, digest: str) -> list[str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY tag", (repository, digest)
            ).fetchall()
        return [str(r[0]) for r in rows]

    # -- repository intents (crash consistency) ------------------------------------------
    def begin_create(self, intent: RepositoryIntent) -> RepositoryIntent | RepositoryRecord | None:
        """Record the intent to create ``intent.name``; ``None`` when recorded, else what holds the
        name: the existing repository, or the intent of a creation of that name already begun."""

        def op(db: MetadataConnection) -> RepositoryIntent | RepositoryRecord | None:
            row = db.execute(_SELECT_REPOSITORIES + " WHERE r.name = ?", (intent.name,)).fetchone()
            if row is not None:
                return _repo(row)
            other = db.execute(
                _SELECT_INTENTS + " WHERE name = ? AND operation = 'create'",
                (intent.name,),
            ).fetchone()
            if other is not None:
                return _intent(other)
            self._insert_intent(db, intent)
            return None

        return self._write(op)

    def finish_create(self, record: RepositoryRecord, owner: str) -> bool:
        """Replace the creation intent of ``record.uid`` (still held by ``owner``) by the repository
        row, in one transaction; ``False`` (nothing written) when recovery took the intent over."""

        def op(db: MetadataConnection) -> bool:
            cur = db.execute(
                "DELETE FROM repository_intents WHERE uid = ? AND operation = 'create' AND owner = ?",
                (record.uid, owner),
            )
            if cur.rowcount != 1:
                return False
            if db.execute("SELECT 1 FROM repositories WHERE name = ?", (record.name,)).fetchone():
                raise AssertionError("a repository row appeared under a name held by a creation intent")
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
            if record.binds_uid:
                db.execute("INSERT INTO uid_bound_repositories VALUES (?) ON CONFLICT DO NOTHING", (record.uid,))
            return True

        return self._write(op)

    def begin_delete(self, record: RepositoryRecord, intent: RepositoryIntent) -> bool:
        """Remove the repository (that very one: its uid) with its objects and tags, and record the
        intent to finish the deletion, in one transaction; ``False`` when it is already gone."""

        def op(db: MetadataConnection) -> bool:
            if not self._live(db, record):
                return False
            db.execute("DELETE FROM repositories WHERE name = ?", (record.name,))
            db.execute("DELETE FROM objects WHERE repository = ?", (record.name,))
            db.execute("DELETE FROM tags WHERE repository = ?", (record.name,))
            db.execute("DELETE FROM uid_bound_repositories WHERE uid = ?", (record.uid,))
            db.execute("DELETE FROM repository_policies WHERE repository = ?", (record.name,))
            self._insert_intent(db, intent)
            return True

        return self._write(op)

    @staticmethod
    def _insert_intent(db: MetadataConnection, intent: RepositoryIntent) -> None:
        db.execute(
            "INSERT INTO repository_intents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                intent.uid,
                intent.operation,
                intent.name,
                intent.encryption_type,
                intent.kms_key,
                _dump_grants(intent.grants),
                intent.owner,
                intent.started_at,
            ),
        )

    def list_intents(self) -> list[RepositoryIntent]:
        with self._read() as db:
            rows = db.execute(_SELECT_INTENTS + " ORDER BY started_at, uid").fetchall()
        return [_intent(r) for r in rows]

    def claim_intent(self, uid: str, owner: str, new_owner: str) -> bool:
        """Take the intent of ``uid`` over from ``owner`` (compare and set); ``False`` if it changed."""

        def op(db: MetadataConnection) -> bool:
            cur = db.execute(
                "UPDATE repository_intents SET owner = ? WHERE uid = ? AND owner = ?", (new_owner, uid, owner)
            )
            return int(cur.rowcount) == 1

        return self._write(op)

    def end_intent(self, uid: str, owner: str) -> bool:
        """Remove the intent of ``uid`` if ``owner`` still holds it."""

        def op(db: MetadataConnection) -> bool:
            cur = db.execute("DELETE FROM repository_intents WHERE uid = ? AND owner = ?", (uid, owner))
            return int(cur.rowcount) == 1

        return self._write(op)

    # -- blob intents (write-once objects, garbage collection) ---------------------------
    def begin_blob(self, intent: BlobIntent) -> None:
        """Record a blob intent. Not waited to disk: a power loss that drops it also voids the
        push (never acknowledged), and a blob without intent or record is then rightly collected."""

        def op(db: MetadataConnection) -> None:
            defer_write(
                db,
                "INSERT INTO blob_intents VALUES (?, ?, ?, ?) ON CONFLICT (blob_key) DO UPDATE SET "
                "repository_uid = excluded.repository_uid, owner = excluded.owner, started_at = excluded.started_at",
                (intent.blob_key, intent.repository_uid, intent.owner, intent.started_at),
            )

        self._write(op, durable=False)

    def end_blob(self, blob_key: str) -> None:
        """Drop a blob intent (not waited to disk: a revived intent's owner is dead, recovery drops it)."""

        def op(db: MetadataConnection) -> None:
            defer_write(db, "DELETE FROM blob_intents WHERE blob_key = ?", (blob_key,))

        self._write(op, durable=False)

    def claim_dead_blob(self, blob_key: str, owner: str | None) -> bool:
        """Whether ``blob_key`` may be deleted now: no record names it and its intent is still the one
        seen (``owner``'s, or none). Read in one transaction *after* the owner was judged dead, so a
        push that recorded its blob and then exited -- its intent gone with the record -- is never
        taken for a dead push on the strength of an older snapshot.
        """

        def op(db: MetadataConnection) -> bool:
            if db.execute("SELECT 1 FROM objects WHERE blob_key = ? LIMIT 1", (blob_key,)).fetchone():
                return False
            row = db.execute("SELECT owner FROM blob_intents WHERE blob_key = ?", (blob_key,)).fetchone()
            return (None if row is None else str(row[0])) == owner

        return self._write(op)

    def snapshot(self) -> Snapshot:
        """Repositories, intents and every recorded blob key (objects and upload parts), in one transaction."""

        def op(db: MetadataConnection) -> Snapshot:
            repos = tuple(_repo(r) for r in db.execute(_SELECT_REPOSITORIES).fetchall())
            intents = tuple(_intent(r) for r in db.execute(_SELECT_INTENTS).fetchall())
            blobs = tuple(
                _blob_intent(r)
                for r in db.execute("SELECT blob_key, repository_uid, owner, started_at FROM blob_intents").fetchall()
            )
            keys = frozenset(str(r[0]) for r in db.execute("SELECT blob_key FROM objects").fetchall())
            keys |= {str(r[0]) for r in db.execute("SELECT blob_key FROM upload_blobs").fetchall()}  # ecr.uploads
            return Snapshot(repositories=repos, intents=intents, blob_intents=blobs, blob_keys=keys)

        return self._write(op)


class RegistryMetadata(MetadataOperations):
    """Thread-safe SQLite-backed metadata; ``path=None`` keeps it in memory.

    ``RegistryMetadata(path)`` opens an existing database (as :meth:`open`); a new file is
    made only by :meth:`create`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = False) -> None:
        self._path = None if path is None else Path(path)
        if self._path is not None:
            self._check_file(self._path, create=create)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                ":memory:" if self._path is None else str(self._path), check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._prepare()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, account: AccountId | str, region: Region | str
    ) -> RegistryMetadata:
        """A new metadata database at ``path`` for the registry of ``account`` in ``region``.

        Idempotent: an existing healthy database of the same registry is opened; one of
        another account or Region is refused (``RegistryStateError``), as is a damaged one.
        """
        metadata = cls(path, create=True)
        metadata._claim_for(account, region)
        return metadata

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RegistryMetadata:
        """The existing metadata database at ``path``; never creates one (``RegistryStateError``)."""
        return cls(path)

    def _check_file(self, path: Path, *, create: bool) -> None:
        problem = database_problem(path)
        if problem == "is missing" and create:
            private_dir(path.parent)
            create_private_file(path)  # 0600 before SQLite creates it (and its -wal, -shm) 0644
            return
        if problem is not None:
            raise RegistryStateError(
                f"the registry database {path} {problem}: restore it from backup (ecrcrypt never creates an "
                "empty database in place of one that went missing; a new registry is made by its create path)",
                path=str(path),
            )

    def _prepare(self) -> None:
        with self._lock:
            if self._path is not None:
                damage = structure_problem(self._db)
                if damage is not None:
                    raise RegistryStateError(
                        f"the registry database {self._path} {damage}: restore it from backup", path=str(self._path)
                    )
                # WAL: a process killed mid-transaction leaves the database at the last commit.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()

    def _migrate(self) -> None:
        """Apply the pending migration steps in one transaction (forward only)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RegistryStateError(
                    f"the registry database {self._where()} has schema version {version}; this ecrcrypt reads "
                    f"up to {SCHEMA_VERSION}: open it with a newer ecrcrypt",
                    path=None if self._path is None else str(self._path),
                )
            for step in _MIGRATIONS[version:]:
                for statement in step:
                    self._db.execute(statement)
            if version != SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _where(self) -> str:
        return ":memory:" if self._path is None else str(self._path)

    def _error(self, exc: sqlite3.Error) -> RegistryStateError:
        return RegistryStateError(
            f"the registry database {self._where()} failed: {exc} (restore it from backup if it was damaged)",
            path=None if self._path is None else str(self._path),
        )

    def __repr__(self) -> str:
        return f"RegistryMetadata({self._where()!r})"

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def schema_version(self) -> int:
        with self._read() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RegistryMetadata:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        return self._where()

    @property
    def persistent(self) -> bool:
        return self._path is not None

    def _write(self, op: Callable[[MetadataConnection], _T], *, durable: bool = True) -> _T:
        """Run ``op`` in one transaction (``BEGIN IMMEDIATE``: one writer at a time). ``durable=False``
        commits without waiting for the disk (WAL, ``synchronous=NORMAL``): still atomic and visible
        to every reader, and it survives a killed process, but a power loss may roll it back -- for
        rows whose loss is harmless. A SQLite failure surfaces as ``RegistryStateError``."""
        with self._lock:
            relaxed = not durable and self._path is not None
            try:
                if relaxed:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        result = op(self._db)
                    except BaseException:
                        self._db.execute("ROLLBACK")
                        raise
                    self._db.execute("COMMIT")
                    return result
                finally:
                    if relaxed:
                        self._db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[MetadataConnection]:
        """Reads outside a transaction, under the lock, with SQLite errors surfaced as ``RegistryStateError``."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise self._error(exc) from exc


_SELECT_INTENTS = (
    "SELECT uid, operation, name, encryption_type, kms_key, grants, owner, started_at FROM repository_intents"
)
_OBJECT_FIELDS = ("kind", "digest", "size", "stored_size", "inner_size", "pushed_at", "blob_key")
_SELECT_OBJECTS = "SELECT kind, digest, size, stored_size, inner_size, pushed_at, blob_key FROM objects"
_OBJECT_COLUMNS = "o.kind, o.digest, o.size, o.stored_size, o.inner_size, o.pushed_at, o.blob_key"
# One statement each (see find_object): the repository's row, left-joined to what is asked of it.
_FIND_OBJECT = (
    f"SELECT r.uid, {_OBJECT_COLUMNS} FROM repositories r "  # noqa: S608 -- constant text
    "LEFT JOIN objects o ON o.repository = r.name AND o.kind = ? AND o.digest = ? WHERE r.name = ?"
)
# The image_manifests row is keyed by the repository's uid: joined on the uid of the very row whose
# liveness the caller checks, so a repository re-created under the name never shows an old row.
_MANIFEST_COLUMNS = "m.media_type, m.artifact_media_type, m.subject, m.size_in_bytes"
_JOIN_MANIFEST_ROW = "LEFT JOIN image_manifests m ON m.repository_uid = r.uid AND m.digest = o.digest "
_FIND_MANIFEST_DIGEST = (
    "SELECT r.uid, o.digest FROM repositories r "
    "LEFT JOIN objects o ON o.repository = r.name AND o.kind = 'manifest' AND o.digest = ? WHERE r.name = ?"
)
_FIND_IMAGE_BY_TAG = (
    f"SELECT r.uid, t.digest, {_OBJECT_COLUMNS}, a.tag, {_MANIFEST_COLUMNS} "  # noqa: S608 -- constant text
    "FROM repositories r "
    "LEFT JOIN tags t ON t.repository = r.name AND t.tag = ? "
    "LEFT JOIN objects o ON o.repository = r.name AND o.kind = 'manifest' AND o.digest = t.digest "
    "LEFT JOIN tags a ON a.repository = r.name AND a.digest = o.digest "
    f"{_JOIN_MANIFEST_ROW}"
    "WHERE r.name = ? ORDER BY a.tag"
)
_FIND_IMAGE_BY_DIGEST = (
    f"SELECT r.uid, o.digest, {_OBJECT_COLUMNS}, a.tag, {_MANIFEST_COLUMNS} "  # noqa: S608 -- constant text
    "FROM repositories r "
    "LEFT JOIN objects o ON o.repository = r.name AND o.kind = 'manifest' AND o.digest = ? "
    "LEFT JOIN tags a ON a.repository = r.name AND a.digest = o.digest "
    f"{_JOIN_MANIFEST_ROW}"
    "WHERE r.name = ? ORDER BY a.tag"
)
_SELECT_REPOSITORIES = (
    "SELECT r.name, r.uid, r.created_at, r.encryption_type, r.kms_key, r.grants, b.uid IS NOT NULL "
    "FROM repositories r LEFT JOIN uid_bound_repositories b ON b.uid = r.uid"
)


def _dump_grants(grants: tuple[RepositoryGrant, ...]) -> str:
    out = []
    for g in grants:
        item = {"role": g.role, "grant_id": g.grant_id, "grantee": g.grantee, "grant_token": g.grant_token}
        if g.name:
            item["name"] = g.name
        out.append(item)
    return json.dumps(out)


def _load_grants(text: object) -> tuple[RepositoryGrant, ...]:
    return tuple(RepositoryGrant(**g) for g in json.loads(str(text)))


def _object_or_none(row: Sequence[Any]) -> ObjectRecord | None:
    """The object of a LEFT JOIN's columns (``_OBJECT_COLUMNS``); ``None`` when nothing was joined."""
    if row[0] is None:
        return None
    return ObjectRecord(**dict(zip(_OBJECT_FIELDS, row, strict=True)))


def _repo(row: tuple[object, ...]) -> RepositoryRecord:
    name, uid, created_at, encryption_type, kms_key, grants, bound = row
    return RepositoryRecord(
        name=str(name),
        uid=str(uid),
        created_at=float(created_at),  # type: ignore[arg-type]
        encryption_type=str(encryption_type),
        kms_key=None if kms_key is None else str(kms_key),
        grants=_load_grants(grants),
        binds_uid=bool(bound),
    )


def _intent(row: tuple[object, ...]) -> RepositoryIntent:
    uid, operation, name, encryption_type, kms_key, grants, owner, started_at = row
    return RepositoryIntent(
        operation=str(operation),
        uid=str(uid),
        name=str(name),
        encryption_type=str(encryption_type),
        kms_key=None if kms_key is None else str(kms_key),
        grants=_load_grants(grants),
        owner=str(owner),
        started_at=float(started_at),  # type: ignore[arg-type]
    )


def _blob_intent(row: tuple[object, ...]) -> BlobIntent:
    key, uid, owner, started_at = row
    return BlobIntent(blob_key=str(key), repository_uid=str(uid), owner=str(owner), started_at=float(started_at))  # type: ignore[arg-type]


def now() -> float:
    return time.time()
