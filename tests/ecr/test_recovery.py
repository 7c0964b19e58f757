"""Registry.recover(): interrupted creations undone, deletions finished, orphan grants retired,
the report; uid binding keeps an orphan grant from authorizing a repository of the same name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.lifecycle import find_repository_grants, grant_constraints, planned_grants
from ecrcrypt.ecr.metadata import RepositoryIntent, now
from ecrcrypt.ecr.registry import ECR_GRANT_OPERATIONS, STORAGE_GRANT_OPERATIONS, Registry
from ecrcrypt.errors import EcrKmsError, RepositoryAlreadyExistsError
from ecrcrypt.kms import GrantConstraints, Kms
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.store.memory import MemoryBlobStore
from ecrcrypt.store.s3 import S3BlobStore
from tests.ecr.support import ROOT, Env, kms_config, layer, make_env
from tests.moto_server import ACCOUNT, REGION

DEAD = "elsewhere|boot|pid:[1]|1|1"  # a process on another host, its intent long past the grace period


def _half_created(registry: Registry, kms: Kms, name: str, key_arn: str, *, grants: int) -> RepositoryIntent:
    """What a process killed inside create_repository leaves: the intent, and ``grants`` grants made."""
    core = registry._core
    uid = "0123456789abcdef0123456789abcdef"
    intent = RepositoryIntent(
        operation="create",
        uid=uid,
        name=name,
        encryption_type="KMS",
        kms_key=key_arn,
        grants=planned_grants(core, uid),
        owner=DEAD,
        started_at=0.0,
    )
    assert core.metadata.begin_create(intent) is None
    ops = {"ecr": ECR_GRANT_OPERATIONS, "storage": STORAGE_GRANT_OPERATIONS}
    for planned in intent.grants[:grants]:
        kms.create_grant(
            key_id=key_arn,
            grantee_principal=planned.grantee,
            operations=ops[planned.role],
            retiring_principal=core.ecr_principal,
            constraints=grant_constraints(core.repository_arn(name), uid),
            name=planned.name,
        )
    return intent


@pytest.mark.parametrize("grants", [0, 1, 2])
def test_interrupted_creation_is_undone_and_reported(grants: int) -> None:
    env = make_env()
    key = env.customer_key()
    intent = _half_created(env.registry, env.admin, "team/app", key, grants=grants)
    other = attrs.evolve(intent, uid="f" * 32, owner="x", started_at=now())
    held = env.registry._core.metadata.begin_create(other)  # the name is held by the intent
    assert isinstance(held, RepositoryIntent) and held.uid == intent.uid
    report = env.registry.recover()
    assert report.creations_undone == ("team/app",) and len(report.grants_retired) == grants
    assert report.clean and env.all_grants(key) == []
    assert env.registry.describe_repositories() == []
    assert env.registry.recover() == type(report)()  # idempotent: nothing left to do


def test_create_over_an_abandoned_creation_of_the_same_name_undoes_it_first() -> None:
    env = make_env()
    key = env.customer_key()
    _half_created(env.registry, env.admin, "team/app", key, grants=2)
    desc = env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    assert len(env.all_grants(key)) == 2 == len(env.grants_for(key, desc.repository_arn))
    assert env.registry.recover().clean


def test_a_live_creation_holds_its_name_and_recovery_leaves_it_alone() -> None:
    env = make_env()
    key = env.customer_key()
    intent = _half_created(env.registry, env.admin, "team/app", key, grants=1)
    md = env.registry._core.metadata
    assert md.claim_intent(intent.uid, DEAD, "elsewhere|boot|pid:[1]|1|2")
    md._db.execute("UPDATE repository_intents SET started_at = ?", (now(),))  # type: ignore[attr-defined]  # another host, just now
    with pytest.raises(RepositoryAlreadyExistsError, match="in progress"):
        env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    report = env.registry.recover()
    assert report.in_progress == ("team/app",) and not report.clean and len(env.all_grants(key)) == 1


def test_interrupted_deletion_is_finished() -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    repo = env.registry.repository("team/app")
    data, digest = layer(5000)
    repo.push_layer(data, digest=digest)
    core = env.registry._core
    rec = core.metadata.get_repository("team/app")
    assert rec is not None
    intent = RepositoryIntent.deleting(rec, owner=DEAD, started_at=0.0)
    assert core.metadata.begin_delete(rec, intent)  # killed right after the row went
    report = env.registry.recover()
    assert report.deletions_finished == ("team/app",) and len(report.grants_retired) == 2
    assert env.all_grants(key) == [] and list(env.store.list()) == []


def test_an_orphan_grant_of_an_earlier_repository_never_authorizes_a_new_one_of_its_name() -> None:
    """The hole of issue 10. The grants of a repository whose row vanished (a crash of the old code)
    stay on the key: here no principal of the registry may retire or revoke them. The new
    repository's uid is in its grants' constraint and in its contexts, so revoking its own two grants
    stops it although the old grants, constrained to the same ARN, remain."""
    env = make_env(factory=lambda local: lambda p: local.client(p, deny=("kms:RetireGrant", "kms:RevokeGrant")))
    key = env.customer_key()
    env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    old = env.registry.repository("team/app")
    data, digest = layer(3000)
    old.push_layer(data, digest=digest)
    db = env.registry._core.metadata._db  # type: ignore[attr-defined]  # the old code's delete, killed before RetireGrant:
    db.execute("DELETE FROM repositories WHERE name = 'team/app'")
    db.execute("DELETE FROM objects WHERE repository = 'team/app'")
    env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    assert len(env.all_grants(key)) == 4 and len(env.registry.list_repository_grants("team/app")) == 4
    repo = env.registry.repository("team/app")
    repo.push_layer(data, digest=digest)
    assert repo.read_layer(digest) == data
    for grant_id in repo.grant_ids:
        env.admin.revoke_grant(key_id=key, grant_id=grant_id)
    with pytest.raises(EcrKmsError, match="revoked or retired"):
        repo.read_layer(digest)
    with pytest.raises(EcrKmsError):
        repo.read_layer_range(digest, 10, 100)
    other, other_digest = layer(100, seed=9)
    with pytest.raises(EcrKmsError):
        repo.push_layer(other, digest=other_digest)
    with pytest.raises(EcrKmsError), repo.start_upload() as up:
        up.write(other)
        up.complete(other_digest)


def _legacy_orphans(env: Env, key: str, name: str) -> list[str]:
    """Grants as the code before uids left them: constrained to the repository ARN alone, retirable by ECR."""
    arn = str(env.registry._core.repository_arn(name))
    legacy = GrantConstraints(encryption_context_subset={"aws:ecr:arn": arn})
    return [
        env.admin.create_grant(
            key_id=key,
            grantee_principal=grantee,
            retiring_principal=env.registry.ecr_principal,
            operations=ops,
            constraints=legacy,
        ).grant_id
        for grantee, ops in (
            (env.registry.ecr_principal, ECR_GRANT_OPERATIONS),
            (env.registry.storage_principal, STORAGE_GRANT_OPERATIONS),
        )
    ]


@pytest.mark.parametrize("deny", [("kms:ListRetirableGrants",), ("kms:RetireGrant", "kms:RevokeGrant")])
def test_creation_fails_closed_when_legacy_orphans_cannot_be_ruled_out(deny: tuple[str, ...]) -> None:
    """A grant constrained to the ARN alone would authorize the new repository: if it cannot be
    listed or retired, no repository is created."""
    env = make_env(factory=lambda local: lambda p: local.client(p, deny=deny))
    key = env.customer_key()
    orphans = _legacy_orphans(env, key, "team/app")
    with pytest.raises(EcrKmsError, match="cannot create repository 'team/app'"):
        env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    assert env.registry.describe_repositories() == []
    assert {g.grant_id for g in env.all_grants(key)} == set(orphans)
    assert env.registry._core.metadata.list_intents() == []


def test_creation_retires_leftover_grants_of_its_name_and_recovery_sweeps_orphans() -> None:
    env = make_env()
    key = env.customer_key()
    made = _legacy_orphans(env, key, "team/app")
    env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    ids = {g.grant_id for g in env.all_grants(key)}
    assert not ids & set(made) and len(ids) == 2
    gone = _legacy_orphans(env, key, "team/gone")  # a repository this registry no longer has
    report = env.registry.recover()
    assert sorted(report.grants_retired) == sorted(gone)
    assert {g.grant_id for g in env.all_grants(key)} == ids


@pytest.mark.moto
def test_recovery_over_boto3_kms_finds_grants_by_name_and_constraint(
    kms_client: Any, s3_client: Any, s3_bucket: str
) -> None:
    """On AWS (moto server): the same recovery through ListGrants and the grant names."""
    kms = Boto3Kms(client=kms_client)
    registry = Registry(
        kms=lambda principal: kms,
        store=S3BlobStore(s3_client, s3_bucket, prefix="registry"),
        account=ACCOUNT,
        region=REGION,
        caller=f"arn:aws:iam::{ACCOUNT}:root",
        frame_length=4096,
    )
    key = kms.create_key(description="recovery").arn
    intent = _half_created(registry, kms, "moto/app", key, grants=2)
    assert len(find_repository_grants(kms, key, registry._core.repository_arn("moto/app"))) == 2
    report = registry.recover()
    assert report.creations_undone == ("moto/app",) and len(report.grants_retired) == 2, report
    assert find_repository_grants(kms, key, registry._core.repository_arn("moto/app")) == []
    assert registry._core.metadata.list_intents() == [] and intent.uid not in str(report.errors)

    arn = str(registry._core.repository_arn("moto/app"))
    legacy = kms.create_grant(  # as older versions left them: constrained to the ARN alone
        key_id=key,
        grantee_principal=registry.ecr_principal,
        retiring_principal=registry.ecr_principal,
        operations=ECR_GRANT_OPERATIONS,
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": arn}),
    ).grant_id
    desc = registry.create_repository("moto/app", encryption_configuration={"encryptionType": "KMS", "kmsKey": key})
    assert legacy not in {g.grant_id for g in find_repository_grants(kms, key, arn)}  # retired before creating
    repo = registry.repository("moto/app")
    data = bytes(range(256)) * 40
    repo.push_layer(data, digest=Digest.of(data))
    rec = registry._core.metadata.get_repository("moto/app")
    assert rec is not None
    killed = RepositoryIntent.deleting(rec, owner=DEAD, started_at=0.0)
    assert registry._core.metadata.begin_delete(rec, killed)
    report = registry.recover()
    assert report.deletions_finished == ("moto/app",) and len(report.grants_retired) == 2, report
    assert find_repository_grants(kms, key, desc.repository_arn) == [] and list(registry.store.list()) == []


def test_recover_and_collect_garbage_on_an_empty_registry_do_nothing() -> None:
    registry = make_env(store=MemoryBlobStore()).registry
    assert registry.recover().clean and registry.collect_garbage().deleted == ()
    assert ROOT in registry.caller


class _FlakyStore(MemoryBlobStore):
    """A store whose deletes fail while ``failing`` is set (an outage mid-deletion)."""

    failing = False

    def delete(self, key: str) -> None:
        if self.failing:
            raise OSError("store unavailable")
        super().delete(key)


def test_a_deletion_that_fails_midway_is_finished_by_the_next_recovery_in_the_same_process() -> None:
    store = _FlakyStore()
    env = make_env(store=store)
    key = env.customer_key()
    env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    data, digest = layer(2000)
    env.registry.repository("team/app").push_layer(data, digest=digest)
    store.failing = True
    with pytest.raises(OSError, match="unavailable"):
        env.registry.delete_repository("team/app", force=True)
    assert env.registry.describe_repositories() == []  # gone for every caller from the first step on
    store.failing = False
    report = env.registry.recover()  # abandoned, not "in progress": taken up at once
    assert report.deletions_finished == ("team/app",) and len(report.grants_retired) == 2
    assert env.all_grants(key) == [] and list(store.list()) == [] and report.clean


def test_garbage_of_unknown_repositories_is_taken_only_when_asked() -> None:
    """Blobs under a uid this registry never knew may be another registry's (same account, other
    Region, one store): kept by default, collected with ``unknown_repositories=True``."""
    env = make_env()
    stranger = f"{env.registry.account}/{'e' * 32}/layers/sha256:{'0' * 64}.x"
    with env.store.open_write(stranger) as w:
        w.write(b"z")
        w.commit()
    assert env.registry.recover().garbage.deleted == () and env.store.exists(stranger)
    assert env.registry.collect_garbage(unknown_repositories=True).deleted == (stranger,)
    assert list(env.store.list()) == []


def test_opening_a_database_restored_from_an_older_backup_deletes_no_blob(tmp_path: Path) -> None:
    """Recovery at open deletes only what durable intents name: the blobs of pushes made after
    the backup stay in the store, and an explicit collection is what takes them."""
    root = tmp_path / "registry"
    first, first_digest = layer(3000, seed=1)
    later, later_digest = layer(3000, seed=2)
    with Registry.create(root) as registry:
        registry.create_repository("app")
        registry.repository("app").push_layer(first, digest=first_digest)
    shutil.copy2(root / "registry.sqlite3", tmp_path / "backup.sqlite3")
    with Registry.create(root) as registry:
        registry.repository("app").push_layer(later, digest=later_digest)
    blobs = sorted(p.name for p in (root / "blobs").rglob("*") if p.is_file())
    assert len(blobs) == 2
    shutil.copy2(tmp_path / "backup.sqlite3", root / "registry.sqlite3")
    with Registry.open(root) as registry:
        assert registry.recover().garbage.deleted == ()
        assert sorted(p.name for p in (root / "blobs").rglob("*") if p.is_file()) == blobs
        assert registry.repository("app").read_layer(first_digest) == first
        report = registry.collect_garbage()  # the deliberate sweep takes what the records do not name
        assert len(report.deleted) == 1
