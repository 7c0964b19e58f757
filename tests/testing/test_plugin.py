"""The plugin's fixtures: a fresh local world per test, and the same registry on moto's AWS APIs."""

from __future__ import annotations

from ecrcrypt import Digest, Kms, Registry, find_repository_grants
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.kms.local.service import LocalKmsClient
from ecrcrypt.store.s3 import S3BlobStore
from ecrcrypt.testing.plugin import MOTO_ACCOUNT


def test_local_fixtures_share_one_world(ecrcrypt_kms: LocalKmsClient, ecrcrypt_registry: Registry) -> None:
    key = ecrcrypt_kms.create_key().arn
    ecrcrypt_registry.create_repository("a/b", encryption_configuration={"encryptionType": "KMS", "kmsKey": key})
    assert len(find_repository_grants(ecrcrypt_kms, key, "arn:aws:ecr:us-east-1:111122223333:repository/a/b")) == 2


def test_each_test_gets_a_fresh_world(ecrcrypt_kms: LocalKmsClient) -> None:
    assert ecrcrypt_kms.list_keys().keys == ()


def test_the_moto_registry_runs_on_boto3(ecrcrypt_moto_registry: Registry, ecrcrypt_moto_kms: Kms) -> None:
    assert isinstance(ecrcrypt_moto_kms, Boto3Kms) and isinstance(ecrcrypt_moto_registry.store, S3BlobStore)
    key = ecrcrypt_moto_kms.create_key(description="moto").arn
    assert f":{MOTO_ACCOUNT}:" in key
    description = ecrcrypt_moto_registry.create_repository(
        "moto/app", encryption_configuration={"encryptionType": "KMS", "kmsKey": key}
    )
    repo = ecrcrypt_moto_registry.repository("moto/app")
    layer = repo.push_layer(b"through S3 and KMS", digest=Digest.of(b"through S3 and KMS"))
    assert repo.read_layer(layer.digest) == b"through S3 and KMS"
    assert len(find_repository_grants(ecrcrypt_moto_kms, key, description.repository_arn)) == 2
    ecrcrypt_moto_registry.delete_repository("moto/app", force=True)
    assert find_repository_grants(ecrcrypt_moto_kms, key, description.repository_arn) == []
