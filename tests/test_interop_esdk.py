"""Interoperability with aws-encryption-sdk-python (the test extra installs it).

Both sides use the same raw AES-256 wrapping key under the same namespace and name:
ESDK's ``RawMasterKey`` writes exactly the raw AES keyring's EDKs.
"""

from __future__ import annotations

import io
import os

import pytest

from ecrcrypt.errors import CommitmentPolicyError, EncryptionContextMismatchError
from ecrcrypt.message import DecryptPolicy, decrypt, encrypt
from ecrcrypt.raw_aes import RawAesKeyProvider
from ecrcrypt.streams import DecryptingReader, EncryptingWriter

esdk = pytest.importorskip("aws_encryption_sdk")
from aws_encryption_sdk.identifiers import (  # noqa: E402
    Algorithm,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey  # noqa: E402
from aws_encryption_sdk.key_providers.raw import RawMasterKey  # noqa: E402

KEY = os.urandom(32)
NAMESPACE, NAME = "ecrcrypt-interop", "wrapping-key"
OURS = RawAesKeyProvider(key_namespace=NAMESPACE, key_name=NAME, wrapping_key=KEY)
THEIRS = RawMasterKey(
    provider_id=NAMESPACE,
    key_id=NAME.encode(),
    wrapping_key=WrappingKey(
        wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        wrapping_key=KEY,
        wrapping_key_type=EncryptionKeyType.SYMMETRIC,
    ),
)
STRICT = esdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
LEGACY = esdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app", "aws:s3:arn": "arn:aws:s3:::b/k"}
PLAIN = os.urandom(3 * 4096 + 123)


@pytest.mark.parametrize("frame_length", [16, 512, 4096, 65536, 1 << 20])
def test_esdk_decrypts_ecrcrypt(frame_length: int) -> None:
    ct = encrypt(PLAIN, provider=OURS, context=CTX, frame_length=frame_length)
    plaintext, header = STRICT.decrypt(source=ct, key_provider=THEIRS)
    assert plaintext == PLAIN
    assert header.algorithm is Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    assert header.encryption_context == CTX and header.frame_length == frame_length


@pytest.mark.parametrize("length", [0, 4096, 8192])
def test_esdk_decrypts_the_streaming_writer(length: int) -> None:
    out = io.BytesIO()
    with EncryptingWriter(out, provider=OURS, context=CTX, frame_length=4096) as w:
        w.write(PLAIN[:length])
    plaintext, _ = STRICT.decrypt(source=out.getvalue(), key_provider=THEIRS)
    assert plaintext == PLAIN[:length]


@pytest.mark.parametrize("frame_length", [0, 128, 512, 4096, 1 << 20])  # Python: F % 128 == 0
@pytest.mark.parametrize(
    "algorithm", [Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384]
)
def test_ecrcrypt_decrypts_esdk_v2(frame_length: int, algorithm: Algorithm) -> None:
    ct, _ = STRICT.encrypt(
        source=PLAIN, key_provider=THEIRS, encryption_context=CTX, frame_length=frame_length, algorithm=algorithm
    )
    assert decrypt(ct, provider=OURS, context=CTX) == PLAIN
    assert DecryptingReader(io.BytesIO(ct), provider=OURS, context=CTX).read() == PLAIN


def test_ecrcrypt_decrypts_the_esdk_default_signed_suite() -> None:
    ct, header = STRICT.encrypt(source=PLAIN, key_provider=THEIRS, encryption_context=CTX)
    assert header.algorithm is Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384  # their default
    assert decrypt(ct, provider=OURS, context=CTX) == PLAIN
    # The stored aws-crypto-public-key is not part of the caller's comparison...
    reader = DecryptingReader(io.BytesIO(ct), provider=OURS, context=CTX)
    assert reader.read() == PLAIN and "aws-crypto-public-key" in reader.context
    # ...but the caller's own pairs are.
    with pytest.raises(EncryptionContextMismatchError):
        decrypt(ct, provider=OURS, context={**CTX, "aws:ecr:arn": "x"})


def test_signature_is_verified_before_release() -> None:
    from ecrcrypt.errors import AuthenticationError

    ct, _ = STRICT.encrypt(source=PLAIN, key_provider=THEIRS, encryption_context=CTX)
    bad = bytearray(ct)
    bad[-3] ^= 1  # inside the DER signature
    with pytest.raises(AuthenticationError):
        decrypt(bytes(bad), provider=OURS, context=CTX)
    reader_source = io.BytesIO(bytes(bad))
    with pytest.raises(AuthenticationError):
        DecryptingReader(reader_source, provider=OURS, context=CTX)


V1_SUITES = [a for a in Algorithm if a.message_format_version == 1]


@pytest.mark.parametrize("frame_length", [0, 512])
@pytest.mark.parametrize("algorithm", V1_SUITES, ids=lambda a: a.name)
def test_ecrcrypt_decrypts_esdk_v1_with_the_opt_in(algorithm: Algorithm, frame_length: int) -> None:
    ct, _ = LEGACY.encrypt(
        source=PLAIN, key_provider=THEIRS, encryption_context=CTX, frame_length=frame_length, algorithm=algorithm
    )
    assert ct[0] == 1
    with pytest.raises(CommitmentPolicyError):
        decrypt(ct, provider=OURS, context=CTX)
    assert decrypt(ct, provider=OURS, context=CTX, policy=DecryptPolicy(allow_v1=True)) == PLAIN


def test_esdk_unwraps_our_data_key_and_we_unwrap_theirs() -> None:
    from aws_encryption_sdk.structures import EncryptedDataKey as TheirEdk
    from aws_encryption_sdk.structures import MasterKeyInfo

    from ecrcrypt.context import EncryptionContext
    from ecrcrypt.keyprovider import EncryptedDataKey

    suite = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    # Ours -> theirs: wrapped data keys are exchangeable, not only whole messages.
    data_key = OURS.generate_data_key(EncryptionContext(CTX))
    (edk,) = data_key.encrypted_data_keys
    theirs = TheirEdk(key_provider=MasterKeyInfo(edk.provider_id, edk.provider_info), encrypted_data_key=edk.ciphertext)
    assert THEIRS.decrypt_data_key(theirs, suite, CTX).data_key == data_key.plaintext
    # Theirs -> ours.
    generated = THEIRS.generate_data_key(suite, CTX)
    info = generated.key_provider  # ESDK's DataKey: key_provider, data_key, encrypted_data_key (bytes)
    ours = EncryptedDataKey(
        provider_id=info.provider_id, provider_info=info.key_info, ciphertext=generated.encrypted_data_key
    )
    assert OURS.decrypt_data_key([ours], EncryptionContext(CTX)) == generated.data_key
