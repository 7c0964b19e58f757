"""The image API's and the durable uploads' rows in the registry's metadata (private).

The tables are declared in :mod:`ecrcrypt.ecr.metadata_schema` (step 4) and are only read and
written here, inside the backend's transactions (``MetadataOperations._write``: SQLite's
``BEGIN IMMEDIATE``, PostgreSQL's SERIALIZABLE re-run on a serialization failure), so that every
check-then-write (an immutable tag, an upload's lease) is one transaction whatever the number of
processes or hosts sharing the database. Each write is a function of its connection, re-read from
the start when PostgreSQL re-runs it; statements are the SQL both backends accept. Rows
are keyed by the repository's uid: a repository re-created under an old name inherits nothing.
Nothing here is key material: upload states hold encrypted data keys and sealed plaintext only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

import attrs

from ecrcrypt.ecr.liveness import current_owner, owner_gone
from ecrcrypt.ecr.metadata import MetadataConnection, MetadataOperations, RepositoryRecord, defer_write
from ecrcrypt.ecr.metadata_store import MetadataStore

__all__ = [
    "ManifestRow",
    "blob_key_in_use",
    "TagWrite",
    "UploadRow",
    "claim_upload",
    "delete_image",
    "delete_upload",
    "get_manifest",
    "get_tag_mutability",
    "get_token",
    "insert_token",
    "insert_upload",
    "lease_holder",
    "lease_token",
    "list_tags",
    "put_manifest",
    "put_tag",
    "referrers",
    "release_upload",
    "renew_lease",
    "save_upload",
    "set_tag_mutability",
    "stale_uploads",
    "get_upload",
]


@attrs.frozen(kw_only=True)
class ManifestRow:
    digest: str
    media_type: str
    artifact_media_type: str | None
    subject: str | None
    size_in_bytes: int


@attrs.frozen(kw_only=True)
class UploadRow:
    upload_id: str
    repository_uid: str
    repository: str
    created_at: float
    updated_at: float
    received: int
    state: str = attrs.field(repr=False)
    lease: str | None
    lease_until: float = 0.0


class TagWrite:
    """Outcomes of :func:`put_tag` (strings so that they read well in tests and logs)."""

    DONE = "done"
    GONE = "gone"  # the repository was deleted meanwhile
    NO_MANIFEST = "no-manifest"
    IMMUTABLE = "immutable"  # the tag names another image and the repository's tags are immutable


_T = TypeVar("_T")
_live = MetadataOperations._live


def _backend(meta: MetadataStore) -> MetadataOperations:
    """The SQL operations behind ``meta``: the image API needs one of the two SQL backends."""
    if not isinstance(meta, MetadataOperations):
        raise TypeError(f"the image API needs SQL-backed registry metadata (SQLite or PostgreSQL), not {meta!r}")
    return meta


def _write(meta: MetadataStore, op: Callable[[MetadataConnection], _T]) -> _T:
    return _backend(meta)._write(op)


# -- manifests ------------------------------------------------------------------------------------
def put_manifest(meta: MetadataStore, record: RepositoryRecord, row: ManifestRow) -> None:
    def op(db: MetadataConnection) -> None:
        defer_write(
            db,
            "INSERT INTO image_manifests VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repository_uid, digest) DO UPDATE SET "
            "media_type = excluded.media_type, artifact_media_type = excluded.artifact_media_type, "
            "subject = excluded.subject, size_in_bytes = excluded.size_in_bytes",
            (record.uid, row.digest, row.media_type, row.artifact_media_type, row.subject, row.size_in_bytes),
        )

    _write(meta, op)


def get_manifest(meta: MetadataStore, record: RepositoryRecord, digest: str) -> ManifestRow | None:
    with _backend(meta)._read() as db:
        row = db.execute(
            "SELECT digest, media_type, artifact_media_type, subject, size_in_bytes FROM image_manifests "
            "WHERE repository_uid = ? AND digest = ?",
            (record.uid, digest),
        ).fetchone()
    if row is None:
        return None
    return ManifestRow(
        digest=row[0], media_type=row[1], artifact_media_type=row[2], subject=row[3], size_in_bytes=int(row[4])
    )


def referrers(meta: MetadataStore, record: RepositoryRecord, subject: str) -> list[tuple[ManifestRow, int]]:
    """The manifests whose ``subject`` is ``subject``, with their sizes (the OCI referrers list)."""
    with _backend(meta)._read() as db:
        rows = db.execute(
            "SELECT m.digest, m.media_type, m.artifact_media_type, m.subject, m.size_in_bytes, o.size "
            "FROM image_manifests m JOIN objects o ON o.repository = ? AND o.kind = 'manifest' AND o.digest = m.digest "
            "WHERE m.repository_uid = ? AND m.subject = ? ORDER BY m.digest",
            (record.name, record.uid, subject),
        ).fetchall()
    return [
        (
            ManifestRow(digest=r[0], media_type=r[1], artifact_media_type=r[2], subject=r[3], size_in_bytes=int(r[4])),
            int(r[5]),
        )
        for r in rows
    ]


def put_tag(meta: MetadataStore, record: RepositoryRecord, tag: str, digest: str, *, immutable: bool) -> str:
    """Point ``tag`` at ``digest`` in one transaction with its checks; a :class:`TagWrite` outcome."""

    def op(db: MetadataConnection) -> str:
        if not _live(db, record):
            return TagWrite.GONE
        if not db.execute(
            "SELECT 1 FROM objects WHERE repository = ? AND kind = 'manifest' AND digest = ?", (record.name, digest)
        ).fetchone():
            return TagWrite.NO_MANIFEST
        current = db.execute("SELECT digest FROM tags WHERE repository = ? AND tag = ?", (record.name, tag)).fetchone()
        if immutable and current is not None and current[0] != digest:
            return TagWrite.IMMUTABLE
        db.execute(
            "INSERT INTO tags VALUES (?, ?, ?) ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest",
            (record.name, tag, digest),
        )
        return TagWrite.DONE

    return _write(meta, op)


def list_tags(meta: MetadataStore, record: RepositoryRecord) -> list[tuple[str, str]]:
    """``(tag, digest)`` in tag order (the order OCI's tags list pages in)."""
    with _backend(meta)._read() as db:
        rows = db.execute("SELECT tag, digest FROM tags WHERE repository = ? ORDER BY tag", (record.name,)).fetchall()
    return [(str(t), str(d)) for t, d in rows]


def untag(meta: MetadataStore, record: RepositoryRecord, tag: str) -> str | None:
    """Remove ``tag``; the digest it named, or ``None`` when there was no such tag."""

    def op(db: MetadataConnection) -> str | None:
        row = db.execute("SELECT digest FROM tags WHERE repository = ? AND tag = ?", (record.name, tag)).fetchone()
        if row is None or not _live(db, record):
            return None
        db.execute("DELETE FROM tags WHERE repository = ? AND tag = ?", (record.name, tag))
        return str(row[0])

    return _write(meta, op)


def delete_image(meta: MetadataStore, record: RepositoryRecord, digest: str) -> tuple[list[str], str] | None:
    """Delete a manifest with all its tags: ``(tags, blob key)``, or ``None`` when it is not there."""

    def op(db: MetadataConnection) -> tuple[list[str], str] | None:
        row = db.execute(
            "SELECT blob_key FROM objects WHERE repository = ? AND kind = 'manifest' AND digest = ?",
            (record.name, digest),
        ).fetchone()
        if row is None or not _live(db, record):
            return None
        tags = [
            str(t)
            for (t,) in db.execute(
                "SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY tag", (record.name, digest)
            ).fetchall()
        ]
        db.execute("DELETE FROM tags WHERE repository = ? AND digest = ?", (record.name, digest))
        db.execute(
            "DELETE FROM objects WHERE repository = ? AND kind = 'manifest' AND digest = ?", (record.name, digest)
        )
        db.execute("DELETE FROM image_manifests WHERE repository_uid = ? AND digest = ?", (record.uid, digest))
        return tags, str(row[0])

    return _write(meta, op)


# -- repository settings -------------------------------------------------------------------------
def get_tag_mutability(meta: MetadataStore, record: RepositoryRecord) -> str:
    with _backend(meta)._read() as db:
        row = db.execute(
            "SELECT image_tag_mutability FROM repository_settings WHERE repository_uid = ?", (record.uid,)
        ).fetchone()
    return "MUTABLE" if row is None else str(row[0])


def set_tag_mutability(meta: MetadataStore, record: RepositoryRecord, value: str) -> bool:
    def op(db: MetadataConnection) -> bool:
        if not _live(db, record):
            return False
        db.execute(
            "INSERT INTO repository_settings VALUES (?, ?) "
            "ON CONFLICT (repository_uid) DO UPDATE SET image_tag_mutability = excluded.image_tag_mutability",
            (record.uid, value),
        )
        return True

    return _write(meta, op)


# -- uploads --------------------------------------------------------------------------------------
_SELECT_UPLOAD = (
    "SELECT upload_id, repository_uid, repository, created_at, updated_at, received, state, lease, lease_until "
    "FROM layer_uploads "
)


def _upload(row: tuple[object, ...]) -> UploadRow:
    uid, ruid, name, created, updated, received, state, lease, until = row
    return UploadRow(
        upload_id=str(uid),
        repository_uid=str(ruid),
        repository=str(name),
        created_at=float(created),  # type: ignore[arg-type]
        updated_at=float(updated),  # type: ignore[arg-type]
        received=int(received),  # type: ignore[call-overload]
        state=str(state),
        lease=None if lease is None else str(lease),
        lease_until=float(until),  # type: ignore[arg-type]
    )


def lease_token() -> str:
    """A new lease for this process: ``<owner>|<random>``, the owner as :func:`liveness.current_owner`
    names it (so that another process can tell whether the holder still runs) and 64 random bits
    (so that two requests of one process never hold the same token)."""
    return f"{current_owner()}|{secrets.token_hex(8)}"


def lease_holder(token: str) -> str | None:
    """The owner a lease token names; ``None`` for a token that names none (one written before
    leases named their holder, or by something else): only its deadline can free it."""
    owner, sep, _random = token.rpartition("|")
    return owner if sep and owner.count("|") == 4 else None


def insert_upload(meta: MetadataStore, record: RepositoryRecord, upload_id: str, state: str, at: float) -> bool:
    def op(db: MetadataConnection) -> bool:
        if not _live(db, record):
            return False
        db.execute(
            "INSERT INTO layer_uploads (upload_id, repository_uid, repository, created_at, updated_at, received, state)"
            " VALUES (?, ?, ?, ?, ?, 0, ?)",
            (upload_id, record.uid, record.name, at, at, state),
        )
        return True

    return _write(meta, op)


def get_upload(meta: MetadataStore, upload_id: str) -> UploadRow | None:
    with _backend(meta)._read() as db:
        row = db.execute(_SELECT_UPLOAD + "WHERE upload_id = ?", (upload_id,)).fetchone()
    return None if row is None else _upload(row)


def claim_upload(
    meta: MetadataStore, record: RepositoryRecord, upload_id: str, lease: str, at: float, until: float
) -> UploadRow | str:
    """Take the upload's lease (one writer at a time, across processes and hosts): the row as it
    was (its ``lease`` the token taken over, if any), or why not (``"unknown"``: no such upload in
    this repository; ``"busy"``: another request holds it).

    A lease is free once released or past ``lease_until``, and at once when its holder is provably
    gone (:func:`liveness.owner_gone`: a process of this host and PID namespace that no longer
    runs, e.g. a SIGKILLed server worker). The holder is judged inside the transaction that takes
    the lease, and the write is a compare-and-set on the token read, so of two requests racing for
    a dead holder's lease exactly one wins. A holder on another host or in another container
    cannot be checked from here: its lease runs until ``lease_until``."""

    def op(db: MetadataConnection) -> UploadRow | str:
        row = db.execute(_SELECT_UPLOAD + "WHERE upload_id = ?", (upload_id,)).fetchone()
        if row is None or row[1] != record.uid or not _live(db, record):
            return "unknown"
        held = None if row[7] is None else str(row[7])
        if held is not None and float(row[8]) > at:
            holder = lease_holder(held)
            if holder is None or not owner_gone(holder):
                return "busy"
        if held is None:
            cur = db.execute(
                "UPDATE layer_uploads SET lease = ?, lease_until = ? WHERE upload_id = ? AND lease IS NULL",
                (lease, until, upload_id),
            )
        else:
            cur = db.execute(
                "UPDATE layer_uploads SET lease = ?, lease_until = ? WHERE upload_id = ? AND lease = ?",
                (lease, until, upload_id, held),
            )
        if int(cur.rowcount) != 1:
            return "busy"
        return _upload(row)

    return _write(meta, op)


def save_upload(
    meta: MetadataStore, upload_id: str, lease: str, received: int, state: str, at: float, part_key: str
) -> bool:
    """Store a part's new state and its blob (kept by garbage collection from now on) and give the
    lease back, in one transaction; ``False`` (nothing written) when the lease was lost."""

    def op(db: MetadataConnection) -> bool:
        cur = db.execute(
            "UPDATE layer_uploads SET received = ?, state = ?, updated_at = ?, lease = NULL, lease_until = 0 "
            "WHERE upload_id = ? AND lease = ?",
            (received, state, at, upload_id, lease),
        )
        if cur.rowcount != 1:
            return False
        db.execute(
            "INSERT INTO upload_blobs VALUES (?, ?) "
            "ON CONFLICT (blob_key) DO UPDATE SET upload_id = excluded.upload_id",
            (part_key, upload_id),
        )
        db.execute("DELETE FROM blob_intents WHERE blob_key = ?", (part_key,))
        return True

    return _write(meta, op)


def renew_lease(meta: MetadataStore, upload_id: str, lease: str, until: float) -> bool:
    def op(db: MetadataConnection) -> bool:
        cur = db.execute(
            "UPDATE layer_uploads SET lease_until = ? WHERE upload_id = ? AND lease = ?", (until, upload_id, lease)
        )
        return int(cur.rowcount) == 1

    return _write(meta, op)


def release_upload(meta: MetadataStore, upload_id: str, lease: str) -> None:
    def op(db: MetadataConnection) -> None:
        db.execute(
            "UPDATE layer_uploads SET lease = NULL, lease_until = 0 WHERE upload_id = ? AND lease = ?",
            (upload_id, lease),
        )

    _write(meta, op)


def blob_key_in_use(meta: MetadataStore, repository: str, blob_key: str) -> bool:
    with _backend(meta)._read() as db:
        row = db.execute(
            "SELECT 1 FROM objects WHERE repository = ? AND blob_key = ?", (repository, blob_key)
        ).fetchone()
    return row is not None


def delete_upload(meta: MetadataStore, upload_id: str, *, lease: str | None = None) -> bool:
    """Forget an upload (its part blobs are no longer kept: the caller deletes them next, or garbage
    collection does). With ``lease``, only while that lease still holds it: ``False`` (nothing
    done) when another request took the upload over, whose parts they now are."""

    def op(db: MetadataConnection) -> bool:
        if lease is None:
            cur = db.execute("DELETE FROM layer_uploads WHERE upload_id = ?", (upload_id,))
        else:
            cur = db.execute("DELETE FROM layer_uploads WHERE upload_id = ? AND lease = ?", (upload_id, lease))
        if int(cur.rowcount) != 1:
            return False
        db.execute("DELETE FROM upload_blobs WHERE upload_id = ?", (upload_id,))
        return True

    return _write(meta, op)


def stale_uploads(meta: MetadataStore, before: float, at: float) -> list[UploadRow]:
    """Uploads untouched since ``before`` and not being written now."""
    with _backend(meta)._read() as db:
        rows = db.execute(_SELECT_UPLOAD + "WHERE updated_at < ? AND lease_until <= ?", (before, at)).fetchall()
    return [_upload(r) for r in rows]


# -- authorization tokens -------------------------------------------------------------------------
def insert_token(meta: MetadataStore, token_sha256: str, principal: str, expires_at: float, at: float) -> None:
    def op(db: MetadataConnection) -> None:
        db.execute("DELETE FROM authorization_tokens WHERE expires_at <= ?", (at,))
        db.execute("INSERT INTO authorization_tokens VALUES (?, ?, ?)", (token_sha256, principal, expires_at))

    _write(meta, op)


def get_token(meta: MetadataStore, token_sha256: str) -> tuple[str, float] | None:
    with _backend(meta)._read() as db:
        row = db.execute(
            "SELECT principal, expires_at FROM authorization_tokens WHERE token_sha256 = ?", (token_sha256,)
        ).fetchone()
    return None if row is None else (str(row[0]), float(row[1]))
