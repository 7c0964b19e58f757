"""A throwaway ecrcrypt world: a local KMS and a registry over it, all in memory.

What the pytest fixtures and the docs' examples build, in one place, so that a user's
test and the project's own use the same setup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from ecrcrypt.ecr.registry import DEFAULT_ACCOUNT, DEFAULT_REGION, Registry
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient
from ecrcrypt.store.memory import MemoryBlobStore

__all__ = ["World", "memory_world"]


@attrs.frozen(kw_only=True)
class World:
    """The local KMS service, its client for the account root, and a registry using them."""

    service: LocalKms
    kms: LocalKmsClient
    registry: Registry


@contextmanager
def memory_world(*, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> Iterator[World]:
    """A local KMS (in-memory SQLite) and a registry over a memory blob store; closed on exit."""
    service = LocalKms(account=account, region=region)
    try:
        registry = Registry(
            kms=service.client, store=MemoryBlobStore(), account=account, region=region, audit=service.audit
        )
        try:
            yield World(service=service, kms=service.client(service.root_principal), registry=registry)
        finally:
            registry.close()
    finally:
        service.close()
