"""LocalKms: keys, aliases, key states, rotation, cryptography, authorization, errors.

Every failure asserts the exact exception class; the AWS rule each test pins is in
its name or docstring (sources in docs/kms-model.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import errors
from ecrcrypt.context import EncryptionContext
from ecrcrypt.kms import (
    DataKeySpec,
    GrantConstraints,
    GrantOperation,
    KeyManager,
    KeyState,
    Kms,
    KmsQuotas,
)
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient, ManualClock

ACCOUNT = "111122223333"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
ECR = "ecr.us-east-1.amazonaws.com"
OTHER_ACCOUNT = "arn:aws:iam::444455556666:role/pusher"
CTX = {"aws:ecr:arn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app", "aws:s3:arn": "arn:aws:s3:::b/p/sha256:00"}


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, region=REGION, clock=clock)


@pytest.fixture
def admin(kms: LocalKms) -> LocalKmsClient:
    return kms.client(ROOT)


@pytest.fixture
def key(admin: Kms) -> str:
    return admin.create_key(description="test").arn


def test_client_satisfies_the_protocol(admin: Kms) -> None:
    assert isinstance(admin, Kms)


# --------------------------------------------------------------------------- keys


def test_create_and_describe_key_by_every_reference_form(admin: Kms) -> None:
    meta = admin.create_key(description="d")
    admin.create_alias(alias_name="alias/app", target_key_id=meta.key_id)
    assert meta.key_state is KeyState.ENABLED and meta.enabled
    assert meta.key_manager is KeyManager.CUSTOMER
    assert meta.arn == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{meta.key_id}"
    assert meta.aws_account_id == ACCOUNT and meta.description == "d" and meta.deletion_date is None
    for ref in (meta.key_id, meta.arn, "alias/app", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"):
        assert admin.describe_key(key_id=ref) == meta


@pytest.mark.parametrize(
    "ref",
    [
        "0d2f6f83-feea-4989-815c-7c8c9d60510c",
        f"arn:aws:kms:us-west-2:{ACCOUNT}:key/0d2f6f83-feea-4989-815c-7c8c9d60510c",
        "alias/nope",
        "not-a-key",
    ],
)
def test_unknown_keys_are_not_found(admin: Kms, ref: str) -> None:
    with pytest.raises(errors.NotFoundError):
        admin.describe_key(key_id=ref)


def test_a_key_is_usable_only_in_its_own_region(tmp_path: Any) -> None:
    """KMS keys are regional: the same store seen from another Region does not show them."""
    east = LocalKms(tmp_path / "k.db", account=ACCOUNT, region="us-east-1")
    west = LocalKms(tmp_path / "k.db", account=ACCOUNT, region="us-west-2")
    meta = east.client(ROOT).create_key()
    blob = east.client(ROOT).encrypt(key_id=meta.arn, plaintext=b"x").ciphertext_blob
    west_arn = meta.arn.replace("us-east-1", "us-west-2")
    for ref in (meta.key_id, meta.arn, west_arn):
        with pytest.raises(errors.NotFoundError):
            west.client(ROOT).describe_key(key_id=ref)
    with pytest.raises(errors.NotFoundError):
        west.client(ROOT).decrypt(ciphertext_blob=blob)


def test_malformed_arn_is_invalid_arn(admin: Kms) -> None:
    with pytest.raises(errors.InvalidArnError):
        admin.describe_key(key_id="arn:aws:kms:us-east-1:12:key/x")


def test_describe_predefined_aws_alias_creates_the_aws_managed_key_once(kms: LocalKms, admin: Kms) -> None:
    first = admin.describe_key(key_id="alias/aws/ecr")
    assert first.key_manager is KeyManager.AWS and first.key_state is KeyState.ENABLED
    assert admin.describe_key(key_id="alias/aws/ecr") == first
    assert kms.client(USER).describe_key(key_id="alias/aws/ecr") == first
    assert admin.get_key_rotation_status(key_id=first.key_id).key_rotation_enabled  # AWS managed: yearly
    with pytest.raises(errors.NotFoundError):
        admin.describe_key(key_id="alias/aws/not-a-service")


def test_aws_managed_key_is_not_directly_usable_by_the_account(admin: Kms) -> None:
    arn = admin.describe_key(key_id="alias/aws/ecr").arn
    for call in (
        lambda: admin.generate_data_key(key_id=arn, number_of_bytes=32),
        lambda: admin.disable_key(key_id=arn),
        lambda: admin.schedule_key_deletion(key_id=arn),
        lambda: admin.revoke_grant(key_id=arn, grant_id="0" * 64),
    ):
        with pytest.raises(errors.AccessDeniedError):
            call()


def test_aws_managed_key_has_no_grant_quota_and_serves_services_through_grants(clock: ManualClock) -> None:
    kms = LocalKms(account=ACCOUNT, region=REGION, clock=clock, quotas=KmsQuotas(grants_per_grantee_per_key=2))
    # The AWS managed key's policy allows CreateGrant only through the service (kms:ViaService).
    admin = kms.client(ROOT, via_service=f"ecr.{REGION}.amazonaws.com")
    arn = admin.describe_key(key_id="alias/aws/ecr").arn
    for _ in range(3):
        admin.create_grant(key_id=arn, grantee_principal=ECR, operations=["GenerateDataKey", "Decrypt"])
    ecr = kms.client(ECR)
    dk = ecr.generate_data_key(key_id="alias/aws/ecr", encryption_context=CTX, key_spec="AES_256")
    assert ecr.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CTX).plaintext == dk.plaintext


def test_create_key_validation(admin: Kms, kms: LocalKms) -> None:
    with pytest.raises(errors.ValidationError):
        admin.create_key(key_spec="RSA_2048")
    with pytest.raises(errors.ValidationError):
        admin.create_key(description="x" * 8193)
    with pytest.raises(errors.AccessDeniedError):
        kms.client(ECR).create_key()
    with pytest.raises(errors.AccessDeniedError):
        kms.client(ROOT, deny={"kms:CreateKey"}).create_key()


# --------------------------------------------------------------------------- aliases


def test_alias_lifecycle(admin: Kms) -> None:
    a = admin.create_key().key_id
    b = admin.create_key().key_id
    admin.create_alias(alias_name="alias/x", target_key_id=a)
    with pytest.raises(errors.AlreadyExistsError):
        admin.create_alias(alias_name="alias/x", target_key_id=b)
    admin.update_alias(alias_name="alias/x", target_key_id=b)
    assert admin.describe_key(key_id="alias/x").key_id == b
    listed = admin.list_aliases(key_id=b)
    assert [e.alias_name for e in listed.aliases] == ["alias/x"] and listed.aliases[0].target_key_id == b
    admin.delete_alias(alias_name="alias/x")
    with pytest.raises(errors.NotFoundError):
        admin.describe_key(key_id="alias/x")
    with pytest.raises(errors.NotFoundError):
        admin.delete_alias(alias_name="alias/x")
    with pytest.raises(errors.NotFoundError):
        admin.update_alias(alias_name="alias/x", target_key_id=a)


@pytest.mark.parametrize(
    "name", ["alias/aws/ecr", "alias/aws/mine", "x/noprefix", "alias/sp ace", "alias/" + "a" * 251]
)
def test_bad_or_reserved_alias_names(admin: Kms, key: str, name: str) -> None:
    """KMS: names match ^[a-zA-Z0-9:/_-]+$, 1-256, start with alias/, never alias/aws/."""
    with pytest.raises(errors.InvalidAliasNameError):
        admin.create_alias(alias_name=name, target_key_id=key)


def test_alias_operations_take_key_id_or_arn_only_for_targets(admin: Kms, key: str) -> None:
    admin.create_alias(alias_name="alias/one", target_key_id=key)
    with pytest.raises(errors.NotFoundError):
        admin.create_alias(alias_name="alias/two", target_key_id="alias/one")


def test_fifty_aliases_per_key(admin: Kms, key: str) -> None:
    for i in range(50):
        admin.create_alias(alias_name=f"alias/a{i}", target_key_id=key)
    with pytest.raises(errors.LimitExceededError):
        admin.create_alias(alias_name="alias/a50", target_key_id=key)


def test_list_aliases_pages(admin: Kms, key: str) -> None:
    names = sorted(f"alias/p{i:02d}" for i in range(7))
    for n in names:
        admin.create_alias(alias_name=n, target_key_id=key)
    seen: list[str] = []
    marker = None
    while True:
        page = admin.list_aliases(limit=3, marker=marker)
        seen += [a.alias_name for a in page.aliases]
        if not page.truncated:
            assert page.next_marker is None
            break
        marker = page.next_marker
    assert seen == names
    with pytest.raises(errors.ValidationError):
        admin.list_aliases(marker="garbage")
    with pytest.raises(errors.ValidationError):
        admin.list_aliases(limit=101)


# --------------------------------------------------------------------------- cryptography


def test_generate_data_key_and_decrypt_roundtrip(admin: Kms, key: str) -> None:
    for kwargs, n in (
        ({"key_spec": DataKeySpec.AES_256}, 32),
        ({"key_spec": "AES_128"}, 16),
        ({"number_of_bytes": 64}, 64),
    ):
        dk = admin.generate_data_key(key_id=key, encryption_context=CTX, **kwargs)
        assert len(dk.plaintext) == n and dk.key_id == key
        out = admin.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=dict(reversed(CTX.items())))
        assert out.plaintext == dk.plaintext and out.key_id == key
    wp = admin.generate_data_key_without_plaintext(key_id=key, encryption_context=CTX, number_of_bytes=32)
    assert len(admin.decrypt(ciphertext_blob=wp.ciphertext_blob, encryption_context=CTX).plaintext) == 32


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"key_spec": "AES_256", "number_of_bytes": 32},
        {"number_of_bytes": 0},
        {"number_of_bytes": 1025},
        {"key_spec": "AES_512"},
    ],
)
def test_generate_data_key_needs_exactly_one_valid_size(admin: Kms, key: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(errors.ValidationError):
        admin.generate_data_key(key_id=key, **kwargs)


def test_encrypt_limits(admin: Kms, key: str) -> None:
    assert admin.decrypt(ciphertext_blob=admin.encrypt(key_id=key, plaintext=b"a" * 4096).ciphertext_blob).plaintext
    for bad in (b"", b"a" * 4097):
        with pytest.raises(errors.ValidationError):
            admin.encrypt(key_id=key, plaintext=bad)


@pytest.mark.parametrize(
    "other",
    [
        {},  # missing pairs
        {**CTX, "extra": "x"},  # superset
        {k: v for k, v in list(CTX.items())[:1]},  # subset
        {k.upper(): v for k, v in CTX.items()},  # key case
        {k: v.upper() for k, v in CTX.items()},  # value case
        {**CTX, "aws:ecr:arn": "arn:aws:ecr:us-east-1:111122223333:repository/other"},
    ],
)
def test_decrypt_with_any_other_context_is_invalid_ciphertext(admin: Kms, key: str, other: dict[str, str]) -> None:
    """KMS: the context must be "a case-sensitive exact match"; only the order may differ."""
    blob = admin.encrypt(key_id=key, plaintext=b"secret", encryption_context=CTX).ciphertext_blob
    with pytest.raises(errors.InvalidCiphertextError) as err:
        admin.decrypt(ciphertext_blob=blob, encryption_context=other)
    assert type(err.value) is errors.InvalidCiphertextError


def test_decrypt_with_another_keys_id_is_incorrect_key(admin: Kms, key: str) -> None:
    other = admin.create_key().arn
    blob = admin.encrypt(key_id=key, plaintext=b"x").ciphertext_blob
    with pytest.raises(errors.IncorrectKeyError):
        admin.decrypt(ciphertext_blob=blob, key_id=other)
    assert admin.decrypt(ciphertext_blob=blob, key_id=key).plaintext == b"x"


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_are_invalid_ciphertext(data: bytes) -> None:
    kms = LocalKms(account=ACCOUNT, region=REGION)
    with pytest.raises(errors.InvalidCiphertextError) as err:
        kms.client(ROOT).decrypt(ciphertext_blob=data)
    assert type(err.value) is errors.InvalidCiphertextError


@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7), cut=st.booleans())
def test_tampered_blobs_are_invalid_ciphertext(position: int, bit: int, cut: bool) -> None:
    kms = LocalKms(account=ACCOUNT, region=REGION)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    blob = bytearray(admin.encrypt(key_id=key, plaintext=b"payload", encryption_context=CTX).ciphertext_blob)
    i = position % len(blob)
    if cut:
        blob = blob[:i]
    else:
        blob[i] ^= 1 << bit
    with pytest.raises(errors.InvalidCiphertextError) as err:
        admin.decrypt(ciphertext_blob=bytes(blob), encryption_context=CTX)
    assert type(err.value) is errors.InvalidCiphertextError


def test_re_encrypt_changes_key_and_context(admin: Kms, key: str) -> None:
    dest = admin.create_key().arn
    blob = admin.encrypt(key_id=key, plaintext=b"pt", encryption_context=CTX).ciphertext_blob
    out = admin.re_encrypt(
        ciphertext_blob=blob,
        source_encryption_context=CTX,
        destination_key_id=dest,
        destination_encryption_context={"new": "ctx"},
    )
    assert out.source_key_id == key and out.key_id == dest
    assert admin.decrypt(ciphertext_blob=out.ciphertext_blob, encryption_context={"new": "ctx"}).plaintext == b"pt"
    with pytest.raises(errors.IncorrectKeyError):
        admin.re_encrypt(
            ciphertext_blob=blob, source_encryption_context=CTX, source_key_id=dest, destination_key_id=dest
        )
    with pytest.raises(errors.InvalidCiphertextError):
        admin.re_encrypt(ciphertext_blob=blob, destination_key_id=dest)


# --------------------------------------------------------------------------- rotation


def test_rotation_keeps_every_earlier_ciphertext_decryptable(admin: Kms, key: str) -> None:
    admin.create_alias(alias_name="alias/rot", target_key_id=key)
    grant = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    blobs = []
    for i in range(6):
        blobs.append((i, admin.encrypt(key_id="alias/rot", plaintext=bytes([i]) * 8, encryption_context=CTX)))
        admin.rotate_key_on_demand(key_id=key)
    versions = {b.ciphertext_blob[17:21] for _, b in blobs}
    assert len(versions) == 6  # each encryption used the material current at the time
    for i, enc in blobs:
        out = admin.decrypt(ciphertext_blob=enc.ciphertext_blob, encryption_context=CTX)
        assert out.plaintext == bytes([i]) * 8 and out.key_id == key
    # key id, ARN, aliases and grants unchanged
    assert admin.describe_key(key_id="alias/rot").arn == key
    assert [g.grant_id for g in admin.list_grants(key_id=key).grants] == [grant.grant_id]


def test_rotation_status_and_period(admin: Kms, key: str) -> None:
    assert not admin.get_key_rotation_status(key_id=key).key_rotation_enabled
    admin.enable_key_rotation(key_id=key, rotation_period_in_days=90)
    st_ = admin.get_key_rotation_status(key_id=key)
    assert st_.key_rotation_enabled and st_.rotation_period_in_days == 90
    for bad in (89, 2561):
        with pytest.raises(errors.ValidationError):
            admin.enable_key_rotation(key_id=key, rotation_period_in_days=bad)
    admin.schedule_key_deletion(key_id=key)
    assert not admin.get_key_rotation_status(key_id=key).key_rotation_enabled  # reads false while pending
    admin.cancel_key_deletion(key_id=key)
    assert admin.get_key_rotation_status(key_id=key).key_rotation_enabled  # restored on cancel
    admin.enable_key(key_id=key)
    admin.disable_key_rotation(key_id=key)
    assert not admin.get_key_rotation_status(key_id=key).key_rotation_enabled


def test_on_demand_rotation_quota_is_25(admin: Kms, key: str) -> None:
    for _ in range(25):
        admin.rotate_key_on_demand(key_id=key)
    with pytest.raises(errors.LimitExceededError):
        admin.rotate_key_on_demand(key_id=key)


# --------------------------------------------------------------------------- key states


def test_schedule_window_bounds(admin: Kms, key: str, clock: ManualClock) -> None:
    for bad in (6, 31, 0):
        with pytest.raises(errors.ValidationError):
            admin.schedule_key_deletion(key_id=key, pending_window_in_days=bad)
    resp = admin.schedule_key_deletion(key_id=key)
    assert resp.pending_window_in_days == 30 and resp.key_state is KeyState.PENDING_DELETION
    assert resp.deletion_date == clock() + timedelta(days=30)
    assert admin.describe_key(key_id=key).deletion_date == resp.deletion_date
    admin.cancel_key_deletion(key_id=key)
    resp = admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    assert resp.deletion_date == clock() + timedelta(days=7)


def test_cancel_key_deletion_leaves_the_key_disabled(admin: Kms, key: str) -> None:
    """KMS: "When this operation succeeds, the key state of the KMS key is Disabled.\""""
    admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    assert admin.cancel_key_deletion(key_id=key).key_id == key
    meta = admin.describe_key(key_id=key)
    assert meta.key_state is KeyState.DISABLED and not meta.enabled and meta.deletion_date is None


