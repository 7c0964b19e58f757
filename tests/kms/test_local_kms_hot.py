"""The hot path of GenerateDataKey / Decrypt (per-key state) decides exactly as the full path.

A key's hot state is left by its first successful call; these tests warm it, then
change what it was decided from -- through this LocalKms and through another
connection -- and check that the very next call sees the change (with the same
context, and with a new one per call as ECR makes them), and that the audit events
of hot calls are byte for byte those of the full path.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt import errors
from ecrcrypt.context import EncryptionContext
from ecrcrypt.kms import GrantConstraints
from ecrcrypt.kms.local import store as _kms_store
from ecrcrypt.kms.local.service import LocalKms, ManualClock

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ECR = "ecr.us-east-1.amazonaws.com"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"
CTX = {"aws:ecr:arn": REPO, "aws:s3:arn": "arn:aws:s3:::b/p/sha256:00"}


def _comparable(event: Any) -> dict[str, Any]:
    record: dict[str, Any] = event.to_cloudtrail()
    del record["eventTime"], record["eventID"]
    return record


def _warm(client: Any, key: str, ctx: dict[str, str] = CTX, tokens: tuple[str, ...] = ()) -> bytes:
    """Two rounds, so that the second one runs on the key's hot state."""
    blob = b""
    for _ in range(2):
        resp = client.generate_data_key(key_id=key, encryption_context=ctx, key_spec="AES_256", grant_tokens=tokens)
        blob = resp.ciphertext_blob
        assert client.decrypt(ciphertext_blob=blob, encryption_context=ctx, grant_tokens=tokens).plaintext == (
            resp.plaintext
        )
    return blob


def test_hot_calls_are_audited_exactly_as_full_ones() -> None:
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
def test_hot_calls_return_what_the_full_path_returns(size: int | None, ctx: dict[str, str], as_object: bool) -> None:
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
    # a hot Decrypt still refuses another context and a tampered blob
    with pytest.raises(errors.InvalidCiphertextError):
        admin.decrypt(ciphertext_blob=blobs[0], encryption_context={**ctx, "extra": "1"})
    tampered = blobs[0][:-1] + bytes([blobs[0][-1] ^ 1])
    with pytest.raises(errors.InvalidCiphertextError):
        admin.decrypt(ciphertext_blob=tampered, encryption_context=dict(ctx))
    failures = kms.audit.query(event_name="Decrypt", errors=True)
    assert [e.error_code for e in failures] == ["InvalidCiphertextException"] * 2


def test_own_changes_void_hot_state_at_the_next_call() -> None:
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


def test_alias_retargeting_voids_hot_state() -> None:
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    first, second = admin.create_key().arn, admin.create_key().arn
    admin.create_alias(alias_name="alias/app", target_key_id=first)
    for _ in range(2):
        assert admin.generate_data_key(key_id="alias/app", key_spec="AES_256").key_id == first
    admin.update_alias(alias_name="alias/app", target_key_id=second)
    assert admin.generate_data_key(key_id="alias/app", key_spec="AES_256").key_id == second


def test_changes_through_another_connection_void_hot_state(tmp_path: Path) -> None:
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


def test_grant_tokens_are_validated_on_the_hot_path() -> None:
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


# -- a new context per call (ECR's pattern) ---------------------------------------------


def _ctx(i: int, repo: str = REPO) -> dict[str, str]:
    return {"aws:ecr:arn": repo, "aws:s3:arn": f"arn:aws:s3:::b/p/sha256:{i:064x}"}


_VOLATILE = re.compile(r',"eventTime":"[^"]*","eventID":"[^"]*"\}$')


def _last_rows(kms: LocalKms, n: int) -> list[tuple[str, str, str, str]]:
    """The last ``n`` audit rows (body without its two per-event fields, name, principal, resources)."""
    rows = kms._store.conn.execute(
        "SELECT body, event_name, principal, resources FROM audit ORDER BY seq DESC LIMIT ?", (n,)
    ).fetchall()
    out = []
    for body, name, principal, resources in reversed(rows):
        assert _VOLATILE.search(body) is not None
        out.append((_VOLATILE.sub("}", body), name, principal, resources))
    return out


_text = st.text(st.characters(codec="utf-8"), max_size=6)


