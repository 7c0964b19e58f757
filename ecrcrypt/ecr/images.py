"""ECR's image operations over one repository: PutImage, BatchGetImage, DescribeImages, ListImages,
BatchDeleteImage, BatchCheckLayerAvailability and PutImageTagMutability.

A registry server needs more than :meth:`Repository.put_image`: the manifest must be stored as the
exact bytes the client sent (its digest is what the client computed and will ask for), with its
media type (OCI and Docker v2 manifests and indexes are served back with the type they came with),
an index may only point at manifests the repository holds, and images can be untagged and deleted.
Shapes follow botocore's ECR model: ``to_api()`` gives the response structure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records
from ecrcrypt.ecr.metadata import RepositoryRecord
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.types import ImageDetail, ImageId, check_tag
from ecrcrypt.errors import (
    EcrCryptError,
    ImageAlreadyExistsError,
    ImageDigestDoesNotMatchError,
    ImageNotFoundError,
    ImageTagAlreadyExistsError,
    InvalidParameterError,
    LayersNotFoundError,
    ReferencedImagesNotFoundError,
    ValidationError,
)

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "ImageApi",
    "ImageDetail",
    "ImageFailure",
    "ImageIdentifier",
    "LayerInfo",
    "ManifestImage",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)


@attrs.frozen(kw_only=True)
class ImageIdentifier:
    """ECR's ``ImageIdentifier``: a digest, a tag, or both (which must then agree)."""

    digest: str | None = None
    tag: str | None = None

    @classmethod
    def of(cls, value: ImageIdentifier | ImageId | Mapping[str, str]) -> ImageIdentifier:
        if isinstance(value, ImageIdentifier):
            return value
        if isinstance(value, ImageId):
            return cls(digest=str(value.digest), tag=value.tag)
        return cls(digest=value.get("imageDigest"), tag=value.get("imageTag"))

    def to_api(self) -> dict[str, str]:
        out = {}
        if self.digest is not None:
            out["imageDigest"] = self.digest
        if self.tag is not None:
            out["imageTag"] = self.tag
        return out


@attrs.frozen(kw_only=True)
class ImageFailure:
    image_id: ImageIdentifier
    failure_code: str
    failure_reason: str

    def to_api(self) -> dict[str, Any]:
        return {
            "imageId": self.image_id.to_api(),
            "failureCode": self.failure_code,
            "failureReason": self.failure_reason,
        }


@attrs.frozen(kw_only=True)
class ManifestImage:
    """BatchGetImage's ``Image``: the manifest exactly as pushed, and its media type."""

    registry_id: str
    repository_name: str
    image_id: ImageId
    manifest: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    media_type: str

    def to_api(self) -> dict[str, Any]:
        return {
            "registryId": self.registry_id,
            "repositoryName": self.repository_name,
            "imageId": ImageIdentifier.of(self.image_id).to_api(),
            "imageManifest": self.manifest.decode(),
            "imageManifestMediaType": self.media_type,
        }


@attrs.frozen(kw_only=True)
class LayerInfo:
    """BatchCheckLayerAvailability's ``Layer``."""

    digest: Digest
    size: int
    availability: str = "AVAILABLE"

    def to_api(self) -> dict[str, Any]:
        return {"layerDigest": str(self.digest), "layerAvailability": self.availability, "layerSize": self.size}


@attrs.frozen
class _Parsed:
    media_type: str
    blobs: tuple[tuple[Digest, int], ...]  # config and layers a manifest needs in the repository
    children: tuple[Digest, ...]  # manifests an index points at
    artifact_media_type: str | None
    subject: str | None


def _digest_of(ref: Any, what: str) -> Digest:
    if not isinstance(ref, dict) or not isinstance(ref.get("digest"), str):
        raise InvalidParameterError(f"every {what} of the image manifest needs a digest")
    try:
        return Digest.parse(ref["digest"])
    except ValidationError as exc:
        raise InvalidParameterError(f"image manifest: {exc}") from None


