"""The image API: manifests stored byte for byte with their media types, indexes, tags, deletion."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.authorization import authenticate, get_authorization_token
from ecrcrypt.ecr.images import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, ImageApi, ImageIdentifier
from ecrcrypt.ecr.permissions import EcrAuthorization
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.types import ImageId
from ecrcrypt.ecr.uploads import LayerUploads
from ecrcrypt.errors import (
    AccessDeniedError,
    ImageAlreadyExistsError,
    ImageDigestDoesNotMatchError,
    ImageTagAlreadyExistsError,
    InvalidParameterError,
    LayersNotFoundError,
    ReferencedImagesNotFoundError,
)
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.store.memory import MemoryBlobStore
from tests.ecr.support import BOB, make_env


@pytest.fixture
def registry() -> Registry:
    reg = make_env().registry
    reg.create_repository("app")
    return reg


def _manifest(
    registry: Registry, *payloads: bytes, media_type: str | None = OCI_MANIFEST, pretty: bool = True
) -> bytes:
    repo = registry.repository("app")
    layers = [repo.push_layer(p, digest=Digest.of(p)) for p in payloads]
    config = repo.push_layer(b"{}", digest=Digest.of(b"{}"))
    doc: dict[str, object] = {"schemaVersion": 2}
    if media_type is not None:
        doc["mediaType"] = media_type
    doc["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(config.digest), "size": 2}
    doc["layers"] = [{"mediaType": "x", "digest": str(lp.digest), "size": lp.size} for lp in layers]
    # Indented, unsorted keys: the bytes must come back as sent, whatever their formatting.
    return json.dumps(doc, indent=3 if pretty else None).encode()


def test_manifest_bytes_and_media_type_come_back_as_pushed(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    for media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        manifest = _manifest(registry, media_type.encode(), media_type=media_type)
        put = api.put_image(manifest, tag=media_type.rsplit(".", 2)[1])
        assert put.image_id.digest == Digest.of(manifest)
        (got,), failures = api.batch_get_image([{"imageDigest": str(Digest.of(manifest))}])
        assert failures == [] and got.manifest == manifest and got.media_type == media_type
    images, failures = api.batch_get_image([ImageIdentifier(tag="docker")], accepted_media_types=[OCI_MANIFEST])
    assert images == [] and failures[0].failure_code == "ImageNotFound"


def test_put_image_checks_references_digest_and_media_type(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    manifest = _manifest(registry, b"layer")
    missing = manifest.replace(str(Digest.of(b"layer")).encode(), str(Digest.of(b"nope")).encode())
    with pytest.raises(LayersNotFoundError):
        api.put_image(missing)
    with pytest.raises(ImageDigestDoesNotMatchError):
        api.put_image(manifest, digest=Digest.of(b"other"))
    with pytest.raises(InvalidParameterError):
        api.put_image(manifest, media_type=DOCKER_MANIFEST)
    child = api.put_image(manifest, tag="child")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": str(child.image_id.digest), "size": len(manifest)}],
        }
    ).encode()
    api.put_image(index, tag="multi")
    assert api.manifest_info(ImageIdentifier(tag="multi")) == (Digest.of(index), OCI_INDEX, len(index))
    dangling = index.replace(str(child.image_id.digest).encode(), str(Digest.of(b"x")).encode())
    with pytest.raises(ReferencedImagesNotFoundError):
        api.put_image(dangling)
    with pytest.raises(ImageAlreadyExistsError):
        api.put_image(manifest, tag="child")
    api.put_image(manifest, tag="second")  # a new tag for a stored image is fine


def test_immutable_tags_cannot_move(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    one, two = _manifest(registry, b"1"), _manifest(registry, b"2")
    api.put_image(one, tag="v1")
    api.put_image_tag_mutability("IMMUTABLE")
    with pytest.raises(ImageTagAlreadyExistsError):
        api.put_image(two, tag="v1")
    api.put_image(two, tag="v2")
    api.put_image_tag_mutability("MUTABLE")
    api.put_image(two, tag="v1")
    assert registry.repository("app").resolve(tag="v1") == Digest.of(two)


def test_list_describe_page_and_delete(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    manifests = [_manifest(registry, bytes([i]) * 10) for i in range(3)]
    for i, m in enumerate(manifests):
        api.put_image(m, tag=f"t{i}")
    api.put_image(manifests[0], tag="extra")
    untagged = _manifest(registry, b"untagged")
    api.put_image(untagged)
    page, token = api.list_images(max_results=2)
    assert len(page) == 2 and token is not None
    rest, end = api.list_images(max_results=10, next_token=token)
    assert end is None and len(page) + len(rest) == 5
    assert api.list_images(tag_status="UNTAGGED")[0] == [ImageId(digest=Digest.of(untagged))]
    details, _ = api.describe_images([ImageIdentifier(tag="t0")])
    assert (
        details[0].tags == ("extra", "t0") and details[0].size_in_bytes == 12 and details[0].media_type == OCI_MANIFEST
    )
    # untag: the image stays while it has another tag, and goes with its last one
    deleted, failures = api.batch_delete_image([{"imageTag": "extra"}, {"imageTag": "nope"}])
    assert deleted == [ImageId(digest=Digest.of(manifests[0]), tag="extra")]
    assert [f.failure_code for f in failures] == ["ImageNotFound"]
    api.batch_delete_image([{"imageTag": "t0"}])
    assert not any(i.digest == Digest.of(manifests[0]) for i in api.list_images()[0])
    deleted, _ = api.batch_delete_image([{"imageDigest": str(Digest.of(manifests[1]))}])
    assert deleted == [ImageId(digest=Digest.of(manifests[1]), tag="t1")]
    assert api.tags() == ["t2"]
    layers, failures2 = api.batch_check_layer_availability([Digest.of(b"\x02" * 10), "sha256:nothex"])
    assert layers[0].size == 10 and failures2[0]["failureCode"] == "InvalidLayerDigest"


def test_authorization_tokens_carry_the_principal_and_expire(registry: Registry) -> None:
    data = get_authorization_token(registry.as_caller(BOB))
    assert "AWS:" not in repr(data) and data.expires_at == pytest.approx(time.time() + 12 * 3600, abs=60)
    assert authenticate(registry, "AWS", data.password) == BOB
    assert authenticate(registry, "bob", data.password) is None
    assert authenticate(registry, "AWS", data.password + "x") is None
    short = get_authorization_token(registry, lifetime=-1)
    assert authenticate(registry, "AWS", short.password) is None


def test_referrers_list_the_manifests_naming_a_subject(registry: Registry) -> None:
    api = ImageApi(registry.repository("app"))
    image = _manifest(registry, b"image")
    api.put_image(image, tag="v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(image)), "size": len(image)}
    signature = json.loads(_manifest(registry, b"sig"))
    signature["artifactType"] = "application/vnd.example.signature"
    signature["subject"] = subject
    sbom = json.loads(_manifest(registry, b"sbom"))
    sbom["subject"] = subject
    sig_bytes, sbom_bytes = json.dumps(signature).encode(), json.dumps(sbom).encode()
    api.put_image(sig_bytes)
    api.put_image(sbom_bytes)
    index = api.referrers(Digest.of(image))
    assert index["mediaType"] == OCI_INDEX
    assert sorted(m["digest"] for m in index["manifests"]) == sorted(
        [str(Digest.of(sig_bytes)), str(Digest.of(sbom_bytes))]
    )
    only = api.referrers(Digest.of(image), artifact_type="application/vnd.example.signature")["manifests"]
    assert only == [
        {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(sig_bytes)), "size": len(sig_bytes),
         "artifactType": "application/vnd.example.signature"}
    ]  # fmt: skip
    assert api.referrers(Digest.of(sig_bytes))["manifests"] == []


def test_describe_repositories_shows_the_tag_mutability(registry: Registry) -> None:
    ImageApi(registry.repository("app")).put_image_tag_mutability("IMMUTABLE")
    assert registry.describe_repositories(["app"])[0].image_tag_mutability == "IMMUTABLE"
    registry.delete_repository("app", force=True)
    registry.create_repository("app")  # a new repository of the same name starts mutable
    assert registry.repository("app").describe().image_tag_mutability == "MUTABLE"


def test_every_image_and_upload_operation_is_authorized_as_its_caller() -> None:
    """With the permission model on, each operation needs its own ``ecr:`` action (named in the denial)."""
    account = "123456789012"
    local = LocalKms(account=account, region="us-east-1", strict_iam=True)
    for user in ("dev", "reader"):
        local.iam.create_user(user_name=user)
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
    local.iam.put_user_policy(user_name="dev", policy_name="all", policy_document=json.dumps(allow))
    reading = {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:DescribeRepositories"], "Resource": "*"}
    local.iam.put_user_policy(
        user_name="reader", policy_name="read", policy_document=json.dumps({**allow, "Statement": [reading]})
    )
    registry = Registry(
        kms=local.client,
        store=MemoryBlobStore(),
        account=account,
        audit=local.audit,
        caller=f"arn:aws:iam::{account}:user/dev",
        authorization=EcrAuthorization(identities=local),
    )
    registry.create_repository("app")
    dev = ImageApi(registry.repository("app"))
    uploads = LayerUploads(registry.repository("app"))
    upload_id = uploads.initiate_layer_upload().upload_id
    uploads.upload_layer_part(upload_id, b"{}", part_first_byte=0)
    uploads.complete_layer_upload(upload_id, [Digest.of(b"{}")])
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(Digest.of(b"{}")), "size": 2}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "config": config}).encode()
    dev.put_image(manifest, tag="v1")
    reader_repo = registry.as_caller(f"arn:aws:iam::{account}:user/reader").repository("app")
    reader = ImageApi(reader_repo)
    assert reader.batch_get_image([ImageIdentifier(tag="v1")])[0][0].manifest == manifest
    assert reader.image_tag_mutability() == "MUTABLE"
    theirs = LayerUploads(reader_repo)
    refused: list[tuple[str, Callable[[], object]]] = [
        ("ecr:PutImage", lambda: reader.put_image(manifest, tag="v2")),
        ("ecr:ListImages", lambda: reader.list_images()),
        ("ecr:ListImages", lambda: reader.tags()),
        ("ecr:DescribeImages", lambda: reader.describe_images()),
        ("ecr:BatchDeleteImage", lambda: reader.batch_delete_image([ImageIdentifier(tag="v1")])),
        ("ecr:PutImageTagMutability", lambda: reader.put_image_tag_mutability("IMMUTABLE")),
        ("ecr:BatchCheckLayerAvailability", lambda: reader.batch_check_layer_availability([Digest.of(b"{}")])),
        ("ecr:InitiateLayerUpload", lambda: theirs.initiate_layer_upload()),
        ("ecr:UploadLayerPart", lambda: theirs.upload_layer_part(upload_id, b"", part_first_byte=0)),
        ("ecr:CompleteLayerUpload", lambda: theirs.complete_layer_upload(upload_id, [Digest.of(b"")])),
    ]
    for action, call in refused:
        with pytest.raises(AccessDeniedError, match=action):
            call()
    assert dev.tags() == ["v1"]  # nothing the reader tried changed anything


@pytest.mark.parametrize(
    ("length", "valid"), [(0, False), (1, True), (128, True), (129, True), (300, True), (301, False)]
)
def test_image_tags_are_1_to_300_characters_as_botocores_model_says(
    registry: Registry, length: int, valid: bool
) -> None:
    # botocore's ImageTag shape: min 1, max 300 (the OCI route's own bound is 128: tests/server).
    tag = ("v" + "1" * 300)[:length]
    manifest = _manifest(registry, b"tagged")
    api = ImageApi(registry.repository("app"))
    if not valid:
        with pytest.raises(InvalidParameterError, match=r"1-300 of"):
            api.put_image(manifest, tag=tag)
        with pytest.raises(InvalidParameterError):
            registry.repository("app").put_image(manifest, tag=tag)
        return
    put = api.put_image(manifest, tag=tag)
    assert put.image_id.tag == tag
    assert registry.repository("app").resolve(tag=tag) == Digest.of(manifest)
    (got,), _ = api.batch_get_image([ImageIdentifier(tag=tag)])
    assert got.image_id.digest == Digest.of(manifest)
