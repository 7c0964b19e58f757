"""Grants over a repository's lifetime: quota, revocation, key state, audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ecrcrypt import build_manifest
from ecrcrypt.digest import Digest
from ecrcrypt.errors import (
    DigestMismatchError,
    EcrKmsError,
    GrantsNotRetiredError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
)
from ecrcrypt.kms import GrantConstraints, KmsQuotas
from ecrcrypt.kms.local.audit import AuditEvent
from tests.ecr.support import BOB, REGION, ROOT, Env, kms_config, layer, make_env

QUOTA = 500  # KMS's per-grantee-per-key quota (2017-2021), the seed's "500 repositories per CMK"


def _names(n: int) -> list[str]:
    return [f"r{i:04d}" for i in range(n)]


def test_five_hundred_repositories_per_key_then_a_slot_frees() -> None:
    env = make_env(quotas=KmsQuotas())
    assert KmsQuotas().grants_per_grantee_per_key == QUOTA
    key = env.customer_key()
    for name in _names(QUOTA):
        env.registry.create_repository(name, encryption_configuration=kms_config(key))
    assert len(env.all_grants(key)) == 2 * QUOTA
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository("one-too-many", encryption_configuration=kms_config(key))
    assert err.value.kms_error == "LimitExceededException"
    assert "500 repositories" in str(err.value)
    with pytest.raises(RepositoryNotFoundError):
        env.registry.repository("one-too-many")
    assert len(env.all_grants(key)) == 2 * QUOTA
    # Another key, and AES256, are unaffected.
    env.registry.create_repository("other-key", encryption_configuration=kms_config(env.customer_key()))
    env.registry.create_repository("aes")
    env.registry.delete_repository("r0007")
    env.registry.create_repository("one-too-many", encryption_configuration=kms_config(key))
    assert len(env.all_grants(key)) == 2 * QUOTA


def test_first_grant_made_second_refused_leaves_nothing() -> None:
    env = make_env(quotas=KmsQuotas(grants_per_grantee_per_key=3))
    key = env.customer_key()
    storage = env.registry.storage_principal
    # Someone else's grant to the storage principal uses one of its slots on this key.
    env.admin.create_grant(
        key_id=key,
        grantee_principal=storage,
        operations=["Decrypt"],
        constraints=GrantConstraints(encryption_context_subset={"other": "x"}),
    )
    env.registry.create_repository("a1", encryption_configuration=kms_config(key))
    env.registry.create_repository("a2", encryption_configuration=kms_config(key))
    before = {g.grant_id for g in env.all_grants(key)}
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository("a3", encryption_configuration=kms_config(key))
    assert err.value.kms_error == "LimitExceededException"
    assert {g.grant_id for g in env.all_grants(key)} == before
    assert [d.repository_name for d in env.registry.describe_repositories()] == ["a1", "a2"]


def test_aws_managed_key_has_no_grant_limit() -> None:
    env = make_env(quotas=KmsQuotas(grants_per_grantee_per_key=2))
    for name in _names(4):
        env.registry.create_repository(name, encryption_configuration={"encryptionType": "KMS"})
    assert len(env.registry.describe_repositories()) == 4


def _image_repo(env: Env, name: str, key: str) -> tuple[bytes, Digest]:
    env.registry.create_repository(name, encryption_configuration=kms_config(key))
    repo = env.registry.repository(name)
    data, digest = layer(2500, seed=len(name))
    pushed = repo.push_layer(data, digest=digest)
    repo.put_image(build_manifest([pushed]), tag="v1")
    return data, digest


def _grant_of(env: Env, name: str, grantee: str) -> str:
    repo = env.registry.repository(name)
    (g,) = [g for g in env.grants_for(repo.kms_key or "", str(repo.arn)) if g.grantee_principal == grantee]
    return str(g.grant_id)


@pytest.mark.parametrize("which", ["storage", "ecr"])
def test_revoking_either_grant_stops_image_push_and_pull_of_that_repository_only(which: str) -> None:
    env = make_env()
    key = env.customer_key()
    _, digest_a = _image_repo(env, "victim", key)
    data_b, digest_b = _image_repo(env, "bystander", key)
    grantee = env.registry.storage_principal if which == "storage" else env.registry.ecr_principal
    env.admin.revoke_grant(key_id=key, grant_id=_grant_of(env, "victim", grantee))

    victim = env.registry.repository("victim")
    new, new_digest = layer(700, seed=42)

    def pull_image() -> None:
        img = victim.get_image(tag="v1")
        for d in img.layer_digests:
            victim.read_layer(d)

    def push_image() -> None:
        pushed = victim.push_layer(new, digest=new_digest)
        victim.put_image(build_manifest([pushed]), tag="v2")

    for op in (pull_image, push_image):
        with pytest.raises(EcrKmsError) as err:
            op()
        assert err.value.kms_error == "AccessDeniedException"
        assert "revoked or retired" in str(err.value)
    # Every object operation needs both grants, layers included (tests/test_ecr_revocation.py has the full matrix).
    with pytest.raises(EcrKmsError):
        victim.read_layer_range(digest_a, 0, 10)
    with pytest.raises(EcrKmsError):
        victim.start_upload()
    with pytest.raises(EcrKmsError):
        victim.push_layer(new, digest=new_digest)

    bystander = env.registry.repository("bystander")
    assert bystander.read_layer(digest_b) == data_b
    assert bystander.get_image(tag="v1").layer_digests == (digest_b,)
    pushed = bystander.push_layer(new, digest=new_digest)
    bystander.put_image(build_manifest([pushed]), tag="v2")
    # Deleting the victim: the revoked grant cannot be retired ("the grant was already removed"),
    # so ECR's failed-retirement message comes back; the other grant is retired, the repository gone.
    with pytest.raises(GrantsNotRetiredError) as err:
        env.registry.delete_repository("victim", force=True)
    assert err.value.kms_error == "NotFoundException"
    assert env.grants_for(key, str(victim.arn)) == []
    assert [d.repository_name for d in env.registry.describe_repositories()] == ["bystander"]


def test_disabled_key_stops_all_its_repositories_until_reenabled() -> None:
    env = make_env()
    key = env.customer_key()
    other = env.customer_key()
    data1, d1 = _image_repo(env, "one", key)
    _, d2 = _image_repo(env, "two", key)
    data3, d3 = _image_repo(env, "elsewhere", other)
    env.admin.disable_key(key_id=key)
    for name, d in (("one", d1), ("two", d2)):
        with pytest.raises(EcrKmsError) as err:
            env.registry.repository(name).read_layer(d)
        assert err.value.kms_error == "DisabledException"
        assert "disabled" in str(err.value)
        with pytest.raises(EcrKmsError):
            env.registry.repository(name).get_image(tag="v1")
    with pytest.raises(EcrKmsError):
        env.registry.repository("one").push_layer(b"x", digest=layer(1)[1])
    assert env.registry.repository("elsewhere").read_layer(d3) == data3
    env.admin.enable_key(key_id=key)
    assert env.registry.repository("one").read_layer(d1) == data1
    assert env.registry.repository("two").get_image(tag="v1").layer_digests == (d2,)


def test_pending_deletion_then_cancel() -> None:
    env = make_env()
    key = env.customer_key()
    data, d = _image_repo(env, "one", key)
    env.admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    with pytest.raises(EcrKmsError) as err:
        env.registry.repository("one").read_layer(d)
    assert err.value.kms_error == "KMSInvalidStateException"
    assert "pending deletion" in str(err.value)
    env.admin.cancel_key_deletion(key_id=key)
    env.admin.enable_key(key_id=key)  # KMS: CancelKeyDeletion leaves the key Disabled
    assert env.registry.repository("one").read_layer(d) == data


def test_deleted_key_says_data_is_unrecoverable() -> None:
    from ecrcrypt.kms.local.service import ManualClock

    clock = ManualClock()
    env = make_env(clock=clock)
    key = env.customer_key()
    _, d = _image_repo(env, "one", key)
    env.admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    clock.advance(days=8)
    with pytest.raises(EcrKmsError) as err:
        env.registry.repository("one").read_layer(d)
    assert err.value.kms_error == "NotFoundException"
    assert "unrecoverable" in str(err.value)
    # Deleting the repository: grants died with the key, so retirement fails and ECR says so.
    with pytest.raises(GrantsNotRetiredError):
        env.registry.delete_repository("one", force=True)
    assert env.registry.describe_repositories() == []


def _params(event: AuditEvent) -> Mapping[str, Any]:
    """The event's requestParameters (every ECR event has them)."""
    assert event.request_parameters is not None
    return event.request_parameters


