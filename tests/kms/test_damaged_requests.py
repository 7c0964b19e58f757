"""Malformed requests to the local KMS: refused by type (never stringified), and audited (issue 10, item 5).

Also: a ``KmsKeyProvider`` built on an alias follows the alias when it is retargeted,
as a provider built after the change would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import DataKeyDecryptionError, ValidationError
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient
from ecrcrypt.providers.kms_keyring import KmsKeyProvider

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


@pytest.fixture
def kms() -> LocalKms:
    return LocalKms(account=ACCOUNT)


def _calls(c: LocalKmsClient, key: str, blob: bytes) -> dict[str, Callable[[], Any]]:
    bad: Any = None
    return {
        "CreateAlias": lambda: c.create_alias(alias_name=bad, target_key_id=key),
        "UpdateAlias": lambda: c.update_alias(alias_name=bad, target_key_id=key),
        "DeleteAlias": lambda: c.delete_alias(alias_name=bad),
        "CreateAlias target": lambda: c.create_alias(alias_name="alias/ok", target_key_id=bad),
        "DescribeKey": lambda: c.describe_key(key_id=bad),
        "Encrypt": lambda: c.encrypt(key_id=123, plaintext=b"x"),  # type: ignore[arg-type]
        "GenerateDataKey": lambda: c.generate_data_key(key_id=bad, number_of_bytes=32),
        "Decrypt blob": lambda: c.decrypt(ciphertext_blob="not bytes"),  # type: ignore[arg-type]
        "Decrypt key": lambda: c.decrypt(ciphertext_blob=blob, key_id=5),  # type: ignore[arg-type]
        "ListAliases": lambda: c.list_aliases(key_id=5),  # type: ignore[arg-type]
    }


def test_a_non_str_parameter_is_a_validation_error_not_a_name(kms: LocalKms) -> None:
    c = kms.client(ROOT)
    key = c.create_key().arn
    blob = c.encrypt(key_id=key, plaintext=b"x").ciphertext_blob
    c.decrypt(ciphertext_blob=blob)  # warm: the hot path sees the next Decrypts first
    c.generate_data_key(key_id=key, number_of_bytes=32)
    for name, call in _calls(c, key, blob).items():
        before = len(kms.audit.query())
        with pytest.raises(ValidationError, match="must be"):
            call()
        events = kms.audit.query()[before:]
        assert [e.error_code for e in events] == ["ValidationException"], name
    assert list(c.list_aliases().aliases) == []  # no alias named 'None'


@pytest.mark.parametrize(
    "context",
    [{1: "a"}, {"a": None}, "a=b", [("a", "b")]],
    ids=["int key", "None value", "str", "list"],
)
def test_a_malformed_encryption_context_is_refused_and_audited(kms: LocalKms, context: Any) -> None:
    c = kms.client(ROOT)
    key = c.create_key().arn
    blob = c.encrypt(key_id=key, plaintext=b"x").ciphertext_blob
    c.generate_data_key(
        key_id=key, encryption_context={"a": "b"}, number_of_bytes=32
    )  # the key is hot: the fast path sees it first
    calls: dict[str, Callable[[], object]] = {
        "Encrypt": lambda: c.encrypt(key_id=key, plaintext=b"x", encryption_context=context),
        "GenerateDataKey": lambda: c.generate_data_key(key_id=key, encryption_context=context, number_of_bytes=32),
        "GenerateDataKeyWithoutPlaintext": lambda: c.generate_data_key_without_plaintext(
            key_id=key, encryption_context=context, number_of_bytes=32
        ),
        "Decrypt": lambda: c.decrypt(ciphertext_blob=blob, encryption_context=context),
        "ReEncrypt": lambda: c.re_encrypt(
            ciphertext_blob=blob, destination_key_id=key, destination_encryption_context=context
        ),
    }
    for name, call in calls.items():
        before = len(kms.audit.query())
        with pytest.raises(ValidationError, match="EncryptionContext"):
            call()
        events = kms.audit.query()[before:]
        assert [(e.event_name, e.error_code, e.principal) for e in events] == [(name, "ValidationException", ROOT)]


def test_a_provider_on_an_alias_follows_it_when_retargeted(kms: LocalKms) -> None:
    c = kms.client(ROOT)
    first, second = c.create_key().arn, c.create_key().arn
    c.create_alias(alias_name="alias/moving", target_key_id=first)
    provider = KmsKeyProvider(c, "alias/moving")
    context = EncryptionContext({"purpose": "test"})
    old = provider.generate_data_key(context)
    assert provider.decrypt_data_key(old.encrypted_data_keys, context) == old.plaintext

    c.update_alias(alias_name="alias/moving", target_key_id=second)
    new = provider.generate_data_key(context)
    assert new.encrypted_data_keys[0].provider_info == second.encode()
    assert provider.decrypt_data_key(new.encrypted_data_keys, context) == new.plaintext
    fresh = KmsKeyProvider(c, "alias/moving")  # the long-lived provider behaves as a new one
    with pytest.raises(DataKeyDecryptionError):
        fresh.decrypt_data_key(old.encrypted_data_keys, context)
    with pytest.raises(DataKeyDecryptionError):
        provider.decrypt_data_key(old.encrypted_data_keys, context)
    pinned = KmsKeyProvider(c, first)  # a key ARN pins the key: old data keys still open there
    assert pinned.decrypt_data_key(old.encrypted_data_keys, context) == old.plaintext


def test_a_provider_refuses_a_non_str_key_id(kms: LocalKms) -> None:
    with pytest.raises(ValidationError, match="key_id must be a str"):
        KmsKeyProvider(kms.client(ROOT), None)  # type: ignore[arg-type]