def test_after_the_waiting_period_the_key_and_its_ciphertexts_are_gone(
    kms: LocalKms, admin: Kms, key: str, clock: ManualClock
) -> None:
    admin.create_alias(alias_name="alias/doomed", target_key_id=key)
    blob = admin.encrypt(key_id=key, plaintext=b"x").ciphertext_blob
    admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    clock.advance(days=7, seconds=-1)
    assert admin.describe_key(key_id=key).key_state is KeyState.PENDING_DELETION
    clock.advance(seconds=1)
    with pytest.raises(errors.NotFoundError):
        admin.describe_key(key_id=key)
    with pytest.raises(errors.NotFoundError):
        admin.decrypt(ciphertext_blob=blob)
    with pytest.raises(errors.NotFoundError):
        admin.describe_key(key_id="alias/doomed")
    assert admin.list_aliases().aliases == ()
    with pytest.raises(errors.NotFoundError):
        admin.cancel_key_deletion(key_id=key)


OK = None
DIS = errors.DisabledError
INV = errors.KmsInvalidStateError


def _op_table() -> list[tuple[str, Callable[[Kms, dict[str, Any]], Any], Any, Any, Any]]:
    """(operation, call, Enabled, Disabled, PendingDeletion) -- KMS key-state table (§1.4)."""
    return [
        ("Encrypt", lambda k, s: k.encrypt(key_id=s["key"], plaintext=b"x"), OK, DIS, INV),
        ("Decrypt", lambda k, s: k.decrypt(ciphertext_blob=s["blob"]), OK, DIS, INV),
        ("GenerateDataKey", lambda k, s: k.generate_data_key(key_id=s["key"], number_of_bytes=32), OK, DIS, INV),
        (
            "GenerateDataKeyWithoutPlaintext",
            lambda k, s: k.generate_data_key_without_plaintext(key_id=s["key"], key_spec="AES_256"),
            OK,
            DIS,
            INV,
        ),
        (
            "ReEncrypt(source)",
            lambda k, s: k.re_encrypt(ciphertext_blob=s["blob"], destination_key_id=s["other"]),
            OK,
            DIS,
            OK,  # footnote: ReEncrypt from a key pending deletion succeeds
        ),
        (
            "ReEncrypt(destination)",
            lambda k, s: k.re_encrypt(ciphertext_blob=s["other_blob"], destination_key_id=s["key"]),
            OK,
            DIS,
            INV,
        ),
        (
            "CreateGrant",
            lambda k, s: k.create_grant(key_id=s["key"], grantee_principal=ECR, operations=["Decrypt"]),
            OK,
            DIS,
            INV,
        ),
        ("DescribeKey", lambda k, s: k.describe_key(key_id=s["key"]), OK, OK, OK),
        ("ListGrants", lambda k, s: k.list_grants(key_id=s["key"]), OK, OK, OK),
        ("RetireGrant", lambda k, s: k.retire_grant(grant_token=s["token"]), OK, OK, OK),
        ("RevokeGrant", lambda k, s: k.revoke_grant(key_id=s["key"], grant_id=s["grant"]), OK, OK, OK),
        ("CreateAlias", lambda k, s: k.create_alias(alias_name="alias/new", target_key_id=s["key"]), OK, OK, INV),
        ("UpdateAlias", lambda k, s: k.update_alias(alias_name="alias/o", target_key_id=s["key"]), OK, OK, INV),
        ("DeleteAlias", lambda k, s: k.delete_alias(alias_name="alias/k"), OK, OK, OK),
        ("EnableKey", lambda k, s: k.enable_key(key_id=s["key"]), OK, OK, INV),
        ("DisableKey", lambda k, s: k.disable_key(key_id=s["key"]), OK, OK, INV),
        ("ScheduleKeyDeletion", lambda k, s: k.schedule_key_deletion(key_id=s["key"]), OK, OK, INV),
        ("CancelKeyDeletion", lambda k, s: k.cancel_key_deletion(key_id=s["key"]), INV, INV, OK),
        ("EnableKeyRotation", lambda k, s: k.enable_key_rotation(key_id=s["key"]), OK, DIS, INV),
        ("DisableKeyRotation", lambda k, s: k.disable_key_rotation(key_id=s["key"]), OK, DIS, INV),
        ("GetKeyRotationStatus", lambda k, s: k.get_key_rotation_status(key_id=s["key"]), OK, OK, OK),
        ("RotateKeyOnDemand", lambda k, s: k.rotate_key_on_demand(key_id=s["key"]), OK, DIS, INV),
    ]


