"""The hot path of GenerateDataKey / Decrypt (cached plans) decides exactly as the full path.

A plan is made by the first successful call; these tests warm one, then change
what it was decided from -- through this LocalKms and through another connection --
and check that the very next call sees the change, and that the audit events of
planned calls are those of the full path.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt import _kms_store, errors
from ecrcrypt.context import EncryptionContext
from ecrcrypt.kms import GrantConstraints
from ecrcrypt.local_kms import LocalKms, ManualClock

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ECR = "ecr.us-east-1.amazonaws.com"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"
CTX = {"aws:ecr:arn": REPO, "aws:s3:arn": "arn:aws:s3:::b/p/sha256:00"}


def _comparable(event: Any) -> dict[str, Any]:
    record = event.to_cloudtrail()
    del record["eventTime"], record["eventID"]
    return record


def _warm(client: Any, key: str, ctx: dict[str, str] = CTX, tokens: tuple[str, ...] = ()) -> bytes:
    """Two rounds, so that the second one runs on plans."""
    blob = b""
    for _ in range(2):
        resp = client.generate_data_key(key_id=key, encryption_context=ctx, key_spec="AES_256", grant_tokens=tokens)
        blob = resp.ciphertext_blob
        assert client.decrypt(ciphertext_blob=blob, encryption_context=ctx, grant_tokens=tokens).plaintext == (
            resp.plaintext
        )
    return blob


def test_planned_calls_are_audited_exactly_as_full_ones() -> None:
    kms = LocalKms(account=ACCOUNT, clock=ManualClock())
    admin = kms.client(ROOT)
    key = admin.create_key().key_id
    for _ in range(3):
        resp = admin.generate_data_key(key_id=key, encryption_context=CTX, number_of_bytes=17)
        admin.generate_data_key_without_plaintext(key_id=key, encryption_context=CTX, key_spec="AES_128")
        admin.decrypt(ciphertext_blob=resp.ciphertext_blob, encryption_context=CTX, key_id=key)
    for name in ("GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Decrypt"):
        first, *rest = kms.audit.query(event_name=name)
        assert len(rest) == 2
        assert all(_comparable(e) == _comparable(first) for e in rest)
    assert len({e.event_id for e in kms.audit.query()}) == len(kms.audit.query())


@given(
    size=st.one_of(st.none(), st.integers(1, 64)),
    ctx=st.dictionaries(st.sampled_from(["a", "B", "aws:ecr:arn"]), st.sampled_from(["x", "X", REPO]), max_size=3),
    as_object=st.booleans(),
)
@settings(max_examples=30, deadline=None)
def test_plans_return_what_the_full_path_returns(size: int | None, ctx: dict[str, str], as_object: bool) -> None:
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    key = admin.create_key()
    context: Any = EncryptionContext(ctx) if as_object else ctx
    spec = None if size is not None else "AES_256"
    blobs = []
    for _ in range(3):
        resp = admin.generate_data_key(
            key_id=key.key_id, encryption_context=context, number_of_bytes=size, key_spec=spec
        )
        assert resp.key_id == key.arn
        assert len(resp.plaintext) == (size or 32)
        out = admin.decrypt(ciphertext_blob=resp.ciphertext_blob, encryption_context=dict(ctx), key_id=key.arn)
        assert (out.plaintext, out.key_id) == (resp.plaintext, key.arn)
        blobs.append(resp.ciphertext_blob)
    assert len(set(blobs)) == 3  # fresh nonce and data key each time
    # a planned Decrypt still refuses another context and a tampered blob
    with pytest.raises(errors.InvalidCiphertextError):
        admin.decrypt(ciphertext_blob=blobs[0], encryption_context={**ctx, "extra": "1"})
    tampered = blobs[0][:-1] + bytes([blobs[0][-1] ^ 1])
    with pytest.raises(errors.InvalidCiphertextError):
        admin.decrypt(ciphertext_blob=tampered, encryption_context=dict(ctx))
    failures = kms.audit.query(event_name="Decrypt", errors=True)
    assert [e.error_code for e in failures] == ["InvalidCiphertextException"] * 2


def test_own_changes_void_plans_at_the_next_call() -> None:
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    grant = admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["GenerateDataKey", "Decrypt"],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": REPO}),
    )
    ecr = kms.client(ECR)
    blob = _warm(ecr, key)
    admin.revoke_grant(key_id=key, grant_id=grant.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    with pytest.raises(errors.AccessDeniedError):
        ecr.decrypt(ciphertext_blob=blob, encryption_context=CTX)
    blob = _warm(admin, key)
    admin.disable_key(key_id=key)
    with pytest.raises(errors.DisabledError):
        admin.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    with pytest.raises(errors.DisabledError):
        admin.decrypt(ciphertext_blob=blob, encryption_context=CTX)
    admin.enable_key(key_id=key)
    blob = _warm(admin, key)
    admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    with pytest.raises(errors.KmsInvalidStateError):
        admin.decrypt(ciphertext_blob=blob, encryption_context=CTX)


def test_alias_retargeting_voids_plans() -> None:
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    first, second = admin.create_key().arn, admin.create_key().arn
    admin.create_alias(alias_name="alias/app", target_key_id=first)
    for _ in range(2):
        assert admin.generate_data_key(key_id="alias/app", key_spec="AES_256").key_id == first
    admin.update_alias(alias_name="alias/app", target_key_id=second)
    assert admin.generate_data_key(key_id="alias/app", key_spec="AES_256").key_id == second


def test_changes_through_another_connection_void_plans(tmp_path: Path) -> None:
    path = tmp_path / "kms.db"
    writer = LocalKms(path, account=ACCOUNT)
    reader = LocalKms(path, account=ACCOUNT)
    admin = writer.client(ROOT)
    key = admin.create_key().arn
    grant = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["GenerateDataKey", "Decrypt"])
    ecr = reader.client(ECR)
    blob = _warm(ecr, key)
    admin.retire_grant(key_id=key, grant_id=grant.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        ecr.decrypt(ciphertext_blob=blob, encryption_context=CTX)
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    root_reader = reader.client(ROOT)
    blob = _warm(root_reader, key)
    admin.disable_key(key_id=key)
    with pytest.raises(errors.DisabledError):
        root_reader.decrypt(ciphertext_blob=blob, encryption_context=CTX)
    with pytest.raises(errors.DisabledError):
        root_reader.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    writer.close()
    reader.close()


def test_grant_tokens_are_validated_before_a_plan_serves_them() -> None:
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    token = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["GenerateDataKey", "Decrypt"]).grant_token
    ecr = kms.client(ECR)
    _warm(ecr, key, tokens=(token,))
    with pytest.raises(errors.InvalidGrantTokenError):
        ecr.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256", grant_tokens=[token, "bad"])


def test_wal_checkpoints_run_in_the_background_and_stop_with_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_kms_store, "CHECKPOINT_COMMITS", 20)
    path = tmp_path / "kms.db"
    kms = LocalKms(path, account=ACCOUNT)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    for _ in range(100):
        admin.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    checkpointer = kms._store._checkpointer
    assert checkpointer is not None and checkpointer._thread is not None
    thread: threading.Thread = checkpointer._thread
    assert thread.name == "ecrcrypt-kms-checkpoint"
    kms.close()
    assert not thread.is_alive()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM audit WHERE event_name = 'GenerateDataKey'").fetchone() == (100,)
    conn.close()