def _parse(manifest: bytes, media_type: str | None) -> _Parsed:
    try:
        doc = json.loads(manifest)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterError("the image manifest is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidParameterError("the image manifest must be a JSON object with schemaVersion 2")
    declared = doc.get("mediaType")
    if declared is not None and media_type is not None and declared != media_type:
        raise InvalidParameterError(
            f"imageManifestMediaType {media_type} differs from the manifest's mediaType {declared}"
        )
    kind = media_type or declared or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if kind not in MANIFEST_MEDIA_TYPES:
        raise InvalidParameterError(f"unsupported image manifest media type {kind!r}")
    subject = doc.get("subject")
    subject_digest = str(_digest_of(subject, "subject")) if subject is not None else None
    if kind in _INDEXES:
        children = tuple(_digest_of(m, "manifest") for m in doc.get("manifests", []))
        return _Parsed(kind, (), children, doc.get("artifactType"), subject_digest)
    refs = ([doc["config"]] if "config" in doc else []) + list(doc.get("layers", []))
    blobs = []
    for ref in refs:
        d = _digest_of(ref, "layer")
        if not ref.get("urls"):  # foreign layers live elsewhere (Docker's non-distributable layers)
            size = ref.get("size", 0)
            blobs.append((d, size if isinstance(size, int) else 0))
    config = doc.get("config")
    artifact = doc.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else None)
    return _Parsed(kind, tuple(blobs), (), artifact, subject_digest)


def _page_token(index: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": index}).encode()).decode()


def _page_start(token: str | None) -> int:
    if token is None:
        return 0
    try:
        start = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError):
        raise InvalidParameterError("nextToken is invalid") from None
    if not isinstance(start, int) or start < 0:
        raise InvalidParameterError("nextToken is invalid")
    return start


