"""CreateRepository / DescribeRepositories / DeleteRepository, key resolution and grants."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from ecrcrypt import LayerPush, build_manifest
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.ecr.registry import AWS_MANAGED_ECR_ALIAS
from ecrcrypt.errors import (
    EcrKmsError,
    GrantsNotRetiredError,
    ImageNotFoundError,
    InvalidParameterError,
    RepositoryAlreadyExistsError,
    RepositoryNotEmptyError,
    RepositoryNotFoundError,
)
from ecrcrypt.kms import GrantOperation
from tests.ecr.support import ACCOUNT, BOB, OTHER_REGION, REGION, ROOT, Env, kms_config, layer, make_env


def test_create_describe_delete_aes256() -> None:
    env = make_env()
    desc = env.registry.create_repository("team/app")
    assert desc.repository_arn == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/app"
    assert desc.repository_uri == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/team/app"
    assert desc.registry_id == ACCOUNT
    assert desc.encryption_configuration == EncryptionConfiguration()
    assert desc.to_api()["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert [d.repository_name for d in env.registry.describe_repositories()] == ["team/app"]
    assert env.registry.describe_repositories(["team/app"]) == [desc]
    assert env.registry.delete_repository("team/app") == desc
    assert env.registry.describe_repositories() == []
    with pytest.raises(RepositoryNotFoundError):
        env.registry.describe_repositories(["team/app"])


@pytest.mark.parametrize("name", ["A", "a", "-ab", "ab-", "a..b", "a//b", "a_.b", "x" * 257, "a b"])
def test_invalid_names_are_invalid_parameter(name: str) -> None:
    env = make_env()
    with pytest.raises(InvalidParameterError):
        env.registry.create_repository(name)
    assert env.registry.describe_repositories() == []


def test_duplicate_and_missing() -> None:
    env = make_env()
    env.registry.create_repository("app")
    with pytest.raises(RepositoryAlreadyExistsError):
        env.registry.create_repository("app", encryption_configuration=kms_config())
    with pytest.raises(RepositoryNotFoundError):
        env.registry.delete_repository("nope")
    with pytest.raises(RepositoryNotFoundError):
        env.registry.repository("nope")
    with pytest.raises(InvalidParameterError):
        env.registry.describe_repositories([])


def test_aes256_with_key_is_invalid_parameter() -> None:
    env = make_env()
    key = env.customer_key()
    with pytest.raises(InvalidParameterError):
        env.registry.create_repository("app", encryption_configuration={"encryptionType": "AES256", "kmsKey": key})
    with pytest.raises(InvalidParameterError):
        env.registry.create_repository("app", encryption_configuration={"encryptionType": "FOO"})
    assert env.registry.describe_repositories() == []


def test_configuration_is_immutable() -> None:
    env = make_env()
    desc = env.registry.create_repository("app")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        desc.encryption_configuration = kms_config()  # type: ignore[misc]
    repo = env.registry.repository("app")
    assert not hasattr(repo, "set_encryption_configuration")
    with pytest.raises(AttributeError):
        repo.encryption_type = EncryptionType.KMS  # type: ignore[misc]


@pytest.mark.parametrize("form", ["key_id", "key_arn", "alias_name", "alias_arn"])
def test_key_forms_resolve_to_key_arn(form: str) -> None:
    env = make_env()
    arn = env.customer_key(alias="alias/team")
    ref = {
        "key_id": arn.rsplit("/", 1)[1],
        "key_arn": arn,
        "alias_name": "alias/team",
        "alias_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/team",
    }[form]
    desc = env.registry.create_repository("app", encryption_configuration=kms_config(ref))
    assert desc.encryption_configuration.to_api() == {"encryptionType": "KMS", "kmsKey": arn}


def test_default_key_is_aws_managed_alias() -> None:
    env = make_env()
    desc = env.registry.create_repository("app", encryption_configuration={"encryptionType": "KMS"})
    meta = env.admin.describe_key(key_id=AWS_MANAGED_ECR_ALIAS)
    assert desc.encryption_configuration.to_api() == {"encryptionType": "KMS", "kmsKey": meta.arn}
    assert meta.key_manager.value == "AWS"


def test_two_grants_constrained_to_the_repository() -> None:
    env = make_env()
    key = env.customer_key()
    desc = env.registry.create_repository("app", encryption_configuration=kms_config(key))
    grants = env.grants_for(key, desc.repository_arn)
    assert len(grants) == 2 == len(env.all_grants(key))
    by_grantee = {g.grantee_principal: g for g in grants}
    assert set(by_grantee) == {f"ecr.{REGION}.amazonaws.com", f"s3.{REGION}.amazonaws.com"}
    uid = env.registry._core.metadata.get_repository("app").uid  # type: ignore[union-attr]
    for g in grants:
        # ECR's constraint, plus the repository's uid: no grant of an earlier "app" fits this one.
        assert g.constraints.encryption_context_subset == {
            "aws:ecr:arn": desc.repository_arn,
            "ecrcrypt:repository-uid": uid,
        }
        assert g.retiring_principal == f"ecr.{REGION}.amazonaws.com"
        assert g.name in {f"ecrcrypt-{uid}-ecr", f"ecrcrypt-{uid}-storage"}
    # ECR's documented grant (GenerateDataKey, Decrypt) plus what ECR's side of every object needs:
    # GenerateDataKeyWithoutPlaintext on push, ReEncrypt to re-bind a body-first upload's key.
    assert set(by_grantee[f"ecr.{REGION}.amazonaws.com"].operations) == {
        GrantOperation.GENERATE_DATA_KEY,
        GrantOperation.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
        GrantOperation.DECRYPT,
        GrantOperation.RE_ENCRYPT_FROM,
        GrantOperation.RE_ENCRYPT_TO,
    }
    # The storage side only receives decrypted data keys.
    assert set(by_grantee[f"s3.{REGION}.amazonaws.com"].operations) == {GrantOperation.DECRYPT}
    assert set(env.registry.repository("app").grant_ids) == {g.grant_id for g in grants}
    env.registry.delete_repository("app")
    assert env.all_grants(key) == []


def _nothing_created(env, key: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert env.registry.describe_repositories() == []
    if key is not None:
        assert env.all_grants(key) == []


def test_missing_key() -> None:
    env = make_env()
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository("app", encryption_configuration=kms_config("alias/nope"))
    assert err.value.kms_error == "NotFoundException"
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository(
            "app", encryption_configuration=kms_config("0f0e0d0c-0b0a-0908-0706-050403020100")
        )
    assert err.value.kms_error == "NotFoundException"
    _nothing_created(env)


def test_wrong_region_key() -> None:
    env = make_env()
    key = env.customer_key()
    foreign = key.replace(f":{REGION}:", f":{OTHER_REGION}:")
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository("app", encryption_configuration=kms_config(foreign))
    assert err.value.kms_error == "NotFoundException"
    _nothing_created(env, key)


def test_disabled_key() -> None:
    env = make_env()
    key = env.customer_key()
    env.admin.disable_key(key_id=key)
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository("app", encryption_configuration=kms_config(key))
    assert err.value.kms_error == "DisabledException"
    _nothing_created(env, key)


def test_pending_deletion_key() -> None:
    env = make_env()
    key = env.customer_key()
    env.admin.schedule_key_deletion(key_id=key, pending_window_in_days=7)
    with pytest.raises(EcrKmsError) as err:
        env.registry.create_repository("app", encryption_configuration=kms_config(key, dsse=True))
    assert err.value.kms_error == "KMSInvalidStateException"
    _nothing_created(env, key)


def test_delete_non_empty_needs_force() -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("app", encryption_configuration=kms_config(key))
    repo = env.registry.repository("app")
    data, digest = layer(3000)
    repo.push_layer(data, digest=digest)
    with pytest.raises(RepositoryNotEmptyError):
        env.registry.delete_repository("app")
    assert len(env.all_grants(key)) == 2
    # A blob committed by a process that died before recording it is removed too.
    (stored,) = list(env.store.list())
    orphan = stored.rsplit("/", 2)[0] + "/uploads/0123abcd"
    with env.store.open_write(orphan) as w:
        w.write(b"ciphertext")
        w.commit()
    env.registry.delete_repository("app", force=True)
    assert env.all_grants(key) == []
    assert list(env.store.list()) == []
    # A handle obtained before the delete stops working.
    with pytest.raises(RepositoryNotFoundError):
        repo.read_layer(digest)


def test_failed_retirement_message_and_manual_retire() -> None:
    env = make_env(
        factory=lambda local: lambda p: local.client(p, deny={"kms:RetireGrant"}) if p == BOB else local.client(p)
    )
    key = env.customer_key()
    desc = env.registry.create_repository("team/app", encryption_configuration=kms_config(key))
    with pytest.raises(GrantsNotRetiredError) as err:
        env.registry.as_caller(BOB).delete_repository("team/app")
    assert str(err.value) == (
        "The repository [team/app] has been deleted successfully but the grants created by the kmsKey "
        f"[{key}] failed to be retired"
    )
    assert err.value.kms_error == "AccessDeniedException"
    assert env.registry.describe_repositories() == []
    # The seed's manual procedure: ListGrants filtered by the repository ARN, then RetireGrant.
    orphans = env.grants_for(key, desc.repository_arn)
    assert sorted(g.grant_id for g in orphans) == sorted(err.value.grant_ids)
    for g in orphans:
        env.admin.retire_grant(key_id=key, grant_id=g.grant_id)
    assert env.grants_for(key, desc.repository_arn) == []


def test_registry_view_per_caller_shares_state() -> None:
    env = make_env()
    env.registry.create_repository("app")
    bob = env.registry.as_caller(BOB)
    assert bob.caller == BOB and env.registry.caller == ROOT
    assert [d.repository_name for d in bob.describe_repositories()] == ["app"]


def test_aes256_makes_no_kms_calls() -> None:
    env = make_env()
    env.registry.create_repository("plain")
    repo = env.registry.repository("plain")
    data, digest = layer(5000)
    repo.push_layer(data, digest=digest)
    assert repo.read_layer(digest) == data
    kms_events = env.local.audit.query(event_source="kms.amazonaws.com", context={"aws:ecr:arn": str(repo.arn)})
    assert kms_events == []
    assert repo.kms_key is None and repo.grant_ids == ()


def test_embedded_default_persists_and_keeps_keys_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecrcrypt.ecr.registry import Registry

    root = tmp_path / "reg"
    data, digest = layer(3000)
    with Registry.create(root) as reg:
        reg.create_repository("plain")
        reg.create_repository("sealed", encryption_configuration={"encryptionType": "KMS"})
        for name in ("plain", "sealed"):
            reg.repository(name).push_layer(data, digest=digest)
    key_file = root / "service-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    secret = key_file.read_bytes()
    with Registry.open(root) as reg:
        assert [d.repository_name for d in reg.describe_repositories()] == ["plain", "sealed"]
        for name in ("plain", "sealed"):
            repo = reg.repository(name)
            assert repo.read_layer(digest) == data
            for text in (repr(repo), repr(reg), repr(repo.start_upload())):
                assert secret.hex() not in text and repr(secret) not in text


def test_describe_repositories_pages() -> None:
    env = make_env()
    names = [f"page/r{i}" for i in range(7)]
    for n in names:
        env.registry.create_repository(n)
    seen: list[str] = []
    token = None
    while True:
        page, token = env.registry.describe_repositories_page(max_results=3, next_token=token)
        seen += [d.repository_name for d in page]
        assert len(page) <= 3
        if token is None:
            break
    assert seen == names
    for bad in (0, 1001):
        with pytest.raises(InvalidParameterError):
            env.registry.describe_repositories_page(max_results=bad)
    with pytest.raises(InvalidParameterError):
        env.registry.describe_repositories_page(next_token="nope")


def _recreate_before(env: Env, method: str) -> None:
    """Make the next ``metadata.<method>`` run just after another client deleted the
    repository ``team/app`` and re-created the name (the push/delete race)."""
    metadata = env.registry._core.metadata
    original = getattr(metadata, method)

    def racing(*args: Any, **kwargs: Any) -> Any:
        setattr(metadata, method, original)
        env.registry.delete_repository("team/app", force=True)
        env.registry.create_repository("team/app")
        return original(*args, **kwargs)

    setattr(metadata, method, racing)


@pytest.mark.parametrize("how", ["push", "upload", "manifest"])
def test_a_push_racing_a_delete_leaves_no_ghost_in_the_recreated_repository(how: str) -> None:
    env = make_env()
    env.registry.create_repository("team/app")
    old = env.registry.repository("team/app")
    data, digest = layer(3000, seed=3)
    if how == "manifest":
        old.push_layer(data, digest=digest)
    before = set(env.store.list())
    _recreate_before(env, "put_object")
    with pytest.raises(RepositoryNotFoundError):
        if how == "push":
            old.push_layer(data, digest=digest)
        elif how == "upload":
            with old.start_upload() as up:
                up.write(data)
                up.complete(digest)
        else:
            old.put_image(
                build_manifest([LayerPush(digest=digest, size=len(data), stored_size=0, already_existed=False)]),
                tag="v1",
            )
    new = env.registry.repository("team/app")
    assert not new.has_layer(digest) and new.list_layers() == [] and new.list_images() == []
    assert set(env.store.list()) <= before  # the blob that did not land is gone too
    env.registry.delete_repository("team/app")  # empty: no force needed


def test_a_tag_racing_a_delete_does_not_land_in_the_recreated_repository() -> None:
    env = make_env()
    env.registry.create_repository("team/app")
    old = env.registry.repository("team/app")
    data, digest = layer(1000, seed=4)
    old.push_layer(data, digest=digest)
    manifest = build_manifest([LayerPush(digest=digest, size=len(data), stored_size=0, already_existed=False)])
    _recreate_before(env, "put_tag")
    with pytest.raises(RepositoryNotFoundError):
        old.put_image(manifest, tag="v1")
    new = env.registry.repository("team/app")
    with pytest.raises(ImageNotFoundError):
        new.resolve(tag="v1")
    assert new.list_images() == []
