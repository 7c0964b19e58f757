"""Public parameters of the registry and the blob stores are checked by type, never stringified (issue 10)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr.registry import Registry
from ecrcrypt.errors import InvalidParameterError, ValidationError
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.store.filesystem import FilesystemBlobStore
from ecrcrypt.store.memory import MemoryBlobStore


def test_registry_parameters_of_the_wrong_type_are_refused() -> None:
    kms = LocalKms()
    registry = Registry(kms=kms.client, store=MemoryBlobStore(), audit=kms.audit)
    registry.create_repository("types/app")
    bad: Any = 5
    calls: dict[str, tuple[Callable[[], object], type[Exception]]] = {
        "encryptionConfiguration": (
            lambda: registry.create_repository("types/other", encryption_configuration=bad),
            InvalidParameterError,
        ),
        "force": (lambda: registry.delete_repository("types/app", force="yes"), InvalidParameterError),  # type: ignore[arg-type]
        "principal": (lambda: registry.as_caller(None), ValidationError),  # type: ignore[arg-type]
        "directory (open)": (lambda: Registry.open(bad), ValidationError),
        "directory (create)": (lambda: Registry.create(None), ValidationError),  # type: ignore[arg-type]
    }
    for name, (call, error) in calls.items():
        with pytest.raises(error, match=r"not (int|str|NoneType)"):
            call()
            pytest.fail(f"{name} was accepted")
    assert [d.repository_name for d in registry.describe_repositories()] == ["types/app"]  # "yes" deleted nothing


@pytest.mark.parametrize("store", ["filesystem", "memory"])
def test_a_300_character_blob_key_is_a_documented_error_not_an_os_error(tmp_path: Path, store: str) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs") if store == "filesystem" else MemoryBlobStore()
    for key in ("a" * 300, "prefix/" + "b" * 201):
        with pytest.raises(ValidationError, match="a segment is at most 200"):
            blobs.open_write(key)
        with pytest.raises(ValidationError, match="a segment is at most 200"):
            blobs.exists(key)
    with blobs.open_write("prefix/" + "c" * 200) as writer:  # the limit itself fits
        writer.write(b"x")
        writer.commit()
    assert blobs.exists("prefix/" + "c" * 200)


def test_repository_parameters_of_the_wrong_type_are_refused_and_nothing_is_stored() -> None:
    from ecrcrypt.digest import Digest

    kms = LocalKms()
    registry = Registry(kms=kms.client, store=MemoryBlobStore(), audit=kms.audit)
    registry.create_repository("types/app")
    repo = registry.repository("types/app")
    data = b"layer" * 100
    repo.push_layer(data, digest=Digest.of(data))
    repo.put_image({"schemaVersion": 2, "layers": []}, tag="five")
    before = sorted(registry.store.list())
    bad: Any = 5
    text: Any = "text"
    nothing: Any = None
    calls: dict[str, Callable[[], object]] = {
        "push_layer(str)": lambda: repo.push_layer(text, digest=Digest.of(b"text")),
        "push_layer(int)": lambda: repo.push_layer(bad, digest=Digest.of(b"x")),
        "upload.write(str)": lambda: repo.start_upload().write(text),
        "pull_layer(None)": lambda: repo.pull_layer(Digest.of(data), nothing),
        "get_image(tag=5)": lambda: repo.get_image(tag=bad),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidParameterError):
            call()
            pytest.fail(f"{name} was accepted")
    assert sorted(registry.store.list()) == before
    assert repo.get_image(tag="five").tags == ("five",)
