"""Hypothesis properties of the ECR layer, built from ecrcrypt's public strategies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt import strategies as es
from ecrcrypt.arns import AccountId, Region, RepositoryArn, RepositoryName
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.uploads import LayerUploads
from ecrcrypt.errors import DigestMismatchError
from tests.ecr.support import ACCOUNT, FRAME, REGION, make_env

CONFIGS = ["AES256", "KMS", "KMS_DSSE"]


@pytest.fixture(scope="module")
def repos() -> dict[str, Any]:
    env = make_env()
    key = env.customer_key()
    out: dict[str, Any] = {"env": env}
    for which in CONFIGS:
        cfg = (
            EncryptionConfiguration()
            if which == "AES256"
            else EncryptionConfiguration(encryption_type=which, kms_key=key)
        )
        name = f"prop/{which.lower().replace('_', '-')}"
        env.registry.create_repository(name, encryption_configuration=cfg)
        out[which] = env.registry.repository(name)
    return out


@settings(max_examples=40)
@given(name=es.repository_names())
def test_any_valid_name_round_trips(name: RepositoryName) -> None:
    env = make_env()
    desc = env.registry.create_repository(name.value)
    expected = RepositoryArn(region=Region(REGION), account=AccountId(ACCOUNT), name=name)
    assert desc.repository_arn == str(expected)
    assert RepositoryArn.parse(desc.repository_arn).name == name
    assert env.registry.describe_repositories([name.value]) == [desc]
    env.registry.delete_repository(name.value)
    assert env.registry.describe_repositories() == []


@settings(max_examples=30)
@given(which=st.sampled_from(CONFIGS), data=st.data())
def test_upload_any_split_reads_back(repos: dict[str, Any], which: str, data: st.DataObject) -> None:
    plaintext = data.draw(es.plaintexts(frame_length=FRAME, max_frames=3))
    chunks = data.draw(es.chunked(plaintext, frame_length=FRAME, max_chunks=12))
    repo = repos[which]
    digest = Digest.of(plaintext)
    with repo.start_upload() as up:
        for c in chunks:
            up.write(c)
        up.complete(digest)
    assert repo.read_layer(digest) == plaintext
    # The header-first path agrees (content addressed: the layer is not re-encrypted).
    assert repo.push_layer(plaintext, digest=digest).already_existed


@settings(max_examples=30)
@given(which=st.sampled_from(CONFIGS), plaintext=es.plaintexts(frame_length=FRAME, max_frames=2), other=es.digests())
def test_wrong_digest_never_stores(repos: dict[str, Any], which: str, plaintext: bytes, other: Digest) -> None:
    if other == Digest.of(plaintext):
        return
    repo = repos[which]
    store = repos["env"].store
    before = sorted(store.list())
    with pytest.raises(DigestMismatchError):
        repo.push_layer(plaintext, digest=other)
    up = repo.start_upload()
    up.write(plaintext)
    with pytest.raises(DigestMismatchError):
        up.complete(other)
    assert sorted(store.list()) == before
    assert not repo.has_layer(other)


@settings(max_examples=30, deadline=None)
@given(which=st.sampled_from(CONFIGS), data=st.data())
def test_a_durable_upload_in_any_parts_stores_exactly_its_content(repos: dict[str, Any], which: str, data: Any) -> None:
    content = data.draw(st.binary(max_size=4 * FRAME + 3), label="content")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=5), label="cuts"))
    uploads = LayerUploads(repos[which])
    upload_id = uploads.initiate_layer_upload().upload_id
    for a, b in zip([0, *cuts], [*cuts, len(content)], strict=True):
        assert uploads.upload_layer_part(upload_id, content[a:b], part_first_byte=a).received == b
    pushed = uploads.complete_layer_upload(upload_id, [Digest.of(content)])
    assert pushed.size == len(content)
    assert repos[which].read_layer(Digest.of(content)) == content
