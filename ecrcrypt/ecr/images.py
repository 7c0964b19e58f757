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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records
from ecrcrypt.ecr.codec import VerifyingReader
from ecrcrypt.ecr.metadata import ImageLookup, ObjectRecord, RepositoryRecord
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
    "StoredManifest",
    "manifest_subject",
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
class StoredManifest:
    """A manifest as a registry's GET and HEAD answer it: digest, media type, size and (GET) its bytes."""

    digest: Digest
    media_type: str
    size: int
    #: the manifest exactly as pushed; ``None`` when not asked for, or its media type was not accepted
    manifest: bytes | None = attrs.field(repr=lambda b: "None" if b is None else f"<{len(b)} bytes>", default=None)


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


def manifest_subject(manifest: bytes, media_type: str | None = None) -> str | None:
    """The digest ``manifest`` names as its ``subject``, from its bytes (nothing is read).

    What a push answers in ``OCI-Subject``: the subject is part of the manifest, so the pusher,
    who sent the bytes, learns nothing from it that needs a read permission."""
    return _parse(manifest, media_type).subject


@attrs.frozen
class _Found:
    """An image identifier resolved by one lookup: the digest, or the failure ECR reports for it."""

    digest: Digest | None
    failure: ImageFailure | None
    #: what the lookup read (``None``: the identifier was ill-formed and nothing was read)
    lookup: ImageLookup | None = None

    @property
    def media_type(self) -> str:
        # Pushed with Repository.put_image (before the image API): an OCI manifest, as build_manifest makes.
        assert self.lookup is not None
        return self.lookup.media_type or OCI_MANIFEST


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

    def _lookup(self, ident: ImageIdentifier) -> _Found:
        """Resolve ``ident`` with the repository's liveness in one statement (``MetadataStore.find_image``,
        whose docstring says why that is as safe as the separate reads); ``RepositoryNotFoundError``
        when this repository is gone. The failures, and the order they are decided in, are ECR's."""

        def failed(code: str, reason: str, lookup: ImageLookup | None = None) -> _Found:
            return _Found(None, ImageFailure(image_id=ident, failure_code=code, failure_reason=reason), lookup)

        if ident.digest is None and ident.tag is None:
            return failed("MissingDigestAndTag", "Missing digest and tag")
        digest: Digest | None = None
        if ident.digest is not None:
            try:
                digest = Digest.parse(ident.digest)
            except ValidationError:
                return failed("InvalidImageDigest", "Invalid image digest")
        meta, record = self._core.metadata, self._repo._record
        if ident.tag is not None:
            found = meta.find_image(record, tag=ident.tag)
        else:
            found = meta.find_image(record, digest=str(digest))
        if not found.live:
            raise self._repo._gone()
        if found.digest is None:
            return failed("ImageNotFound", "Requested image not found", found)
        if digest is not None and str(digest) != found.digest:
            return failed("ImageTagDoesNotMatchDigest", "Image tag does not match digest", found)
        if found.record is None:
            return failed("ImageNotFound", "Requested image not found", found)
        return _Found(Digest.parse(found.digest), None, found)

    def _lookups(self, idents: Sequence[ImageIdentifier]) -> list[_Found]:
        """Every identifier looked up; the repository's liveness is checked once whatever they are
        (by the lookups themselves, or alone when none could be looked up): callers check their
        permission after this, so a gone repository is reported before a denial, as it always was."""
        found = [self._lookup(ident) for ident in idents]
        if not any(f.lookup is not None for f in found):
            self._record()
        return found

    def _resolve(self, ident: ImageIdentifier) -> tuple[Digest | None, ImageFailure | None]:
        found = self._lookup(ident)
        return found.digest, found.failure

    def _read_manifest(self, digest: Digest, found: ImageLookup) -> bytes:
        """The manifest ``found`` records, decrypted and verified against ``digest`` (audited as BatchGetImage).

        Opened from the record the lookup read, not looked up again: a deletion since then is what it
        always was for a reader holding the record (its blob is there, or reported missing)."""
        provider = self._repo._provider()
        with (
            self._repo._audited("BatchGetImage", imageDigest=str(digest), imageTag=None),
            self._repo._guard(provider),
            self._repo._open("manifest", digest, found.record, provider) as reader,
        ):
            manifest = reader.read()
            reader.read()  # EOF: verifies the digest
        return manifest

    # -- BatchGetImage ----------------------------------------------------------------------------
    def batch_get_image(
        self,
        image_ids: Iterable[ImageIdentifier | ImageId | Mapping[str, str]],
        *,
        accepted_media_types: Sequence[str] | None = None,
    ) -> tuple[list[ManifestImage], list[ImageFailure]]:
        """The manifests, decrypted and verified against their digests, with their media types; an
        image whose type is not among ``accepted_media_types`` is a failure (no conversion is made)."""
        idents = [ImageIdentifier.of(raw) for raw in image_ids]
        found = self._lookups(idents)
        self._repo._allow(("ecr:BatchGetImage",), "kms:Decrypt")
        images: list[ManifestImage] = []
        failures: list[ImageFailure] = []
        for ident, f in zip(idents, found, strict=True):
            if f.failure is not None:
                failures.append(f.failure)
                continue
            assert f.digest is not None and f.lookup is not None
            if accepted_media_types is not None and f.media_type not in accepted_media_types:
                failures.append(
                    ImageFailure(
                        image_id=ident,
                        failure_code="ImageNotFound",
                        failure_reason=f"the image's manifest media type {f.media_type} is not accepted",
                    )
                )
                continue
            images.append(
                ManifestImage(
                    registry_id=str(self._core.account),
                    repository_name=self._repo.name,
                    image_id=ImageId(digest=f.digest, tag=ident.tag),
                    manifest=self._read_manifest(f.digest, f.lookup),
                    media_type=f.media_type,
                )
            )
        return images, failures

    def manifest_info(self, reference: ImageIdentifier) -> tuple[Digest, str, int] | None:
        """``(digest, media type, manifest bytes)`` without decrypting it (a HEAD request), or ``None``."""
        found = self.get_manifest(reference, body=False)
        return None if found is None else (found.digest, found.media_type, found.size)

    def get_manifest(
        self,
        reference: ImageIdentifier,
        *,
        body: bool = True,
        accepts: Callable[[str], bool] | None = None,
    ) -> StoredManifest | None:
        """A registry's GET (``body``) or HEAD of a manifest, from one read of the metadata; ``None``
        when there is no such image. ``accepts`` says whether the client takes a media type: a
        manifest it does not take comes back without its bytes, and nothing is decrypted.

        The permissions are BatchGetImage's, checked where the two calls a GET used to make checked
        them: ``ecr:BatchGetImage`` before anything is told of the image, the caller's
        ``kms:Decrypt`` (the stricter model) only before a manifest is decrypted."""
        found = self._lookup(reference)
        self._repo._allow(("ecr:BatchGetImage",))
        if found.failure is not None:
            return None
        assert found.digest is not None and found.lookup is not None and found.lookup.record is not None
        head = StoredManifest(digest=found.digest, media_type=found.media_type, size=found.lookup.record.size)
        if not body or (accepts is not None and not accepts(head.media_type)):
            return head
        self._repo._allow(("ecr:BatchGetImage",), "kms:Decrypt")
        return attrs.evolve(head, manifest=self._read_manifest(found.digest, found.lookup))

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
        found: list[_Found]
        if image_ids is not None:
            found = self._lookups([ImageIdentifier.of(raw) for raw in image_ids])
            self._repo._allow(("ecr:DescribeImages",))
            for f in found:
                if f.failure is not None:
                    raise ImageNotFoundError(f"{f.failure.failure_reason}: {f.failure.image_id.to_api()}")
        else:
            self._record()
            self._repo._allow(("ecr:DescribeImages",))
            digests = list(dict.fromkeys(str(image.digest) for image in self._image_ids(tag_status)))
            found = [self._lookup(ImageIdentifier(digest=d)) for d in digests]
        details: dict[Digest, ImageDetail] = {}
        for f in found:
            if f.digest is None or f.lookup is None or f.digest in details:
                continue  # deleted since it was listed; or named twice
            details[f.digest] = self._detail(f.digest, f.lookup)
        return _paged(list(details.values()), max_results, next_token)

    def _detail(self, digest: Digest, found: ImageLookup) -> ImageDetail:
        assert found.record is not None
        return ImageDetail(
            registry_id=str(self._core.account),
            repository_name=self._repo.name,
            digest=digest,
            tags=found.tags,
            size_in_bytes=found.size_in_bytes,
            pushed_at=found.record.pushed_at,
            # Pushed before media types were recorded: an OCI manifest, as build_manifest makes.
            media_type=found.media_type or OCI_MANIFEST,
            artifact_media_type=found.artifact_media_type,
            subject_digest=None if found.subject is None else Digest.parse(found.subject),
        )

    def tags(self) -> list[str]:
        """Every tag, in lexical order (the OCI tags list)."""
        record = self._record()
        self._repo._allow(("ecr:ListImages",))
        return [t for t, _ in records.list_tags(self._core.metadata, record)]

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
        """Which layers the repository holds, and their sizes: one statement per layer, each read with
        the repository's liveness (``MetadataStore.find_object``)."""
        found: list[tuple[Digest | str, ObjectRecord | None]] = []  # an ill-formed digest stays a str
        for raw in layer_digests:
            try:
                d = raw if isinstance(raw, Digest) else Digest.parse(raw)
            except (ValidationError, EcrCryptError):
                found.append((raw, None))
                continue
            found.append((d, self._find_layer(d)))
        if not any(isinstance(d, Digest) for d, _ in found):
            self._record()
        self._repo._allow(("ecr:BatchCheckLayerAvailability",))
        layers: list[LayerInfo] = []
        failures: list[dict[str, str]] = []
        for key, rec in found:
            if not isinstance(key, Digest):
                failures.append(
                    {"layerDigest": str(key), "failureCode": "InvalidLayerDigest", "failureReason": "Invalid digest"}
                )
            elif rec is None:
                failures.append(
                    {"layerDigest": str(key), "failureCode": "MissingLayerDigest", "failureReason": "Missing layer"}
                )
            else:
                layers.append(LayerInfo(digest=key, size=rec.size))
        return layers, failures

    def _find_layer(self, digest: Digest) -> ObjectRecord | None:
        found = self._core.metadata.find_object(self._repo._record, "layer", str(digest))
        if not found.live:
            raise self._repo._gone()
        return found.record

    # -- a registry's GET and HEAD of a blob ------------------------------------------------------
    def open_layer(self, digest: Digest) -> tuple[int, VerifyingReader] | None:
        """A registry's GET of a blob from one read of the metadata: its size and a verifying reader of
        its plaintext, or ``None`` when the repository holds no such layer.

        A GET asks what a HEAD asks (``ecr:BatchCheckLayerAvailability``: whether the layer is there,
        its size) and then downloads it (``ecr:GetDownloadUrlForLayer`` and, in the stricter model,
        the caller's ``kms:Decrypt``), in that order, as the two calls it replaces did; the reader is
        opened on the record the one lookup read (``Repository.open_layer`` does the same)."""
        rec = self._find_layer(digest)
        self._repo._allow(("ecr:BatchCheckLayerAvailability",))
        if rec is None:
            return None
        self._repo._allow(("ecr:GetDownloadUrlForLayer",), "kms:Decrypt")
        provider = self._repo._provider()
        with self._repo._audited("GetDownloadUrlForLayer", layerDigest=str(digest)), self._repo._guard(provider):
            return rec.size, self._repo._open("layer", digest, rec, provider)
