"""Layer uploads that outlive the request and the process: ECR's InitiateLayerUpload, UploadLayerPart
and CompleteLayerUpload over a durable ``uploadId``.

A registry server receives one layer in several HTTP requests, possibly served by several processes
(OCI chunked uploads, ECR's parts). The layer's encryption context holds its digest, known only at
the end, so the body is sealed as it arrives with :class:`~ecrcrypt.streams.BodyFirstWriter` and the
header is made on completion, as :class:`~ecrcrypt.ecr.repository.LayerUpload` does in one process.
Between parts the upload is a row of the registry's metadata plus one blob per part:

* the data key is kept only encrypted -- the encrypted data keys the repository's key provider made
  under the provisional context -- and decrypted by whichever process takes the next part (for a KMS
  repository: one Decrypt under the repository's grants per part);
* each part's blob holds the ciphertext frames the part completed, ready to be concatenated;
* the plaintext not yet filling a frame (less than one frame) is sealed with AES-GCM under a key
  derived from the data key and bound to the upload and its position (the ``tail``): no plaintext
  ever reaches the disk;
* a lease in the row lets one request at a time write (a frame's nonce is its sequence number: two
  writers continuing from the same point would reuse nonces).

The lease (``records.claim_upload``) names its holder -- host, boot, PID namespace, pid and start
time, ``liveness.current_owner`` -- so a holder that provably died (a worker of this host killed
mid-part) is taken over at once by the next request. A holder that cannot be checked (another host
or container) keeps the upload until its lease runs out: LEASE_SECONDS = 60 s after it last renewed.
A live request renews every LEASE_RENEW = 15 s, and only when bytes arrive, before it seals them:
the 45 s between a renewal and the lease's end are the margin for a paused process and for clocks
that disagree across hosts (each claimer compares ``lease_until`` with its own clock). Halving the
former 120 / 30 halves what a killed host costs its uploads in progress; one database write per
request every 15 s is nothing beside the part it streams. A client that stalls longer than the
lease keeps its upload unless another request claims it meanwhile (its next renewal is a
compare-and-set on its token and simply succeeds); if one did, the stalled request's renewal fails
before it seals another frame, it discards its part and fails with ``InvalidLayerPartError``, and
the upload stands where the other request left it. A completion renews before each part it copies;
it writes the layer under a key of its own attempt and ends the upload only while its lease holds,
so one that stalled never removes a layer, an upload or parts another request took over.

KMS_DSSE layers nest two messages; the upload then keeps one such state per level, and the inner
message's header (its context does not name the digest) starts out as the outer level's tail.

The digest is checked before anything becomes readable: while one process serves every part it
hashes as it goes; otherwise completion reads the assembled object back, decrypting it, before the
layer is recorded. Until then the object is under an upload key no layer digest points to.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records
from ecrcrypt.ecr.codec import COPY_CHUNK, Written, open_decrypting, placeholder_digest, rebind_data_key
from ecrcrypt.ecr.crashpoints import crashpoint
from ecrcrypt.ecr.metadata import RepositoryRecord, now
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.repository import Repository, _reader
from ecrcrypt.ecr.types import LayerPush, LayerSource
from ecrcrypt.errors import (
    AuthenticationError,
    DigestMismatchError,
    InvalidLayerPartError,
    InvalidParameterError,
    UploadNotFoundError,
)
from ecrcrypt.format.message import DEFAULT_FRAME_LENGTH
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey, KeyProvider
from ecrcrypt.store.copy import append_object
from ecrcrypt.store.protocol import BlobStore
from ecrcrypt.streams import BodyFirstWriter, message_header

__all__ = ["PART_SIZE", "UPLOAD_TTL", "LayerUploads", "UploadStatus", "collect_abandoned_uploads"]

#: InitiateLayerUpload's ``partSize``: a hint to clients; any part size is accepted.
PART_SIZE = 10 * 1024 * 1024
#: An upload untouched for this long is abandoned: :func:`collect_abandoned_uploads` removes it.
UPLOAD_TTL = 24 * 3600.0
#: How long one request holds an upload without renewing it: a server on another host that died
#: mid-part blocks the upload this long (one of this host and PID namespace, not at all). A live
#: request renews every LEASE_RENEW seconds while bytes arrive (the module docstring says why).
LEASE_SECONDS = 60.0
LEASE_RENEW = 15.0
_TAIL_INFO = b"ecrcrypt/layer-upload/tail"


@attrs.frozen(kw_only=True)
class UploadStatus:
    """InitiateLayerUpload's and UploadLayerPart's response (``received`` = bytes so far)."""

    upload_id: str
    received: int
    part_size: int = PART_SIZE

    @property
    def last_byte_received(self) -> int:
        return self.received - 1

    def to_api(self) -> dict[str, Any]:
        return {"uploadId": self.upload_id, "partSize": self.part_size, "lastByteReceived": self.last_byte_received}


# -- the persisted state ---------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


@attrs.frozen(kw_only=True)
class _Level:
    """One message's continuation: what a writer needs to carry on, all of it safe at rest."""

    edks: tuple[EncryptedDataKey, ...] = attrs.field(repr=False)
    message_id: bytes
    frames: int
    emitted: int  # bytes this level has written downstream (the inner level: its header included)
    tail: bytes = attrs.field(repr=False)  # nonce || AES-GCM(tail key, pending plaintext)

    def to_json(self) -> dict[str, Any]:
        return {
            "edks": [[k.provider_id, _b64(k.provider_info), _b64(k.ciphertext)] for k in self.edks],
            "message_id": _b64(self.message_id),
            "frames": self.frames,
            "emitted": self.emitted,
            "tail": _b64(self.tail),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> _Level:
        return cls(
            edks=tuple(
                EncryptedDataKey(provider_id=p, provider_info=_unb64(i), ciphertext=_unb64(c))
                for p, i, c in doc["edks"]
            ),
            message_id=_unb64(doc["message_id"]),
            frames=int(doc["frames"]),
            emitted=int(doc["emitted"]),
            tail=_unb64(doc["tail"]),
        )


@attrs.frozen(kw_only=True)
class _State:
    frame_length: int
    levels: tuple[_Level, ...]  # outer first
    parts: tuple[tuple[str, int], ...]  # (blob key, bytes)
    final: str  # completions write the layer to this key plus a suffix of their own (once: to this key)

    def dump(self) -> str:
        return json.dumps(
            {
                "frame_length": self.frame_length,
                "levels": [lv.to_json() for lv in self.levels],
                "parts": [list(p) for p in self.parts],
                "final": self.final,
            }
        )

    @classmethod
    def load(cls, text: str) -> _State:
        doc = json.loads(text)
        return cls(
            frame_length=int(doc["frame_length"]),
            levels=tuple(_Level.from_json(lv) for lv in doc["levels"]),
            parts=tuple((str(k), int(n)) for k, n in doc["parts"]),
            final=str(doc["final"]),
        )


def _tail_aead(data_key: bytes, message_id: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=message_id, info=_TAIL_INFO).derive(data_key)
    return AESGCM(key)


def _tail_aad(upload_id: str, level: int, frames: int, received: int) -> bytes:
    return f"{upload_id}|{level}|{frames}|{received}".encode()


def _seal_tail(aead: AESGCM, pending: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, pending, aad)


def _open_tail(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    try:
        return aead.decrypt(sealed[:12], sealed[12:], aad)
    except InvalidTag:
        raise AuthenticationError("the upload's stored state does not authenticate") from None


# -- the in-process digest shortcut ----------------------------------------------------------------
class _Hashes:
    """SHA-256 states of uploads this process has served every part of (hash objects cannot be
    persisted); a miss only means completion verifies by reading the object back."""

    def __init__(self, limit: int = 256) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._items: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    def take(self, upload_id: str, received: int) -> Any:
        with self._lock:
            found = self._items.pop(upload_id, None)
        if found is None or found[0] != received:
            return None
        return found[1]

    def put(self, upload_id: str, received: int, state: Any) -> None:
        with self._lock:
            self._items[upload_id] = (received, state)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)


_HASHES = _Hashes()


class _Writers:
    """The writer chain of one request: the outer body writer, then the inner one (DSSE)."""

    def __init__(self, destination: Any, state: _State, keys: Sequence[bytes], upload_id: str, received: int) -> None:
        self.writers: list[BodyFirstWriter] = []
        self.aeads: list[AESGCM] = []
        dest = destination
        for i, (level, key) in enumerate(zip(state.levels, keys, strict=True)):
            w = BodyFirstWriter(
                dest,
                data_key=key,
                frame_length=state.frame_length,
                message_id=level.message_id,
                sealed_frames=level.frames,
            )
            aead = _tail_aead(key, level.message_id)
            w.write(_open_tail(aead, level.tail, _tail_aad(upload_id, i, level.frames, received)))
            self.writers.append(w)
            self.aeads.append(aead)
            dest = w

    @property
    def top(self) -> BodyFirstWriter:
        return self.writers[-1]


class _Lease:
    """One request's hold on an upload, renewed while it works; losing it stops the request (another
    process took the upload over: continuing would seal frames under nonces it may reuse). Called
    before every write that may seal a frame, so a request that waited longer than LEASE_RENEW for
    its client asks the database before it seals anything more."""

    def __init__(self, meta: MetadataStore, upload_id: str, token: str) -> None:
        self._meta = meta
        self.upload_id = upload_id
        self.token = token
        self._renewed = time.monotonic()

    def keep(self) -> None:
        if time.monotonic() - self._renewed < LEASE_RENEW:
            return
        if not records.renew_lease(self._meta, self.upload_id, self.token, now() + LEASE_SECONDS):
            raise InvalidLayerPartError(f"upload '{self.upload_id}' was taken over by another request")
        self._renewed = time.monotonic()


class LayerUploads:
    """The upload operations of one :class:`~ecrcrypt.ecr.repository.Repository` (and its caller)."""

    def __init__(self, repository: Repository) -> None:
        self._repo = repository
        self._core = repository._core

    def __repr__(self) -> str:
        return f"LayerUploads({self._repo.name!r})"

    @property
    def _meta(self) -> MetadataStore:
        return self._core.metadata

    @property
    def _store(self) -> BlobStore:
        return self._core.store

    def _record(self) -> RepositoryRecord:
        self._repo._require_live()
        return self._repo._record

    def _provisional(self) -> EncryptionContext:
        return self._repo._context("layer", placeholder_digest())

    def _contexts(self) -> list[EncryptionContext]:
        inner = self._repo._inner()
        return [self._provisional()] + ([] if inner is None else [inner])

    def _keys(self, provider: KeyProvider, state: _State) -> list[bytes]:
        return [
            provider.decrypt_data_key(level.edks, ctx)
            for level, ctx in zip(state.levels, self._contexts(), strict=True)
        ]

    # -- InitiateLayerUpload ----------------------------------------------------------------------
    def initiate_layer_upload(self) -> UploadStatus:
        """A new upload; its id is valid in every process that opens this registry."""
        record = self._record()
        self._repo._allow(("ecr:InitiateLayerUpload",), "kms:GenerateDataKey")
        upload_id = secrets.token_hex(16)
        frame_length = self._core.frame_length or DEFAULT_FRAME_LENGTH
        provider = self._repo._provider()
        with self._repo._audited("InitiateLayerUpload"), self._repo._guard(provider):
            contexts = self._contexts()
            keys = [provider.generate_data_key(ctx) for ctx in contexts]
            ids = [os.urandom(32) for _ in contexts]
            # DSSE: the inner message's header is known now; it is the outer body's first plaintext.
            pending = [b""] * len(contexts)
            if len(contexts) == 2:
                pending[0] = message_header(
                    data_key=keys[1].plaintext,
                    message_id=ids[1],
                    context=contexts[1],
                    encrypted_data_keys=keys[1].encrypted_data_keys,
                    frame_length=frame_length,
                )
            levels = tuple(
                _Level(
                    edks=dk.encrypted_data_keys,
                    message_id=ids[i],
                    frames=0,
                    emitted=len(pending[0]) if i == 1 else 0,
                    tail=_seal_tail(_tail_aead(dk.plaintext, ids[i]), pending[i], _tail_aad(upload_id, i, 0, 0)),
                )
                for i, dk in enumerate(keys)
            )
            del keys
            final = f"{self._repo._prefix('upload')}/{upload_id}"
            state = _State(frame_length=frame_length, levels=levels, parts=(), final=final)
            if not records.insert_upload(self._meta, record, upload_id, state.dump(), now()):
                raise self._repo._gone()
        _HASHES.put(upload_id, 0, hashlib.sha256())
        return UploadStatus(upload_id=upload_id, received=0)

    def describe_upload(self, upload_id: str) -> UploadStatus:
        """Where an upload stands (the OCI upload-status request)."""
        record = self._record()
        self._repo._allow(("ecr:UploadLayerPart",))
        row = records.get_upload(self._meta, upload_id)
        if row is None or row.repository_uid != record.uid:
            raise self._unknown(upload_id)
        return UploadStatus(upload_id=upload_id, received=row.received)

    def _unknown(self, upload_id: str) -> UploadNotFoundError:
        return UploadNotFoundError(
            f"The upload with id '{upload_id}' does not exist in the repository '{self._repo.name}'"
        )

    def _claim(self, upload_id: str) -> tuple[records.UploadRow, _Lease]:
        record = self._record()
        lease = records.lease_token()
        at = now()
        got = records.claim_upload(self._meta, record, upload_id, lease, at, at + LEASE_SECONDS)
        if got == "unknown":
            raise self._unknown(upload_id)
        if isinstance(got, str):
            row = records.get_upload(self._meta, upload_id)
            left = 0 if row is None else max(0, math.ceil(row.lease_until - at))
            raise InvalidLayerPartError(
                f"another request is still writing upload '{upload_id}' (its lease runs {left} s more"
                " unless it renews)",
                last_valid_byte_received=-1 if row is None else row.received - 1,
            )
        return got, _Lease(self._meta, upload_id, lease)

    # -- UploadLayerPart --------------------------------------------------------------------------
    def upload_layer_part(
        self,
        upload_id: str,
        source: LayerSource | bytes | bytearray | memoryview,
        *,
        part_first_byte: int,
        part_last_byte: int | None = None,
    ) -> UploadStatus:
        """Append ``source`` (read to its end, in constant memory) at ``part_first_byte``, which must
        be where the upload stands; ``part_last_byte``, when given, must match what was read."""
        self._repo._require_live()
        self._repo._allow(("ecr:UploadLayerPart",))
        row, lease = self._claim(upload_id)
        try:
            if part_first_byte != row.received:
                raise InvalidLayerPartError(
                    f"the part starts at byte {part_first_byte} but the upload has {row.received} bytes",
                    last_valid_byte_received=row.received - 1,
                )
            with self._repo._audited("UploadLayerPart", uploadId=upload_id, partFirstByte=part_first_byte):
                state, received = self._append(row, source, part_last_byte, lease)
            part_key = state.parts[-1][0]
            try:
                saved = records.save_upload(self._meta, upload_id, lease.token, received, state.dump(), now(), part_key)
            except BaseException:
                self._repo._drop_blob(part_key)
                raise
            if not saved:
                self._repo._drop_blob(part_key)
                raise InvalidLayerPartError(f"upload '{upload_id}' was taken over by another request")
        except BaseException:
            records.release_upload(self._meta, upload_id, lease.token)
            raise
        return UploadStatus(upload_id=upload_id, received=received)

    def _append(
        self,
        row: records.UploadRow,
        source: LayerSource | bytes | bytearray | memoryview,
        last: int | None,
        lease: _Lease,
    ) -> tuple[_State, int]:
        state = _State.load(row.state)
        hasher = _HASHES.take(row.upload_id, row.received)
        provider = self._repo._provider()
        part_key = f"{self._repo._prefix('upload')}/{row.upload_id}.part-{len(state.parts):06d}-{secrets.token_hex(4)}"
        with self._repo._guard(provider):
            keys = self._keys(provider, state)
        # Announced before it is opened, as every push does: garbage collection keeps it (then the
        # upload's row does, once the part is saved).
        self._repo._begin_blob(part_key)
        try:
            return self._write_part(row, state, keys, part_key, source, last, lease, hasher)
        except BaseException:
            self._repo._drop_blob(part_key)
            raise

    def _write_part(
        self,
        row: records.UploadRow,
        state: _State,
        keys: list[bytes],
        part_key: str,
        source: LayerSource | bytes | bytearray | memoryview,
        last: int | None,
        lease: _Lease,
        hasher: Any,
    ) -> tuple[_State, int]:
        n = 0
        with self._store.open_write(part_key) as sink:
            chain = _Writers(sink, state, keys, row.upload_id, row.received)
            read = _reader(source)
            while True:
                data = read()
                if not data:
                    break
                lease.keep()  # before sealing: the read may have waited on the client for long
                chain.top.write(data)
                if hasher is not None:
                    hasher.update(data)
                n += len(data)
            received = row.received + n
            if last is not None and last != received - 1:
                raise InvalidLayerPartError(
                    f"the part ends at byte {received - 1}, not at the declared partLastByte {last}",
                    last_valid_byte_received=row.received - 1,
                )
            levels: list[_Level] = []
            # Innermost first: its pending bytes stay its own; what it emitted went into the outer writer.
            for i in reversed(range(len(chain.writers))):
                w, level = chain.writers[i], state.levels[i]
                pending = w.suspend()
                frames = w.frames_emitted
                aad = _tail_aad(row.upload_id, i, frames, received)
                levels.insert(
                    0,
                    attrs.evolve(
                        level,
                        frames=frames,
                        emitted=level.emitted + w.body_length,
                        tail=_seal_tail(chain.aeads[i], pending, aad),
                    ),
                )
            size = chain.writers[0].body_length
            sink.commit()
        crashpoint("layer-part:committed")  # the part is stored, the upload's row does not list it yet
        if hasher is not None:
            _HASHES.put(row.upload_id, received, hasher)
        return attrs.evolve(state, levels=tuple(levels), parts=(*state.parts, (part_key, size))), received

    # -- CompleteLayerUpload ----------------------------------------------------------------------
    def complete_layer_upload(self, upload_id: str, layer_digests: Sequence[Digest | str]) -> LayerPush:
        """Seal the last frames, write the header under the digest's context and record the layer --
        only once the content's digest is checked. A layer the repository holds already is kept and
        the upload discarded (``already_existed``)."""
        if len(layer_digests) != 1:
            raise InvalidParameterError("CompleteLayerUpload takes exactly one layer digest")
        self._repo._require_live()
        self._repo._allow(("ecr:CompleteLayerUpload",))
        declared = layer_digests[0] if isinstance(layer_digests[0], Digest) else Digest.parse(layer_digests[0])
        row, lease = self._claim(upload_id)
        try:
            with self._repo._audited("CompleteLayerUpload", uploadId=upload_id, layerDigests=[str(declared)]):
                pushed = self._complete(row, declared, lease)
        except DigestMismatchError:
            # The content is wrong, not the upload: ECR's InvalidLayerException ends it.
            self._discard(row, lease)
            raise
        except BaseException:
            records.release_upload(self._meta, upload_id, lease.token)
            raise
        # Recorded. Had another request taken the upload over meanwhile (this one stalled past its
        # lease), the upload and its parts are that request's now: it finds the layer and ends them.
        self._discard(row, lease)
        return pushed

    def _complete(self, row: records.UploadRow, declared: Digest, lease: _Lease) -> LayerPush:
        repo = self._repo
        existing = self._meta.get_object(repo.name, "layer", str(declared))
        if existing is not None and self._store.exists(existing.blob_key):
            return LayerPush(
                digest=declared, size=existing.size, stored_size=existing.stored_size, already_existed=True
            )
        state = _State.load(row.state)
        hasher = _HASHES.take(row.upload_id, row.received)
        if hasher is not None and Digest(hasher.hexdigest()) != declared:
            raise DigestMismatchError(f"uploaded content has digest sha256:{hasher.hexdigest()}, not {declared}")
        provider = repo._provider()
        # A key of this attempt's own: a completion that lost its lease and fails removes what it
        # wrote, never the object a request that took the upload over may have recorded.
        key = f"{state.final}.{secrets.token_hex(4)}"
        context = repo._context("layer", declared)
        with repo._guard(provider):
            keys = self._keys(provider, state)
            # The last frames go to memory first (at most a frame or two): the header precedes them.
            last = io.BytesIO()
            chain = _Writers(last, state, keys, row.upload_id, row.received)
            for w in reversed(chain.writers):
                w.close()
            outer = chain.writers[0]
            edks = rebind_data_key(
                provider,
                DataKey(plaintext=keys[0], encrypted_data_keys=state.levels[0].edks),
                self._provisional(),
                context,
            )
            header = outer.header(context=context, encrypted_data_keys=edks)
            repo._begin_blob(key)
            try:
                with self._store.open_write(key) as sink:
                    sink.write(header)
                    for part_key, _ in state.parts:
                        lease.keep()  # each part, as a server-side copy (S3) calls no progress
                        append_object(sink, self._store, part_key, progress=lease.keep)
                    lease.keep()
                    sink.write(last.getbuffer())
                    sink.commit()
                if hasher is None:
                    self._verify(key, declared, provider, lease)
            except BaseException:
                repo._drop_blob(key)
                raise
        stored = len(header) + sum(n for _, n in state.parts) + len(last.getbuffer())
        inner_size = None
        if len(state.levels) > 1:
            inner_size = state.levels[1].emitted + chain.writers[1].body_length
        written = Written(size=row.received, sha256=declared, stored_size=stored, inner_size=inner_size)
        record, made = repo._record_object("layer", declared, written, key)
        # Not made: another push of this digest was recorded first; it stands and this blob is gone.
        return LayerPush(digest=declared, size=record.size, stored_size=record.stored_size, already_existed=not made)

    def _verify(self, key: str, declared: Digest, provider: KeyProvider, lease: _Lease) -> None:
        repo = self._repo
        with (
            repo._guard(provider),
            open_decrypting(
                self._store.open_read(key),
                provider=provider,
                context=repo._context("layer", declared),
                inner=repo._inner(),
                expected=declared,
            ) as reader,
        ):
            while reader.read(COPY_CHUNK):
                lease.keep()

    def _discard(self, row: records.UploadRow, lease: _Lease) -> None:
        """End the upload while ``lease`` still holds it: its row first, then its parts (a crash
        between the two leaves parts no row keeps, which garbage collection removes)."""
        if records.delete_upload(self._meta, row.upload_id, lease=lease.token):
            for part_key, _ in _State.load(row.state).parts:
                self._store.delete(part_key)

    def abort_layer_upload(self, upload_id: str) -> None:
        """Cancel an upload (OCI ``DELETE`` of an upload session): its parts are deleted."""
        self._repo._require_live()
        self._repo._allow(("ecr:UploadLayerPart",))
        row, lease = self._claim(upload_id)
        self._discard(row, lease)


def collect_abandoned_uploads(metadata: MetadataStore, store: BlobStore, *, ttl: float = UPLOAD_TTL) -> int:
    """Remove uploads untouched for ``ttl`` seconds (their parts, then their rows); returns how many."""
    at = time.time()
    stale = records.stale_uploads(metadata, at - ttl, at)
    for row in stale:
        state = _State.load(row.state)
        for part_key, _ in state.parts:
            store.delete(part_key)
        # A completion that died after writing the layer but before recording it left the object
        # behind; one that died after recording it left a live layer, which stays. (Completions now
        # write under a key of their own, announced by a blob intent that recovery and garbage
        # collection judge; this is for the ones an older version left under the upload's key.)
        if not records.blob_key_in_use(metadata, row.repository, state.final):
            store.delete(state.final)
        records.delete_upload(metadata, row.upload_id)
    return len(stale)
