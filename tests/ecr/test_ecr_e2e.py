"""End to end per encryption configuration: push a multi-layer image, pull, verify, delete, no grant left."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt import build_manifest
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import AWS_MANAGED_ECR_ALIAS
from ecrcrypt.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    InvalidParameterError,
    LayersNotFoundError,
    RepositoryNotFoundError,
    StreamClosedError,
)
from tests.ecr.support import ACCOUNT, FRAME, REGION, Chunks, Env, layer, make_env

CONFIGS = ["AES256", "KMS-default", "KMS-key-id", "KMS-key-arn", "KMS-alias-name", "KMS-alias-arn", "KMS_DSSE"]


def _config(env: Env, which: str) -> tuple[EncryptionConfiguration, str | None]:
    if which == "AES256":
        return EncryptionConfiguration(), None
    if which == "KMS-default":
        cfg = EncryptionConfiguration(encryption_type="KMS")
        return cfg, None
    arn = env.customer_key(alias="alias/e2e")
    ref = {
        "KMS-key-id": arn.rsplit("/", 1)[1],
        "KMS-key-arn": arn,
        "KMS-alias-name": "alias/e2e",
        "KMS-alias-arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/e2e",
        "KMS_DSSE": "alias/e2e",
    }[which]
    return EncryptionConfiguration(encryption_type="KMS_DSSE" if which == "KMS_DSSE" else "KMS", kms_key=ref), arn


@pytest.mark.parametrize("which", CONFIGS)
def test_end_to_end(which: str) -> None:
    env = make_env()
    cfg, key = _config(env, which)
    desc = env.registry.create_repository("e2e/app", encryption_configuration=cfg)
    if which == "KMS-default":
        key = env.admin.describe_key(key_id=AWS_MANAGED_ECR_ALIAS).arn
    assert desc.encryption_configuration.to_api().get("kmsKey") == key
    repo = env.registry.repository("e2e/app")
    sizes = [0, 1, FRAME - 1, FRAME, 5 * FRAME + 17]
    layers = [layer(n, seed=i) for i, n in enumerate(sizes)]
    pushed = [repo.push_layer(Chunks(data), digest=d) for data, d in layers]
    assert [p.already_existed for p in pushed] == [False] * len(sizes)
    assert [p.size for p in pushed] == sizes
    manifest = build_manifest(pushed)
    image = repo.put_image(manifest, tag="v1")
    assert image.digest == Digest.of(manifest)

    # Stored bytes are ESDK messages, not plaintext.
    for data, d in layers:
        if len(data) > 64:
            stored = b"".join(env.store.open_read(k).read() for k in env.store.list() if k.endswith(str(d)))
            assert data[:64] not in stored

    got = repo.get_image(tag="v1")
    assert got.manifest == manifest and got.tags == ("v1",) and got.digest == image.digest
    assert repo.get_image(digest=image.digest).manifest == manifest
    for d in got.layer_digests:
        out = io.BytesIO()
        n = repo.pull_layer(d, out)
        assert Digest.of(out.getvalue()) == d and n == len(out.getvalue())
    assert [i.tag for i in repo.list_images()] == ["v1"]

    if key is not None:
        assert len(env.grants_for(key, desc.repository_arn)) == 2
    env.registry.delete_repository("e2e/app", force=True)
    if key is not None:
        assert env.grants_for(key, desc.repository_arn) == []
        assert env.all_grants(key) == []
    assert list(env.store.list()) == []


@pytest.mark.parametrize("which", ["AES256", "KMS-key-arn", "KMS_DSSE"])
def test_chunked_upload_body_first(which: str) -> None:
    env = make_env()
    cfg, _ = _config(env, which)
    env.registry.create_repository("app", encryption_configuration=cfg)
    repo = env.registry.repository("app")
    data, digest = layer(7 * FRAME + 3, seed=5)
    with repo.start_upload() as up:
        for i in range(0, len(data), 1000):
            up.write(data[i : i + 1000])
        result = up.complete(digest)
    assert not result.already_existed and result.size == len(data)
    assert repo.read_layer(digest) == data
    assert repo.read_layer_range(digest, FRAME - 5, 2 * FRAME) == data[FRAME - 5 : 3 * FRAME - 5]
    # Same content again: accepted, nothing new stored.
    before = sorted(env.store.list())
    with repo.start_upload() as up:
        up.write(data)
        assert up.complete(digest).already_existed
    assert sorted(env.store.list()) == before


@pytest.mark.parametrize("which", ["AES256", "KMS-key-arn", "KMS_DSSE"])
def test_body_first_object_equals_header_first_format(which: str) -> None:
    """Both paths write messages that the other path's reader opens with the same context."""
    env = make_env()
    cfg, _ = _config(env, which)
    env.registry.create_repository("app", encryption_configuration=cfg)
    repo = env.registry.repository("app")
    a, da = layer(3 * FRAME, seed=1)
    with repo.start_upload() as up:
        up.write(a)
        up.complete(da)
    b, db = layer(3 * FRAME, seed=2)
    repo.push_layer(b, digest=db)
    assert repo.read_layer(da) == a and repo.read_layer(db) == b