def test_audit_answers_who_pulled_what() -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("app", encryption_configuration=kms_config(key))
    repo = env.registry.repository("app")
    data, digest = layer(1500)
    pushed = repo.push_layer(data, digest=digest)
    image = repo.put_image(build_manifest([pushed]), tag="v1")
    bob_repo = env.registry.as_caller(BOB).repository("app")
    bob_repo.get_image(tag="v1")
    bob_repo.read_layer(digest)
    with pytest.raises(DigestMismatchError):
        repo.push_layer(b"other", digest=digest.__class__.of(b"different"))

    pulls = env.local.audit.query(event_source="ecr.amazonaws.com", event_name="BatchGetImage", resource=str(repo.arn))
    assert [(e.principal, _params(e)["imageDigest"]) for e in pulls] == [(BOB, str(image.digest))]
    assert _params(pulls[0])["repositoryName"] == "app"
    layer_pulls = env.local.audit.query(event_name="GetDownloadUrlForLayer", resource=str(repo.arn))
    assert [e.principal for e in layer_pulls] == [BOB]
    pushes = env.local.audit.query(event_name="PutImage", resource=str(repo.arn))
    assert [e.principal for e in pushes] == [ROOT]
    # The KMS calls made on the repository's behalf carry its ARN in the encryption context.
    decrypts = env.local.audit.query(event_name="Decrypt", context={"aws:ecr:arn": str(repo.arn)})
    assert {e.principal for e in decrypts} == {env.registry.ecr_principal, env.registry.storage_principal}
    assert all(e.aws_region == REGION for e in pulls)
    # Failed calls are recorded too, with their error code (CloudTrail records failed API calls).
    failed = env.local.audit.query(event_name="CompleteLayerUpload", resource=str(repo.arn), errors=True)
    assert [(e.principal, e.error_code) for e in failed] == [(ROOT, "InvalidLayerException")]