@given(
    ctx=st.dictionaries(_text, _text, max_size=3),
    ref=st.sampled_from(["id", "arn", "alias", "alias-arn"]),
    size=st.one_of(st.none(), st.integers(1, 64)),
    as_object=st.booleans(),
    decrypt_key=st.booleans(),
    name=st.sampled_from(["GenerateDataKey", "GenerateDataKeyWithoutPlaintext"]),
)
@settings(max_examples=40, deadline=None)
def test_hot_calls_write_the_full_paths_audit_bytes(
    ctx: dict[str, str], ref: str, size: int | None, as_object: bool, decrypt_key: bool, name: str
) -> None:
    kms = LocalKms(account=ACCOUNT, clock=ManualClock())
    hot_client = kms.client(ROOT)
    # Same identity; an explicit deny (of an unrelated action) sends every call through the full path.
    full_client = kms.client(ROOT, deny=["kms:ScheduleKeyDeletion"])
    meta = hot_client.create_key()
    hot_client.create_alias(alias_name="alias/hot", target_key_id=meta.arn)
    key_ref = {
        "id": meta.key_id,
        "arn": meta.arn,
        "alias": "alias/hot",
        "alias-arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/hot",
    }[ref]
    context: Any = EncryptionContext(ctx) if as_object else ctx
    spec = None if size is not None else "AES_256"

    def generate(c: Any) -> Any:
        if name == "GenerateDataKey":
            return c.generate_data_key
        return c.generate_data_key_without_plaintext

    decrypt_ref = meta.arn if decrypt_key else None
    generate(hot_client)(key_id=key_ref, encryption_context=context, number_of_bytes=size, key_spec=spec)
    assert key_ref in kms._hot_refs  # the next call takes the hot path
    blobs = []
    for client in (hot_client, full_client):
        resp = generate(client)(key_id=key_ref, encryption_context=context, number_of_bytes=size, key_spec=spec)
        assert resp.key_id == meta.arn
        blobs.append(resp.ciphertext_blob)
    hot_row, full_row = _last_rows(kms, 2)
    assert hot_row == full_row
    hot_client.decrypt(ciphertext_blob=blobs[0], encryption_context=dict(ctx), key_id=decrypt_ref)  # warms the ref
    outs = [
        client.decrypt(ciphertext_blob=blob, encryption_context=context, key_id=decrypt_ref)
        for client, blob in ((hot_client, blobs[1]), (full_client, blobs[0]))
    ]
    assert outs[0].key_id == outs[1].key_id == meta.arn
    hot_row, full_row = _last_rows(kms, 2)
    assert hot_row == full_row
    assert len({e.event_id for e in kms.audit.query()}) == len(kms.audit.query())


def test_hot_path_refuses_what_the_full_path_refuses() -> None:
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    key, other = admin.create_key().arn, admin.create_key().arn
    admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["GenerateDataKey", "Decrypt"],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": REPO}),
    )
    ecr = kms.client(ECR)
    blob = _warm(ecr, key, _ctx(0))
    _warm(admin, other, _ctx(0))
    # The grant's constraint is checked on every call: another repository's context is refused.
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, encryption_context=_ctx(1, REPO + "-other"), key_spec="AES_256")
    with pytest.raises(errors.AccessDeniedError):
        ecr.decrypt(ciphertext_blob=blob, encryption_context=_ctx(0, REPO + "-other"))
    # A context the blob was not made with, and a KeyId naming another (hot) key.
    with pytest.raises(errors.InvalidCiphertextError):
        ecr.decrypt(ciphertext_blob=blob, encryption_context=_ctx(1), key_id=key)
    with pytest.raises(errors.IncorrectKeyError):
        admin.decrypt(ciphertext_blob=blob, encryption_context=_ctx(0), key_id=other)
    # A context that fails validation, a malformed token, a bad size.
    with pytest.raises(errors.ValidationError):
        ecr.generate_data_key(key_id=key, encryption_context={"aws:ecr:arn": REPO, "x": "\ud800"}, key_spec="AES_256")
    with pytest.raises(errors.InvalidGrantTokenError):
        ecr.generate_data_key(key_id=key, encryption_context=_ctx(2), key_spec="AES_256", grant_tokens=["bad"])
    with pytest.raises(errors.ValidationError):
        ecr.generate_data_key(key_id=key, encryption_context=_ctx(2), number_of_bytes=1025)
    # A context that cannot be serialized is refused and audited too (issue 10).
    failures = [(e.event_name, e.error_code) for e in kms.audit.query(errors=True)]
    assert failures == [
        ("GenerateDataKey", "AccessDeniedException"),
        ("Decrypt", "AccessDeniedException"),
        ("Decrypt", "InvalidCiphertextException"),
        ("Decrypt", "IncorrectKeyException"),
        ("GenerateDataKey", "ValidationException"),
        ("GenerateDataKey", "InvalidGrantTokenException"),
        ("GenerateDataKey", "ValidationException"),
    ]


def test_new_contexts_see_another_connections_changes_at_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "kms.db"
    writer = LocalKms(path, account=ACCOUNT)
    reader = LocalKms(path, account=ACCOUNT)
    admin = writer.client(ROOT)
    key = admin.create_key().arn
    grant = admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["GenerateDataKey", "Decrypt"],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": REPO}),
    )
    ecr = reader.client(ECR)
    made = [ecr.generate_data_key(key_id=key, encryption_context=_ctx(i), key_spec="AES_256") for i in range(3)]
    for i, resp in enumerate(made):
        assert ecr.decrypt(ciphertext_blob=resp.ciphertext_blob, encryption_context=_ctx(i)).plaintext == resp.plaintext
    admin.revoke_grant(key_id=key, grant_id=grant.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        ecr.decrypt(ciphertext_blob=made[0].ciphertext_blob, encryption_context=_ctx(0))
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, encryption_context=_ctx(3), key_spec="AES_256")
    root = reader.client(ROOT)
    for i in range(4, 7):
        root.generate_data_key(key_id=key, encryption_context=_ctx(i), key_spec="AES_256")
    admin.disable_key(key_id=key)
    with pytest.raises(errors.DisabledError):
        root.generate_data_key(key_id=key, encryption_context=_ctx(7), key_spec="AES_256")
    with pytest.raises(errors.DisabledError):
        root.decrypt(ciphertext_blob=made[1].ciphertext_blob, encryption_context=_ctx(1))
    writer.close()
    reader.close()


