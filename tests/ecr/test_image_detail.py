"""ImageDetail: DescribeImages' answer as a validated value, shaped as botocore's ECR ``ImageDetail``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import botocore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import ImageDetail
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.images import OCI_INDEX, OCI_MANIFEST, ImageApi
from ecrcrypt.ecr.metadata import MetadataOperations
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.errors import InvalidParameterError, ValidationError
from ecrcrypt.strategies import account_ids, digests, repository_names
from tests.ecr.support import make_env

_MODEL = next(Path(botocore.__file__).parent.glob("data/ecr/*/service-2.json.gz"))
_SHAPES: dict[str, Any] = json.loads(gzip.decompress(_MODEL.read_bytes()))["shapes"]
_WIRE_TYPES = {"string": str, "long": int, "timestamp": float, "list": list}


def _check_against_botocore(api: dict[str, Any]) -> None:
    members = _SHAPES["ImageDetail"]["members"]
    for name, value in api.items():
        assert name in members, f"{name} is not a member of botocore's ImageDetail"
        shape = _SHAPES[members[name]["shape"]]
        assert isinstance(value, _WIRE_TYPES[shape["type"]]), (name, value)
        if "enum" in shape:
            assert value in shape["enum"]


@pytest.fixture
def registry() -> Registry:
    reg = make_env().registry
    reg.create_repository("app")
    return reg


def _push(registry: Registry, payload: bytes) -> bytes:
    repo = registry.repository("app")
    layer = repo.push_layer(payload, digest=Digest.of(payload))
    config = repo.push_layer(b"{}", digest=Digest.of(b"{}"))
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(config.digest),
                "size": 2,
            },
            "layers": [{"mediaType": "x", "digest": str(layer.digest), "size": layer.size}],
        }
    ).encode()


@given(
    account=account_ids(),
    name=repository_names(),
    digest=digests(),
    tags=st.lists(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True), max_size=3, unique=True),
    size=st.none() | st.integers(min_value=0, max_value=10**12),
    pushed_at=st.floats(min_value=0, max_value=4e9),
    subject=st.none() | digests(),
)
def test_every_member_is_botocores(
    account: Any, name: Any, digest: Digest, tags: list[str], size: int | None, pushed_at: float, subject: Digest | None
) -> None:
    detail = ImageDetail(
        registry_id=str(account),
        repository_name=str(name),
        digest=digest,
        tags=tags,
        size_in_bytes=size,
        pushed_at=pushed_at,
        artifact_media_type="application/vnd.oci.image.config.v1+json",
        subject_digest=subject,
    )
    api = detail.to_api()
    _check_against_botocore(api)
    assert api["imageDigest"] == str(digest) and api.get("imageTags", []) == tags
    assert ("imageSizeInBytes" in api) == (size is not None)  # an unknown size is omitted, never 0
    assert api.get("subjectManifestDigest") == (None if subject is None else str(subject))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"registry_id": "12345"}, ValidationError),
        ({"repository_name": "Upper/Case"}, ValidationError),
        ({"digest": "sha256:" + "0" * 64}, TypeError),
        ({"tags": "latest"}, InvalidParameterError),
        ({"tags": ["-bad"]}, InvalidParameterError),
        ({"size_in_bytes": -1}, ValueError),
        ({"pushed_at": -5.0}, ValueError),
        ({"media_type": ""}, InvalidParameterError),
    ],
)
def test_construction_refuses_what_ecr_would_never_return(change: dict[str, Any], error: type[Exception]) -> None:
    fields: dict[str, Any] = {
        "registry_id": "123456789012",
        "repository_name": "app",
        "digest": Digest.of(b"m"),
        "pushed_at": 1.0,
    }
    ImageDetail(**fields)
    with pytest.raises(error):
        ImageDetail(**{**fields, **change})


def test_describe_images_returns_image_details_from_the_metadata(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    manifest = _push(registry, b"layer" * 100)
    api.put_image(manifest, tag="v1")
    (detail,), token = api.describe_images()
    assert token is None and isinstance(detail, ImageDetail)
    assert detail.digest == Digest.of(manifest) and detail.tags == ("v1",)
    assert detail.size_in_bytes == 500 + 2 and detail.media_type == OCI_MANIFEST
    assert detail.artifact_media_type == "application/vnd.oci.image.config.v1+json"
    _check_against_botocore(detail.to_api())


def test_an_index_counts_its_largest_manifest_as_ecr_does(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    small, large = _push(registry, b"s" * 10), _push(registry, b"L" * 1000)
    for m in (small, large):
        api.put_image(m)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(m)), "size": len(m)} for m in (small, large)
            ],
        }
    ).encode()
    api.put_image(index, tag="multi")
    (detail,), _ = api.describe_images([{"imageTag": "multi"}])
    assert detail.media_type == OCI_INDEX and detail.size_in_bytes == 1000 + 2


def test_an_image_put_through_the_repository_has_its_size_too(registry: Registry) -> None:
    repo = registry.repository("app")
    manifest = _push(registry, b"r" * 300)
    repo.put_image(manifest, tag="plain")
    (detail,), _ = ImageApi(repo).describe_images([{"imageTag": "plain"}])
    # Counted from the stored layers, not from the sizes the manifest declares.
    assert detail.size_in_bytes == 300 + 2 and detail.media_type == OCI_MANIFEST


def test_an_image_without_a_recorded_size_omits_it_rather_than_saying_zero(registry: Registry) -> None:
    # A registry written before sizes were recorded (or a crash between storing a manifest and its row).
    repo = registry.repository("app")
    manifest = _push(registry, b"o" * 40)
    repo.put_image(manifest, tag="old")
    meta = registry._core.metadata
    assert isinstance(meta, MetadataOperations)
    meta._write(lambda db: db.execute("DELETE FROM image_manifests"))
    (detail,), _ = ImageApi(repo).describe_images([{"imageTag": "old"}])
    assert detail.size_in_bytes is None and "imageSizeInBytes" not in detail.to_api()
    assert detail.media_type == OCI_MANIFEST and detail.tags == ("old",)
