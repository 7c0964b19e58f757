"""ECR's value types: what DescribeRepositories, PutImage and a layer push return, and manifests.

Kept apart from :mod:`ecrcrypt.ecr.repository` so that the registry, the repository and the
faces share them without importing each other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ecrcrypt.arns import AccountId, RepositoryName
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.digest import Digest
from ecrcrypt.errors import InvalidParameterError, ValidationError

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "LAYER_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "Image",
    "ImageDetail",
    "ImageId",
    "LayerPush",
    "LayerSink",
    "LayerSource",
    "MAX_TAG_LENGTH",
    "OCI_MAX_TAG_LENGTH",
    "RepositoryDescription",
    "build_manifest",
    "check_tag",
    "layer_digests",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
# OCI distribution spec: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. ECR's API is wider in length:
# botocore's ImageTag shape is 1-300 characters (no pattern); the OCI route keeps the spec's 128
# (ecrcrypt.server), and both keep the spec's alphabet, so every tag is one an OCI client can write.
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
MAX_TAG_LENGTH = 300
"""ECR's bound (botocore ``ImageTag``: min 1, max 300)."""
OCI_MAX_TAG_LENGTH = 128
"""The OCI distribution spec's bound (``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``)."""


class LayerSource(Protocol):
    """What a push reads plaintext from: any object with ``read(size)`` (a file, a socket, a pipe)."""

    def read(self, size: int = ..., /) -> bytes: ...


class LayerSink(Protocol):
    """What a pull writes plaintext to: any object with ``write(data)``."""

    def write(self, data: bytes, /) -> Any: ...


@attrs.frozen(kw_only=True)
class RepositoryDescription:
    """DescribeRepositories' ``repository`` structure."""

    registry_id: str
    repository_name: str
    repository_arn: str
    repository_uri: str
    created_at: float
    encryption_configuration: EncryptionConfiguration
    image_tag_mutability: str = "MUTABLE"

    def to_api(self) -> dict[str, Any]:
        return {
            "repositoryArn": self.repository_arn,
            "registryId": self.registry_id,
            "repositoryName": self.repository_name,
            "repositoryUri": self.repository_uri,
            "createdAt": self.created_at,
            "imageTagMutability": self.image_tag_mutability,
            "encryptionConfiguration": self.encryption_configuration.to_api(),
        }


@attrs.frozen(kw_only=True)
class LayerPush:
    """What a layer push stored: ``already_existed`` means nothing was re-encrypted."""

    digest: Digest
    size: int
    stored_size: int
    already_existed: bool

    def to_api(self) -> dict[str, Any]:
        """CompleteLayerUpload's members, plus what ecrcrypt stored (ciphertext size, reuse)."""
        return {
            "layerDigest": str(self.digest),
            "size": self.size,
            "storedSize": self.stored_size,
            "alreadyExisted": self.already_existed,
        }


@attrs.frozen(kw_only=True)
class ImageId:
    digest: Digest
    tag: str | None = None

    def to_api(self) -> dict[str, str]:
        """ECR's ``ImageIdentifier``."""
        out = {"imageDigest": str(self.digest)}
        if self.tag is not None:
            out["imageTag"] = self.tag
        return out


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(t, str) for t in value):
        raise InvalidParameterError("imageTags must be a sequence of tags")
    return tuple(check_tag(t) for t in value)


def _account(value: Any) -> str:
    return str(AccountId(value))


def _repository_name(value: Any) -> str:
    return str(RepositoryName(value))