_CASES = [
    pytest.param(op, call, state, expected, id=f"{op}-{state.value}")
    for op, call, *outcomes in _op_table()
    for state, expected in zip((KeyState.ENABLED, KeyState.DISABLED, KeyState.PENDING_DELETION), outcomes, strict=True)
]


@pytest.mark.parametrize(("op", "call", "state", "expected"), _CASES)
def test_key_state_table(admin: Kms, op: str, call: Any, state: KeyState, expected: Any) -> None:
    key = admin.create_key().arn
    other = admin.create_key().arn
    grant = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], retiring_principal=ROOT)
    admin.create_alias(alias_name="alias/k", target_key_id=key)
    admin.create_alias(alias_name="alias/o", target_key_id=other)
    setup = {
        "key": key,
        "other": other,
        "blob": admin.encrypt(key_id=key, plaintext=b"x").ciphertext_blob,
        "other_blob": admin.encrypt(key_id=other, plaintext=b"x").ciphertext_blob,
        "grant": grant.grant_id,
        "token": grant.grant_token,
    }
    if state is KeyState.DISABLED:
        admin.disable_key(key_id=key)
    elif state is KeyState.PENDING_DELETION:
        admin.schedule_key_deletion(key_id=key)
    assert admin.describe_key(key_id=key).key_state is state
    if expected is None:
        call(admin, setup)
    else:
        with pytest.raises(expected) as err:
            call(admin, setup)
        assert type(err.value) is expected
        # KMS's message shape: "<key ARN> is disabled." / "... is pending deletion."
        assert str(err.value).startswith(key)


