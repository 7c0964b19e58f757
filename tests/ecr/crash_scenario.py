"""The work the crash tests kill, and the invariants they check after each kill (no tests here).

``run_scenario`` drives a registry directory through every multi-step operation: create
(KMS), header-first and body-first pushes, a racing re-push, an image, a migration with
deletion of the source, re-creation of the deleted name, and deletion of a repository that
existed before. It reports each acknowledged step through ``ack`` *after* the call returned,
so whatever was acknowledged must survive any kill that comes later.

``check_after_crash`` reopens the directory (which runs recovery) and asserts the issue's
invariants. Run as ``python -m tests.ecr.crash_scenario ROOT`` it runs the scenario in a fresh
interpreter, printing the acknowledgements (the timer-based crash test kills that process).

A directory whose metadata is in PostgreSQL (``make_template(..., metadata=url)``) carries the
URL of its database in a file ``metadata-url`` beside the registry, so every process finds it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from ecrcrypt import build_manifest
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.lifecycle import constrained_arn, list_key_grants
from ecrcrypt.ecr.metadata import RepositoryRecord
from ecrcrypt.ecr.migration import migrate
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.errors import EcrKmsError

ROOT_PRINCIPAL = "arn:aws:iam::111122223333:root"
KEY_ALIAS = "alias/crash"
FRAME = 4096
APP, DST, KEEP = "crash/app", "crash/dst", "crash/keep"
METADATA_URL = "metadata-url"  # the file naming the directory's outside metadata, if it has one


def metadata_of(root: Path) -> str | None:
    """The URL of ``root``'s outside metadata (``None``: its own registry.sqlite3)."""
    where = root / METADATA_URL
    return where.read_text() if where.exists() else None


def open_registry(root: Path) -> Registry:
    return Registry.open(root, frame_length=FRAME, metadata=metadata_of(root))


