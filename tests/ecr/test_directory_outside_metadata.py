"""A registry directory whose metadata lives outside it, named by URL (issue 14), on both backends.

The directory then holds the local KMS and the blobs; the metadata, and the AES256 service key
wrapped under a key of that KMS, are in the database at the URL, so no service-key file exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.directory import MANIFEST
from ecrcrypt.ecr.metadata_url import create_metadata, open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.service_key import WRAPPED, ServiceKey
from ecrcrypt.errors import RegistryStateError, ValidationError
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT, REGION = "111122223333", "us-east-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'elsewhere' / 'registry.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def _push(registry: Registry, name: str, data: bytes) -> None:
    registry.create_repository(name)
    registry.repository(name).push_layer(data, digest=Digest.of(data))


def test_the_metadata_and_the_wrapped_service_key_live_at_the_url(url: str, tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    with Registry.create(directory, metadata=url) as registry:
        _push(registry, "team/aes", b"aes256 layer" * 100)
    assert sorted(p.name for p in directory.iterdir()) == ["blobs", "kms.sqlite3", "kms.sqlite3.rootkey", MANIFEST]
    with open_metadata(url) as metadata:
        assert metadata.get_repository("team/aes") is not None and metadata.recorded(WRAPPED) is not None
    with Registry.create(directory, metadata=url) as again:  # idempotent: opens what is there
        assert again.repository("team/aes").read_layer(Digest.of(b"aes256 layer" * 100)) == b"aes256 layer" * 100
    with pytest.raises(RegistryStateError, match="outside database"):
        Registry.open(directory)  # the URL is needed at every open


def test_another_registry_s_metadata_is_refused(url: str, tmp_path: Path) -> None:
    Registry.create(tmp_path / "one", metadata=url).close()
    with pytest.raises(RegistryStateError, match="belongs to another registry directory"):
        Registry.create(tmp_path / "two", metadata=url)  # its local KMS cannot unwrap the service key
    mine = Registry.create(tmp_path / "mine")
    mine.close()
    with pytest.raises(RegistryStateError, match="not at the metadata URL given"):
        Registry.open(tmp_path / "mine", metadata=url)
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    Registry.create(tmp_path / "three", metadata=other).close()
    with pytest.raises(RegistryStateError, match="is not this registry's"):
        Registry.open(tmp_path / "one", metadata=other)


def test_open_never_creates_the_metadata(url: str, tmp_path: Path) -> None:
    Registry.create(tmp_path / "one", metadata=f"sqlite:///{tmp_path / 'first.sqlite3'}").close()
    with pytest.raises(RegistryStateError):
        Registry.open(tmp_path / "one", metadata=url)  # nothing at this URL: refused, not made
    with pytest.raises(RegistryStateError):
        open_metadata(url)


def test_a_store_object_and_an_outside_kms(url: str, tmp_path: Path) -> None:
    kms = LocalKms(tmp_path / "outside-kms.sqlite3", account=ACCOUNT, region=REGION)
    admin = kms.client(f"arn:aws:iam::{ACCOUNT}:root")
    metadata = create_metadata(url, account=ACCOUNT, region=REGION)
    with pytest.raises(ValidationError, match=r"ServiceKey\.create_wrapped"):
        Registry.create(tmp_path / "registry", kms=kms.client, account=ACCOUNT, metadata=metadata)
    ServiceKey.create_wrapped(metadata, admin, key_id=admin.create_key().arn)
    with Registry.create(tmp_path / "registry", kms=kms.client, account=ACCOUNT, metadata=metadata) as registry:
        _push(registry, "team/app", b"layer")
    assert not (tmp_path / "registry" / "kms.sqlite3").exists()
    with Registry.open(tmp_path / "registry", kms=kms.client, metadata=open_metadata(url)) as registry:
        assert registry.repository("team/app").read_layer(Digest.of(b"layer")) == b"layer"
    kms.close()