def test_state_error_messages_have_kms_shape(admin: Kms, key: str) -> None:
    admin.disable_key(key_id=key)
    with pytest.raises(errors.DisabledError, match=rf"^{key} is disabled\.$"):
        admin.encrypt(key_id=key, plaintext=b"x")
    admin.schedule_key_deletion(key_id=key)
    with pytest.raises(errors.KmsInvalidStateError, match=rf"^{key} is pending deletion\.$"):
        admin.encrypt(key_id=key, plaintext=b"x")


# --------------------------------------------------------------------------- authorization and grants


def test_without_a_grant_a_service_or_other_account_is_denied(kms: LocalKms, admin: Kms, key: str) -> None:
    blob = admin.encrypt(key_id=key, plaintext=b"x", encryption_context=CTX).ciphertext_blob
    for principal in (ECR, OTHER_ACCOUNT):
        client = kms.client(principal)
        with pytest.raises(errors.AccessDeniedError):
            client.decrypt(ciphertext_blob=blob, encryption_context=CTX)
        with pytest.raises(errors.AccessDeniedError):
            client.describe_key(key_id=key)
        with pytest.raises(errors.AccessDeniedError):
            client.list_grants(key_id=key)


def test_account_principals_are_allowed_by_the_default_key_policy(kms: LocalKms, key: str) -> None:
    for principal in (ROOT, USER, f"arn:aws:iam::{ACCOUNT}:role/r", ACCOUNT):
        c = kms.client(principal)
        assert c.decrypt(ciphertext_blob=c.encrypt(key_id=key, plaintext=b"y").ciphertext_blob).plaintext == b"y"


