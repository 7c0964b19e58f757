"""Revoking either grant stops every object operation of that repository, layers included.

Every data key of a KMS repository takes one call under the ECR grant (the ECR
service principal) and one under the storage grant (the storage principal's
Decrypt): see ``ecrcrypt.ecr.grant_provider`` and docs/ecr-model.md.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from ecrcrypt import LayerPush, Repository, build_manifest
from ecrcrypt.digest import Digest
from ecrcrypt.errors import DataKeyDecryptionError, EcrCryptError, EcrKmsError
from ecrcrypt.kms import Kms
from ecrcrypt.kms.local.service import LocalKms
from tests.ecr.support import FRAME, ROOT, Env, kms_config, layer, make_env

GRANTS = {"ecr": "ECR grant", "storage": "storage grant"}
KMS_EVENTS = ("GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Decrypt", "ReEncrypt", "Encrypt")


def _grantee(env: Env, which: str) -> str:
    return env.registry.ecr_principal if which == "ecr" else env.registry.storage_principal


def _revoke(env: Env, repo: Repository, which: str) -> str:
    key = repo.kms_key or ""
    (grant,) = [g for g in env.grants_for(key, str(repo.arn)) if g.grantee_principal == _grantee(env, which)]
    env.admin.revoke_grant(key_id=key, grant_id=grant.grant_id)
    return str(grant.grant_id)


def _seeded(env: Env, name: str, key: str, *, dsse: bool) -> tuple[Repository, bytes, Digest]:
    env.registry.create_repository(name, encryption_configuration=kms_config(key, dsse=dsse))
    repo = env.registry.repository(name)
    data, digest = layer(3 * FRAME + 5, seed=len(name))
    pushed = repo.push_layer(data, digest=digest)
    repo.put_image(build_manifest([pushed]), tag="v1")
    return repo, data, digest


def _operations(repo: Repository, digest: Digest) -> dict[str, Callable[[], object]]:
    """Each object operation of the issue's list, on fresh content where it writes."""
    new, new_digest = layer(2 * FRAME + 3, seed=99)
    chunked, chunked_digest = layer(FRAME + 9, seed=77)

    def upload() -> LayerPush:
        with repo.start_upload() as up:
            up.write(chunked[:100])
            up.write(chunked[100:])
            return up.complete(chunked_digest)

    # A manifest not yet stored (its layer is present): PutImage must encrypt it.
    manifest = build_manifest([LayerPush(digest=digest, size=3 * FRAME + 5, stored_size=0, already_existed=True)])
    manifest = manifest.replace(b'"schemaVersion":2', b'"annotations":{"n":"2"},"schemaVersion":2')
    return {
        "push_layer": lambda: repo.push_layer(new, digest=new_digest),
        "start_upload/complete": upload,
        "pull_layer": lambda: repo.pull_layer(digest, io.BytesIO()),
        "read_layer_range": lambda: repo.read_layer_range(digest, FRAME - 3, FRAME + 6),
        "put_image": lambda: repo.put_image(manifest, tag="v2"),
        "get_image": lambda: repo.get_image(tag="v1"),
    }


@pytest.mark.parametrize("dsse", [False, True], ids=["KMS", "KMS_DSSE"])
@pytest.mark.parametrize("which", ["ecr", "storage"])
def test_each_object_operation_needs_both_grants(which: str, dsse: bool) -> None:
    env = make_env()
    key = env.customer_key()
    victim, _, digest = _seeded(env, "victim", key, dsse=dsse)
    bystander, data_b, digest_b = _seeded(env, "bystander", key, dsse=dsse)
    grant_id = _revoke(env, victim, which)
    other = "storage" if which == "ecr" else "ecr"

    for op_name, op in _operations(victim, digest).items():
        with pytest.raises(EcrKmsError) as err:
            op()
        message = str(err.value)
        assert err.value.kms_error == "AccessDeniedException", op_name
        assert f"the {GRANTS[which]} {grant_id} (grantee {_grantee(env, which)})" in message, op_name
        assert "revoked or retired" in message and GRANTS[other] not in message, op_name
    # Nothing was stored by the refused pushes.
    assert victim.list_layers() == [digest]
    assert [i.tag for i in victim.list_images()] == ["v1"]

    # The other repository on the same key keeps working, every operation.
    results = {name: op() for name, op in _operations(bystander, digest_b).items()}
    assert bystander.read_layer(digest_b) == data_b
    assert results["read_layer_range"] == data_b[FRAME - 3 : 2 * FRAME + 3]
    assert bystander.get_image(tag="v2").layer_digests == (digest_b,)
    assert len(bystander.list_layers()) == 3

    # The audit trail shows whose KMS calls were refused: only the revoked grant's grantee.
    refused = [
        e for e in env.local.audit.query(event_source="kms.amazonaws.com", errors=True) if e.event_name in KMS_EVENTS
    ]
    assert refused, "the refused KMS calls are in the trail"
    assert {e.principal for e in refused} == {_grantee(env, which)}
    assert {e.error_code for e in refused} == {"AccessDeniedException"}
    assert {e.encryption_context.get("aws:ecr:arn") for e in refused} == {str(victim.arn)}
    # ... and the ECR side: the caller's failed calls, with ECR's KmsException.
    failed = env.local.audit.query(event_source="ecr.amazonaws.com", resource=str(victim.arn), errors=True)
    assert {(e.principal, e.error_code) for e in failed} == {(ROOT, "KmsException")}
    assert {e.event_name for e in failed} == {
        "CompleteLayerUpload",
        "GetDownloadUrlForLayer",
        "PutImage",
        "BatchGetImage",
    }