def test_repository_lifecycle_events() -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("app", encryption_configuration=kms_config(key))
    with pytest.raises(RepositoryAlreadyExistsError):
        env.registry.create_repository("app")
    env.registry.as_caller(BOB).delete_repository("app")
    events = env.local.audit.query(event_source="ecr.amazonaws.com")
    assert [(e.event_name, e.principal, e.error_code) for e in events] == [
        ("CreateRepository", ROOT, None),
        ("CreateRepository", ROOT, "RepositoryAlreadyExistsException"),
        ("DeleteRepository", BOB, None),
    ]
    assert _params(events[0])["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key}
    # The KMS side of the same story: DescribeKey, two CreateGrant by the creator, two RetireGrant by Bob.
    kms_events = env.local.audit.query(event_source="kms.amazonaws.com", key_arn=key)
    names = [(e.event_name, e.principal) for e in kms_events if e.event_name in ("CreateGrant", "RetireGrant")]
    assert names == [("CreateGrant", ROOT)] * 2 + [("RetireGrant", BOB)] * 2


def _undo_env(denied: set[str]) -> tuple[Any, Any, str]:
    """A key whose storage grantee has used its only grant slot, so that CreateRepository's
    second CreateGrant fails; the principals in ``denied`` may neither retire nor revoke."""

    def factory(local: Any) -> Any:
        def client(principal: str) -> Any:
            if principal in denied:
                return local.client(principal, deny=("kms:RetireGrant", "kms:RevokeGrant"))
            return local.client(principal)

        return client

    env = make_env(quotas=KmsQuotas(grants_per_grantee_per_key=1), factory=factory)
    admin = env.local.client(ROOT)
    key = env.customer_key()
    admin.create_grant(key_id=key, grantee_principal=f"s3.{REGION}.amazonaws.com", operations=["Decrypt"])
    return admin, env.registry, key


def test_undo_retires_through_the_ecr_principal_when_the_caller_may_not() -> None:
    admin, registry, key = _undo_env({ROOT})
    before = [g.grant_id for g in admin.list_grants(key_id=key).grants]
    with pytest.raises(EcrKmsError) as err:
        registry.create_repository("x/y", encryption_configuration=kms_config(key))
    assert err.value.kms_error == "LimitExceededException"
    assert not getattr(err.value, "__notes__", [])
    assert [g.grant_id for g in admin.list_grants(key_id=key).grants] == before
    with pytest.raises(RepositoryNotFoundError):
        registry.repository("x/y")


def test_an_undo_failure_never_masks_the_create_grant_failure_and_names_the_grants_left() -> None:
    admin, registry, key = _undo_env({ROOT, f"ecr.{REGION}.amazonaws.com"})
    before = {g.grant_id for g in admin.list_grants(key_id=key).grants}
    with pytest.raises(EcrKmsError) as err:
        registry.create_repository("x/y", encryption_configuration=kms_config(key))
    assert err.value.kms_error == "LimitExceededException"  # the CreateGrant failure, not the undo's
    assert "grant quota" in str(err.value)
    leaked = {g.grant_id for g in admin.list_grants(key_id=key).grants} - before
    assert len(leaked) == 1
    (note,) = err.value.__notes__
    assert leaked.pop() in note and key in note
