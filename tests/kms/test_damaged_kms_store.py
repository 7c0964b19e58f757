"""A local KMS store whose files went missing or were damaged is refused, never recreated (issue 10).

``LocalKms(path)`` creates a store only when neither the database nor its root key file
exists. A store whose root key went missing, a root key whose store went missing or
empty, a truncated, replaced or garbage file: each is a ``KmsInternalError`` (what
docs/kms-model.md promises) naming the file, with no new key written; and a SQLite
failure during an operation is a ``KmsInternalError`` too, never a raw ``sqlite3.Error``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from ecrcrypt.errors import KmsInternalError
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def _store(path: Path) -> bytes:
    """A store at ``path`` with one key and a ciphertext under it; the ciphertext."""
    with LocalKms(path, account=ACCOUNT) as kms:
        client = kms.client(ROOT)
        key = client.create_key(description="damaged").arn
        return client.encrypt(key_id=key, plaintext=b"secret").ciphertext_blob


def _listing(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(directory.iterdir())}


def _refused(path: Path, match: str) -> None:
    before = _listing(path.parent)
    with pytest.raises(KmsInternalError, match=match) as caught:
        LocalKms(path, account=ACCOUNT)
    assert caught.value.code == "KMSInternalException"
    assert _listing(path.parent) == before  # no new root key, no new database


def test_a_missing_root_key_next_to_a_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "kms.sqlite3"
    _store(db)
    Path(f"{db}.rootkey").unlink()
    _refused(db, r"root key file .*kms\.sqlite3\.rootkey is missing, and the KMS store .* holds key material")


@pytest.mark.parametrize("how", ["deleted", "truncated to 0"])
def test_a_lost_store_next_to_its_root_key_is_refused(tmp_path: Path, how: str) -> None:
    db = tmp_path / "kms.sqlite3"
    _store(db)
    if how == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"")
    _refused(db, r"KMS store .*kms\.sqlite3 is missing or empty but its root key file .* exists")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda db: db.write_bytes(db.read_bytes()[: db.stat().st_size // 2]), r"kms\.sqlite3 is truncated"),
        (lambda db: db.write_bytes(os.urandom(8192)), r"kms\.sqlite3 is not a SQLite database"),
        (lambda db: Path(f"{db}.rootkey").write_bytes(b"short"), r"rootkey is damaged or truncated \(5 bytes"),
        (lambda db: Path(f"{db}.rootkey").write_bytes(os.urandom(32)), r"rootkey does not open the KMS store"),
    ],
    ids=["store truncated to half", "store garbage", "root key truncated", "root key replaced"],
)
def test_a_damaged_store_or_root_key_is_refused(tmp_path: Path, damage: object, match: str) -> None:
    db = tmp_path / "kms.sqlite3"
    _store(db)
    damage(db)  # type: ignore[operator]
    _refused(db, match)


def test_create_false_only_opens(tmp_path: Path) -> None:
    with pytest.raises(KmsInternalError, match="is missing: restore it"):
        LocalKms(tmp_path / "kms.sqlite3", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_store_whose_creation_was_interrupted_after_its_schema_is_finished(tmp_path: Path) -> None:
    """A crash between the schema and the root key leaves a store with nothing wrapped yet:
    reopening creates the root key then, and the store works."""
    db = tmp_path / "kms.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID")
    conn.commit()
    conn.close()
    with LocalKms(db, account=ACCOUNT) as kms:
        client = kms.client(ROOT)
        key = client.create_key().arn
        assert client.decrypt(ciphertext_blob=client.encrypt(key_id=key, plaintext=b"x").ciphertext_blob).plaintext
    assert Path(f"{db}.rootkey").stat().st_size == 32


def test_a_database_failure_during_an_operation_is_a_kms_internal_error(tmp_path: Path) -> None:
    db = tmp_path / "kms.sqlite3"
    blob = _store(db)
    kms = LocalKms(db, account=ACCOUNT)
    client = kms.client(ROOT)
    kms._store.conn.close()  # the connection is gone under the service (as after a disk failure)
    for call in (
        lambda: client.decrypt(ciphertext_blob=blob),
        lambda: client.create_key(),
        lambda: client.list_aliases(),
    ):
        with pytest.raises(KmsInternalError, match=r"KMS store .*kms\.sqlite3 failed") as caught:
            call()
        assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_a_database_failure_reading_the_audit_trail_is_a_kms_internal_error(tmp_path: Path) -> None:
    db = tmp_path / "kms.sqlite3"
    _store(db)
    kms = LocalKms(db, account=ACCOUNT)
    assert len(kms.audit) > 0
    kms._store.conn.close()
    for call in (lambda: kms.audit.query(), lambda: len(kms.audit)):
        with pytest.raises(KmsInternalError, match=r"KMS store .*kms\.sqlite3 failed"):
            call()


def test_a_truncation_seen_once_is_looked_at_again_before_it_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process checkpointing the file can make it look truncated for a moment (its header
    rewritten before the pages that grow it): only a truncation that stays is reported, since the
    report tells the operator to restore the file from backup."""
    from ecrcrypt import _statefile

    looks: list[str | None] = ["is truncated (4096 bytes of the 8192 its header records)", None]
    monkeypatch.setattr(_statefile, "_database_problem", lambda path: looks.pop(0) if len(looks) > 1 else looks[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    assert _statefile.database_problem(tmp_path / "kms.sqlite3") is None
    looks[:] = ["is truncated (4096 bytes of the 8192 its header records)"]
    assert _statefile.database_problem(tmp_path / "kms.sqlite3") == looks[0]
