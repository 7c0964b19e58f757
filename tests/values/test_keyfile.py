"""Secret key files (root key, service key): 0600, atomic, one key under races, never pickled."""

from __future__ import annotations

import os
import pickle
import stat
import threading
from pathlib import Path

import pytest

from ecrcrypt._keyfile import load_or_create_key_file
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.errors import RegistryStateError


def test_created_once_with_mode_0600_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key"
    key = load_or_create_key_file(path)
    assert key is not None and len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key_file(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary left behind


def test_concurrent_first_opens_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "key"
    results: list[bytes | None] = []
    barrier = threading.Barrier(8)

    def open_it() -> None:
        barrier.wait()
        results.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0] is not None


def test_a_truncated_file_is_reported_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "service-key"
    path.write_bytes(b"short")
    assert load_or_create_key_file(path) is None
    for attempt in (ServiceKey.load, ServiceKey.create):
        with pytest.raises(RegistryStateError, match="damaged or truncated") as caught:
            attempt(path)
        assert caught.value.path == str(path)
    assert path.read_bytes() == b"short"


def test_a_missing_service_key_is_reported_not_created(tmp_path: Path) -> None:
    with pytest.raises(RegistryStateError, match="is missing: restore it from backup"):
        ServiceKey.load(tmp_path / "service-key")
    assert list(tmp_path.iterdir()) == []


def test_service_key_never_pickles_or_shows_its_material(tmp_path: Path) -> None:
    key = ServiceKey.create(tmp_path / "service-key")
    assert key.material.hex() not in repr(key)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(key, protocol=protocol)


def test_a_digest_mismatch_stays_raised_on_every_later_read() -> None:
    """The verifying layer reader must not turn a failed digest check into a clean EOF."""
    import io

    from ecrcrypt import encrypt
    from ecrcrypt.context import EncryptionContext
    from ecrcrypt.digest import Digest
    from ecrcrypt.ecr.codec import open_decrypting
    from ecrcrypt.errors import DigestMismatchError
    from ecrcrypt.providers.raw_aes import RawAesKeyProvider

    provider = RawAesKeyProvider(key_namespace="ns", key_name="k", wrapping_key=os.urandom(32))
    context = EncryptionContext({"a": "b"})
    stored = encrypt(b"actual content", provider=provider, context=context, frame_length=16)
    reader = open_decrypting(
        io.BytesIO(stored), provider=provider, context=context, inner=None, expected=Digest.of(b"declared content")
    )
    with pytest.raises(DigestMismatchError):
        while reader.read(4):
            pass
    for _ in range(2):
        with pytest.raises(DigestMismatchError):
            reader.read(4)


def test_a_failed_registry_open_closes_what_it_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecrcrypt.ecr import directory as directory_module
    from ecrcrypt.ecr.metadata import RegistryMetadata
    from ecrcrypt.ecr.registry import Registry

    Registry.create(tmp_path / "reg").close()
    closed: list[str] = []

    class Tracked(RegistryMetadata):
        def close(self) -> None:
            closed.append("metadata")
            super().close()

    monkeypatch.setattr(directory_module, "RegistryMetadata", Tracked)
    (tmp_path / "reg" / "service-key").write_bytes(b"truncated")
    with pytest.raises(RegistryStateError, match=r"service key file .* is damaged or truncated"):
        Registry.open(tmp_path / "reg")
    assert closed == ["metadata"]
