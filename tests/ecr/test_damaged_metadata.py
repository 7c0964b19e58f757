"""The registry database on its own: made only by create, versioned, migrated forward, errors documented."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ecrcrypt.ecr.metadata import SCHEMA_VERSION, RegistryMetadata, RepositoryRecord
from ecrcrypt.errors import RegistryStateError

ACCOUNT, REGION = "111122223333", "us-east-1"

# The schema of releases before the version number (user_version 0).
_V0 = """
CREATE TABLE repositories (name TEXT PRIMARY KEY, uid TEXT NOT NULL, created_at REAL NOT NULL,
    encryption_type TEXT NOT NULL, kms_key TEXT, grants TEXT NOT NULL);
CREATE TABLE objects (repository TEXT NOT NULL, kind TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
    stored_size INTEGER NOT NULL, inner_size INTEGER, pushed_at REAL NOT NULL, blob_key TEXT NOT NULL,
    PRIMARY KEY (repository, kind, digest));
CREATE TABLE tags (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repository, tag));
INSERT INTO repositories VALUES ('old/app', 'u1', 1.0, 'AES256', NULL, '[]');
"""


def test_open_never_creates_and_create_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    with pytest.raises(RegistryStateError, match="is missing: restore it from backup") as caught:
        RegistryMetadata.open(path)
    assert caught.value.path == str(path) and not path.exists()
    made = RegistryMetadata.create(path, account=ACCOUNT, region=REGION)
    store_id = made.store_id
    made.close()
    again = RegistryMetadata.create(path, account=ACCOUNT, region=REGION)
    assert again.store_id == store_id and again.schema_version == SCHEMA_VERSION
    again.close()
    with pytest.raises(RegistryStateError, match="belongs to the registry of account 111122223333"):
        RegistryMetadata.create(path, account="444455556666", region=REGION)


@pytest.mark.parametrize("damage", ["empty", "half", "garbage"])
def test_create_refuses_a_damaged_file_too(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "registry.sqlite3"
    RegistryMetadata.create(path, account=ACCOUNT, region=REGION).close()
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "half": data[: len(data) // 2], "garbage": os.urandom(len(data))}[damage])
    before = path.read_bytes()
    attempts: list[Callable[[], RegistryMetadata]] = [
        lambda: RegistryMetadata.open(path),
        lambda: RegistryMetadata.create(path, account=ACCOUNT, region=REGION),
    ]
    for attempt in attempts:
        with pytest.raises(RegistryStateError, match=r"registry database .* (is empty|is truncated|is not a SQLite)"):
            attempt()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["registry.sqlite3"]


def test_an_unversioned_database_is_migrated_forward_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(_V0)
    conn.close()
    metadata = RegistryMetadata.open(path)
    assert metadata.schema_version == SCHEMA_VERSION
    record = metadata.get_repository("old/app")
    assert isinstance(record, RepositoryRecord) and record.uid == "u1"
    assert metadata.store_id is None  # an old database records no identity until create claims it
    metadata.close()
    claimed = RegistryMetadata.create(path, account=ACCOUNT, region=REGION)
    assert claimed.store_id is not None and claimed.get_repository("old/app") is not None
    claimed.close()


def test_a_database_from_a_newer_ecrcrypt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    RegistryMetadata.create(path, account=ACCOUNT, region=REGION).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RegistryStateError, match=f"schema version {SCHEMA_VERSION + 1}; this ecrcrypt reads up to"):
        RegistryMetadata.open(path)


def test_a_database_failure_during_an_operation_is_a_registry_state_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    metadata = RegistryMetadata.create(path, account=ACCOUNT, region=REGION)
    metadata._db.close()  # the connection is gone under the registry (as after a disk failure)
    for call in (lambda: metadata.list_repositories(), lambda: metadata.record_once("k", "v")):
        with pytest.raises(RegistryStateError, match=r"registry database .* failed") as caught:
            call()
        assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_records_are_written_once(tmp_path: Path) -> None:
    metadata = RegistryMetadata.create(tmp_path / "registry.sqlite3", account=ACCOUNT, region=REGION)
    assert metadata.record_once("a", "1") == "1"
    assert metadata.record_once("a", "2") == "1"
    assert metadata.record_once_many({"a": "3", "b": "4"}) == {"a": "1", "b": None}  # all or nothing
    assert metadata.record_once_many({"b": "4", "c": "5"}) == {"b": "4", "c": "5"}
    metadata.close()