def test_explicit_deny_wins(kms: LocalKms, key: str) -> None:
    c = kms.client(USER, deny={"kms:Decrypt"})
    blob = c.encrypt(key_id=key, plaintext=b"y").ciphertext_blob
    with pytest.raises(errors.AccessDeniedError, match="explicit deny"):
        c.decrypt(ciphertext_blob=blob)
    with pytest.raises(errors.AccessDeniedError):
        kms.client(USER, deny={"kms:*"}).describe_key(key_id=key)


def test_grant_allows_only_its_operations_under_its_constraint(kms: LocalKms, admin: Kms, key: str) -> None:
    repo = CTX["aws:ecr:arn"]
    admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=[GrantOperation.GENERATE_DATA_KEY, GrantOperation.DECRYPT],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": repo}),
    )
    ecr = kms.client(ECR)
    dk = ecr.generate_data_key(key_id=key, encryption_context=CTX, number_of_bytes=32)
    assert ecr.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CTX).plaintext == dk.plaintext
    other_repo = {**CTX, "aws:ecr:arn": repo + "x"}
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, encryption_context=other_repo, number_of_bytes=32)
    with pytest.raises(errors.AccessDeniedError):
        ecr.generate_data_key(key_id=key, number_of_bytes=32)  # subset needs a context
    with pytest.raises(errors.AccessDeniedError):
        ecr.encrypt(key_id=key, plaintext=b"x", encryption_context=CTX)  # not a granted operation
    with pytest.raises(errors.AccessDeniedError):
        ecr.describe_key(key_id=key)


def test_constraint_keys_are_case_insensitive_values_case_sensitive(kms: LocalKms, admin: Kms, key: str) -> None:
    admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["Encrypt"],
        constraints=GrantConstraints(encryption_context_equals={"Repo": "App"}),
    )
    ecr = kms.client(ECR)
    ecr.encrypt(key_id=key, plaintext=b"x", encryption_context={"rEPO": "App"})
    with pytest.raises(errors.AccessDeniedError):
        ecr.encrypt(key_id=key, plaintext=b"x", encryption_context={"Repo": "app"})
    with pytest.raises(errors.AccessDeniedError):
        ecr.encrypt(key_id=key, plaintext=b"x", encryption_context={"Repo": "App", "more": "x"})  # Equals