# -- the grant index is kept in place -----------------------------------------------------


def test_describe_key_and_grant_changes_do_not_reload_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    original = _kms_store.Tx.grants_for_key

    def counting(self: _kms_store.Tx, key_id: str) -> list[_kms_store.GrantRecord]:
        loads.append(key_id)
        return original(self, key_id)

    monkeypatch.setattr(_kms_store.Tx, "grants_for_key", counting)
    kms = LocalKms(account=ACCOUNT)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    ecr = kms.client(ECR)
    grants = []
    for i in range(30):
        admin.describe_key(key_id=key)  # the account: allowed by the key policy, grants unread
        repo = f"{REPO}{i}"
        grants.append(
            admin.create_grant(
                key_id=key,
                grantee_principal=ECR,
                operations=["GenerateDataKey", "Decrypt"],
                retiring_principal=ECR,
                constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": repo}),
            ).grant_id
        )
        # each new grant works at once
        ecr.generate_data_key(key_id=key, encryption_context=_ctx(i, repo), key_spec="AES_256")
    record = kms._keys[key.rsplit("/", 1)[1]]
    assert record is not None
    assert loads == [record.key_id]  # loaded once, by the first grant check
    ecr.retire_grant(key_id=key, grant_id=grants[0])
    admin.revoke_grant(key_id=key, grant_id=grants[1])
    for i in (0, 1):
        with pytest.raises(errors.AccessDeniedError):
            ecr.generate_data_key(key_id=key, encryption_context=_ctx(i, f"{REPO}{i}"), key_spec="AES_256")
    ecr.generate_data_key(key_id=key, encryption_context=_ctx(2, f"{REPO}2"), key_spec="AES_256")
    assert len(loads) == 1
    listed = admin.list_grants(key_id=key, limit=100).grants
    assert [g.grant_id for g in listed] == grants[2:]


def test_a_change_committed_after_this_calls_refresh_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kms.db"
    mine = LocalKms(path, account=ACCOUNT)
    other = LocalKms(path, account=ACCOUNT)
    admin = mine.client(ROOT)
    key = admin.create_key().arn
    grant = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["GenerateDataKey", "Decrypt"])
    ecr = mine.client(ECR)
    _warm(ecr, key)  # the grant index of the key is cached in ``mine``
    other.client(ROOT).revoke_grant(key_id=key, grant_id=grant.grant_id)
    # The other connection's commit lands between this CreateGrant's refresh and its
    # write transaction: the transaction itself must notice, not update the stale index.
    with monkeypatch.context() as m:
        m.setattr(mine, "_refresh", lambda: None)
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Encrypt"])
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    mine.close()
    other.close()


@pytest.mark.parametrize("kind", ["equals", "subset"])
def test_keys_differing_only_in_case_satisfy_no_grant_constraint_hot_or_full(kind: str) -> None:
    kms = LocalKms(account=ACCOUNT, clock=ManualClock())
    admin = kms.client(ROOT)
    key = admin.create_key().key_id
    pairs = {"aws:ecr:arn": REPO}
    constraints = (
        GrantConstraints(encryption_context_equals=pairs)
        if kind == "equals"
        else GrantConstraints(encryption_context_subset=pairs)
    )
    admin.create_grant(key_id=key, grantee_principal=ECR, operations=["GenerateDataKey", "Decrypt"],
                       constraints=constraints)  # fmt: skip
    ecr = kms.client(ECR)
    _warm(ecr, key, pairs)  # the key's hot state is left, and a grant allows this context
    blob = ecr.generate_data_key(key_id=key, encryption_context=pairs, number_of_bytes=32).ciphertext_blob
    for ctx in (
        {"aws:ecr:arn": REPO, "AWS:ECR:ARN": "other"},
        {"AWS:ECR:ARN": "other", "aws:ecr:arn": REPO},
        {"aws:ecr:arn": "other", "AWS:ECR:ARN": REPO},
        {"aws:ecr:arn": REPO, "AWS:ECR:ARN": REPO},
    ):
        for _ in range(2):  # a second time, on whatever the first call cached
            with pytest.raises(errors.AccessDeniedError):
                ecr.generate_data_key(key_id=key, encryption_context=ctx, number_of_bytes=32)
            with pytest.raises(errors.AccessDeniedError):
                ecr.generate_data_key(key_id=key, encryption_context=EncryptionContext(ctx), number_of_bytes=32)
    assert ecr.decrypt(ciphertext_blob=blob, encryption_context=pairs).plaintext
