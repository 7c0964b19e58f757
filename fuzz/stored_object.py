"""Target ``stored_object``: what a storage tamperer writes in place of a registry object.

A registry holds one layer in an ``AES256`` repository (one ESDK message) and one in a ``KMS_DSSE``
repository (a message inside a message, through a local KMS); the input's first byte picks one, the
rest replaces its stored blob. ``read_layer`` and ``read_layer_range`` must then raise a documented
error or return the layer's own plaintext: whatever the stored bytes, nothing else may come out
(integrity), since the digest, the message tags and the encryption context all guard it.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ecrcrypt import MemoryBlobStore, Registry
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.errors import EcrCryptError
from fuzz._harness import ACCOUNT, MiB, OracleViolation, Target, kms_fixture

LAYER = bytes((i * 7 + i // 251) % 256 for i in range(3000))
DIGEST = Digest.of(LAYER)


@attrs.frozen(kw_only=True)
class _Stored:
    store: MemoryBlobStore
    repositories: tuple[Repository, ...]
    blob_keys: tuple[str, ...]
    blobs: tuple[bytes, ...]


_state: list[_Stored] = []


def stored() -> _Stored:
    """A registry with :data:`LAYER` pushed into an AES256 and a KMS_DSSE repository (made once)."""
    if not _state:
        fixture = kms_fixture()
        store = MemoryBlobStore()
        registry = Registry(kms=fixture.kms.client, store=store, account=ACCOUNT, frame_length=1024)
        repos, keys = [], []
        for name, config in (
            ("fuzz-aes", None),
            ("fuzz-dsse", EncryptionConfiguration(encryption_type="KMS_DSSE", kms_key=fixture.key_arn)),
        ):
            registry.create_repository(name, encryption_configuration=config)
            before = set(store.list())
            repo = registry.repository(name)
            repo.push_layer(LAYER, digest=DIGEST)
            (key,) = set(store.list()) - before
            repos.append(repo)
            keys.append(key)
        blobs = tuple(store.read_range(k, 0, store.size(k)) for k in keys)
        _state.append(_Stored(store=store, repositories=tuple(repos), blob_keys=tuple(keys), blobs=blobs))
    return _state[0]


def setup() -> Iterator[bytes]:
    state = stored()
    for i, blob in enumerate(state.blobs):
        yield bytes([i]) + blob


def one_input(data: bytes) -> None:
    if not data:
        return
    state = stored()
    which = data[0] % len(state.repositories)
    with state.store.open_write(state.blob_keys[which]) as writer:
        writer.write(data[1:])
        writer.commit()
    repo = state.repositories[which]
    try:
        if repo.read_layer(DIGEST) != LAYER:
            raise OracleViolation("a tampered blob decrypted to another plaintext than the layer's")
    except EcrCryptError:
        pass
    offset = (data[-1] * 13) % len(LAYER)
    if repo.read_layer_range(DIGEST, offset, 500) != LAYER[offset : offset + 500]:
        raise OracleViolation(f"a tampered blob gave another range [{offset}, +500) than the layer's")


TARGET = Target(
    name="stored_object",
    one_input=one_input,
    max_len=8192,
    # Two nested messages of the input's size, frame buffers of the registry's 1 KiB frames.
    memory_bound=lambda n: 32 * n + 4 * MiB,
    runs=600,
    setup=lambda: list(setup()),
)