@pytest.mark.parametrize("dsse", [False, True], ids=["KMS", "KMS_DSSE"])
@pytest.mark.parametrize("which", ["ecr", "storage"])
def test_grant_revoked_during_an_upload_stops_its_completion(which: str, dsse: bool) -> None:
    env = make_env()
    key = env.customer_key()
    victim, _, _ = _seeded(env, "victim", key, dsse=dsse)
    data, digest = layer(4 * FRAME, seed=5)
    up = victim.start_upload()
    up.write(data)
    _revoke(env, victim, which)
    with pytest.raises(EcrKmsError) as err:
        up.complete(digest)
    assert GRANTS[which] in str(err.value)
    assert not victim.has_layer(digest)
    assert not [k for k in env.store.list() if "/uploads/" in k]


def _kms_calls(env: Env, repo: Repository) -> list[tuple[str, str | None]]:
    events = env.local.audit.query(event_source="kms.amazonaws.com", context={"aws:ecr:arn": str(repo.arn)})
    return [(e.event_name, e.principal) for e in events]


@pytest.mark.parametrize("dsse", [False, True], ids=["KMS", "KMS_DSSE"])
def test_two_kms_calls_per_data_key_one_per_grant(dsse: bool) -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("app", encryption_configuration=kms_config(key, dsse=dsse))
    repo = env.registry.repository("app")
    ecr, storage = env.registry.ecr_principal, env.registry.storage_principal
    keys = 2 if dsse else 1  # KMS_DSSE: two independent data keys per object
    data, digest = layer(5 * FRAME, seed=3)

    repo.push_layer(data, digest=digest)
    push = [("GenerateDataKeyWithoutPlaintext", ecr), ("Decrypt", storage)] * keys
    assert _kms_calls(env, repo) == push

    before = len(_kms_calls(env, repo))
    assert repo.read_layer(digest) == data
    assert _kms_calls(env, repo)[before:] == [("Decrypt", ecr), ("Decrypt", storage)] * keys

    before = len(_kms_calls(env, repo))
    assert repo.read_layer_range(digest, 2 * FRAME - 1, FRAME + 2) == data[2 * FRAME - 1 : 3 * FRAME + 1]
    assert _kms_calls(env, repo)[before:] == [("Decrypt", ecr), ("Decrypt", storage)] * keys

    # Body first: the provisional key (2 calls, plus the inner layer's for DSSE), then ECR re-binds it
    # to the final context and the storage side checks the result opens to the same key.
    before = len(_kms_calls(env, repo))
    other, other_digest = layer(FRAME + 1, seed=4)
    with repo.start_upload() as up:
        up.write(other)
        up.complete(other_digest)
    assert _kms_calls(env, repo)[before:] == [("GenerateDataKeyWithoutPlaintext", ecr), ("Decrypt", storage)] * keys + [
        ("ReEncrypt", ecr),
        ("Decrypt", storage),
    ]
    assert repo.read_layer(other_digest) == other


def test_denied_without_a_revoked_grant_names_the_refused_principal() -> None:
    # An explicit deny (IAM) on the storage principal's Decrypt: both grants exist, so the error
    # does not claim a revocation, but it names whose call was refused.
    def factory(local: LocalKms) -> Callable[[str], Kms]:
        return lambda p: local.client(p, deny=["kms:Decrypt"] if p.startswith("s3.") else [])

    env = make_env(factory=factory)
    key = env.customer_key()
    env.registry.create_repository("app", encryption_configuration=kms_config(key))
    repo = env.registry.repository("app")
    data, digest = layer(100)
    with pytest.raises(EcrKmsError) as err:
        repo.push_layer(data, digest=digest)
    assert err.value.kms_error == "AccessDeniedException"
    assert f"denied for {env.registry.storage_principal} (the storage grant's grantee)" in str(err.value)
    assert "revoked" not in str(err.value)
    assert len(env.grants_for(key, str(repo.arn))) == 2


def test_the_provider_never_wraps_a_plaintext_key_and_never_shows_one() -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("app", encryption_configuration=kms_config(key))
    repo = env.registry.repository("app")
    provider = repo._provider()
    context = repo._context("layer", Digest.of(b"x"))
    data_key = provider.generate_data_key(context)
    assert data_key.plaintext.hex() not in repr(provider) and str(data_key.plaintext) not in repr(provider)
    with pytest.raises(EcrCryptError):
        provider.encrypt_data_key(data_key.plaintext, context)
    assert provider.decrypt_data_key(data_key.encrypted_data_keys, context) == data_key.plaintext
    with pytest.raises(DataKeyDecryptionError):
        provider.decrypt_data_key(data_key.encrypted_data_keys, repo._context("layer", Digest.of(b"y")))
