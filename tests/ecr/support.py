"""Shared builders for the ECR tests (no tests here)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs

from ecrcrypt import BlobStore, MemoryBlobStore
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry, find_repository_grants
from ecrcrypt.kms import Kms, KmsQuotas
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT = "111122223333"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
FRAME = 1024  # small frames: multi-frame messages with small test data


def local_kms(**kwargs: Any) -> LocalKms:
    return LocalKms(account=ACCOUNT, region=REGION, **kwargs)


@attrs.define
class Env:
    local: LocalKms
    registry: Registry
    store: BlobStore
    factory: Callable[[str], Kms]

    @property
    def admin(self) -> Kms:
        return self.local.client(ROOT)

    def customer_key(self, alias: str | None = None) -> str:
        meta = self.admin.create_key(description="test key")
        if alias is not None:
            self.admin.create_alias(alias_name=alias, target_key_id=meta.key_id)
        return str(meta.arn)

    def grants_for(self, key_arn: str, repository_arn: str) -> list[Any]:
        return find_repository_grants(self.admin, key_arn, repository_arn)

    def all_grants(self, key_arn: str) -> list[Any]:
        out: list[Any] = []
        marker = None
        while True:
            page = self.admin.list_grants(key_id=key_arn, limit=100, marker=marker)
            out.extend(page.grants)
            if not page.truncated:
                return out
            marker = page.next_marker


def make_env(
    *,
    store: BlobStore | None = None,
    factory: Callable[[Any], Callable[[str], Kms]] | None = None,
    quotas: KmsQuotas | None = None,
    frame_length: int | None = FRAME,
    clock: Any = None,
) -> Env:
    local = local_kms(quotas=quotas, clock=clock)
    store = store if store is not None else MemoryBlobStore()
    kms_factory = factory(local) if factory is not None else local.client
    registry = Registry(
        kms=kms_factory,
        store=store,
        account=ACCOUNT,
        region=REGION,
        audit=local.audit,
        caller=ROOT,
        frame_length=frame_length,
    )
    return Env(local=local, registry=registry, store=store, factory=kms_factory)


def layer(size: int, seed: int = 0) -> tuple[bytes, Digest]:
    data = os.urandom(size) if seed < 0 else bytes((i * 31 + seed * 7 + i // 251) % 256 for i in range(size))
    return data, Digest.of(data)


def kms_config(key: str | None = None, *, dsse: bool = False) -> EncryptionConfiguration:
    return EncryptionConfiguration(encryption_type="KMS_DSSE" if dsse else "KMS", kms_key=key)


class Chunks:
    """A readable over bytes that counts reads (to prove a source was not read)."""

    def __init__(self, data: bytes, step: int = 777) -> None:
        self._data = data
        self._pos = 0
        self.reads = 0
        self._step = step

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        n = self._step if size < 0 else min(size, self._step)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out
