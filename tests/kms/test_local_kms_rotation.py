"""Automatic key rotation on the injected clock.

KMS (EnableKeyRotation, rotate-keys.md, kms-ecr-semantics.md §1.5): the first rotation
is one period after rotation is enabled, then every period; a Disabled or
PendingDeletion key is not rotated, and one re-enabled after its date rotates at
once; AWS managed keys rotate every year; rotation keeps key id, ARN, aliases and
grants, and every earlier ciphertext decrypts. Each rotation is a CloudTrail
``AwsServiceEvent`` "RotateKey" with ``serviceEventDetails.rotationType`` AUTOMATIC.
"""

from __future__ import annotations

import sqlite3
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt import errors
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient, ManualClock

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ECR = "ecr.us-east-1.amazonaws.com"
CTX = {"aws:ecr:arn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"}


def _version(blob: bytes) -> int:
    """The material version a ciphertext blob names (docs/kms-model.md, blob layout)."""
    return int(struct.unpack_from(">I", blob, 17)[0])


def _rotations(kms: LocalKms, key_arn: str | None = None) -> list[str]:
    events = kms.audit.query(event_name="RotateKey", key_arn=key_arn)
    for e in events:
        assert e.event_type == "AwsServiceEvent"
        assert e.user_identity == {"accountId": ACCOUNT, "invokedBy": "kms.amazonaws.com"}
        assert e.service_event_details is not None and e.service_event_details["rotationType"] == "AUTOMATIC"
        assert e.principal == "kms.amazonaws.com"
        assert e.error_code is None
    return [str(e.service_event_details["keyId"]) for e in events if e.service_event_details]


def _gdk(client: LocalKmsClient, key: str) -> bytes:
    return client.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256").ciphertext_blob


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, clock=clock)


@pytest.fixture
def admin(kms: LocalKms) -> LocalKmsClient:
    return kms.client(ROOT)


def test_rotation_happens_on_the_date_and_not_before(kms: LocalKms, admin: LocalKmsClient, clock: ManualClock) -> None:
    key = admin.create_key().arn
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    status = admin.get_key_rotation_status(key_id=key)
    assert status.next_rotation_date == clock() + timedelta(days=90)
    assert _version(_gdk(admin, key)) == 0
    clock.advance(days=90, seconds=-1)
    assert _version(_gdk(admin, key)) == 0
    assert _rotations(kms) == []
    clock.advance(seconds=1)
    assert _version(_gdk(admin, key)) == 1
    assert _rotations(kms) == [key]
    assert admin.get_key_rotation_status(key_id=key).next_rotation_date == clock() + timedelta(days=90)


@given(periods=st.lists(st.integers(90, 400), min_size=1, max_size=4), calls=st.integers(1, 3))
@settings(max_examples=15, deadline=None)
def test_ciphertexts_from_before_every_rotation_still_decrypt(periods: list[int], calls: int) -> None:
    clock = ManualClock()
    kms = LocalKms(account=ACCOUNT, clock=clock)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    admin.create_alias(alias_name="alias/app", target_key_id=key)
    grant = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt", "GenerateDataKey"])
    blobs: list[bytes] = []
    for period in periods:
        admin.enable_key_rotation(key_id=key, rotation_period_in_days=period)
        for _ in range(calls):  # the later calls run on the hot path's plans
            blobs.append(_gdk(admin, key))
        clock.advance(days=period)
        blobs.append(_gdk(kms.client(ECR), "alias/app"))
    assert [_version(b) for b in blobs[calls :: calls + 1]] == list(range(1, len(periods) + 1))
    assert len(_rotations(kms, key)) == len(periods)
    for b in blobs:
        assert admin.decrypt(ciphertext_blob=b, encryption_context=CTX).key_id == key
    # key id, ARN, aliases and grants are unchanged
    assert admin.describe_key(key_id="alias/app").arn == key
    assert [g.grant_id for g in admin.list_grants(key_id=key).grants] == [grant.grant_id]


def test_missed_dates_collapse_into_one_rotation_on_the_original_schedule(
    kms: LocalKms, admin: LocalKmsClient, clock: ManualClock
) -> None:
    key = admin.create_key().arn
    enabled_at = clock()
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    clock.advance(days=200)
    admin.describe_key(key_id=key)  # DescribeKey also sees the date
    assert _rotations(kms) == [key]
    assert _version(_gdk(admin, key)) == 1
    status = admin.get_key_rotation_status(key_id=key)
    assert status.next_rotation_date == enabled_at + timedelta(days=270)


