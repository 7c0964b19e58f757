"""Target ``kms_ciphertext``: the local KMS's ciphertext blobs (:mod:`ecrcrypt.kms.local.ciphertext`).

``ciphertext.parse`` must split every blob it accepts into exactly the bytes it was given, naming
a canonical UUID; ``LocalKms`` Decrypt must answer any ``CiphertextBlob`` -- with and without a
``KeyId``, under the right and a wrong context -- with a documented error or the plaintext. The
runs add blobs of the fixture's own key as seeds, so that mutations reach the hot path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from ecrcrypt.errors import EcrCryptError
from ecrcrypt.kms.local import ciphertext
from fuzz._harness import KMS_CONTEXT, MiB, OracleViolation, Target, kms_fixture


def setup() -> Iterator[bytes]:
    fixture = kms_fixture()
    for context in (KMS_CONTEXT, None):
        yield fixture.client.encrypt(
            key_id=fixture.key_id, plaintext=b"fuzz", encryption_context=context
        ).ciphertext_blob
        yield fixture.client.generate_data_key(
            key_id=fixture.key_arn, encryption_context=context, number_of_bytes=32
        ).ciphertext_blob


def one_input(data: bytes) -> None:
    fixture = kms_fixture()
    try:
        parsed = ciphertext.parse(data)
    except EcrCryptError:
        pass
    else:
        if parsed.header + parsed.nonce + parsed.sealed != data or str(uuid.UUID(parsed.key_id)) != parsed.key_id:
            raise OracleViolation("ciphertext.parse split a blob into other bytes than it was given")
    for context in (KMS_CONTEXT, None):
        for key_id in (None, fixture.key_arn):
            try:
                fixture.client.decrypt(ciphertext_blob=data, encryption_context=context, key_id=key_id)
            except EcrCryptError:
                continue


TARGET = Target(
    name="kms_ciphertext",
    one_input=one_input,
    max_len=ciphertext.MAX_BLOB + 64,
    memory_bound=lambda n: 8 * n + 2 * MiB,
    runs=600,
    setup=lambda: list(setup()),
)
