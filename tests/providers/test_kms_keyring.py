"""KmsKeyProvider over LocalKms: ESDK aws-kms EDKs and the KeyProvider error contract."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import errors
from ecrcrypt.context import EncryptionContext
from ecrcrypt.keyprovider import EncryptedDataKey, KeyProvider
from ecrcrypt.kms import GrantConstraints
from ecrcrypt.kms.local.service import LocalKms, ManualClock
from ecrcrypt.providers.kms_keyring import KMS_PROVIDER_ID, KmsKeyProvider

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ECR = "ecr.us-east-1.amazonaws.com"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"
CTX = EncryptionContext({"aws:ecr:arn": REPO, "aws:s3:arn": "arn:aws:s3:::b/sha256:" + "1" * 64})


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, clock=clock)


@pytest.fixture
def key(kms: LocalKms) -> str:
    admin = kms.client(ROOT)
    arn = admin.create_key().arn
    admin.create_alias(alias_name="alias/app", target_key_id=arn)
    return arn


@pytest.mark.parametrize("ref", ["arn", "id", "alias"])
def test_edks_have_the_esdk_aws_kms_layout(kms: LocalKms, key: str, ref: str) -> None:
    key_id = {"arn": key, "id": key.rsplit("/", 1)[1], "alias": "alias/app"}[ref]
    provider = KmsKeyProvider(kms.client(ROOT), key_id)
    assert isinstance(provider, KeyProvider)
    dk = provider.generate_data_key(CTX)
    (edk,) = dk.encrypted_data_keys
    assert edk.provider_id == KMS_PROVIDER_ID == "aws-kms"
    assert edk.provider_info == key.encode()  # always the key ARN (the response KeyId)
    assert len(dk.plaintext) == 32
    assert provider.decrypt_data_key(dk.encrypted_data_keys, CTX) == dk.plaintext
    (wrapped,) = provider.encrypt_data_key(dk.plaintext, CTX)
    assert wrapped.provider_info == key.encode()
    assert provider.decrypt_data_key([wrapped], CTX) == dk.plaintext


@given(length=st.sampled_from([16, 24, 32]))
def test_lengths(length: int) -> None:
    kms = LocalKms(account=ACCOUNT)
    provider = KmsKeyProvider(kms.client(ROOT), kms.client(ROOT).create_key().arn)
    dk = provider.generate_data_key(CTX, length=length)
    assert len(dk.plaintext) == length == len(provider.decrypt_data_key(dk.encrypted_data_keys, CTX))


def test_edks_that_are_not_ours_or_do_not_open_are_data_key_decryption_errors(kms: LocalKms, key: str) -> None:
    admin = kms.client(ROOT)
    other = admin.create_key().arn
    mine = KmsKeyProvider(admin, key)
    theirs = KmsKeyProvider(admin, other)
    dk = mine.generate_data_key(CTX)
    foreign = theirs.generate_data_key(CTX).encrypted_data_keys
    raw = EncryptedDataKey(provider_id="raw", provider_info=b"x", ciphertext=b"y")
    bad_utf8 = EncryptedDataKey(provider_id="aws-kms", provider_info=b"\xff", ciphertext=b"y")
    for edks, context in (
        (foreign, CTX),
        ([raw, bad_utf8], CTX),
        (dk.encrypted_data_keys, EncryptionContext({"other": "ctx"})),
        ([EncryptedDataKey(provider_id="aws-kms", provider_info=key.encode(), ciphertext=b"garbage")], CTX),
    ):
        with pytest.raises(errors.DataKeyDecryptionError):
            mine.decrypt_data_key(edks, context)
    # ours after others: found
    assert mine.decrypt_data_key([raw, *foreign, *dk.encrypted_data_keys], CTX) == dk.plaintext


def test_alias_configured_keyring_skips_edks_of_other_keys(kms: LocalKms, key: str) -> None:
    """With an alias KMS's IncorrectKeyException says "not this key": folded, not raised."""
    admin = kms.client(ROOT)
    foreign = KmsKeyProvider(admin, admin.create_key().arn).generate_data_key(CTX).encrypted_data_keys
    with pytest.raises(errors.DataKeyDecryptionError):
        KmsKeyProvider(admin, "alias/app").decrypt_data_key(foreign, CTX)


def test_key_unusable_errors_propagate(kms: LocalKms, key: str, clock: ManualClock) -> None:
    admin = kms.client(ROOT)
    provider = KmsKeyProvider(admin, key)
    dk = provider.generate_data_key(CTX)
    admin.disable_key(key_id=key)
    with pytest.raises(errors.DisabledError):
        provider.decrypt_data_key(dk.encrypted_data_keys, CTX)
    with pytest.raises(errors.DisabledError):
        provider.generate_data_key(CTX)
    admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    with pytest.raises(errors.KmsInvalidStateError):
        provider.decrypt_data_key(dk.encrypted_data_keys, CTX)
    with pytest.raises(errors.AccessDeniedError):
        KmsKeyProvider(kms.client(ECR), key).decrypt_data_key(dk.encrypted_data_keys, CTX)
    clock.advance(days=8)
    with pytest.raises(errors.NotFoundError):
        provider.decrypt_data_key(dk.encrypted_data_keys, CTX)


def test_grant_tokens_flow_and_revocation_propagates(kms: LocalKms, key: str) -> None:
    admin = kms.client(ROOT)
    grant = admin.create_grant(
        key_id=key,
        grantee_principal=ECR,
        operations=["GenerateDataKey", "Decrypt", "Encrypt"],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": REPO}),
    )
    provider = KmsKeyProvider(kms.client(ECR), key, grant_tokens=[grant.grant_token])
    dk = provider.generate_data_key(CTX)
    assert provider.decrypt_data_key(dk.encrypted_data_keys, CTX) == dk.plaintext
    assert kms.audit.query(event_name="GenerateDataKey", principal=ECR)[0].request_parameters == {
        "keyId": key,
        "encryptionContext": dict(CTX),
        "numberOfBytes": 32,
    }
    admin.revoke_grant(key_id=key, grant_id=grant.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        provider.decrypt_data_key(dk.encrypted_data_keys, CTX)
    with pytest.raises(errors.ValidationError):
        KmsKeyProvider(kms.client(ECR), key, grant_tokens="not-a-list")


def test_message_roundtrip_through_the_keyring(kms: LocalKms, key: str) -> None:
    message = pytest.importorskip("ecrcrypt.streams.oneshot")
    provider = KmsKeyProvider(kms.client(ROOT), key)
    data = bytes(range(256)) * 50
    ct = message.encrypt(data, provider=provider, context=CTX)
    assert message.decrypt(ct, provider=provider, context=CTX) == data
    kms.client(ROOT).rotate_key_on_demand(key_id=key)
    assert message.decrypt(ct, provider=provider, context=CTX) == data
    assert repr(provider).startswith("KmsKeyProvider(") and "plaintext" not in repr(provider)
