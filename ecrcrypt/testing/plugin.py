"""The pytest plugin ecrcrypt registers (entry point ``pytest11``): fixtures for a live world.

Fixtures are function-scoped: each test gets a fresh KMS and registry, so what one
test creates (keys, grants, repositories) can never make another pass or fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecrcrypt.ecr.registry import Registry
from ecrcrypt.kms.local.service import LocalKmsClient
from ecrcrypt.testing.world import World, memory_world

__all__ = ["ecrcrypt_kms", "ecrcrypt_registry", "ecrcrypt_world"]


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
