"""Lost or damaged files of a registry directory are refused at open, never replaced (issue 10).

Each file of a registry directory -- manifest, registry database, service key, KMS
database, root key -- is deleted, truncated (to 0 and to half), replaced by the same
file of another registry, and corrupted (bytes flipped); ``Registry.open`` and
``Registry.create`` must both refuse with ``RegistryStateError`` naming that file and
saying what to do, and must write nothing: the directory listing, every file's bytes
and mtime are the same after the refusal as before it. Restoring the file from a
backup brings every object back.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.directory import BLOBS, KMS_DB, MANIFEST, REGISTRY_DB, ROOT_KEY, SERVICE_KEY
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.errors import RegistryStateError

FILES = (MANIFEST, REGISTRY_DB, SERVICE_KEY, KMS_DB, ROOT_KEY)
LAYER = bytes(range(256)) * 64
REPOSITORIES = {"damage/aes": None, "damage/kms": {"encryptionType": "KMS"}}


def _populate(root: Path) -> None:
    with Registry.create(root) as registry:
        for name, config in REPOSITORIES.items():
            registry.create_repository(name, encryption_configuration=config)
            registry.repository(name).push_layer(LAYER, digest=Digest.of(LAYER))


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A populated registry (the one damaged, by copy) and another one (the source of replacements)."""
    base = tmp_path_factory.mktemp("damaged")
    _populate(base / "template")
    _populate(base / "other")
    return base / "template", base / "other"


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _flip(path: Path, offsets: list[int]) -> None:
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt(path: Path) -> None:
    """Flip bytes where each kind of file notices: a key's bytes, the manifest's text, and for a
    database its header and the b-tree header of its second page."""
    size = path.stat().st_size
    if path.name.endswith(".sqlite3"):
        page = int.from_bytes(path.read_bytes()[16:18], "big")
        _flip(path, [*range(page, page + 8)])
    else:
        _flip(path, [size // 2, size // 3])


def _corrupt_header(path: Path) -> None:
    _flip(path, list(range(0, 16)))


DAMAGES: dict[str, Callable[[Path, Path], object]] = {
    "deleted": lambda path, other: path.unlink(),
    "truncated to 0": lambda path, other: path.write_bytes(b""),
    "truncated to half": lambda path, other: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "replaced": lambda path, other: shutil.copy2(other, path),
    "corrupted": lambda path, other: _corrupt(path),
    "header corrupted": lambda path, other: _corrupt_header(path),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_file_is_refused_at_open_naming_it_and_nothing_is_written(
    registries: tuple[Path, Path], tmp_path: Path, name: str, damage: str
) -> None:
    template, other = registries
    root = tmp_path / "registry"
    shutil.copytree(template, root)
    DAMAGES[damage](root / name, other / name)
    before = _snapshot(root)

    for attempt in (Registry.open, Registry.create):
        with pytest.raises(RegistryStateError) as caught:
            attempt(root)
        error = caught.value
        assert error.code == "RegistryStateException"
        assert error.path == str(root / name), str(error)
        assert name in str(error) and "backup" in str(error)
        assert _snapshot(root) == before  # no new key, no new store, nothing touched

    if damage != "deleted":
        os.unlink(root / name)
    shutil.copy2(template / name, root / name)  # restored from backup: everything is back
    with Registry.open(root) as registry:
        for repository in REPOSITORIES:
            assert registry.repository(repository).read_layer(Digest.of(LAYER)) == LAYER


def test_a_lost_blob_folder_is_refused(registries: tuple[Path, Path], tmp_path: Path) -> None:
    root = tmp_path / "registry"
    shutil.copytree(registries[0], root)
    shutil.rmtree(root / BLOBS)
    before = _snapshot(root)
    with pytest.raises(RegistryStateError, match=r"blob folder .* is missing") as caught:
        Registry.open(root)
    assert caught.value.path == str(root / BLOBS)
    assert _snapshot(root) == before


def test_a_folder_that_is_not_a_registry_is_not_filled(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a registry")
    with pytest.raises(RegistryStateError, match="not empty and holds no registry manifest"):
        Registry.create(tmp_path)
    with pytest.raises(RegistryStateError, match=r"manifest .* is missing"):
        Registry.open(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_open_never_creates(tmp_path: Path) -> None:
    for root in (tmp_path / "missing", tmp_path):
        with pytest.raises(RegistryStateError, match="there is no registry at"):
            Registry.open(root)
    assert not (tmp_path / "missing").exists() and list(tmp_path.iterdir()) == []


def test_create_is_idempotent_and_concurrent_creators_agree(tmp_path: Path) -> None:
    import concurrent.futures

    root = tmp_path / "registry"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: Registry.create(root), range(4)))
    fingerprints = set()
    for registry in made:
        fingerprints.add(registry._core.service_key.fingerprint)
        registry.close()
    assert len(fingerprints) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry"]  # no staging folder left behind
    with Registry.create(root) as again:
        assert again._core.service_key.fingerprint in fingerprints
    with pytest.raises(ValueError, match="for account 111122223333, not 444455556666"):
        Registry.create(root, account="444455556666")


def test_files_and_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        root = tmp_path / "parent" / "registry"
        with Registry.create(root) as registry:
            registry.create_repository("umask/app")
            registry.repository("umask/app").push_layer(LAYER, digest=Digest.of(LAYER))
            paths = [root, *root.rglob("*")]  # while open: the -wal and -shm files too, and every blob
            assert any(p.name.endswith("-wal") for p in paths) and any(p.parent.name == "layers" for p in paths)
            for p in paths:
                assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p
        assert root.parent.stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(old)


def test_the_threat_model_examples_run() -> None:
    """docs/threat-model.md's Python runs as written (a document that lies is worse than none)."""
    import re

    doc = Path(__file__).resolve().parents[2] / "docs" / "threat-model.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)


def test_a_registry_on_an_outside_kms_keeps_no_kms_files_and_needs_its_kms(tmp_path: Path) -> None:
    from ecrcrypt.errors import ValidationError
    from ecrcrypt.kms.local.service import LocalKms

    outside = LocalKms()
    root = tmp_path / "registry"
    with Registry.open(root, kms=outside.client, create=True) as registry:  # open(create=True) is create
        registry.create_repository("outside/app", encryption_configuration={"encryptionType": "KMS"})
        registry.repository("outside/app").push_layer(LAYER, digest=Digest.of(LAYER))
    assert sorted(p.name for p in root.iterdir()) == [BLOBS, MANIFEST, REGISTRY_DB, SERVICE_KEY]
    with pytest.raises(ValidationError, match="created with an outside KMS: give kms="):
        Registry.open(root)
    with Registry.open(root, kms=outside.client) as registry:
        assert registry.repository("outside/app").read_layer(Digest.of(LAYER)) == LAYER
