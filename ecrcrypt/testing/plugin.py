"""The pytest plugin ecrcrypt registers (entry point ``pytest11``): fixtures for a live world.

Fixtures are function-scoped: each test gets a fresh KMS and registry, so what one
test creates (keys, grants, repositories) can never make another pass or fail.

The ``ecrcrypt_moto_*`` variants put the same registry on AWS's APIs as moto emulates
them in-process (``moto.mock_aws``): ``Boto3Kms`` and ``S3BlobStore`` over boto3 clients,
the code path a registry on real AWS takes. They need ``moto[kms,s3]`` and skip, saying
so, without it. moto does not model KMS authorization or key states on crypto calls
(docs/aws.md): test those against ``ecrcrypt_kms``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecrcrypt.ecr.registry import DEFAULT_REGION, Registry
from ecrcrypt.kms import Kms
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.kms.local.service import LocalKmsClient
from ecrcrypt.store.s3 import S3BlobStore
from ecrcrypt.testing.world import World, memory_world

__all__ = [
    "MOTO_ACCOUNT",
    "ecrcrypt_kms",
    "ecrcrypt_moto_kms",
    "ecrcrypt_moto_registry",
    "ecrcrypt_registry",
    "ecrcrypt_world",
]

#: The account moto answers for (its default).
MOTO_ACCOUNT = "123456789012"
_MOTO_BUCKET = "ecrcrypt-test-registry"


@pytest.fixture
def ecrcrypt_world() -> Iterator[World]:
    """The local KMS service, its root client and a registry over them (in memory)."""
    with memory_world() as world:
        yield world


@pytest.fixture
def ecrcrypt_kms(ecrcrypt_world: World) -> LocalKmsClient:
    """A local KMS client for the account root (``arn:aws:iam::111122223333:root``)."""
    return ecrcrypt_world.kms


@pytest.fixture
def ecrcrypt_registry(ecrcrypt_world: World) -> Registry:
    """A registry over ``ecrcrypt_kms``'s service and a memory blob store, acting as the account root."""
    return ecrcrypt_world.registry


@pytest.fixture
def ecrcrypt_moto_kms() -> Iterator[Kms]:
    """``Boto3Kms`` over a boto3 KMS client on moto's in-process emulation of AWS KMS."""
    moto = pytest.importorskip("moto", reason="the moto-backed fixtures need moto: pip install 'moto[kms,s3]'")
    boto3 = pytest.importorskip("boto3", reason="the moto-backed fixtures need boto3: pip install 'ecrcrypt[aws]'")
    with moto.mock_aws():
        session = boto3.Session(
            region_name=DEFAULT_REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106
        )
        yield Boto3Kms(client=session.client("kms"))


@pytest.fixture
def ecrcrypt_moto_registry(ecrcrypt_moto_kms: Boto3Kms) -> Registry:
    """A registry on moto: KMS through ``ecrcrypt_moto_kms``, blobs in an S3 bucket through ``S3BlobStore``.

    One identity serves every principal (as on AWS, where a process holds one set of
    credentials); the account is moto's.
    """
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.Session(
        region_name=DEFAULT_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    ).client("s3")
    s3.create_bucket(Bucket=_MOTO_BUCKET)
    kms = ecrcrypt_moto_kms
    return Registry(
        kms=lambda principal: kms,
        store=S3BlobStore(s3, _MOTO_BUCKET, prefix="registry"),
        account=MOTO_ACCOUNT,
        region=DEFAULT_REGION,
    )
