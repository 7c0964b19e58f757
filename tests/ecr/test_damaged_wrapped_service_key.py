"""The KMS-wrapped service key of a server registry: made once, bound to its registry, never replaced."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.metadata import RegistryMetadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.errors import EcrKmsError, RegistryStateError
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.store.memory import MemoryBlobStore

ACCOUNT, REGION = "111122223333", "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
LAYER = b"layer" * 1000


@pytest.fixture
def kms(tmp_path: Path) -> LocalKms:
    return LocalKms(tmp_path / "kms.sqlite3", account=ACCOUNT, region=REGION)


def _registry(kms: LocalKms, metadata: RegistryMetadata, store: MemoryBlobStore, **kwargs: object) -> Registry:
    return Registry(kms=kms.client, store=store, metadata=metadata, account=ACCOUNT, region=REGION, **kwargs)  # type: ignore[arg-type]


def test_the_wrapped_key_survives_a_reopen_and_is_never_replaced(kms: LocalKms, tmp_path: Path) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key(description="wraps the service key").arn
    path, store = tmp_path / "registry.sqlite3", MemoryBlobStore()
    with RegistryMetadata.create(path, account=ACCOUNT, region=REGION) as metadata:
        made = ServiceKey.create_wrapped(metadata, admin, key_id=key)
        again = ServiceKey.create_wrapped(metadata, admin, key_id=key)  # idempotent: the same key
        assert again.fingerprint == made.fingerprint
        registry = _registry(kms, metadata, store)
        registry.create_repository("wrapped/app")
        registry.repository("wrapped/app").push_layer(LAYER, digest=Digest.of(LAYER))
    assert made.material not in path.read_bytes()  # only the wrapped form is stored
    with RegistryMetadata.open(path) as metadata:
        reopened = _registry(kms, metadata, store)  # no service_key: unwrapped from the metadata
        assert reopened.repository("wrapped/app").read_layer(Digest.of(LAYER)) == LAYER
        with pytest.raises(RegistryStateError, match="is not the one the registry database"):
            _registry(kms, metadata, store, service_key=ServiceKey.generate())
    unwraps = kms.audit.query(event_name="Decrypt", context={"ecrcrypt:purpose": "aes256-service-key"})
    assert unwraps and all(e.error_code is None for e in unwraps)


def test_concurrent_creators_agree_on_one_key(kms: LocalKms, tmp_path: Path) -> None:
    key = kms.client(ROOT).create_key().arn
    path = tmp_path / "registry.sqlite3"
    RegistryMetadata.create(path, account=ACCOUNT, region=REGION).close()
    found: list[str] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        with RegistryMetadata.open(path) as metadata:
            barrier.wait()
            found.append(ServiceKey.create_wrapped(metadata, kms.client(ROOT), key_id=key).fingerprint)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 4 and len(set(found)) == 1


def test_a_server_registry_without_its_key_is_refused_not_given_a_new_one(kms: LocalKms, tmp_path: Path) -> None:
    with RegistryMetadata.create(tmp_path / "registry.sqlite3", account=ACCOUNT, region=REGION) as metadata:
        with pytest.raises(RegistryStateError, match="records no KMS-wrapped service key"):
            _registry(kms, metadata, MemoryBlobStore())
        assert metadata.recorded("service_key.fingerprint") is None  # nothing recorded by the refusal


def test_a_wrapped_key_copied_into_another_registry_does_not_open(kms: LocalKms, tmp_path: Path) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    with RegistryMetadata.create(tmp_path / "a.sqlite3", account=ACCOUNT, region=REGION) as a:
        ServiceKey.create_wrapped(a, admin, key_id=key)
        records = {k: a.recorded(k) for k in ("service_key.wrapped", "service_key.kms_key")}
    with RegistryMetadata.create(tmp_path / "b.sqlite3", account=ACCOUNT, region=REGION) as b:
        b.record_once_many({k: v for k, v in records.items() if v is not None})
        with pytest.raises(EcrKmsError, match="cannot unwrap the registry's service key") as caught:
            ServiceKey.load_wrapped(b, admin)  # the context names registry a, not b
        assert caught.value.kms_error == "InvalidCiphertextException"


def test_a_damaged_wrapped_key_is_refused(kms: LocalKms, tmp_path: Path) -> None:
    admin = kms.client(ROOT)
    path = tmp_path / "registry.sqlite3"
    with RegistryMetadata.create(path, account=ACCOUNT, region=REGION) as metadata:
        ServiceKey.create_wrapped(metadata, admin, key_id=admin.create_key().arn)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE registry SET v = 'not base64!' WHERE k = 'service_key.wrapped'")
    conn.commit()
    conn.close()
    with RegistryMetadata.open(path) as metadata, pytest.raises(RegistryStateError, match="is damaged"):
        ServiceKey.load_wrapped(metadata, admin)


def test_a_database_that_lost_its_key_rows_is_refused_not_given_a_new_key(kms: LocalKms, tmp_path: Path) -> None:
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    path, store = tmp_path / "registry.sqlite3", MemoryBlobStore()
    with RegistryMetadata.create(path, account=ACCOUNT, region=REGION) as metadata:
        ServiceKey.create_wrapped(metadata, admin, key_id=key)
        _registry(kms, metadata, store).create_repository("kept/app")
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM registry WHERE k LIKE 'service_key.%'")
    conn.commit()
    conn.close()
    with RegistryMetadata.open(path) as metadata:
        with pytest.raises(RegistryStateError, match="holds repositories but no KMS-wrapped service key"):
            ServiceKey.create_wrapped(metadata, admin, key_id=key)  # e.g. a fleet host's idempotent init
        assert metadata.recorded("service_key.wrapped") is None  # nothing recorded in its place
    made = kms.audit.query(event_name="GenerateDataKey", context={"ecrcrypt:purpose": "aes256-service-key"})
    assert len(made) == 1  # the original key only: the refusal asked KMS for no new one
