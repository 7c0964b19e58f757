"""Migration between repositories of different encryption configurations."""

from __future__ import annotations

import pytest

from ecrcrypt import Repository, build_manifest
from ecrcrypt.ecr.migration import migrate
from ecrcrypt.errors import EcrKmsError, InvalidParameterError, RepositoryNotFoundError
from tests.ecr.support import FRAME, Env, kms_config, layer, make_env


def _fill(repo: Repository) -> dict[str, bytes]:
    blobs = {}
    pushes = []
    for i, n in enumerate([10, 3 * FRAME + 5, 2 * FRAME]):
        data, d = layer(n, seed=i + 20)
        pushes.append(repo.push_layer(data, digest=d))
        blobs[str(d)] = data
    repo.put_image(build_manifest(pushes[:2]), tag="v1")
    repo.put_image(build_manifest(pushes), tag="v2")
    repo.put_image(build_manifest(pushes[1:]), tag="latest")
    repo.put_image(build_manifest(pushes[2:]))  # untagged
    return blobs


def _same_images(a: Repository, b: Repository, blobs: dict[str, bytes]) -> None:
    assert sorted((str(i.digest), i.tag or "") for i in a.list_images()) == sorted(
        (str(i.digest), i.tag or "") for i in b.list_images()
    )
    for i in a.list_images():
        assert b.get_image(digest=i.digest).manifest == a.get_image(digest=i.digest).manifest
    for d, data in blobs.items():
        assert b.read_layer(d) == data


def test_aes256_to_kms_keeps_digests_and_tags() -> None:
    env = make_env()
    key = env.customer_key()
    env.registry.create_repository("old")
    env.registry.create_repository("new", encryption_configuration=kms_config(key))
    src, dst = env.registry.repository("old"), env.registry.repository("new")
    blobs = _fill(src)
    report = migrate(src, dst)
    assert (report.layers_copied, report.images_copied, report.tags) == (3, 4, 3)
    _same_images(src, dst, blobs)
    assert dst.get_image(tag="v2").digest == src.get_image(tag="v2").digest


def test_key_a_to_key_b_then_delete_source() -> None:
    env = make_env()
    key_a, key_b = env.customer_key(), env.customer_key()
    env.registry.create_repository("on-a", encryption_configuration=kms_config(key_a))
    env.registry.create_repository("on-b", encryption_configuration=kms_config(key_b, dsse=True))
    src, dst = env.registry.repository("on-a"), env.registry.repository("on-b")
    blobs = _fill(src)
    expected = sorted((str(i.digest), i.tag or "") for i in src.list_images())
    report = migrate(src, dst, delete_source=True)
    assert report.source_deleted
    with pytest.raises(RepositoryNotFoundError):
        env.registry.repository("on-a")
    assert env.all_grants(key_a) == []
    assert sorted((str(i.digest), i.tag or "") for i in dst.list_images()) == expected
    for d, data in blobs.items():
        assert dst.read_layer(d) == data
    # The target's objects are under key B only: disabling A changes nothing.
    env.admin.disable_key(key_id=key_a)
    assert dst.get_image(tag="v1").layer_digests


def test_resumable_after_interruption() -> None:
    env: Env = make_env()
    key = env.customer_key()
    env.registry.create_repository("src")
    env.registry.create_repository("dst", encryption_configuration=kms_config(key))
    src, dst = env.registry.repository("src"), env.registry.repository("dst")
    blobs = _fill(src)
    # Interrupt: the target's key is disabled after the first layer made it across.
    first = src.list_layers()[0]
    with src.open_layer(first) as r:
        dst.push_layer(r, digest=first)
    env.admin.disable_key(key_id=key)
    with pytest.raises(EcrKmsError):
        migrate(src, dst)
    env.admin.enable_key(key_id=key)
    report = migrate(src, dst)
    assert report.layers_skipped == 1 and report.layers_copied == 2
    _same_images(src, dst, blobs)
    again = migrate(src, dst)
    assert (again.layers_copied, again.images_copied) == (0, 0)
    assert again.images_skipped == 4


def test_same_repository_rejected() -> None:
    env = make_env()
    env.registry.create_repository("aa")
    with pytest.raises(InvalidParameterError):
        migrate(env.registry.repository("aa"), env.registry.repository("aa"))