def test_constraints_are_ignored_for_describe_key_and_retire_grant(kms: LocalKms, admin: Kms, key: str) -> None:
    g = admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["DescribeKey", "RetireGrant"],
        constraints=GrantConstraints(encryption_context_subset={"a": "b"}),
    )
    ecr = kms.client(ECR)
    assert ecr.describe_key(key_id=key).arn == key
    ecr.retire_grant(key_id=key, grant_id=g.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        ecr.describe_key(key_id=key)


def test_retired_or_revoked_grants_stop_working_at_once(kms: LocalKms, admin: Kms, key: str) -> None:
    ecr = kms.client(ECR)
    blob = admin.encrypt(key_id=key, plaintext=b"x").ciphertext_blob
    for finish in ("retire", "revoke"):
        g = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], grant_tokens=[])
        ecr.decrypt(ciphertext_blob=blob, grant_tokens=[g.grant_token])
        if finish == "retire":
            admin.retire_grant(grant_token=g.grant_token)
        else:
            admin.revoke_grant(key_id=key, grant_id=g.grant_id)
        with pytest.raises(errors.AccessDeniedError):
            ecr.decrypt(ciphertext_blob=blob)


def test_grant_validation(admin: Kms, key: str) -> None:
    bad_calls: list[dict[str, Any]] = [
        {"operations": []},
        {"operations": ["Sign"]},  # not valid for a symmetric key
        {"operations": ["Frobnicate"]},
        {"operations": ["Decrypt"], "grantee_principal": "has space"},
        {"operations": ["Decrypt"], "name": "bad name!"},
        {"operations": ["Decrypt"], "grant_tokens": ["t"] * 11},
    ]
    for extra in bad_calls:
        kwargs = {"key_id": key, "grantee_principal": ECR, **extra}
        with pytest.raises(errors.ValidationError):
            admin.create_grant(**kwargs)
    with pytest.raises(errors.ValidationError):
        GrantConstraints(encryption_context_subset={"a": "b"}, encryption_context_equals={"a": "b"})
    with pytest.raises(errors.ValidationError):
        GrantConstraints()
    with pytest.raises(errors.InvalidGrantTokenError):
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], grant_tokens=["bogus"])
    with pytest.raises(errors.NotFoundError):
        admin.create_grant(key_id="alias/aws/ecr", grantee_principal=ECR, operations=["Decrypt"])


def test_grant_name_idempotency(admin: Kms, key: str) -> None:
    """KMS: identical parameters with the same Name return the original GrantId."""
    kwargs: dict[str, Any] = {
        "key_id": key,
        "grantee_principal": ECR,
        "operations": ["Decrypt", "GenerateDataKey"],
        "retiring_principal": ECR,
        "constraints": GrantConstraints(encryption_context_subset={"a": "b"}),
        "name": "repo-grant",
    }
    first = admin.create_grant(**kwargs)
    again = admin.create_grant(**{**kwargs, "operations": ["GenerateDataKey", "Decrypt"]})
    assert again.grant_id == first.grant_id and again.grant_token != first.grant_token
    different = admin.create_grant(**{**kwargs, "operations": ["Decrypt"]})
    assert different.grant_id != first.grant_id
    unnamed = [admin.create_grant(**{**kwargs, "name": None}) for _ in range(2)]
    assert unnamed[0].grant_id != unnamed[1].grant_id
    assert len(admin.list_grants(key_id=key).grants) == 4


def test_list_grants_filters_and_pages(admin: Kms, key: str) -> None:
    ids = [admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"]).grant_id for _ in range(7)]
    other = admin.create_grant(key_id=key, grantee_principal=OTHER_ACCOUNT, operations=["Decrypt"]).grant_id
    seen: list[str] = []
    marker = None
    while True:
        page = admin.list_grants(key_id=key, grantee_principal=ECR, limit=3, marker=marker)
        seen += [g.grant_id for g in page.grants]
        if not page.truncated:
            break
        marker = page.next_marker
    assert seen == ids
    only = admin.list_grants(key_id=key, grant_id=other).grants
    assert [g.grant_id for g in only] == [other] and only[0].grantee_principal == OTHER_ACCOUNT
    assert only[0].key_id == key and only[0].issuing_account == ROOT
    with pytest.raises(errors.ValidationError):
        admin.list_grants(key_id=key, marker="not-a-marker")
    with pytest.raises(errors.ValidationError):
        admin.list_grants(key_id=key, limit=0)


def test_list_retirable_grants(kms: LocalKms, admin: Kms, key: str) -> None:
    other_key = admin.create_key().arn
    mine = [
        admin.create_grant(key_id=k, grantee_principal=ECR, operations=["Decrypt"], retiring_principal=ECR).grant_id
        for k in (key, other_key, key)
    ]
    admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], retiring_principal=USER)
    ecr = kms.client(ECR)
    first = ecr.list_retirable_grants(retiring_principal=ECR, limit=2)
    assert first.truncated
    rest = ecr.list_retirable_grants(retiring_principal=ECR, limit=2, marker=first.next_marker)
    assert [g.grant_id for g in first.grants + rest.grants] == mine and not rest.truncated
    with pytest.raises(errors.AccessDeniedError):
        kms.client(OTHER_ACCOUNT).list_retirable_grants(retiring_principal=ECR)


def test_who_may_retire(kms: LocalKms, admin: Kms, key: str) -> None:
    """KMS: the retiring principal, the grantee if the grant allows RetireGrant, or the key's account."""

    def grant(ops: list[str], retiring: str | None = None) -> str:
        return admin.create_grant(
            key_id=key, grantee_principal=ECR, operations=ops, retiring_principal=retiring
        ).grant_id

    stranger = kms.client(OTHER_ACCOUNT)
    ecr = kms.client(ECR)
    g = grant(["Decrypt"])
    with pytest.raises(errors.AccessDeniedError):
        ecr.retire_grant(key_id=key, grant_id=g)  # grantee without RetireGrant
    with pytest.raises(errors.AccessDeniedError):
        stranger.retire_grant(key_id=key, grant_id=g)
    kms.client(USER).retire_grant(key_id=key, grant_id=g)  # the key's account
    ecr.retire_grant(key_id=key, grant_id=grant(["Decrypt", "RetireGrant"]))
    kms.client(OTHER_ACCOUNT).retire_grant(key_id=key, grant_id=grant(["Decrypt"], retiring=OTHER_ACCOUNT))
    with pytest.raises(errors.AccessDeniedError):
        kms.client(USER, deny={"kms:RetireGrant"}).retire_grant(key_id=key, grant_id=grant(["Decrypt"]))
    assert len(admin.list_grants(key_id=key).grants) == 1


