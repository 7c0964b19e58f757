"""Testing with ecrcrypt: a pytest plugin and helpers (the testing layer).

Installed with ecrcrypt, the plugin (entry point ``pytest11``) gives every test suite
the fixtures ``ecrcrypt_kms`` (a local KMS client for the account root, in memory)
and ``ecrcrypt_registry`` (a registry over that KMS and an in-memory blob store).
Strategies bound to those live objects are in :mod:`ecrcrypt.strategies`.
"""

from __future__ import annotations

from ecrcrypt.testing.world import World, memory_world

__all__ = ["World", "memory_world"]