def _paged(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    if max_results is not None and not 1 <= max_results <= 1000:
        raise InvalidParameterError("maxResults must be between 1 and 1000")
    start = _page_start(next_token)
    end = len(items) if max_results is None else start + max_results
    return items[start:end], (_page_token(end) if end < len(items) else None)


class ImageApi:
    """The image operations of one repository, as its :class:`Repository`'s caller."""

    def __init__(self, repository: Repository) -> None:
        self._repo = repository
        self._core = repository._core

    def __repr__(self) -> str:
        return f"ImageApi({self._repo.name!r})"

    def _record(self) -> RepositoryRecord:
        self._repo._require_live()
        return self._repo._record

    # -- PutImageTagMutability --------------------------------------------------------------------
    def put_image_tag_mutability(self, image_tag_mutability: str) -> dict[str, str]:
        if image_tag_mutability not in ("MUTABLE", "IMMUTABLE"):
            raise InvalidParameterError("imageTagMutability must be MUTABLE or IMMUTABLE")
        self._record()
        self._repo._allow(("ecr:PutImageTagMutability",))
        with self._repo._audited("PutImageTagMutability", imageTagMutability=image_tag_mutability):
            if not records.set_tag_mutability(self._core.metadata, self._record(), image_tag_mutability):
                raise self._repo._gone()
        return {
            "registryId": str(self._core.account),
            "repositoryName": self._repo.name,
            "imageTagMutability": image_tag_mutability,
        }

    def image_tag_mutability(self) -> str:
        record = self._record()
        self._repo._allow(("ecr:DescribeRepositories",))
        return records.get_tag_mutability(self._core.metadata, record)

    # -- PutImage ---------------------------------------------------------------------------------
    def put_image(
        self,
        manifest: bytes,
        *,
        media_type: str | None = None,
        tag: str | None = None,
        digest: Digest | str | None = None,
    ) -> ManifestImage:
        """Store ``manifest`` byte for byte; its config and layers (an index: its manifests) must be
        in the repository. Re-pushing an image under a tag it already has is ECR's
        ``ImageAlreadyExistsException``; moving an immutable tag is ``ImageTagAlreadyExistsException``."""
        record = self._record()
        self._repo._allow(("ecr:PutImage",), "kms:GenerateDataKey")
        if not isinstance(manifest, bytes):
            raise InvalidParameterError("imageManifest must be the manifest's bytes")
        if tag is not None:
            check_tag(tag)
        actual = Digest.of(manifest)
        if digest is not None and str(digest) != str(actual):
            raise ImageDigestDoesNotMatchError(f"the manifest's digest is {actual}, not the given {digest}")
        parsed = _parse(manifest, media_type)
        meta = self._core.metadata
        with self._repo._audited("PutImage", imageDigest=str(actual), imageTag=tag):
            missing = [str(d) for d, _ in parsed.blobs if not self._repo._has_layer(d)]
            if missing:
                raise LayersNotFoundError(f"The image references layers not in the repository: {', '.join(missing)}")
            absent = [str(d) for d in parsed.children if meta.get_object(record.name, "manifest", str(d)) is None]
            if absent:
                raise ReferencedImagesNotFoundError(
                    f"The image index references images not in the repository: {', '.join(absent)}"
                )
            exists = meta.get_object(record.name, "manifest", str(actual)) is not None
            current = None if tag is None else meta.get_tag(record.name, tag)
            if exists and (tag is None or current == str(actual)):
                raise ImageAlreadyExistsError(
                    f"Image with digest '{actual}'{f' and tag {tag!r}' if tag else ''} already exists in the "
                    f"repository with name '{record.name}' in registry with id '{self._core.account}'"
                )
            immutable = records.get_tag_mutability(meta, record) == "IMMUTABLE"
            if immutable and current is not None and current != str(actual):
                raise self._tag_taken(tag)
            if not exists:
                self._repo._store("manifest", manifest, actual)
            # ECR's imageSizeInBytes: an image's config and layers; an index, its largest manifest.
            size = sum(n for _, n in parsed.blobs) + max(
                (self._child_size(record, d) for d in parsed.children), default=0
            )
            records.put_manifest(
                meta,
                record,
                records.ManifestRow(
                    digest=str(actual),
                    media_type=parsed.media_type,
                    artifact_media_type=parsed.artifact_media_type,
                    subject=parsed.subject,
                    size_in_bytes=size,
                ),
            )
            if tag is not None:
                outcome = records.put_tag(meta, record, tag, str(actual), immutable=immutable)
                if outcome == records.TagWrite.IMMUTABLE:
                    raise self._tag_taken(tag)
                if outcome != records.TagWrite.DONE:
                    raise self._repo._gone()
        return ManifestImage(
            registry_id=str(self._core.account),
            repository_name=record.name,
            image_id=ImageId(digest=actual, tag=tag),
            manifest=manifest,
            media_type=parsed.media_type,
        )

    def _tag_taken(self, tag: str | None) -> ImageTagAlreadyExistsError:
        return ImageTagAlreadyExistsError(
            f"The image tag '{tag}' already exists in the '{self._repo.name}' repository and cannot be "
            "overwritten because the repository is immutable."
        )

    def _child_size(self, record: RepositoryRecord, digest: Digest) -> int:
        row = records.get_manifest(self._core.metadata, record, str(digest))
        return 0 if row is None else row.size_in_bytes

    def _media_type(self, record: RepositoryRecord, digest: str) -> records.ManifestRow:
        row = records.get_manifest(self._core.metadata, record, digest)
        if row is not None:
            return row
        # Pushed with Repository.put_image (before the image API): an OCI manifest, as build_manifest makes.
        return records.ManifestRow(
            digest=digest, media_type=OCI_MANIFEST, artifact_media_type=None, subject=None, size_in_bytes=0
        )

    def _resolve(self, ident: ImageIdentifier) -> tuple[Digest | None, ImageFailure | None]:
        meta, name = self._core.metadata, self._repo.name
        if ident.digest is None and ident.tag is None:
            return None, ImageFailure(
                image_id=ident, failure_code="MissingDigestAndTag", failure_reason="Missing digest and tag"
            )
        digest: Digest | None = None
        if ident.digest is not None:
            try:
                digest = Digest.parse(ident.digest)
            except ValidationError:
                return None, ImageFailure(
                    image_id=ident, failure_code="InvalidImageDigest", failure_reason="Invalid image digest"
                )
        if ident.tag is not None:
            found = meta.get_tag(name, ident.tag)
            if found is None:
                return None, ImageFailure(
                    image_id=ident, failure_code="ImageNotFound", failure_reason="Requested image not found"
                )
            if digest is not None and str(digest) != found:
                return None, ImageFailure(
                    image_id=ident,
                    failure_code="ImageTagDoesNotMatchDigest",
                    failure_reason="Image tag does not match digest",
                )
            digest = Digest.parse(found)
        assert digest is not None
        if meta.get_object(name, "manifest", str(digest)) is None:
            return None, ImageFailure(
                image_id=ident, failure_code="ImageNotFound", failure_reason="Requested image not found"
            )
        return digest, None

    # -- BatchGetImage ----------------------------------------------------------------------------
    def batch_get_image(
        self,
        image_ids: Iterable[ImageIdentifier | ImageId | Mapping[str, str]],
        *,
        accepted_media_types: Sequence[str] | None = None,
    ) -> tuple[list[ManifestImage], list[ImageFailure]]:
        """The manifests, decrypted and verified against their digests, with their media types; an
        image whose type is not among ``accepted_media_types`` is a failure (no conversion is made)."""
        record = self._record()
        self._repo._allow(("ecr:BatchGetImage",), "kms:Decrypt")
        images: list[ManifestImage] = []
        failures: list[ImageFailure] = []
        for raw in image_ids:
            ident = ImageIdentifier.of(raw)
            digest, failure = self._resolve(ident)
            if failure is not None:
                failures.append(failure)
                continue
            assert digest is not None
            row = self._media_type(record, str(digest))
            if accepted_media_types is not None and row.media_type not in accepted_media_types:
                failures.append(
                    ImageFailure(
                        image_id=ident,
                        failure_code="ImageNotFound",
                        failure_reason=f"the image's manifest media type {row.media_type} is not accepted",
                    )
                )
                continue
            try:
                image = self._repo.get_image(digest=digest)
            except ImageNotFoundError:  # deleted meanwhile
                failures.append(
                    ImageFailure(
                        image_id=ident, failure_code="ImageNotFound", failure_reason="Requested image not found"
                    )
                )
                continue
            images.append(
                ManifestImage(
                    registry_id=str(self._core.account),
                    repository_name=record.name,
                    image_id=ImageId(digest=digest, tag=ident.tag),
                    manifest=image.manifest,
                    media_type=row.media_type,
                )
            )
        return images, failures

    def manifest_info(self, reference: ImageIdentifier) -> tuple[Digest, str, int] | None:
        """``(digest, media type, manifest bytes)`` without decrypting it (a HEAD request), or ``None``."""
        record = self._record()
        self._repo._allow(("ecr:BatchGetImage",))
        digest, failure = self._resolve(reference)
        if failure is not None or digest is None:
            return None
        obj = self._core.metadata.get_object(record.name, "manifest", str(digest))
        if obj is None:
            return None
        return digest, self._media_type(record, str(digest)).media_type, obj.size

    # -- ListImages / DescribeImages --------------------------------------------------------------
    def _image_ids(self, tag_status: str | None) -> list[ImageId]:
        if tag_status not in (None, "TAGGED", "UNTAGGED", "ANY"):
            raise InvalidParameterError("tagStatus must be TAGGED, UNTAGGED or ANY")
        out: list[ImageId] = []
        for image in self._repo._list_images():
            if (tag_status == "TAGGED" and image.tag is None) or (tag_status == "UNTAGGED" and image.tag is not None):
                continue
            out.append(image)
        return out

    def list_images(
        self, *, tag_status: str | None = None, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[ImageId], str | None]:
        """ListImages: one entry per tag (and one per untagged image), in push order; paged."""
        self._record()
        self._repo._allow(("ecr:ListImages",))
        return _paged(self._image_ids(tag_status), max_results, next_token)

    def describe_images(
        self,
        image_ids: Iterable[ImageIdentifier | ImageId | Mapping[str, str]] | None = None,
        *,
        tag_status: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[ImageDetail], str | None]:
        """DescribeImages: one :class:`ImageDetail` per image (not per tag), from the metadata alone
        (nothing is decrypted); ``image_ids`` that do not resolve raise ``ImageNotFoundException``
        as ECR does; paged like ListImages."""
        record = self._record()
        self._repo._allow(("ecr:DescribeImages",))
        meta = self._core.metadata
        digests: list[str] = []
        if image_ids is not None:
            for raw in image_ids:
                d, failure = self._resolve(ImageIdentifier.of(raw))
                if failure is not None:
                    raise ImageNotFoundError(f"{failure.failure_reason}: {failure.image_id.to_api()}")
                assert d is not None
                if str(d) not in digests:
                    digests.append(str(d))
        else:
            for image in self._image_ids(tag_status):
                if str(image.digest) not in digests:
                    digests.append(str(image.digest))
        details = []
        for key in digests:
            obj = meta.get_object(record.name, "manifest", key)
            if obj is None:
                continue
            row = records.get_manifest(meta, record, key)
            details.append(
                ImageDetail(
                    registry_id=str(self._core.account),
                    repository_name=record.name,
                    digest=Digest.parse(key),
                    tags=tuple(meta.tags_of(record.name, key)),
                    size_in_bytes=None if row is None else row.size_in_bytes,
                    pushed_at=obj.pushed_at,
                    # Pushed before media types were recorded: an OCI manifest, as build_manifest makes.
                    media_type=OCI_MANIFEST if row is None else row.media_type,
                    artifact_media_type=None if row is None else row.artifact_media_type,
                    subject_digest=None if row is None or row.subject is None else Digest.parse(row.subject),
                )
            )
        return _paged(details, max_results, next_token)

    def tags(self) -> list[str]:
        """Every tag, in lexical order (the OCI tags list)."""
        record = self._record()
        self._repo._allow(("ecr:ListImages",))
        return [t for t, _ in records.list_tags(self._core.metadata, record)]

    def subject_of(self, digest: Digest) -> str | None:
        """The digest a stored manifest names as its ``subject``, if any."""
        row = records.get_manifest(self._core.metadata, self._record(), str(digest))
        return None if row is None else row.subject

    def referrers(self, subject: Digest, *, artifact_type: str | None = None) -> dict[str, Any]:
        """The OCI referrers list of ``subject``: an image index of the manifests that name it as
        their ``subject`` (signatures, SBOMs, attestations), optionally of one artifact type."""
        record = self._record()
        self._repo._allow(("ecr:BatchGetImage",))
        found = records.referrers(self._core.metadata, record, str(subject))
        manifests = []
        for row, size in found:
            if artifact_type is not None and row.artifact_media_type != artifact_type:
                continue
            descriptor: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest, "size": size}
            if row.artifact_media_type is not None:
                descriptor["artifactType"] = row.artifact_media_type
            manifests.append(descriptor)
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}

    # -- BatchDeleteImage -------------------------------------------------------------------------
    def batch_delete_image(
        self, image_ids: Iterable[ImageIdentifier | ImageId | Mapping[str, str]]
    ) -> tuple[list[ImageId], list[ImageFailure]]:
        """By tag: untag, and delete the image when that was its last tag; by digest: delete the
        image and all its tags. The layers stay (garbage collection removes unreferenced ones)."""
        record = self._record()
        self._repo._allow(("ecr:BatchDeleteImage",))
        meta = self._core.metadata
        deleted: list[ImageId] = []
        failures: list[ImageFailure] = []
        for raw in image_ids:
            ident = ImageIdentifier.of(raw)
            digest, failure = self._resolve(ident)
            if failure is not None:
                failures.append(failure)
                continue
            assert digest is not None
            with self._repo._audited("BatchDeleteImage", imageDigest=str(digest), imageTag=ident.tag):
                if ident.tag is not None and ident.digest is None:
                    records.untag(meta, record, ident.tag)
                    deleted.append(ImageId(digest=digest, tag=ident.tag))
                    if meta.tags_of(record.name, str(digest)):
                        continue
                gone = records.delete_image(meta, record, str(digest))
                if gone is not None:
                    tags, blob_key = gone
                    self._core.store.delete(blob_key)
                    if not (ident.tag is not None and ident.digest is None):
                        deleted.extend([ImageId(digest=digest, tag=t) for t in tags] or [ImageId(digest=digest)])
        return deleted, failures

    # -- BatchCheckLayerAvailability --------------------------------------------------------------
    def batch_check_layer_availability(
        self, layer_digests: Iterable[Digest | str]
    ) -> tuple[list[LayerInfo], list[dict[str, str]]]:
        record = self._record()
        self._repo._allow(("ecr:BatchCheckLayerAvailability",))
        layers: list[LayerInfo] = []
        failures: list[dict[str, str]] = []
        for raw in layer_digests:
            try:
                d = raw if isinstance(raw, Digest) else Digest.parse(raw)
            except (ValidationError, EcrCryptError):
                failures.append(
                    {"layerDigest": str(raw), "failureCode": "InvalidLayerDigest", "failureReason": "Invalid digest"}
                )
                continue
            obj = self._core.metadata.get_object(record.name, "layer", str(d))
            if obj is None:
                failures.append(
                    {"layerDigest": str(d), "failureCode": "MissingLayerDigest", "failureReason": "Missing layer"}
                )
            else:
                layers.append(LayerInfo(digest=d, size=obj.size))
        return layers, failures