def content(seed: int, size: int) -> bytes:
    """Deterministic layer bytes: the parent regenerates what the child pushed from the seed."""
    block = bytes((i * 131 + seed * 17) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


LAYERS = {1: 30_000, 2: 50_000, 3: 9_000, 9: 20_000}
CONTENT = {seed: content(seed, size) for seed, size in LAYERS.items()}
DIGESTS = {seed: Digest.of(data) for seed, data in CONTENT.items()}
BY_DIGEST = {str(d): CONTENT[s] for s, d in DIGESTS.items()}


def make_template(root: Path, *, encryption: str, metadata: str | None = None) -> None:
    """A registry directory with a KMS key (``alias/crash``) and one repository holding a layer."""
    with Registry.create(root, frame_length=FRAME, metadata=metadata) as reg:
        kms = reg.kms()
        key = kms.create_key(description="crash tests")
        kms.create_alias(alias_name=KEY_ALIAS, target_key_id=key.key_id)
        reg.create_repository(KEEP, encryption_configuration={"encryptionType": encryption, "kmsKey": KEY_ALIAS})
        reg.repository(KEEP).push_layer(CONTENT[9], digest=DIGESTS[9])
        (root / "encryption").write_text(encryption)
    if metadata is not None:
        (root / METADATA_URL).write_text(metadata)


def _uid(reg: Registry, name: str) -> str:
    rec = reg._core.metadata.get_repository(name)
    assert rec is not None
    return rec.uid


def run_scenario(root: Path, ack: Callable[[str], None]) -> None:
    encryption = (root / "encryption").read_text()
    config = {"encryptionType": encryption, "kmsKey": KEY_ALIAS}
    with open_registry(root) as reg:
        reg.create_repository(APP, encryption_configuration=config)
        app_uid = _uid(reg, APP)
        ack(f"created {APP} {app_uid}")
        repo = reg.repository(APP)
        repo.push_layer(CONTENT[1], digest=DIGESTS[1])
        ack(f"push {APP} {app_uid} {DIGESTS[1]}")
        with repo.start_upload() as up:
            data = CONTENT[2]
            for i in range(0, len(data), 16_000):
                up.write(data[i : i + 16_000])
            pushed = up.complete(DIGESTS[2])
        ack(f"push {APP} {app_uid} {DIGESTS[2]}")
        repo.push_layer(CONTENT[1], digest=DIGESTS[1])  # already there: nothing written
        repo.put_image(build_manifest([repo_layer(repo, 1), pushed]), tag="v1")
        reg.create_repository(DST, encryption_configuration={"encryptionType": "AES256"})
        dst_uid = _uid(reg, DST)
        ack(f"created {DST} {dst_uid}")
        ack(f"deleting {APP} {app_uid}")
        migrate(repo, reg.repository(DST), delete_source=True)
        ack(f"deleted {APP} {app_uid}")
        for seed in (1, 2):
            ack(f"push {DST} {dst_uid} {DIGESTS[seed]}")
        reg.create_repository(APP, encryption_configuration=config)
        again = _uid(reg, APP)
        ack(f"created {APP} {again}")
        reg.repository(APP).push_layer(CONTENT[3], digest=DIGESTS[3])
        ack(f"push {APP} {again} {DIGESTS[3]}")
        keep_uid = _uid(reg, KEEP)
        ack(f"deleting {KEEP} {keep_uid}")
        reg.delete_repository(KEEP, force=True)
        ack(f"deleted {KEEP} {keep_uid}")


def repo_layer(repo: Any, seed: int) -> Any:
    return repo.push_layer(CONTENT[seed], digest=DIGESTS[seed])


@attrs.define
class Acks:
    """What the child acknowledged, parsed from its ``ack`` lines."""

    created: set[tuple[str, str]] = attrs.Factory(set)
    deleting: set[tuple[str, str]] = attrs.Factory(set)
    deleted: set[tuple[str, str]] = attrs.Factory(set)
    pushes: set[tuple[str, str, str]] = attrs.Factory(set)

    @classmethod
    def parse(cls, text: str) -> Acks:
        acks = cls()
        for line in text.splitlines():
            word, *rest = line.split()
            if word == "push":
                acks.pushes.add((rest[0], rest[1], rest[2]))
            else:
                getattr(acks, word).add((rest[0], rest[1]))
        return acks


def check_after_crash(root: Path, acks: Acks) -> None:
    """Reopen (recovery runs) and assert every invariant of issue 10's crash suite."""
    with open_registry(root) as reg:
        md = reg._core.metadata
        records = {r.name: r for r in md.list_repositories()}
        # Nothing half done remains: recovery finished or undid every intent of the dead child.
        assert md.list_intents() == []
        assert md.snapshot().blob_intents == ()
        again = reg.recover()
        assert again.creations_undone == again.deletions_finished == again.grants_retired == ()
        assert again.garbage.deleted == () and again.clean, again

        # Acknowledged creations and pushes are there (unless a deletion of them had begun).
        for name, uid in acks.created - acks.deleting:
            assert records[name].uid == uid, (name, uid)
        for name, uid, digest in acks.pushes:
            rec = records.get(name)
            if rec is None or rec.uid != uid:
                assert (name, uid) in acks.deleting, (name, uid, digest)
                continue
            assert reg.repository(name).read_layer(digest) == BY_DIGEST[digest]
        for name, uid in acks.deleted:
            assert records.get(name) is None or records[name].uid != uid

        # Every record's object decrypts and verifies; every blob belongs to a record (no partial
        # object is visible, no blob is left without an owner).
        referenced: set[str] = set()
        for rec in records.values():
            repo = reg.repository(rec.name)
            for kind in ("layer", "manifest"):
                for obj in md.list_objects(rec.name, kind):
                    referenced.add(obj.blob_key)
            for layer_digest in repo.list_layers():
                assert repo.read_layer(layer_digest) == BY_DIGEST[str(layer_digest)]
            for image in repo.list_images():
                repo.get_image(digest=image.digest)
        assert set(reg.store.list()) == referenced

        check_grants(reg, records)
        check_recreated_is_stopped_by_its_own_grants(reg)


def check_grants(reg: Registry, records: dict[str, RepositoryRecord]) -> None:
    """No orphan grant, and no repository without its grants."""
    key_arn = reg.kms().describe_key(key_id=KEY_ALIAS).arn
    grants = list_key_grants(reg.kms(), key_arn)
    by_id = {g.grant_id: g for g in grants}
    owned = {g.grant_id for r in records.values() for g in r.grants}
    for g in grants:
        if constrained_arn(g) is not None:
            assert g.grant_id in owned, f"orphan grant {g.grant_id} constrained to {constrained_arn(g)}"
    for rec in records.values():
        if rec.kms_key is not None:
            assert len(rec.grants) == 2
            for held in rec.grants:
                assert held.grant_id in by_id, f"repository {rec.name} lacks its grant {held.grant_id}"


def check_recreated_is_stopped_by_its_own_grants(reg: Registry) -> None:
    """A repository created now under the scenario's name is stopped by revoking its own two grants."""
    if reg._core.metadata.get_repository(APP) is not None:
        reg.delete_repository(APP, force=True)
    reg.create_repository(APP, encryption_configuration={"encryptionType": "KMS", "kmsKey": KEY_ALIAS})
    repo = reg.repository(APP)
    repo.push_layer(CONTENT[3], digest=DIGESTS[3])
    assert len(reg.list_repository_grants(APP)) == 2
    kms = reg.kms()
    assert repo.kms_key is not None
    for grant_id in repo.grant_ids:
        kms.revoke_grant(key_id=repo.kms_key, grant_id=grant_id)
    with pytest.raises(EcrKmsError):
        repo.push_layer(CONTENT[1], digest=DIGESTS[1])
    with pytest.raises(EcrKmsError):
        repo.read_layer(DIGESTS[3])
    with pytest.raises(EcrKmsError):
        repo.read_layer_range(DIGESTS[3], 0, 10)


def copy_template(template: Path, target: Path, *, metadata: str | None = None) -> Path:
    """A copy of the template directory; ``metadata``: the URL of its copied outside metadata."""
    shutil.copytree(template, target)
    if metadata is not None:
        (target / METADATA_URL).write_text(metadata)
    return target


if __name__ == "__main__":
    run_scenario(Path(sys.argv[1]), lambda line: print(line, flush=True))
    print("done", flush=True)
