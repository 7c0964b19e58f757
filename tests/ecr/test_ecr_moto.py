"""The registry over real AWS backends (boto3 KMS + S3), against a moto server on 127.0.0.1.

moto is a crypto and encryption-context oracle only (kms-ecr-semantics §4.3): grants are
bookkeeping there, so this test checks that the registry's calls are well-formed for
AWS and that objects round-trip through S3, not grant enforcement.
"""

from __future__ import annotations

from typing import Any

import pytest

from ecrcrypt import build_manifest
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry, find_repository_grants
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.store.s3 import S3BlobStore
from tests.moto_server import ACCOUNT, REGION

pytestmark = pytest.mark.moto


def test_push_pull_delete_over_boto3_and_s3(kms_client: Any, s3_client: Any, s3_bucket: str) -> None:
    kms = Boto3Kms(client=kms_client)
    registry = Registry(
        kms=lambda principal: kms,
        store=S3BlobStore(s3_client, s3_bucket, prefix="registry"),
        account=ACCOUNT,
        region=REGION,
        frame_length=4096,
    )
    key = kms.create_key(description="ecr test").arn
    desc = registry.create_repository("moto/app", encryption_configuration={"encryptionType": "KMS", "kmsKey": key})
    assert desc.encryption_configuration.to_api()["kmsKey"] == key
    assert len(find_repository_grants(kms, key, desc.repository_arn)) == 2

    repo = registry.repository("moto/app")
    a = bytes(range(256)) * 97
    b = b"layer two" * 3000
    pushed = [repo.push_layer(a, digest=Digest.of(a))]
    with repo.start_upload() as up:
        for i in range(0, len(b), 5000):
            up.write(b[i : i + 5000])
        pushed.append(up.complete(Digest.of(b)))
    repo.put_image(build_manifest(pushed), tag="v1")
    image = repo.get_image(tag="v1")
    assert [repo.read_layer(d) for d in image.layer_digests] == [a, b]
    assert repo.read_layer_range(Digest.of(b), 4000, 5000) == b[4000:9000]

    registry.delete_repository("moto/app", force=True)
    assert find_repository_grants(kms, key, desc.repository_arn) == []
    assert list(registry.store.list()) == []
