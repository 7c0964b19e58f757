"""The audit trail: CloudTrail-shaped events for every KMS call, queries, append-only."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import errors
from ecrcrypt.kms import GrantConstraints
from ecrcrypt.kms.local.audit import AuditEvent, AuditTrail
from ecrcrypt.kms.local.service import LocalKms, ManualClock

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
USER = f"arn:aws:iam::{ACCOUNT}:user/Mary_Major"
ECR = "ecr.us-east-1.amazonaws.com"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/testrepo"
OTHER_REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/other"


def ctx(repo: str, digest: str = "0" * 64) -> dict[str, str]:
    return {"aws:ecr:arn": repo, "aws:s3:arn": f"arn:aws:s3:::bucket/p/sha256:{digest}"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 3, 1, tzinfo=UTC))


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, clock=clock)


def test_create_grant_event_has_the_documented_shape(kms: LocalKms) -> None:
    user = kms.client(USER)
    key = user.create_key()
    grant = user.create_grant(
        key_id=key.key_id,
        grantee_principal=ECR,
        retiring_principal=ECR,
        operations=["GenerateDataKey", "Decrypt"],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": REPO}),
    )
    (event,) = kms.audit.query(event_name="CreateGrant")
    record = event.to_cloudtrail()
    # the ECR user guide's CreateGrant record, field by field
    assert record["eventSource"] == "kms.amazonaws.com" and record["eventName"] == "CreateGrant"
    assert record["userIdentity"] == {"type": "IAMUser", "arn": USER, "accountId": ACCOUNT}
    assert record["awsRegion"] == "us-east-1" and record["readOnly"] is False
    assert record["requestParameters"] == {
        "keyId": key.key_id,
        "granteePrincipal": ECR,
        "retiringPrincipal": ECR,
        "operations": ["GenerateDataKey", "Decrypt"],
        "constraints": {"encryptionContextSubset": {"aws:ecr:arn": REPO}},
    }
    assert record["responseElements"] == {"grantId": grant.grant_id, "keyId": key.arn}
    assert record["resources"] == [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key.arn}]
    assert record["eventType"] == "AwsApiCall" and "errorCode" not in record
    assert grant.grant_token not in repr(record)


def test_crypto_events_carry_the_context_and_no_secret(kms: LocalKms) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    dk = admin.generate_data_key(key_id=key, encryption_context=ctx(REPO), key_spec="AES_256")
    admin.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=ctx(REPO))
    gdk, dec = kms.audit.query(event_name="GenerateDataKey") + kms.audit.query(event_name="Decrypt")
    assert gdk.request_parameters == {"keyId": key, "encryptionContext": ctx(REPO), "keySpec": "AES_256"}
    assert dec.request_parameters == {"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": ctx(REPO)}
    assert gdk.response_elements is None and dec.response_elements is None
    assert gdk.read_only and dec.read_only and gdk.resource_arns == (key,)
    for event in (gdk, dec):
        text = repr(event.to_cloudtrail())
        assert (
            dk.plaintext.hex() not in text and repr(dk.plaintext) not in text and repr(dk.ciphertext_blob) not in text
        )


def test_failures_are_recorded_with_error_code_and_message(kms: LocalKms) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    blob = admin.encrypt(key_id=key, plaintext=b"x", encryption_context=ctx(REPO)).ciphertext_blob
    with pytest.raises(errors.InvalidCiphertextError):
        admin.decrypt(ciphertext_blob=blob, encryption_context=ctx(OTHER_REPO))
    with pytest.raises(errors.AccessDeniedError):
        kms.client(ECR).decrypt(ciphertext_blob=blob, encryption_context=ctx(REPO))
    failed = kms.audit.query(event_name="Decrypt", errors=True)
    assert [e.error_code for e in failed] == ["InvalidCiphertextException", "AccessDeniedException"]
    assert failed[1].user_identity == {"type": "AWSService", "invokedBy": ECR}
    assert failed[1].error_message is not None and failed[1].error_message.startswith(f"User: {ECR} is not authorized")
    assert kms.audit.query(event_name="Decrypt", errors=False) == []


def test_retire_grant_event_has_null_request_parameters_and_the_grant_id(kms: LocalKms) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    g = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    admin.retire_grant(grant_token=g.grant_token)
    (event,) = kms.audit.query(event_name="RetireGrant")
    assert event.request_parameters is None and event.additional_event_data == {"grantId": g.grant_id}
    assert event.resource_arns == (key,)


def test_who_decrypted_objects_of_repository_x_and_when(kms: LocalKms, clock: ManualClock) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    for repo in (REPO, OTHER_REPO):
        admin.create_grant(
            key_id=key,
            grantee_principal=ECR,
            operations=["GenerateDataKey", "Decrypt"],
            constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": repo}),
        )
    ecr = kms.client(ECR)
    start = clock()
    blobs = {}
    for repo in (REPO, OTHER_REPO):
        blobs[repo] = ecr.generate_data_key(key_id=key, encryption_context=ctx(repo), number_of_bytes=32)
    for hour, (who, repo) in enumerate([(ECR, REPO), (ROOT, OTHER_REPO), (ROOT, REPO), (ECR, REPO)]):
        clock.advance(seconds=3600)
        kms.client(who).decrypt(ciphertext_blob=blobs[repo].ciphertext_blob, encryption_context=ctx(repo))
        assert hour >= 0
    found = kms.audit.query(event_name="Decrypt", context={"aws:ecr:arn": REPO})
    assert [(e.principal, e.event_time - start) for e in found] == [
        (ECR, timedelta(hours=1)),
        (ROOT, timedelta(hours=3)),
        (ECR, timedelta(hours=4)),
    ]
    window = kms.audit.query(
        event_name="Decrypt",
        context={"aws:ecr:arn": REPO},
        since=start + timedelta(hours=2),
        until=start + timedelta(hours=4),
    )
    assert [e.principal for e in window] == [ROOT]
    assert len(kms.audit.query(principal=ECR, key_arn=key)) == 4  # 2 GenerateDataKey + 2 Decrypt
    assert kms.audit.query(key_arn=key + "0") == []
    assert len(kms.audit.query(event_name="Decrypt", limit=2)) == 2


def test_other_services_append_their_own_events(kms: LocalKms) -> None:
    """The ECR layer records "who pulled image X" in the same trail."""
    event = AuditEvent(
        event_name="BatchGetImage",
        event_source="ecr.amazonaws.com",
        aws_region="us-east-1",
        user_identity={"type": "IAMUser", "arn": USER, "accountId": ACCOUNT},
        request_parameters={"repositoryName": "testrepo", "imageIds": [{"imageTag": "v1"}]},
        resources=({"accountId": ACCOUNT, "type": "AWS::ECR::Repository", "ARN": REPO},),
        read_only=True,
    )
    kms.audit.record(event)
    kms.client(ROOT).create_key()
    (found,) = kms.audit.query(event_source="ecr.amazonaws.com", resource=REPO)
    assert found == event
    assert found.principal == USER
    assert len(kms.audit.query(event_source="kms.amazonaws.com")) == 1


def test_the_trail_is_append_only(kms: LocalKms) -> None:
    kms.client(ROOT).create_key()
    conn = kms._store.conn
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE audit SET event_name = 'x'")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM audit")
    assert len(kms.audit) == 1


def test_the_trail_persists_with_the_store(tmp_path: Path) -> None:
    path = tmp_path / "kms.db"
    with LocalKms(path, account=ACCOUNT) as kms:
        kms.client(ROOT).create_key()
    with LocalKms(path, account=ACCOUNT) as kms:
        (event,) = kms.audit.query()
        assert event.event_name == "CreateKey"
        assert isinstance(kms.audit, AuditTrail)


def test_event_ids_are_unique(kms: LocalKms) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    for _ in range(20):
        admin.describe_key(key_id=key)
    ids = [e.event_id for e in kms.audit.query()]
    assert len(set(ids)) == len(ids) == 21


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@given(
    name=_text.filter(bool),
    source=_text,
    params=st.none() | st.dictionaries(_text, _text, max_size=3),
    error=st.none() | st.tuples(_text, _text),
    seconds=st.integers(min_value=0, max_value=2**33),
)
def test_cloudtrail_roundtrip(
    name: str, source: str, params: dict[str, str] | None, error: tuple[str, str] | None, seconds: int
) -> None:
    event = AuditEvent(
        event_name=name,
        event_source=source,
        event_time=datetime.fromtimestamp(seconds, UTC),
        user_identity={"type": "Root", "arn": ROOT},
        request_parameters=params,
        error_code=None if error is None else error[0],
        error_message=None if error is None else error[1],
    )
    assert AuditEvent.from_cloudtrail(event.to_cloudtrail()) == event


def test_audit_event_validation() -> None:
    with pytest.raises(errors.ValidationError):
        AuditEvent(event_name="")
    with pytest.raises(errors.ValidationError):
        AuditEvent(event_name="X", event_time=datetime(2025, 1, 1))
