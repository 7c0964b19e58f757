"""ecrcrypt <-> AWS Encryption SDK through KMS (a moto server on 127.0.0.1).

A message ecrcrypt writes with ``KmsKeyProvider(Boto3Kms(...), key_arn)`` decrypts with
the ESDK's strict KMS master key provider, and the reverse: the "aws-kms" encrypted data
key (provider info = key ARN, ciphertext = KMS CiphertextBlob) is byte-compatible.
The ESDK builds its own KMS clients from a botocore session, so the session is pointed
at the moto server through botocore's service endpoint setting (``AWS_ENDPOINT_URL_KMS``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

pytestmark = pytest.mark.moto

esdk = pytest.importorskip("aws_encryption_sdk", reason="aws-encryption-sdk is not installed (test extra)")
kms_keyring = pytest.importorskip(
    "ecrcrypt.providers.kms_keyring", reason="ecrcrypt.providers.kms_keyring (KMS engineer) not ready"
)

from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy  # noqa: E402

from ecrcrypt.errors import EncryptionContextMismatchError, InvalidCiphertextError  # noqa: E402
from ecrcrypt.kms.aws import Boto3Kms  # noqa: E402
from ecrcrypt.streams import oneshot as message  # noqa: E402

CONTEXT = {
    "aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app",
    "aws:s3:arn": "arn:aws:s3:::bucket/registry/sha256:" + "ab" * 32,
}
PLAINTEXTS = [b"", b"x", os.urandom(5000), os.urandom(70_000)]


@pytest.fixture
def key_arn(kms_client: Any) -> str:
    return str(kms_client.create_key(Description="interop")["KeyMetadata"]["Arn"])


@pytest.fixture
def esdk_provider(moto_reset: str, key_arn: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import botocore.session

    # The ESDK creates its clients itself; botocore reads the service endpoint from here.
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_reset)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session = botocore.session.Session()
    session.set_config_variable("region", "us-east-1")
    return esdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)


@pytest.fixture
def esdk_client() -> Any:
    return esdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture
def ours(kms_client: Any, key_arn: str) -> Any:
    return kms_keyring.KmsKeyProvider(Boto3Kms(client=kms_client), key_arn)


@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=lambda p: f"{len(p)}B")
def test_ecrcrypt_writes_esdk_reads(
    ours: Any, esdk_client: Any, esdk_provider: Any, key_arn: str, plaintext: bytes
) -> None:
    ciphertext = message.encrypt(plaintext, provider=ours, context=CONTEXT, frame_length=4096)
    decrypted, header = esdk_client.decrypt(source=ciphertext, key_provider=esdk_provider)
    assert decrypted == plaintext
    assert {k: v for k, v in header.encryption_context.items() if not k.startswith("aws-crypto-")} == CONTEXT
    (edk,) = header.encrypted_data_keys
    assert edk.key_provider.provider_id == "aws-kms"
    assert edk.key_provider.key_info == key_arn.encode()


@pytest.mark.parametrize(
    "algorithm",
    [Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ids=["0478", "0578-signed"],
)
@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=lambda p: f"{len(p)}B")
def test_esdk_writes_ecrcrypt_reads(
    ours: Any, esdk_client: Any, esdk_provider: Any, plaintext: bytes, algorithm: Any
) -> None:
    ciphertext, _ = esdk_client.encrypt(
        source=plaintext, key_provider=esdk_provider, encryption_context=CONTEXT, algorithm=algorithm, frame_length=4096
    )
    assert message.decrypt(ciphertext, provider=ours, context=CONTEXT) == plaintext


def test_esdk_message_with_other_context_is_refused(ours: Any, esdk_client: Any, esdk_provider: Any) -> None:
    ciphertext, _ = esdk_client.encrypt(
        source=b"layer",
        key_provider=esdk_provider,
        encryption_context=CONTEXT,
        algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    )
    other = {**CONTEXT, "aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/other"}
    with pytest.raises(EncryptionContextMismatchError):
        message.decrypt(ciphertext, provider=ours, context=other)


def test_ecrcrypt_message_under_another_key_is_refused_by_esdk(
    ours: Any, esdk_client: Any, kms_client: Any, moto_reset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session

    ciphertext = message.encrypt(b"layer", provider=ours, context=CONTEXT)
    other_arn = kms_client.create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_reset)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = botocore.session.Session()
    session.set_config_variable("region", "us-east-1")
    strict_other = esdk.StrictAwsKmsMasterKeyProvider(key_ids=[other_arn], botocore_session=session)
    # A strict provider only tries its own key ARNs: the EDK names another key, so nothing opens it.
    with pytest.raises(esdk.exceptions.DecryptKeyError):
        esdk_client.decrypt(source=ciphertext, key_provider=strict_other)


def test_tampered_edk_is_an_invalid_ciphertext(ours: Any, esdk_client: Any, esdk_provider: Any) -> None:
    ciphertext, header = esdk_client.encrypt(
        source=b"layer",
        key_provider=esdk_provider,
        encryption_context=CONTEXT,
        algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    )
    blob = header.encrypted_data_keys.pop().encrypted_data_key
    at = ciphertext.index(blob) + len(blob) // 2
    tampered = ciphertext[:at] + bytes([ciphertext[at] ^ 1]) + ciphertext[at + 1 :]
    with pytest.raises(InvalidCiphertextError):
        message.decrypt(tampered, provider=ours, context=CONTEXT)
