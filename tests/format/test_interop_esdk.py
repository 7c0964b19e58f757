"""Interoperability with aws-encryption-sdk-python (the test extra installs it).

Both sides use the same raw AES-256 wrapping key under the same namespace and name:
ESDK's ``RawMasterKey`` writes exactly the raw AES keyring's EDKs.
"""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from ecrcrypt import DecryptPolicy, decrypt, encrypt
from ecrcrypt.errors import CommitmentPolicyError, EncryptionContextMismatchError
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
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


def _strip_signature(signed: bytes, plaintext: bytes) -> bytes:
    """What a principal that can unwrap data keys but not sign can do to a signed message.

    It re-seals the same data key, EDKs and context (including the verification key, which the
    key provider needs) as the unsigned committing suite, around a plaintext of its choosing.
    """
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from ecrcrypt.format.derivation import derive_keys
    from ecrcrypt.format.frames import final_aad
    from ecrcrypt.format.header import ZERO_IV, serialize_header_body_v2
    from ecrcrypt.format.suites import AES_256_GCM_HKDF_SHA512_COMMIT_KEY

    header = DecryptPolicy().parse_header_bytes(signed)
    data_key = OURS.decrypt_data_key(header.encrypted_data_keys, header.context)
    message_id = os.urandom(32)
    enc, commit = derive_keys(AES_256_GCM_HKDF_SHA512_COMMIT_KEY, data_key, message_id)
    body = serialize_header_body_v2(
        suite=AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        message_id=message_id,
        context=header.context,
        encrypted_data_keys=header.encrypted_data_keys,
        frame_length=4096,
        commit_key=commit,
    )
    aead = AESGCM(enc)
    prefix = struct.pack(">IIQII", 0xFFFFFFFF, 1, 0, 1, len(plaintext))
    return (
        body
        + aead.encrypt(ZERO_IV, b"", body)
        + prefix
        + aead.encrypt(prefix[8:20], plaintext, final_aad(message_id, 1, len(plaintext)))
    )


def test_a_stripped_signature_is_refused_before_the_key_provider_is_called() -> None:
    from ecrcrypt.errors import MessageFormatError
    from ecrcrypt.streams import iter_decrypt
    from ecrcrypt.streams.ranges import decrypt_range

    signed, _ = STRICT.encrypt(
        source=b"genuine",
        key_provider=THEIRS,
        encryption_context=CTX,
        algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    )
    forged = _strip_signature(signed, b"forged by a decrypt-only principal")

    class Untouchable:
        def decrypt_data_key(self, *args: object) -> bytes:
            raise AssertionError("the key provider must not be called for a stripped-signature message")

    class Source:
        def size(self) -> int:
            return len(forged)

        def read_at(self, offset: int, length: int) -> bytes:
            return forged[offset : offset + length]

    provider: Any = Untouchable()
    with pytest.raises(MessageFormatError, match="verification key"):
        decrypt(forged, provider=provider, context=CTX)
    with pytest.raises(MessageFormatError, match="verification key"):
        DecryptingReader(io.BytesIO(forged), provider=provider, context=CTX).read()
    with pytest.raises(MessageFormatError, match="verification key"):
        list(iter_decrypt([forged], provider=provider, context=CTX))
    with pytest.raises(MessageFormatError, match="verification key"):
        decrypt_range(Source(), 0, 5, provider=provider, context=CTX)
    with pytest.raises(Exception, match="non-signed"):  # every ESDK refuses it too
        STRICT.decrypt(source=forged, key_provider=THEIRS)
    # and the genuine signed message still decrypts
    assert decrypt(signed, provider=OURS, context=CTX) == b"genuine"
