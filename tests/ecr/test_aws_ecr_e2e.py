"""The ECR model on the AWS backends: Boto3Kms + S3BlobStore against a moto server on 127.0.0.1.

Push a multi-layer image (one layer spans several S3 parts, through both the
header-first and the body-first upload), pull it, verify digests, delete the
repository and find no grant left on the key. moto is one identity with no
authorization model (MOTO_GAPS in test_conformance_kms.py), so every principal's
KMS client is the same boto3 client and grantees are IAM role ARNs, as they must be
on AWS (CreateGrant takes account/user/role ARNs, not service principals).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest

pytestmark = pytest.mark.moto

registry_mod = pytest.importorskip("ecrcrypt.ecr.registry", reason="ecrcrypt.ecr.registry (ECR engineer) not ready")
pytest.importorskip("ecrcrypt.providers.kms_keyring", reason="ecrcrypt.providers.kms_keyring (KMS engineer) not ready")
pytest.importorskip("ecrcrypt.streams", reason="ecrcrypt.streams (FORMAT engineer) not ready")
pytest.importorskip("ecrcrypt.streams.ranges", reason="ecrcrypt.streams.ranges (FORMAT engineer) not ready")

from ecrcrypt import build_manifest  # noqa: E402
from ecrcrypt.config import EncryptionConfiguration  # noqa: E402
from ecrcrypt.digest import Digest  # noqa: E402
from ecrcrypt.errors import EcrKmsError  # noqa: E402
from ecrcrypt.kms.aws import Boto3Kms  # noqa: E402
from ecrcrypt.store.s3 import MIN_PART_SIZE, S3BlobStore  # noqa: E402
from tests.moto_server import ACCOUNT, REGION  # noqa: E402

ECR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecrcrypt-registry"
STORAGE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecrcrypt-storage"


def _layer(n: int, seed: int) -> tuple[bytes, Digest]:
    block = hashlib.sha256(b"%d" % seed).digest() * 2048
    data = (block * (n // len(block) + 1))[:n]
    return data, Digest.of(data)


@pytest.fixture
def env(kms_client: Any, s3_client: Any, s3_bucket: str) -> Any:
    kms = Boto3Kms(client=kms_client)
    store = S3BlobStore(s3_client, s3_bucket, prefix="registry", part_size=MIN_PART_SIZE)
    registry = registry_mod.Registry(
        kms=lambda principal: kms,
        store=store,
        account=ACCOUNT,
        region=REGION,
        caller=f"arn:aws:iam::{ACCOUNT}:root",
        ecr_principal=ECR_ROLE,
        storage_principal=STORAGE_ROLE,
        bucket=s3_bucket,
        frame_length=64 * 1024,
    )
    return kms, store, registry


@pytest.mark.parametrize("form", ["key-arn", "alias-name", "AES256"])
def test_push_pull_delete_on_moto(env: Any, s3_client: Any, s3_bucket: str, form: str) -> None:
    kms, store, registry = env
    key = kms.create_key(description="ecr layers")
    kms.create_alias(alias_name="alias/ecr-layers", target_key_id=key.key_id)
    if form == "AES256":
        cfg = EncryptionConfiguration()
    else:
        ref = key.arn if form == "key-arn" else "alias/ecr-layers"
        cfg = EncryptionConfiguration(encryption_type="KMS", kms_key=ref)
    desc = registry.create_repository("team/app", encryption_configuration=cfg)
    grants = list(kms.list_grants(key_id=key.arn).grants)
    if form == "AES256":
        assert grants == []
    else:
        assert desc.encryption_configuration.to_api()["kmsKey"] == key.arn
        assert sorted(g.grantee_principal for g in grants) == sorted([ECR_ROLE, STORAGE_ROLE])
    repo = registry.repository("team/app")

    layers = [_layer(n, seed) for seed, n in enumerate([0, 1, 70_000, 2 * MIN_PART_SIZE + 12_345])]
    pushed = [repo.push_layer(io.BytesIO(data), digest=d) for data, d in layers[:3]]
    big, big_digest = layers[3]
    with repo.start_upload() as up:  # body first: the header is written last, into S3 part 1
        for i in range(0, len(big), 1 << 20):
            up.write(big[i : i + (1 << 20)])
        pushed.append(up.complete(big_digest))
    manifest = build_manifest(pushed)
    repo.put_image(manifest, tag="v1")

    # What S3 holds is ciphertext only, and no multipart upload is left behind.
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    for data, _ in layers:
        if len(data) > 64:
            for k in store.list():
                assert data[:64] not in store.read_range(k, 0, 1 << 16)

    image = repo.get_image(tag="v1")
    for d in image.layer_digests:
        out = io.BytesIO()
        repo.pull_layer(d, out)
        assert Digest.of(out.getvalue()) == d
    assert repo.read_layer_range(big_digest, MIN_PART_SIZE - 10, 100) == big[MIN_PART_SIZE - 10 : MIN_PART_SIZE + 90]

    registry.delete_repository("team/app", force=True)
    assert kms.list_grants(key_id=key.arn).grants == ()
    assert list(store.list()) == []


def test_default_aws_managed_key_is_a_moto_gap(env: Any) -> None:
    """KMS with no key means alias/aws/ecr, which AWS creates on DescribeKey and moto does not know.

    MOTO_GAPS['aws_managed_ecr_key']: the repository cannot be created on moto; ECR's
    KmsException carries KMS's NotFoundException, and nothing is left behind.
    """
    _, store, registry = env
    with pytest.raises(EcrKmsError) as info:
        registry.create_repository(
            "team/default", encryption_configuration=EncryptionConfiguration(encryption_type="KMS")
        )
    assert info.value.kms_error == "NotFoundException"
    assert list(registry.describe_repositories()) == []
    assert list(store.list()) == []
