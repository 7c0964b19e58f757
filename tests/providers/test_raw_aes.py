"""The raw AES key provider: the ESDK raw AES keyring's EDK layout and error contract."""

from __future__ import annotations

import copy
import os
import pickle
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import DataKeyDecryptionError, ValidationError
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey, KeyProvider
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.strategies import encryption_contexts

KEY = os.urandom(32)
PROVIDER = RawAesKeyProvider(key_namespace="ns", key_name="name", wrapping_key=KEY)
CTX = EncryptionContext({"b": "2", "a": "1"})


def test_is_a_key_provider() -> None:
    assert isinstance(PROVIDER, KeyProvider)


def test_edk_layout_matches_the_raw_aes_keyring() -> None:
    data_key = PROVIDER.generate_data_key(CTX)
    (edk,) = data_key.encrypted_data_keys
    assert edk.provider_id == "ns"
    info = edk.provider_info
    assert info[:4] == b"name" and struct.unpack(">II", info[4:12]) == (128, 12) and len(info) == 4 + 8 + 12
    # ciphertext = AES-GCM(wrapping key, IV from the info, AAD = serialized context) of the key.
    assert AESGCM(KEY).decrypt(info[-12:], edk.ciphertext, CTX.serialize()) == data_key.plaintext
    assert len(edk.ciphertext) == 32 + 16


@given(encryption_contexts(max_pairs=4))
def test_round_trip_under_any_context(context: EncryptionContext) -> None:
    data_key = PROVIDER.generate_data_key(context)
    assert PROVIDER.decrypt_data_key(data_key.encrypted_data_keys, context) == data_key.plaintext


@pytest.mark.parametrize("length", [16, 24, 32])
@pytest.mark.parametrize("wrapping_length", [16, 24, 32])
def test_key_lengths(length: int, wrapping_length: int) -> None:
    provider = RawAesKeyProvider(key_namespace="ns", key_name="n", wrapping_key=os.urandom(wrapping_length))
    data_key = provider.generate_data_key(CTX, length=length)
    assert len(data_key.plaintext) == length
    assert provider.decrypt_data_key(data_key.encrypted_data_keys, CTX) == data_key.plaintext


def test_failures_are_data_key_decryption_errors() -> None:
    (edk,) = PROVIDER.generate_data_key(CTX).encrypted_data_keys
    cases = {
        "other context": ([edk], EncryptionContext({"a": "1"})),
        "other namespace": ([EncryptedDataKey(provider_id="x", provider_info=edk.provider_info,
                                              ciphertext=edk.ciphertext)], CTX),
        "other name": ([EncryptedDataKey(provider_id="ns", provider_info=b"nbme" + edk.provider_info[4:],
                                         ciphertext=edk.ciphertext)], CTX),
        "bad tag length": ([EncryptedDataKey(provider_id="ns", provider_info=b"name" + struct.pack(">II", 96, 12)
                                             + edk.provider_info[-12:], ciphertext=edk.ciphertext)], CTX),
        "corrupted": ([EncryptedDataKey(provider_id="ns", provider_info=edk.provider_info,
                                        ciphertext=edk.ciphertext[:-1] + bytes([edk.ciphertext[-1] ^ 1]))], CTX),
        "none": ([], CTX),
    }  # fmt: skip
    for name, (edks, context) in cases.items():
        with pytest.raises(DataKeyDecryptionError):
            PROVIDER.decrypt_data_key(edks, context)
        assert name
    other = RawAesKeyProvider(key_namespace="ns", key_name="name", wrapping_key=os.urandom(32))
    with pytest.raises(DataKeyDecryptionError):
        other.decrypt_data_key([edk], CTX)


def test_tries_every_edk_in_order() -> None:
    data_key = PROVIDER.generate_data_key(CTX)
    foreign = EncryptedDataKey(provider_id="aws-kms", provider_info=b"arn", ciphertext=b"blob")
    assert PROVIDER.decrypt_data_key([foreign, *data_key.encrypted_data_keys], CTX) == data_key.plaintext


def test_no_key_material_in_repr() -> None:
    data_key = PROVIDER.generate_data_key(CTX)
    text = repr(PROVIDER) + repr(data_key) + str(PROVIDER)
    assert KEY.hex() not in text and repr(KEY) not in text and repr(data_key.plaintext) not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_namespace": "", "key_name": "n", "wrapping_key": KEY},
        {"key_namespace": "ns", "key_name": "", "wrapping_key": KEY},
        {"key_namespace": "ns", "key_name": "n", "wrapping_key": b"short"},
        {"key_namespace": "aws-kms", "key_name": "n", "wrapping_key": KEY},
    ],
)
def test_invalid_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RawAesKeyProvider(**kwargs)  # type: ignore[arg-type]


class _Untouchable(bytes):
    """Key material that fails the test if anything compares or hashes it."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("key material took part in ==")

    def __ne__(self, other: object) -> bool:
        raise AssertionError("key material took part in !=")

    def __hash__(self) -> int:
        raise AssertionError("key material took part in hash()")


def test_wrapping_key_takes_no_part_in_eq_or_hash() -> None:
    a = RawAesKeyProvider(key_namespace="ns", key_name="name", wrapping_key=_Untouchable(os.urandom(32)))
    b = RawAesKeyProvider(key_namespace="ns", key_name="name", wrapping_key=_Untouchable(os.urandom(32)))
    assert a == b and hash(a) == hash(b)  # the identity is (namespace, name)
    assert a != RawAesKeyProvider(key_namespace="ns", key_name="other", wrapping_key=KEY)
    assert a != RawAesKeyProvider(key_namespace="ns2", key_name="name", wrapping_key=KEY)
    assert a.decrypt_data_key(a.generate_data_key(CTX).encrypted_data_keys, CTX)


def test_data_key_plaintext_takes_no_part_in_eq_or_hash() -> None:
    edks = PROVIDER.generate_data_key(CTX).encrypted_data_keys
    a = DataKey(plaintext=_Untouchable(os.urandom(32)), encrypted_data_keys=edks)
    b = DataKey(plaintext=_Untouchable(os.urandom(32)), encrypted_data_keys=edks)
    assert a == b and hash(a) == hash(b)
    assert a != DataKey(plaintext=KEY, encrypted_data_keys=PROVIDER.generate_data_key(CTX).encrypted_data_keys)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_key_material_does_not_pickle(protocol: int) -> None:
    data_key = PROVIDER.generate_data_key(CTX)
    for secret in (PROVIDER, data_key):
        with pytest.raises(TypeError):
            pickle.dumps(secret, protocol=protocol)
    with pytest.raises(TypeError):
        copy.deepcopy(data_key)
    # EDKs carry no secret and stay picklable.
    assert pickle.loads(pickle.dumps(data_key.encrypted_data_keys, protocol=protocol)) == data_key.encrypted_data_keys


def test_edks_are_validated_like_any_edk() -> None:
    """The provider builds its EDKs without re-running their validators only when they cannot fail."""
    provider = RawAesKeyProvider(key_namespace="ns", key_name="name", wrapping_key=bytes(32))
    (edk,) = provider.encrypt_data_key(bytes(32), EncryptionContext())
    assert edk == EncryptedDataKey(provider_id="ns", provider_info=edk.provider_info, ciphertext=edk.ciphertext)
    with pytest.raises(ValidationError, match="at most 65535"):
        provider.encrypt_data_key(bytes(0xFFFF), EncryptionContext())
