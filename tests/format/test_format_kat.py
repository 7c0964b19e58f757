"""Known-answer test: the ESDK's committing-suite vector "GoodCommitment" (digest §1.14).

237 bytes, suite 0x0478, raw AES EDK (namespace ``ProviderName``, name ``KeyId``,
wrapping key = 32 zero bytes), empty context, F = 4096, one final frame. Bytes from
aws-encryption-sdk-javascript ``modules/decrypt-browser/test/decrypt.test.ts``
("committing algorithm test", Apache-2.0).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest

from ecrcrypt import DecryptPolicy, decrypt
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import AuthenticationError
from ecrcrypt.format.derivation import derive_keys
from ecrcrypt.format.suites import SUITES
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams import DecryptingReader

KAT = bytes.fromhex(
    "0204784dfbd1314d9d55925b817232c5e36d6e3e5e230f018930e2c2c1f243f67dc17900000001000c50726f76696465"
    "724e616d6500194b65794964000000800000000cf8e6c737703bc967b0f83f7b0030a13b77fc3cce242dd82d2a1eccb5"
    "42ed84daaf76788184fe42e717f634d371cabd3c71ef1bf666ff3762e39dc0730be5020000100017cf08f733db51049f"
    "3a5ccb5effae218dbe9bf13a8f63ccb1b81e1d51ff2f4c0ba90958fb908bd33df19cd38c21969effffffff0000000100"
    "00000000000000000000010000000e49904a1c74694f05ce15341519aa575e3e42c1704ca2e041dae71a209566"
)
DATA_KEY = bytes.fromhex("fa9ebec213d5c3d90ead82d914c4412769fa5658ba4ffed39230e8b92fb6e6cd")
PLAINTEXT = b"GoodCommitment"


class FixedKey:
    """The JS test's keyring: hands out the known data key without unwrapping."""

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        raise AssertionError("decrypt only")

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        raise AssertionError("decrypt only")

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        return DATA_KEY


def test_kat_layout() -> None:
    assert len(KAT) == 237
    header = DecryptPolicy().parse_header(io.BytesIO(KAT).read)
    assert header.suite is SUITES[0x0478] and header.frame_length == 4096 and not header.context
    (edk,) = header.encrypted_data_keys
    assert edk.provider_id == "ProviderName" and edk.provider_info[:5] == b"KeyId" and len(edk.ciphertext) == 48
    assert header.length == 183
    _, commit = derive_keys(header.suite, DATA_KEY, header.message_id)
    assert commit == header.suite_data


def test_kat_decrypts_with_the_known_data_key() -> None:
    assert decrypt(KAT, provider=FixedKey(), context={}) == PLAINTEXT
    assert DecryptingReader(io.BytesIO(KAT), provider=FixedKey(), context={}).read() == PLAINTEXT


def test_kat_decrypts_with_the_raw_aes_wrapping_key() -> None:
    provider = RawAesKeyProvider(key_namespace="ProviderName", key_name="KeyId", wrapping_key=bytes(32))
    assert decrypt(KAT, provider=provider, context={}) == PLAINTEXT


def test_kat_rejections() -> None:
    wrong_key = bytearray(DATA_KEY)
    wrong_key[0] ^= 1

    class WrongKey(FixedKey):
        def decrypt_data_key(self, edks: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
            return bytes(wrong_key)

    with pytest.raises(AuthenticationError):  # the commitment check
        decrypt(KAT, provider=WrongKey(), context={})
    with pytest.raises(AuthenticationError):  # required context changes the header AAD
        decrypt(KAT, provider=FixedKey(), context={"extra": "pair"})
