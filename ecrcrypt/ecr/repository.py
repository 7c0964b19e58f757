"""One ECR repository: encrypted push and pull of layers and images.

A :class:`Repository` is obtained from :meth:`ecrcrypt.ecr.registry.Registry.repository`
and is bound to the caller who asked for it (the ``userIdentity`` of the audit
events it records). Every layer and manifest is one ESDK message (two for
``KMS_DSSE``) with a fresh data key bound to ECR's two-key encryption context (plus the
repository's uid, ``ecr.lifecycle``); the
plaintext digest is computed while streaming and checked against the declared one.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ecrcrypt.arns import RepositoryArn
from ecrcrypt.config import EncryptionType
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records
from ecrcrypt.ecr.codec import (
    COPY_CHUNK,
    REPOSITORY_UID_KEY,
    BodyFirstUpload,
    DecryptedRangeSource,
    OnceKeyProvider,
    VerifyingReader,
    Written,
    encrypt_stream,
    inner_context,
    open_decrypting,
)
from ecrcrypt.ecr.core import RegistryCore
from ecrcrypt.ecr.crashpoints import crashpoint
from ecrcrypt.ecr.liveness import current_owner
from ecrcrypt.ecr.metadata import BlobIntent, ObjectRecord, RepositoryRecord, now
from ecrcrypt.ecr.types import (
    MANIFEST_MEDIA_TYPE,
    Image,
    ImageId,
    LayerPush,
    LayerSink,
    LayerSource,
    RepositoryDescription,
    check_tag,
    layer_digests,
)
from ecrcrypt.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    DigestMismatchError,
    EcrCryptError,
    ImageNotFoundError,
    InvalidParameterError,
    LayersNotFoundError,
    RepositoryNotFoundError,
    StreamClosedError,
    ValidationError,
)
from ecrcrypt.keyprovider import KeyProvider
from ecrcrypt.store.protocol import BlobRangeReader
from ecrcrypt.streams.ranges import decrypt_range

__all__ = ["LayerUpload", "Repository"]


def _as_digest(value: Digest | str) -> Digest:
    return value if isinstance(value, Digest) else Digest.parse(value)


def _reader(source: LayerSource | bytes | bytearray | memoryview) -> Callable[[], bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        pos = 0

        def chunk() -> bytes:
            nonlocal pos
            data = bytes(view[pos : pos + COPY_CHUNK])
            pos += len(data)
            return data

        return chunk
    if isinstance(source, str) or not callable(getattr(source, "read", None)):
        raise InvalidParameterError(
            f"a layer is bytes or a readable binary source (with read()), not {type(source).__name__}"
        )
    return lambda: source.read(COPY_CHUNK)


class Repository:
    """A repository of a :class:`~ecrcrypt.ecr.registry.Registry`, bound to one caller.

    For a KMS repository every object's data key takes one call under the ECR grant
    (the ECR service principal's GenerateDataKeyWithoutPlaintext / Decrypt / ReEncrypt)
    and one under the storage grant (the storage principal's Decrypt, how it receives
    the plaintext key), so revoking either grant stops every push and pull of the
    repository -- each layer, upload and manifest -- and the error names the grant.
    AES256 repositories use the registry's service-managed key.
    """

    def __init__(self, core: RegistryCore, record: RepositoryRecord, caller: str) -> None:
        self._core = core
        self._record = record
        self._caller = caller
        self._arn = core.repository_arn(record.name)
        self._type = EncryptionType(record.encryption_type)

    def __repr__(self) -> str:
        return f"Repository({str(self._arn)!r}, {self._type.value}, caller={self._caller!r})"

    def as_caller(self, principal: str) -> Repository:
        """This very repository (the one whose record this handle holds), acting as ``principal``,
        without reading the metadata. As safe as holding a handle: every operation checks, in the
        statement that reads what it needs, that this repository (its uid) is still live, and a
        record never changes while its uid lives (the encryption configuration is fixed at creation)."""
        return Repository(self._core, self._record, principal)

    # -- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def arn(self) -> RepositoryArn:
        return self._arn

    @property
    def encryption_type(self) -> EncryptionType:
        return self._type

    @property
    def kms_key(self) -> str | None:
        """The key ARN recorded at creation (``None`` for AES256)."""
        return self._record.kms_key

    @property
    def grant_ids(self) -> tuple[str, ...]:
        return tuple(g.grant_id for g in self._record.grants)

    @property
    def caller(self) -> str:
        return self._caller

    def describe(self) -> RepositoryDescription:
        """DescribeRepositories for this repository (``ecr:DescribeRepositories``)."""
        self._allow(("ecr:DescribeRepositories",))
        return self._core.description(self._record)

    # -- internals ------------------------------------------------------------------------
    def _allow(self, actions: tuple[str, ...], kms_action: str | None = None) -> None:
        """The caller's ``ecr:`` permissions for this call (ecr.permissions; nothing in open mode), and
        with the article's stricter model its own ``kms_action`` on the repository's key."""
        try:
            self._core.authorize(self._caller, actions, self._record.name)
            if kms_action is not None:
                self._core.authorize_kms(self._caller, kms_action, self._record.name, self._record.kms_key)
        except AccessDeniedError as exc:
            # CloudTrail records a refused call as the call, with its errorCode and errorMessage.
            self._core.audit_event(self._caller, actions[0].split(":", 1)[1], self.name, error=exc)
            raise

    def _prefix(self, kind: str) -> str:
        return f"{self._core.account}/{self._record.uid}/{kind}s"

    def _blob_key(self, kind: str, digest: Digest) -> str:
        return f"{self._prefix(kind)}/{digest}"

    def _context(self, kind: str, digest: Digest) -> EncryptionContext:
        context = EncryptionContext.for_ecr_object(
            bucket=self._core.bucket, prefix=self._prefix(kind), digest=digest, repository=self._arn
        )
        return context.union({REPOSITORY_UID_KEY: self._record.uid}) if self._record.binds_uid else context

    def _inner(self) -> EncryptionContext | None:
        if self._type is not EncryptionType.KMS_DSSE:
            return None
        return inner_context(str(self._arn), self._record.uid if self._record.binds_uid else None)

    def _provider(self) -> KeyProvider:
        # One provider per object operation: it records whose KMS call (ECR's or storage's) was refused.
        return self._core.provider_for(self._record)

    def _guard(self, provider: KeyProvider) -> AbstractContextManager[None]:
        return self._core.kms_errors(self._record, provider)

    @contextmanager
    def _audited(self, event_name: str, **params: Any) -> Iterator[None]:
        """Record the ECR event for this call; a failed call is recorded with its error code, as
        CloudTrail records failed API calls (so "who tried to pull" is answerable too)."""
        try:
            yield
        except EcrCryptError as exc:
            self._core.audit_event(self._caller, event_name, self.name, error=exc, **params)
            raise
        self._core.audit_event(self._caller, event_name, self.name, **params)

    def _require_live(self) -> None:
        # A Repository handle outlives nothing: once deleted (or re-created) it refuses to work.
        current = self._core.metadata.get_repository(self._record.name)
        if current is None or current.uid != self._record.uid:
            raise self._gone()

    def _gone(self) -> LookupError:

        return RepositoryNotFoundError(
            f"The repository with name '{self._record.name}' does not exist in the registry with id "
            f"'{self._core.account}'"
        )

    def _begin_blob(self, key: str) -> None:
        """Announce a blob before it is opened: garbage collection keeps a blob under an intent
        whose process is alive, so a blob committed and not yet recorded is never collected."""
        self._core.metadata.begin_blob(
            BlobIntent(blob_key=key, repository_uid=self._record.uid, owner=current_owner(), started_at=now())
        )
        crashpoint("push:intent")

    def _drop_blob(self, key: str) -> None:
        """Undo a push that will not be recorded: its blob (if committed), then its intent."""
        self._core.store.delete(key)
        crashpoint("push:discarded")
        self._core.metadata.end_blob(key)

    def _store(
        self,
        kind: str,
        source: LayerSource | bytes | bytearray | memoryview,
        declared: Digest,
        *,
        replacing: str | None = None,
    ) -> tuple[ObjectRecord, bool]:
        """Encrypt ``source`` into a blob of its own and record it; the record in force and whether
        this push made it (``False``: another push of the digest was recorded first and won).

        Every push writes a fresh blob key (``<digest>.<push id>``), so a committed object is never
        overwritten: two racing pushes of one digest each write their own blob, the first to be
        recorded wins and the other deletes its blob. A reader holds one object from start to end.
        """
        key = f"{self._blob_key(kind, declared)}.{_upload_id()[:16]}"
        provider = self._provider()
        self._begin_blob(key)
        try:
            with self._guard(provider), self._core.store.open_write(key) as sink:
                written = encrypt_stream(
                    sink,
                    _reader(source),
                    provider=provider,
                    context=self._context(kind, declared),
                    inner=self._inner(),
                    frame_length=self._core.frame_length,
                )
                if written.sha256 != declared:
                    sink.abort()
                    raise DigestMismatchError(f"content has digest {written.sha256}, not the declared {declared}")
                crashpoint("push:encrypted")
                sink.commit()
        except BaseException:
            self._core.metadata.end_blob(key)  # nothing was committed
            raise
        crashpoint("push:committed")
        return self._record_object(kind, declared, written, key, replacing=replacing)

    def _record_object(
        self, kind: str, digest: Digest, written: Written, blob_key: str, *, replacing: str | None = None
    ) -> tuple[ObjectRecord, bool]:
        rec = ObjectRecord(
            kind=kind,
            digest=str(digest),
            size=written.size,
            stored_size=written.stored_size,
            inner_size=written.inner_size,
            pushed_at=now(),
            blob_key=blob_key,
        )
        try:
            current = self._core.metadata.put_object(self._record, rec, replacing=replacing)
        except BaseException:
            self._drop_blob(blob_key)
            raise
        if current is None:
            # Deleted (or deleted and re-created) while this push was streaming: the blob is
            # under the old repository's prefix (its uid) and must not be attached to a new one.
            self._drop_blob(blob_key)
            raise self._gone()
        if current.blob_key != blob_key:
            self._drop_blob(blob_key)  # another push of this digest was recorded first: it stands
            return current, False
        crashpoint("push:recorded")
        return current, True

    def _live_object(self, kind: str, digest: Digest | str) -> tuple[Digest | None, ObjectRecord | None]:
        """The parsed digest and the object's record (``None``: not held), read with the repository's
        liveness in one round trip (``MetadataStore.find_object``, whose docstring says why that is as
        safe as the two reads); ``RepositoryNotFoundError`` when gone, where ``_require_live`` raised it.

        An ill-formed digest is not looked up: liveness alone is checked and ``(None, None)`` comes
        back, so the caller's own parse raises after its permission check, as it always did.
        """
        try:
            d = _as_digest(digest)
        except ValidationError:
            self._require_live()
            return None, None
        found = self._core.metadata.find_object(self._record, kind, str(d))
        if not found.live:
            raise self._gone()
        return d, found.record

    def _object(self, kind: str, digest: Digest) -> ObjectRecord:
        return self._held(kind, digest, self._core.metadata.get_object(self._record.name, kind, str(digest)))

    def _held(self, kind: str, digest: Digest, rec: ObjectRecord | None) -> ObjectRecord:
        """``rec``, or the error of an object the repository does not hold."""
        if rec is None:
            if kind == "manifest":
                raise ImageNotFoundError(f"The image with digest {digest} does not exist in '{self.name}'")
            raise LayersNotFoundError(f"The layer {digest} does not exist in the repository '{self.name}'")
        return rec

    def _open(self, kind: str, digest: Digest, rec: ObjectRecord | None, provider: KeyProvider) -> VerifyingReader:
        """Open a verifying reader of the object ``rec`` records; the caller wraps this in ``self._guard(provider)``."""
        rec = self._held(kind, digest, rec)
        try:
            source = self._core.store.open_read(rec.blob_key)
        except BlobNotFoundError:
            raise LayersNotFoundError(f"the stored object for {digest} is missing from the blob store") from None
        return open_decrypting(
            source,
            provider=provider,
            context=self._context(kind, digest),
            inner=self._inner(),
            expected=digest,
        )

    # -- layers -------------------------------------------------------------------------
    def has_layer(self, digest: Digest | str) -> bool:
        """Whether the repository holds the layer: ECR's BatchCheckLayerAvailability (``ecr:`` action of that name)."""
        self._allow((_CHECK_LAYERS,))
        return self._has_layer(_as_digest(digest))

    def _has_layer(self, digest: Digest) -> bool:
        # Unchecked: for operations that asked for their own action (PutImage checks its layers).
        return self._core.metadata.get_object(self._record.name, "layer", str(digest)) is not None

    def push_layer(self, source: LayerSource | bytes | bytearray | memoryview, *, digest: Digest | str) -> LayerPush:
        """Encrypt and store a layer whose digest the client declared up front (header first).

        Content-addressed: a layer already in the repository is not read nor re-encrypted.
        On a digest mismatch nothing is stored and :class:`DigestMismatchError` is raised.
        """
        # Liveness and the layer's record in one read (_live_object); the errors keep their order.
        parsed, existing = self._live_object("layer", digest)
        self._allow(_PUSH_ACTIONS, "kms:GenerateDataKey")
        declared = _as_digest(digest) if parsed is None else parsed
        if existing is not None and self._core.store.exists(existing.blob_key):
            return LayerPush(
                digest=declared, size=existing.size, stored_size=existing.stored_size, already_existed=True
            )
        # A record whose blob is missing from the store may be replaced (a repair); nothing else.
        replacing = None if existing is None else existing.blob_key
        with self._audited("CompleteLayerUpload", layerDigests=[str(declared)]):
            rec, created = self._store("layer", source, declared, replacing=replacing)
        return LayerPush(digest=declared, size=rec.size, stored_size=rec.stored_size, already_existed=not created)

    def start_upload(self) -> LayerUpload:
        """A chunked upload whose digest is declared only at :meth:`LayerUpload.complete` (body first)."""
        self._require_live()
        self._allow(_PUSH_ACTIONS, "kms:GenerateDataKey")
        return LayerUpload(self)

    def open_layer(self, digest: Digest | str) -> VerifyingReader:
        """A readable of the layer's plaintext; the digest is verified when EOF is reached."""
        parsed, rec = self._live_object("layer", digest)
        self._allow(("ecr:GetDownloadUrlForLayer",), "kms:Decrypt")
        d = _as_digest(digest) if parsed is None else parsed
        provider = self._provider()
        with self._audited("GetDownloadUrlForLayer", layerDigest=str(d)), self._guard(provider):
            return self._open("layer", d, rec, provider)

    def pull_layer(self, digest: Digest | str, destination: LayerSink) -> int:
        """Stream the layer's plaintext into ``destination``; returns the byte count."""
        if not callable(getattr(destination, "write", None)):
            raise InvalidParameterError(f"destination needs a write() method; {type(destination).__name__} has none")
        parsed, rec = self._live_object("layer", digest)
        self._allow(("ecr:GetDownloadUrlForLayer",), "kms:Decrypt")
        d = _as_digest(digest) if parsed is None else parsed
        total = 0
        provider = self._provider()
        with (
            self._audited("GetDownloadUrlForLayer", layerDigest=str(d)),
            self._guard(provider),
            self._open("layer", d, rec, provider) as reader,
        ):
            if isinstance(destination, io.IOBase):
                # io's write contract: the object uses the buffer only during the call. So it is
                # handed the reader's own buffer, nothing is copied out (VerifyingReader.read_view).
                while view := reader.read_view():
                    destination.write(view)
                    total += len(view)
            else:
                # Any other sink may keep what it is given: a bytes of its own per frame.
                while data := reader.read_chunk():
                    destination.write(data)
                    total += len(data)
        return total

    def read_layer(self, digest: Digest | str) -> bytes:
        """The whole plaintext of a (small) layer."""
        parts: list[bytes] = []

        class _Sink:
            def write(self, data: bytes) -> int:
                parts.append(data)
                return len(data)

        self.pull_layer(digest, _Sink())
        return b"".join(parts)

    def read_layer_range(self, digest: Digest | str, offset: int, length: int) -> bytes:
        """Plaintext bytes ``[offset, offset+length)`` of a layer, decrypting only the frames they span."""

        parsed, found = self._live_object("layer", digest)
        self._allow(("ecr:GetDownloadUrlForLayer",), "kms:Decrypt")
        d = _as_digest(digest) if parsed is None else parsed
        rec = self._held("layer", d, found)
        provider = self._provider()
        context = self._context("layer", d)
        with (
            self._audited("GetDownloadUrlForLayer", layerDigest=str(d)),
            self._guard(provider),
            self._open_ranges(d, rec.blob_key) as source,
        ):
            # One pinned reader for every read of the request: header, final frame and covered
            # frames all come from the one message that was stored when the read began.
            if self._type is EncryptionType.KMS_DSSE:
                assert rec.inner_size is not None
                inner_source = DecryptedRangeSource(source, OnceKeyProvider(provider), context, rec.inner_size)
                inner = self._inner()
                assert inner is not None
                data = decrypt_range(inner_source, offset, length, provider=provider, context=inner)
            else:
                data = decrypt_range(source, offset, length, provider=provider, context=context)
        return data

    def _open_ranges(self, digest: Digest, blob_key: str) -> BlobRangeReader:
        try:
            return self._core.store.open_ranges(blob_key)
        except BlobNotFoundError:
            raise LayersNotFoundError(f"the stored object for {digest} is missing from the blob store") from None

    def layer_size(self, digest: Digest | str) -> int:
        """The plaintext size of a stored layer (``LayersNotFoundError`` or the like when absent).

        BatchCheckLayerAvailability answers a layer's size, so it is that call's action.
        """
        parsed, rec = self._live_object("layer", digest)
        self._allow((_CHECK_LAYERS,))
        d = _as_digest(digest) if parsed is None else parsed
        return self._held("layer", d, rec).size

    def list_layers(self) -> list[Digest]:
        """Every layer the repository holds. ECR has no ListLayers: what it tells is which layers are
        available, so it asks for ``ecr:BatchCheckLayerAvailability``."""
        self._allow((_CHECK_LAYERS,))
        return [Digest.parse(r.digest) for r in self._core.metadata.list_objects(self._record.name, "layer")]

    # -- images -------------------------------------------------------------------------
    def put_image(self, manifest: bytes | Mapping[str, Any], *, tag: str | None = None) -> ImageId:
        """Store an image manifest (every layer it lists must be in the repository) and tag it."""
        self._require_live()
        self._allow(("ecr:PutImage",), "kms:GenerateDataKey")
        if isinstance(manifest, Mapping):
            manifest = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        if not isinstance(manifest, bytes):
            raise InvalidParameterError("imageManifest must be bytes or a JSON mapping")
        if tag is not None:
            check_tag(tag)
        references = layer_digests(manifest)
        digest = Digest.of(manifest)
        # The layers it references and the manifest itself, in one read.
        held = self._core.metadata.get_objects(
            self._record.name, [("layer", str(d)) for d in references] + [("manifest", str(digest))]
        )
        missing = [str(d) for d in references if ("layer", str(d)) not in held]
        if missing:
            raise LayersNotFoundError(f"The image references layers not in the repository: {', '.join(missing)}")
        with self._audited("PutImage", imageDigest=str(digest), imageTag=tag):
            if ("manifest", str(digest)) not in held:
                self._store("manifest", manifest, digest)
                sizes = [held[("layer", str(d))].size for d in references]
                records.put_manifest(self._core.metadata, self._record, self._manifest_row(manifest, digest, sizes))
            if tag is not None and not self._core.metadata.put_tag(self._record, tag, str(digest)):
                self._require_live()  # deleted meanwhile: RepositoryNotFoundError
                raise ImageNotFoundError(f"The image with digest {digest} does not exist in '{self.name}'")
        return ImageId(digest=digest, tag=tag)

    def _manifest_row(self, manifest: bytes, digest: Digest, sizes: list[int]) -> records.ManifestRow:
        """What DescribeImages reports without decrypting: the media type, and the size as ECR
        counts it (config and layers), from the stored layers' ``sizes`` rather than the sizes the
        manifest claims."""
        doc = json.loads(manifest)  # layer_digests has parsed it already
        config = doc.get("config")
        declared = doc.get("mediaType")
        return records.ManifestRow(
            digest=str(digest),
            media_type=declared if isinstance(declared, str) and declared else MANIFEST_MEDIA_TYPE,
            artifact_media_type=config.get("mediaType") if isinstance(config, dict) else None,
            subject=None,
            size_in_bytes=sum(sizes),
        )

    def resolve(self, *, tag: str | None = None, digest: Digest | str | None = None) -> Digest:
        """The digest an image id names: what DescribeImages answers for it (``ecr:DescribeImages``)."""
        self._allow(("ecr:DescribeImages",))
        return self._resolve(tag=tag, digest=digest)

    def _resolve(self, *, tag: str | None = None, digest: Digest | str | None = None) -> Digest:
        if (tag is None) == (digest is None):
            raise InvalidParameterError("give exactly one of imageTag and imageDigest")
        if tag is not None:
            check_tag(tag)  # a tag of another type is refused, not looked up as its str()
            found = self._core.metadata.get_tag(self._record.name, tag)
            if found is None:
                raise ImageNotFoundError(f"The image with tag '{tag}' does not exist in '{self.name}'")
            return Digest.parse(found)
        return _as_digest(digest)  # type: ignore[arg-type]

    def get_image(self, *, tag: str | None = None, digest: Digest | str | None = None) -> Image:
        """Decrypt and return an image's manifest (BatchGetImage).

        The repository's liveness, the tag, the manifest's record and its tags are one read
        (``MetadataStore.find_image``); the errors, and the order they are checked in, are those
        of the separate reads it replaced. Ill-formed arguments take the separate reads, which
        raise their own errors.
        """
        reference = _image_reference(tag, digest)
        if reference is None:
            self._require_live()
            self._allow(("ecr:BatchGetImage",), "kms:Decrypt")
            self._resolve(tag=tag, digest=digest)  # raises the argument's error
            raise AssertionError("an image reference _image_reference refused was accepted")  # pragma: no cover
        found = self._core.metadata.find_image(self._record, tag=reference[0], digest=reference[1])
        if not found.live:
            raise self._gone()
        self._allow(("ecr:BatchGetImage",), "kms:Decrypt")
        if found.digest is None:
            raise ImageNotFoundError(f"The image with tag '{tag}' does not exist in '{self.name}'")
        d = Digest.parse(found.digest)
        provider = self._provider()
        with (
            self._audited("BatchGetImage", imageDigest=str(d), imageTag=tag),
            self._guard(provider),
            self._open("manifest", d, found.record, provider) as reader,
        ):
            manifest = reader.read()
            reader.read()  # EOF: verifies the digest
        return Image(digest=d, manifest=manifest, tags=found.tags)

    def list_images(self) -> list[ImageId]:
        """ListImages (``ecr:ListImages``): one id per tag, and one per untagged manifest."""
        self._allow(("ecr:ListImages",))
        return self._list_images()

    def _list_images(self) -> list[ImageId]:
        # Unchecked: DescribeImages lists the images too, under its own action.
        out: list[ImageId] = []
        for rec in self._core.metadata.list_objects(self._record.name, "manifest"):
            tags = self._core.metadata.tags_of(self._record.name, rec.digest)
            d = Digest.parse(rec.digest)
            out.extend([ImageId(digest=d, tag=t) for t in tags] or [ImageId(digest=d)])
        return out


def _image_reference(tag: str | None, digest: Digest | str | None) -> tuple[str | None, str | None] | None:
    """``(tag, digest)`` to look up, or ``None`` when the arguments are not a well-formed image id:
    exactly one of a valid tag and a valid digest."""
    if (tag is None) == (digest is None):
        return None
    try:
        if tag is not None:
            return check_tag(tag), None
        return None, str(_as_digest(digest))  # type: ignore[arg-type]
    except (InvalidParameterError, ValidationError):
        return None


# HEAD of a blob, "does the repository hold these layers": docker's first call of a push and of a pull.
_CHECK_LAYERS = "ecr:BatchCheckLayerAvailability"
# What a layer push is, in ECR's API: each of these is checked (AWS: docker push needs all three).
_PUSH_ACTIONS = ("ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload")


class LayerUpload:
    """A chunked layer upload (InitiateLayerUpload → UploadLayerPart … → CompleteLayerUpload).

    The data is encrypted as it arrives, body first; the header with the final
    context is written at :meth:`complete`. Leaving a ``with`` block without
    completing aborts: nothing becomes visible.
    """

    def __init__(self, repository: Repository) -> None:
        self._repo = repository
        # The blob is named by the upload, not by the digest that is not known yet; the
        # metadata maps the digest to it (the context still names the layer's content address).
        self._key = f"{repository._prefix('upload')}/{_upload_id()}"
        self._provider = repository._provider()
        repository._begin_blob(self._key)
        try:
            with repository._guard(self._provider):
                self._upload: BodyFirstUpload | None = BodyFirstUpload(
                    repository._core.store,
                    self._key,
                    provider=self._provider,
                    context_for=lambda d: repository._context("layer", d),
                    inner=repository._inner(),
                    frame_length=repository._core.frame_length,
                )
        except BaseException:
            repository._core.metadata.end_blob(self._key)
            raise
        self._written = 0

    def __repr__(self) -> str:
        return f"LayerUpload({self._repo.name!r}, written={self._written})"

    def write(self, data: bytes | memoryview) -> int:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidParameterError(f"an upload takes bytes, not {type(data).__name__}")
        if self._upload is None:
            raise StreamClosedError("write to a completed or aborted upload")
        n = self._upload.write(data)
        self._written += n
        crashpoint("upload:write")
        return n

    def abort(self) -> None:
        if self._upload is not None:
            self._upload.abort()
            self._upload = None
            self._repo._core.metadata.end_blob(self._key)

    def complete(self, digest: Digest | str) -> LayerPush:
        """Declare the digest; on a mismatch nothing is stored and :class:`DigestMismatchError` is raised.

        A layer the repository already holds is discarded (its bytes were already
        encrypted: the digest was not known while they arrived).
        """
        if self._upload is None:
            raise StreamClosedError("upload already completed or aborted")
        repo = self._repo
        declared = _as_digest(digest)
        upload, self._upload = self._upload, None
        existing = repo._core.metadata.get_object(repo.name, "layer", str(declared))
        try:
            with repo._audited("CompleteLayerUpload", layerDigests=[str(declared)]), repo._guard(self._provider):
                written = upload.finish(declared, keep=lambda: existing is None)
        except BaseException:
            repo._core.metadata.end_blob(self._key)  # the upload was aborted: nothing committed
            raise
        if written is None:
            assert existing is not None
            repo._core.metadata.end_blob(self._key)
            return LayerPush(
                digest=declared, size=existing.size, stored_size=existing.stored_size, already_existed=True
            )
        crashpoint("upload:committed")
        rec, created = repo._record_object("layer", declared, written, self._key)
        return LayerPush(digest=declared, size=rec.size, stored_size=rec.stored_size, already_existed=not created)

    def __enter__(self) -> LayerUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


def _upload_id() -> str:
    return secrets.token_hex(16)