def test_retire_and_revoke_errors(admin: Kms, key: str) -> None:
    g = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    admin.retire_grant(grant_token=g.grant_token)
    with pytest.raises(errors.InvalidGrantTokenError):
        admin.retire_grant(grant_token=g.grant_token)  # names no live grant any more
    with pytest.raises(errors.InvalidGrantTokenError):
        admin.retire_grant(grant_token="not a token")
    with pytest.raises(errors.NotFoundError):
        admin.retire_grant(key_id=key, grant_id=g.grant_id)
    with pytest.raises(errors.InvalidGrantIdError):
        admin.retire_grant(key_id=key, grant_id="xyz")
    with pytest.raises(errors.ValidationError):
        admin.retire_grant()
    with pytest.raises(errors.NotFoundError):
        admin.revoke_grant(key_id=key, grant_id=g.grant_id)
    with pytest.raises(errors.InvalidGrantIdError):
        admin.revoke_grant(key_id=key, grant_id="short")
    other = admin.create_key().arn
    h = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    with pytest.raises(errors.NotFoundError):
        admin.revoke_grant(key_id=other, grant_id=h.grant_id)  # a grant of another key


def test_child_grants_are_at_most_as_permissive(kms: LocalKms, admin: Kms, key: str) -> None:
    """KMS: a grant allowing CreateGrant creates only grants with a subset of its
    operations and equally strict or stricter constraints."""
    admin.create_grant(
        key_id=key,
        grantee_principal=OTHER_ACCOUNT,
        operations=["CreateGrant", "Decrypt", "Encrypt"],
        constraints=GrantConstraints(encryption_context_subset={"a": "1"}),
    )
    parent = kms.client(OTHER_ACCOUNT)
    ok = parent.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["Decrypt"],
        constraints=GrantConstraints(encryption_context_equals={"a": "1", "b": "2"}),
    )
    assert ok.grant_id
    for ops, constraints in (
        (["Decrypt", "GenerateDataKey"], GrantConstraints(encryption_context_subset={"a": "1"})),
        (["Decrypt"], None),
        (["Decrypt"], GrantConstraints(encryption_context_subset={"a": "2"})),
    ):
        with pytest.raises(errors.AccessDeniedError):
            parent.create_grant(key_id=key, grantee_principal=ECR, operations=ops, constraints=constraints)


# --------------------------------------------------------------------------- quotas


def test_small_quotas_per_grantee_and_per_key_change_nothing_when_exceeded(clock: ManualClock) -> None:
    kms = LocalKms(
        account=ACCOUNT, region=REGION, clock=clock, quotas=KmsQuotas(grants_per_grantee_per_key=2, grants_per_key=3)
    )
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    other_key = admin.create_key().arn
    for _ in range(2):
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    with pytest.raises(errors.LimitExceededError):
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    admin.create_grant(key_id=other_key, grantee_principal=ECR, operations=["Decrypt"])  # per key
    admin.create_grant(key_id=key, grantee_principal=OTHER_ACCOUNT, operations=["Decrypt"])
    with pytest.raises(errors.LimitExceededError):
        admin.create_grant(key_id=key, grantee_principal=USER, operations=["Decrypt"])  # 3 per key
    assert len(admin.list_grants(key_id=key).grants) == 3
    # retiring one frees a slot (KMS: "only when an active grant is retired or revoked")
    first = admin.list_grants(key_id=key, grantee_principal=ECR).grants[0]
    admin.retire_grant(key_id=key, grant_id=first.grant_id)
    admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])


def test_quota_reached_still_returns_an_idempotent_retry(clock: ManualClock) -> None:
    kms = LocalKms(account=ACCOUNT, region=REGION, clock=clock, quotas=KmsQuotas(grants_per_grantee_per_key=1))
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    g = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], name="n")
    assert (
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], name="n").grant_id == g.grant_id
    )


