"""The AWS backends against a real account (optional, tiny, never run by default).

Set ``ECRCRYPT_LIVE_KEY_ARN`` (a symmetric customer managed key the credentials may use
for GenerateDataKey/Decrypt) and ``ECRCRYPT_LIVE_BUCKET`` (a bucket they may write to);
credentials come from boto3's usual chain. Objects are written under a fresh
``ecrcrypt-live-test/<uuid>/`` prefix and deleted again. See docs/aws.md.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ecrcrypt import errors

KEY_ARN = os.environ.get("ECRCRYPT_LIVE_KEY_ARN", "")
BUCKET = os.environ.get("ECRCRYPT_LIVE_BUCKET", "")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (KEY_ARN and BUCKET),
        reason="live AWS tests need ECRCRYPT_LIVE_KEY_ARN and ECRCRYPT_LIVE_BUCKET (see docs/aws.md)",
    ),
]

CONTEXT = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/ecrcrypt-live-test"}


@pytest.fixture(scope="module")
def session() -> Any:
    boto3 = pytest.importorskip("boto3")
    region = KEY_ARN.split(":")[3] if KEY_ARN.count(":") >= 5 else None
    return boto3.session.Session(region_name=region)


@pytest.fixture
def kms(session: Any) -> Any:
    from ecrcrypt.kms.aws import Boto3Kms

    return Boto3Kms(client=session.client("kms"))


@pytest.fixture
def store(session: Any) -> Iterator[Any]:
    from ecrcrypt.store.s3 import S3BlobStore

    s = S3BlobStore(session.client("s3"), BUCKET, prefix=f"ecrcrypt-live-test/{uuid.uuid4()}")
    yield s
    for key in list(s.list()):
        s.delete(key)


def test_live_data_key_is_bound_to_its_context(kms: Any) -> None:
    meta = kms.describe_key(key_id=KEY_ARN)
    assert meta.arn == KEY_ARN
    dk = kms.generate_data_key(key_id=KEY_ARN, key_spec="AES_256", encryption_context=CONTEXT)
    assert kms.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CONTEXT, key_id=KEY_ARN).plaintext == (
        dk.plaintext
    )
    with pytest.raises(errors.InvalidCiphertextError):
        kms.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context={**CONTEXT, "x": "y"}, key_id=KEY_ARN)


def test_live_s3_store_round_trip_and_abort(store: Any) -> None:
    with store.open_write("layer", reserve=4) as w:
        w.write(b"body" * 1000)
        w.write_reserved(b"head")
        w.commit()
    assert store.read_range("layer", 0, 8) == b"headbody"
    with store.open_write("aborted") as w:
        w.write(b"z" * (store.part_size + 1))
    assert not store.exists("aborted")


def test_live_message_round_trip(kms: Any) -> None:
    kms_keyring = pytest.importorskip("ecrcrypt.providers.kms_keyring")
    from ecrcrypt.streams import oneshot as message

    provider = kms_keyring.KmsKeyProvider(kms, KEY_ARN)
    ct = message.encrypt(b"live layer", provider=provider, context=CONTEXT)
    assert message.decrypt(ct, provider=provider, context=CONTEXT) == b"live layer"
