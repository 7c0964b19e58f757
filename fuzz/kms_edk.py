"""Target ``kms_edk``: the KMS keyring's encrypted data keys (:mod:`ecrcrypt.providers.kms_keyring`).

The input is an encryption context and a list of ``aws-kms`` (or other) EDKs laid out as in a
message header (:func:`fuzz._harness.decode_edk_input`): provider infos that are not key ARNs or not
UTF-8, ciphertext blobs of any shape. Two keyrings decrypt them through a real local KMS: one built
on the key's ARN (strict: only EDKs naming that ARN) and one on its bare key id (learns the ARN).
The runs add EDKs of the fixture's own key as seeds, so mutations reach KMS Decrypt's full path.
"""

from __future__ import annotations

from collections.abc import Iterator

from ecrcrypt import EncryptionContext, KmsKeyProvider
from fuzz._harness import KMS_CONTEXT, MiB, OracleViolation, Target, decode_edk_input, encode_edk_input, kms_fixture


def _providers() -> tuple[KmsKeyProvider, KmsKeyProvider]:
    fixture = kms_fixture()
    return KmsKeyProvider(fixture.client, fixture.key_arn), KmsKeyProvider(fixture.client, fixture.key_id)


def setup() -> Iterator[bytes]:
    by_arn, _ = _providers()
    for context in (KMS_CONTEXT, EncryptionContext()):
        yield encode_edk_input(context, by_arn.generate_data_key(context).encrypted_data_keys)


def one_input(data: bytes) -> None:
    decoded = decode_edk_input(data)
    if decoded is None:
        return
    context, edks = decoded
    for provider in _providers():
        key = provider.decrypt_data_key(edks, context)
        if len(key) != 32:
            raise OracleViolation(f"the KMS keyring returned a {len(key)}-byte data key")


TARGET = Target(
    name="kms_edk",
    one_input=one_input,
    max_len=4096,
    memory_bound=lambda n: 8 * n + 2 * MiB,
    runs=600,
    setup=lambda: list(setup()),
)