def test_the_500th_grant_for_one_grantee_succeeds_and_the_501st_fails_leaving_nothing(clock: ManualClock) -> None:
    """The seed's rule at its real default: 500 grants per grantee principal per key."""
    kms = LocalKms(account=ACCOUNT, region=REGION, clock=clock)
    assert kms.quotas == KmsQuotas() and kms.quotas.grants_per_grantee_per_key == 500
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    ids = {admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"]).grant_id for _ in range(500)}
    assert len(ids) == 500
    before = len(kms.audit)
    with pytest.raises(errors.LimitExceededError):
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"], name="the-501st")
    assert len(kms.audit) == before + 1  # only the failed call's event
    listed: list[str] = []
    marker = None
    while True:
        page = admin.list_grants(key_id=key, limit=100, marker=marker)
        listed += [g.grant_id for g in page.grants]
        if not page.truncated:
            break
        marker = page.next_marker
    assert set(listed) == ids and len(listed) == 500
    failure = kms.audit.query(event_name="CreateGrant", errors=True)
    assert failure[-1].error_code == "LimitExceededException"
    # another grantee on the same key is not affected by ECR's 500
    admin.create_grant(key_id=key, grantee_principal=OTHER_ACCOUNT, operations=["Decrypt"])


def test_quotas_validation() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(errors.ValidationError):
            KmsQuotas(grants_per_key=bad)  # type: ignore[arg-type]
    assert KmsQuotas(grants_per_grantee_per_key=None).grants_per_grantee_per_key is None


# --------------------------------------------------------------------------- persistence and secrets


def test_store_survives_reopen_and_wraps_material_under_the_root_key(tmp_path: Any) -> None:
    path = tmp_path / "kms.db"
    kms = LocalKms(path, account=ACCOUNT, region=REGION)
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    admin.create_alias(alias_name="alias/keep", target_key_id=key)
    dk = admin.generate_data_key(key_id=key, encryption_context=CTX, number_of_bytes=32)
    admin.rotate_key_on_demand(key_id=key)
    g = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    kms.close()
    root_file = tmp_path / "kms.db.rootkey"
    assert oct(root_file.stat().st_mode & 0o777) == "0o600"
    again = LocalKms(path, account=ACCOUNT, region=REGION)
    a2 = again.client(ROOT)
    assert a2.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CTX).plaintext == dk.plaintext
    assert a2.describe_key(key_id="alias/keep").arn == key
    assert [x.grant_id for x in a2.list_grants(key_id=key).grants] == [g.grant_id]
    again.close()
    # neither the root key nor any data key is in the database file
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("kms.db") and p != root_file)
    assert root_file.read_bytes() not in raw and dk.plaintext not in raw
    with pytest.raises(errors.KmsInternalError):
        LocalKms(path, account=ACCOUNT, region=REGION, root_key=os.urandom(32))


def test_caller_supplied_root_key(tmp_path: Any) -> None:
    root = os.urandom(32)
    kms = LocalKms(tmp_path / "k.db", root_key=root)
    blob = (
        kms.client(ROOT.replace(ACCOUNT, "111122223333"))
        .encrypt(key_id=kms.client("111122223333").create_key().arn, plaintext=b"z")
        .ciphertext_blob
    )
    kms.close()
    assert not (tmp_path / "k.db.rootkey").exists()
    assert (
        LocalKms(tmp_path / "k.db", root_key=root).client("111122223333").decrypt(ciphertext_blob=blob).plaintext
        == b"z"
    )
    with pytest.raises(errors.ValidationError):
        LocalKms(root_key=b"short")


def test_no_key_material_in_reprs_errors_or_audit(kms: LocalKms, admin: Kms, key: str) -> None:
    dk = admin.generate_data_key(key_id=key, encryption_context=CTX, number_of_bytes=32)
    dec = admin.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CTX)
    texts = [repr(dk), str(dk), repr(dec), repr(kms), repr(admin)]
    try:
        admin.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context={})
    except errors.InvalidCiphertextError as exc:
        texts += [str(exc), repr(exc)]
    bodies = [repr(e.to_cloudtrail()) for e in kms.audit.query()]
    secrets = [dk.plaintext, dk.plaintext.hex().encode()]
    for s in secrets:
        for t in texts + bodies:
            assert s not in t.encode() and repr(s) not in t
    assert "plaintext" not in repr(dk) and "grant_token" not in repr(
        admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])
    )


def test_encryption_context_object_and_mapping_are_interchangeable(admin: Kms, key: str) -> None:
    blob = admin.encrypt(key_id=key, plaintext=b"x", encryption_context=EncryptionContext(CTX)).ciphertext_blob
    assert admin.decrypt(ciphertext_blob=blob, encryption_context=CTX).plaintext == b"x"


def test_elapsed_deletion_frees_alias_names_without_touching_the_key(admin: Kms, key: str, clock: ManualClock) -> None:
    admin.create_alias(alias_name="alias/reuse", target_key_id=key)
    admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    clock.advance(days=8)
    assert admin.list_aliases().aliases == ()  # swept before listing
    fresh = admin.create_key().arn
    admin.create_alias(alias_name="alias/reuse", target_key_id=fresh)
    assert admin.describe_key(key_id="alias/reuse").arn == fresh


def test_parameter_errors_are_audited(kms: LocalKms, admin: Kms, key: str) -> None:
    with pytest.raises(errors.ValidationError):
        admin.enable_key_rotation(key_id=key, rotation_period_in_days=10)
    with pytest.raises(errors.ValidationError):
        admin.schedule_key_deletion(key_id=key, pending_window_in_days=3)
    failed = kms.audit.query(errors=True)
    assert [(e.event_name, e.error_code) for e in failed] == [
        ("EnableKeyRotation", "ValidationException"),
        ("ScheduleKeyDeletion", "ValidationException"),
    ]


@pytest.mark.parametrize("constraint", ["2{}:", ["aws:ecr:arn", "x"], 3])
def test_grant_constraints_from_a_non_mapping_are_a_validation_error(constraint: object) -> None:
    # Found by fuzzing (fuzz/corpus/api_shapes/crash-cda94847...): AttributeError escaped from_api.
    with pytest.raises(errors.ValidationError):
        GrantConstraints.from_api({"EncryptionContextSubset": constraint})


@pytest.mark.parametrize("constraints", ["KMS_DSSE", ["EncryptionContextSubset"], 3])
def test_grant_constraints_that_are_not_a_mapping_are_a_validation_error(constraints: object) -> None:
    # Found by fuzzing (fuzz/corpus/api_shapes/crash-fd31a819...): AttributeError escaped from_api.
    with pytest.raises(errors.ValidationError, match="Constraints must be a mapping"):
        GrantConstraints.from_api(constraints)  # type: ignore[arg-type]
