"""The registry metadata schema: one definition, rendered for SQLite and PostgreSQL.

Both backends run the same versioned, forward-only steps: ``steps(dialect)[i]`` takes a
database from version ``i`` to ``i + 1``. The steps are written once with a few type
words that differ between the two: ``{real}`` is a timestamp (``REAL`` is 8 bytes in
SQLite but 4 in PostgreSQL, which would round seconds away), ``{bigint}`` a byte count,
``{without_rowid}`` SQLite's clustered-key hint. Rendered for SQLite the steps are
byte for byte the statements earlier releases ran, so an existing file migrates as
before. Where the version is kept differs (``PRAGMA user_version`` in SQLite, the
``ecrcrypt_schema_migrations`` table in PostgreSQL, one row per applied step).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["SCHEMA_VERSION", "Dialect", "steps"]

Dialect = Literal["sqlite", "postgresql"]

_WORDS: dict[str, dict[str, str]] = {
    "sqlite": {"real": "REAL", "bigint": "INTEGER", "without_rowid": " WITHOUT ROWID"},
    "postgresql": {"real": "DOUBLE PRECISION", "bigint": "BIGINT", "without_rowid": ""},
}

# Version 1: the tables of the unversioned schema (``IF NOT EXISTS``: a version-0 database
# already has them) and the registry's own records (identity, what must exist).
_V1 = (
    """CREATE TABLE IF NOT EXISTS repositories (
    name            TEXT PRIMARY KEY,
    uid             TEXT NOT NULL,
    created_at      {real} NOT NULL,
    encryption_type TEXT NOT NULL,
    kms_key         TEXT,
    grants          TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS objects (
    repository  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        {bigint} NOT NULL,
    stored_size {bigint} NOT NULL,
    inner_size  {bigint},
    pushed_at   {real} NOT NULL,
    blob_key    TEXT NOT NULL,
    PRIMARY KEY (repository, kind, digest)
)""",
    """CREATE TABLE IF NOT EXISTS tags (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    PRIMARY KEY (repository, tag)
)""",
    """CREATE TABLE IF NOT EXISTS registry (k TEXT PRIMARY KEY, v TEXT NOT NULL){without_rowid}""",
)

# Version 2: crash consistency (issue 10 part A): intents, uid-bound repositories. Additive tables only.
# repository_intents: a repository creation or deletion in progress, written before its first KMS
#   call (creation) or with the removal of the repository row (deletion); removed when done.
# blob_intents: a blob a push is writing or has committed but not yet recorded: GC keeps it.
# uid_bound_repositories: repositories whose uid is part of every encryption context and grant
#   constraint (all those created since); one absent here predates it (ECR's two-key context).
_V2 = (
    """CREATE TABLE IF NOT EXISTS repository_intents (
    uid             TEXT PRIMARY KEY,
    operation       TEXT NOT NULL,
    name            TEXT NOT NULL,
    encryption_type TEXT NOT NULL,
    kms_key         TEXT,
    grants          TEXT NOT NULL,
    owner           TEXT NOT NULL,
    started_at      {real} NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS blob_intents (
    blob_key       TEXT PRIMARY KEY,
    repository_uid TEXT NOT NULL,
    owner          TEXT NOT NULL,
    started_at     {real} NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS uid_bound_repositories (
    uid TEXT PRIMARY KEY
)""",
)

# Version 3: a repository's policy (SetRepositoryPolicy), deleted with the repository (issue 11).
_V3 = (
    """CREATE TABLE IF NOT EXISTS repository_policies (
    repository TEXT PRIMARY KEY,
    document   TEXT NOT NULL
)""",
)

# Version 4: the image API and durable uploads (ecr/records.py reads and writes these). Keyed by
# the repository's uid, not its name: a repository re-created under an old name starts with none.
_V4 = (
    """CREATE TABLE IF NOT EXISTS image_manifests (
    repository_uid      TEXT NOT NULL,
    digest              TEXT NOT NULL,
    media_type          TEXT NOT NULL,
    artifact_media_type TEXT,
    subject             TEXT,
    size_in_bytes       {bigint} NOT NULL,
    PRIMARY KEY (repository_uid, digest)
)""",
    """CREATE TABLE IF NOT EXISTS repository_settings (
    repository_uid       TEXT PRIMARY KEY,
    image_tag_mutability TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS layer_uploads (
    upload_id      TEXT PRIMARY KEY,
    repository_uid TEXT NOT NULL,
    repository     TEXT NOT NULL,
    created_at     {real} NOT NULL,
    updated_at     {real} NOT NULL,
    received       {bigint} NOT NULL,
    state          TEXT NOT NULL,
    lease          TEXT,
    lease_until    {real} NOT NULL DEFAULT 0
)""",
    # the blobs a durable upload holds (its parts): garbage collection keeps them
    """CREATE TABLE IF NOT EXISTS upload_blobs (
    blob_key  TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS authorization_tokens (
    token_sha256 TEXT PRIMARY KEY,
    principal    TEXT NOT NULL,
    expires_at   {real} NOT NULL
)""",
)

# Version 5: indexes for the lookups that scanned a table. Without them a read's cost grew with
# the table (a repository's every tag scanned to find an image's tags, every object to find who
# holds a blob), and on PostgreSQL a scan under SERIALIZABLE takes a predicate lock on the whole
# relation, so each such transaction conflicted with every concurrent write to that table (a
# serialization failure and a re-run) where an index read locks only the range it read.
_V5 = (
    "CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repository, digest)",
    "CREATE INDEX IF NOT EXISTS objects_by_blob_key ON objects (blob_key)",
    "CREATE INDEX IF NOT EXISTS upload_blobs_by_upload ON upload_blobs (upload_id)",
    "CREATE INDEX IF NOT EXISTS authorization_tokens_by_expiry ON authorization_tokens (expires_at)",
)

# Forward-only: never edit a step once released; append one. Each step is a tuple of statements.
_STEPS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(_STEPS)


def steps(dialect: Dialect) -> tuple[tuple[str, ...], ...]:
    """Every migration step, its statements rendered for ``dialect``."""
    words = _WORDS[dialect]
    return tuple(tuple(statement.format(**words) for statement in step) for step in _STEPS)