@pytest.mark.parametrize("which", ["AES256", "KMS-key-arn", "KMS_DSSE"])
def test_digest_mismatch_stores_nothing(which: str) -> None:
    env = make_env()
    cfg, _ = _config(env, which)
    env.registry.create_repository("app", encryption_configuration=cfg)
    repo = env.registry.repository("app")
    data, _ = layer(4 * FRAME)
    wrong = Digest.of(b"something else")
    with pytest.raises(DigestMismatchError):
        repo.push_layer(data, digest=wrong)
    up = repo.start_upload()
    up.write(data)
    with pytest.raises(DigestMismatchError):
        up.complete(wrong)
    with pytest.raises(StreamClosedError):
        up.write(b"x")
    assert not repo.has_layer(wrong)
    assert list(env.store.list()) == []
    with pytest.raises(LayersNotFoundError):
        repo.read_layer(wrong)


def test_content_addressed_push_does_not_reencrypt() -> None:
    env = make_env()
    env.registry.create_repository("app", encryption_configuration={"encryptionType": "KMS"})
    repo = env.registry.repository("app")
    data, digest = layer(2000)
    first = repo.push_layer(data, digest=digest)
    stored = sorted(env.store.list())
    source = Chunks(data)
    again = repo.push_layer(source, digest=digest)
    assert again.already_existed and source.reads == 0
    assert again.stored_size == first.stored_size
    assert sorted(env.store.list()) == stored


def test_context_is_ecr_two_key_context() -> None:
    """The header of a stored layer carries ECR's two-key context plus the repository's uid."""
    env = make_env()
    env.registry.create_repository("app")
    repo = env.registry.repository("app")
    data, digest = layer(100)
    repo.push_layer(data, digest=digest)
    (key,) = list(env.store.list())
    raw = env.store.open_read(key).read()
    (aad_len,) = (int.from_bytes(raw[35:37], "big"),)
    ctx = EncryptionContext.deserialize(raw[37 : 37 + aad_len])
    assert ctx["aws:ecr:arn"] == str(repo.arn)
    assert ctx["aws:s3:arn"].startswith("arn:aws:s3:::") and ctx["aws:s3:arn"].endswith(f"/{digest}")
    assert set(ctx) == {"aws:ecr:arn", "aws:s3:arn", "ecrcrypt:repository-uid"}
    uid = env.registry._core.metadata.get_repository("app").uid  # type: ignore[union-attr]
    assert ctx["ecrcrypt:repository-uid"] == uid and f"/{uid}/" in ctx["aws:s3:arn"]


def test_image_errors() -> None:
    env = make_env()
    env.registry.create_repository("app")
    repo = env.registry.repository("app")
    data, digest = layer(10)
    with pytest.raises(LayersNotFoundError):
        repo.put_image(build_manifest([_fake(digest)]), tag="v1")
    repo.push_layer(data, digest=digest)
    with pytest.raises(InvalidParameterError):
        repo.put_image(b"not json", tag="v1")
    with pytest.raises(InvalidParameterError):
        repo.put_image(build_manifest([_fake(digest)]), tag="-bad")
    with pytest.raises(ImageNotFoundError):
        repo.get_image(tag="v1")
    with pytest.raises(ImageNotFoundError):
        repo.get_image(digest=digest)
    with pytest.raises(InvalidParameterError):
        repo.get_image()


def _fake(digest: Digest) -> Any:
    from ecrcrypt import LayerPush

    return LayerPush(digest=digest, size=10, stored_size=0, already_existed=False)


_RANGE_DATA, _RANGE_DIGEST = layer(6 * FRAME + 123, seed=9)


@pytest.fixture(scope="module")
def range_repos() -> dict[str, Any]:
    env = make_env()
    out = {}
    for which in ["AES256", "KMS-key-arn", "KMS_DSSE"]:
        cfg = (
            EncryptionConfiguration()
            if which == "AES256"
            else EncryptionConfiguration(
                encryption_type="KMS_DSSE" if which == "KMS_DSSE" else "KMS", kms_key=env.customer_key()
            )
        )
        name = which.lower().replace("_", "-")
        env.registry.create_repository(name, encryption_configuration=cfg)
        repo = env.registry.repository(name)
        repo.push_layer(_RANGE_DATA, digest=_RANGE_DIGEST)
        out[which] = repo
    return out


@settings(max_examples=25)
@given(
    which=st.sampled_from(["AES256", "KMS-key-arn", "KMS_DSSE"]),
    offset=st.integers(0, len(_RANGE_DATA) + 10),
    length=st.integers(0, 3 * FRAME),
)
def test_range_read_matches_slice(range_repos: dict[str, Any], which: str, offset: int, length: int) -> None:
    got = range_repos[which].read_layer_range(_RANGE_DIGEST, offset, length)
    assert got == _RANGE_DATA[offset : offset + length]


def test_push_racing_a_delete_attaches_nothing_to_a_new_repository() -> None:
    env = make_env()
    env.registry.create_repository("app")
    old = env.registry.repository("app")
    data, digest = layer(3 * FRAME)
    up = old.start_upload()
    up.write(data)
    env.registry.delete_repository("app")
    env.registry.create_repository("app", encryption_configuration={"encryptionType": "KMS"})
    with pytest.raises(RepositoryNotFoundError):
        up.complete(digest)
    new = env.registry.repository("app")
    assert not new.has_layer(digest)
    assert list(env.store.list()) == []