def _media_type(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
        raise InvalidParameterError(f"{attribute.name} must be a media type (1-255 characters), not {value!r}")


@attrs.frozen(kw_only=True)
class ImageDetail:
    """DescribeImages' ``ImageDetail``: what the registry knows of an image without decrypting it.

    The members are botocore's ECR shape, restricted to what ecrcrypt records: no scan results
    (ecrcrypt does not scan), no pull times and no archival (every image is ``ACTIVE``). The size is
    what ECR reports, the sum of the manifest's config and layers (for an index, its largest
    manifest); ``None`` for an image whose size was never recorded, which ``to_api()`` omits rather
    than inventing a zero.
    """

    registry_id: str = attrs.field(converter=_account)
    repository_name: str = attrs.field(converter=_repository_name)
    digest: Digest = attrs.field(validator=attrs.validators.instance_of(Digest))
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    size_in_bytes: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.instance_of(int), attrs.validators.ge(0)]),
    )
    pushed_at: float = attrs.field(
        converter=float, validator=attrs.validators.ge(0.0)
    )  # epoch seconds, ECR's wire form of a timestamp
    media_type: str = attrs.field(default=MANIFEST_MEDIA_TYPE, validator=_media_type)
    artifact_media_type: str | None = attrs.field(default=None, validator=_media_type)
    subject_digest: Digest | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Digest))
    )

    def to_api(self) -> dict[str, Any]:
        """The ``ImageDetail`` structure as ECR returns it (``imagePushedAt`` in epoch seconds)."""
        out: dict[str, Any] = {
            "registryId": self.registry_id,
            "repositoryName": self.repository_name,
            "imageDigest": str(self.digest),
        }
        if self.tags:
            out["imageTags"] = list(self.tags)
        if self.size_in_bytes is not None:
            out["imageSizeInBytes"] = self.size_in_bytes
        out["imagePushedAt"] = self.pushed_at
        out["imageManifestMediaType"] = self.media_type
        if self.artifact_media_type is not None:
            out["artifactMediaType"] = self.artifact_media_type
        if self.subject_digest is not None:
            out["subjectManifestDigest"] = str(self.subject_digest)
        out["imageStatus"] = "ACTIVE"
        return out


@attrs.frozen(kw_only=True)
class Image:
    digest: Digest
    manifest: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    tags: tuple[str, ...]

    @property
    def layer_digests(self) -> tuple[Digest, ...]:
        return layer_digests(self.manifest)

    def to_api(self, *, registry_id: str, repository_name: str, tag: str | None = None) -> dict[str, Any]:
        """ECR's ``Image`` (BatchGetImage, PutImage): one image id, the tag asked for if any."""
        return {
            "registryId": registry_id,
            "repositoryName": repository_name,
            "imageId": ImageId(digest=self.digest, tag=tag).to_api(),
            "imageManifest": self.manifest.decode(),
            "imageManifestMediaType": MANIFEST_MEDIA_TYPE,
        }


def build_manifest(layers: Sequence[LayerPush], *, config: LayerPush | None = None) -> bytes:
    """A minimal OCI image manifest listing ``layers`` (and ``config`` when given), canonical JSON."""
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE}
    if config is not None:
        doc["config"] = {"mediaType": CONFIG_MEDIA_TYPE, "digest": str(config.digest), "size": config.size}
    doc["layers"] = [{"mediaType": LAYER_MEDIA_TYPE, "digest": str(lp.digest), "size": lp.size} for lp in layers]
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def layer_digests(manifest: bytes) -> tuple[Digest, ...]:
    try:
        doc = json.loads(manifest)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterError("the image manifest is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidParameterError("the image manifest must be a JSON object with schemaVersion 2")
    refs: list[Any] = list(doc.get("layers", []))
    if "config" in doc:
        refs.insert(0, doc["config"])
    out = []
    for ref in refs:
        if not isinstance(ref, dict) or not isinstance(ref.get("digest"), str):
            raise InvalidParameterError("every layer of the image manifest needs a digest")
        try:
            out.append(Digest.parse(ref["digest"]))
        except ValidationError as exc:
            raise InvalidParameterError(f"image manifest: {exc}") from None
    return tuple(out)


def check_tag(tag: str, *, max_length: int = MAX_TAG_LENGTH) -> str:
    """An image tag as ECR's API takes it (1-300 characters); ``max_length=OCI_MAX_TAG_LENGTH`` for the OCI route."""
    if not isinstance(tag, str) or not 1 <= len(tag) <= max_length or tag[0] in ".-" or not set(tag) <= _TAG_CHARS:
        raise InvalidParameterError(
            f"image tag {tag!r} is invalid: 1-{max_length} of [a-zA-Z0-9_.-], not starting with . or -"
        )
    return tag