def test_disabled_and_pending_deletion_keys_are_not_rotated(
    kms: LocalKms, admin: LocalKmsClient, clock: ManualClock
) -> None:
    key = admin.create_key().arn
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    admin.disable_key(key_id=key)
    clock.advance(days=100)
    admin.describe_key(key_id=key)
    with pytest.raises(errors.DisabledError):
        _gdk(admin, key)
    assert _rotations(kms) == []
    admin.enable_key(key_id=key)  # "rotates immediately" once re-enabled
    assert _version(_gdk(admin, key)) == 1
    assert _rotations(kms) == [key]

    other = admin.create_key().arn
    admin.enable_key_rotation(key_id=other, rotation_period_in_days=90)
    old = _gdk(admin, other)
    clock.advance(days=80)
    admin.schedule_key_deletion(key_id=other, pending_window_in_days=30)
    clock.advance(days=20)
    admin.describe_key(key_id=other)
    with pytest.raises(errors.KmsInvalidStateError):
        _gdk(admin, other)
    assert _rotations(kms, other) == []
    admin.cancel_key_deletion(key_id=other)
    admin.enable_key(key_id=other)
    assert _version(_gdk(admin, other)) == 1
    assert _rotations(kms, other) == [other]
    assert admin.decrypt(ciphertext_blob=old, encryption_context=CTX).key_id == other


def test_disabling_rotation_stops_it_and_reenabling_counts_from_the_new_date(
    kms: LocalKms, admin: LocalKmsClient, clock: ManualClock
) -> None:
    key = admin.create_key().arn
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    clock.advance(days=60)
    admin.disable_key_rotation(key_id=key)
    clock.advance(days=60)
    assert _version(_gdk(admin, key)) == 0
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    clock.advance(days=89)
    assert _version(_gdk(admin, key)) == 0
    clock.advance(days=1)
    assert _version(_gdk(admin, key)) == 1
    assert _rotations(kms) == [key]


def test_on_demand_rotation_does_not_shift_the_schedule(
    kms: LocalKms, admin: LocalKmsClient, clock: ManualClock
) -> None:
    key = admin.create_key().arn
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    clock.advance(days=45)
    admin.rotate_key_on_demand(key_id=key)
    clock.advance(days=45)
    assert _version(_gdk(admin, key)) == 2
    assert _rotations(kms) == [key]  # the on-demand one is the RotateKeyOnDemand call itself


def test_aws_managed_keys_rotate_every_year(kms: LocalKms, admin: LocalKmsClient, clock: ManualClock) -> None:
    managed = admin.describe_key(key_id="alias/aws/ecr").arn
    status = admin.get_key_rotation_status(key_id=managed)
    assert (status.key_rotation_enabled, status.rotation_period_in_days) == (True, 365)
    clock.advance(days=364)
    admin.describe_key(key_id="alias/aws/ecr")
    assert _rotations(kms) == []
    clock.advance(days=1)
    admin.describe_key(key_id="alias/aws/ecr")
    assert _rotations(kms) == [managed]
    clock.advance(days=365)
    admin.list_grants(key_id=managed)
    assert _rotations(kms) == [managed, managed]


def test_one_rotation_across_connections_sharing_a_store(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "kms.db"
    first = LocalKms(path, account=ACCOUNT, clock=clock)
    second = LocalKms(path, account=ACCOUNT, clock=clock)
    a, b = first.client(ROOT), second.client(ROOT)
    key = a.create_key().arn
    a.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    for client in (a, b, a, b):  # plans warm in both
        assert _version(_gdk(client, key)) == 0
    clock.advance(days=90)
    assert _version(_gdk(b, key)) == 1
    assert _version(_gdk(a, key)) == 1
    assert _rotations(first) == [key]
    first.close()
    second.close()


def test_a_store_written_before_automatic_rotation_opens(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "kms.db"
    kms = LocalKms(path, account=ACCOUNT, clock=clock)
    key = kms.client(ROOT).create_key().arn
    blob = _gdk(kms.client(ROOT), key)
    kms.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE keys DROP COLUMN rotation_anchor")
    conn.commit()
    conn.close()
    kms = LocalKms(path, account=ACCOUNT, clock=clock)
    admin = kms.client(ROOT)
    assert admin.decrypt(ciphertext_blob=blob, encryption_context=CTX).key_id == key
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    clock.advance(days=90)
    assert _version(_gdk(admin, key)) == 1
    kms.close()
