"""migrate(rewrap=True): a new header under the target's key, the encrypted body reused as it is."""

from __future__ import annotations

from typing import Any

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.migration import migrate
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.rewrap import can_rewrap
from ecrcrypt.errors import EcrKmsError
from ecrcrypt.store.s3 import MIN_PART_SIZE, S3BlobStore
from tests.ecr.support import FRAME, Env, kms_config, layer, make_env
from tests.ecr.test_migrate import _fill, _same_images


def _body(env: Env, repo: Repository, digest: str) -> bytes:
    with env.store.open_read(repo._object("layer", Digest.parse(digest)).blob_key) as f:
        data = f.read()
    return data[-(3 * FRAME) :]  # the last frames: body bytes, whatever the header's length


def _repos(env: Env, source: str, target: str) -> tuple[Repository, Repository]:
    configs = {"aes": None, "kms-a": kms_config(env.customer_key()), "kms-b": kms_config(env.customer_key()),
               "dsse": kms_config(env.customer_key(), dsse=True)}  # fmt: skip
    env.registry.create_repository("src", encryption_configuration=configs[source])
    env.registry.create_repository("dst", encryption_configuration=configs[target])
    return env.registry.repository("src"), env.registry.repository("dst")


@pytest.mark.parametrize(("source", "target"), [("kms-a", "kms-b"), ("kms-a", "aes"), ("aes", "aes")])
def test_rewrap_keeps_every_body_and_the_images(source: str, target: str) -> None:
    env = make_env()
    src, dst = _repos(env, source, target)
    blobs = _fill(src)
    report = migrate(src, dst, rewrap=True)
    assert report.layers_rewrapped == report.layers_copied == len(blobs)
    _same_images(src, dst, blobs)
    for d in blobs:
        if len(blobs[d]) > 3 * FRAME:
            assert _body(env, dst, d) == _body(env, src, d)  # the very same ciphertext
    assert migrate(src, dst, rewrap=True).layers_skipped == len(blobs)


def test_the_rewrapped_layer_needs_the_target_key_only() -> None:
    env = make_env()
    src, dst = _repos(env, "kms-a", "kms-b")
    data, d = layer(5 * FRAME + 1, seed=3)
    src.push_layer(data, digest=d)
    migrate(src, dst, rewrap=True, delete_source=True)
    assert dst.read_layer(d) == data
    env.admin.disable_key(key_id=src.kms_key or "")
    assert dst.read_layer(d) == data
    env.admin.disable_key(key_id=dst.kms_key or "")
    with pytest.raises(EcrKmsError):
        dst.read_layer(d)


@pytest.mark.parametrize(("source", "target"), [("dsse", "kms-b"), ("kms-a", "dsse"), ("aes", "kms-b")])
def test_what_cannot_be_rewrapped_is_re_encrypted(source: str, target: str) -> None:
    env = make_env()
    src, dst = _repos(env, source, target)
    assert not can_rewrap(src, dst)
    blobs = _fill(src)
    report = migrate(src, dst, rewrap=True)
    assert report.layers_rewrapped == 0 and report.layers_copied == len(blobs)
    _same_images(src, dst, blobs)
    assert all(dst.has_layer(Digest.parse(d)) for d in blobs)


@pytest.mark.moto
def test_on_s3_the_body_is_copied_by_s3(s3_client: Any, s3_bucket: str) -> None:
    env = make_env(store=S3BlobStore(s3_client, s3_bucket, part_size=MIN_PART_SIZE), frame_length=None)
    src, dst = _repos(env, "kms-a", "kms-b")
    data, d = layer(4 * MIN_PART_SIZE + 77, seed=-1)
    src.push_layer(data, digest=d)
    calls: list[str] = []
    s3_client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    assert migrate(src, dst, rewrap=True).layers_rewrapped == 1
    assert calls.count("UploadPartCopy") >= 1
    assert dst.read_layer(d) == data
