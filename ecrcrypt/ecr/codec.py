"""How one registry object (layer or manifest) is laid out as ESDK messages (private).

``KMS`` and ``AES256`` objects are one ESDK v2 message whose encryption context is
ECR's two-key context. ``KMS_DSSE`` objects are two independent messages, one
inside the other, each with its own data key: the inner message is bound to the
repository (``{"aws:ecr:arn": ..., "ecrcrypt:dsse-layer": "inner"}``) and the outer one
to the full object context. The inner context deliberately leaves out the digest,
so that a chunked upload (digest known only at the end) still encrypts both layers
in one pass: the inner header is written first as usual and only the outer header
is written last (see :class:`BodyFirstUpload`). The outer message authenticates
the inner one, and the digest of the plaintext is verified on every pull.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import IO, Any, BinaryIO, Protocol, runtime_checkable

import attrs

from ecrcrypt.context import ECR_ARN_KEY, EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import DigestMismatchError, EcrCryptError, StreamClosedError
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey, KeyProvider
from ecrcrypt.store.protocol import BlobStore, BlobWriter
from ecrcrypt.streams import BodyFirstWriter, DecryptingReader, EncryptingWriter, header_length
from ecrcrypt.streams.ranges import RandomAccessSource, decrypt_range

__all__ = [
    "COPY_CHUNK",
    "DSSE_INNER_KEY",
    "REPOSITORY_UID_KEY",
    "BodyFirstUpload",
    "DecryptedRangeSource",
    "OnceKeyProvider",
    "RebindingKeyProvider",
    "VerifyingReader",
    "Written",
    "encrypt_stream",
    "inner_context",
    "open_decrypting",
    "placeholder_digest",
    "rebind_data_key",
]

#: Plaintext is copied in chunks of this size: memory stays constant whatever the layer size.
COPY_CHUNK = 1 << 20
DSSE_INNER_KEY = "ecrcrypt:dsse-layer"
#: The repository's uid, in every context of a repository that binds it (``ecr.lifecycle``): ECR's
#: two keys name the repository by name only, which a later repository of the same name shares.
REPOSITORY_UID_KEY = "ecrcrypt:repository-uid"


def inner_context(repository_arn: str, uid: str | None = None) -> EncryptionContext:
    # The grant constraint is EncryptionContextSubset {"aws:ecr:arn": <repo ARN>} (and the uid):
    # the inner layer's context must carry it too, or KMS refuses the call made under the grant.
    pairs = {ECR_ARN_KEY: repository_arn, DSSE_INNER_KEY: "inner"}
    if uid is not None:
        pairs[REPOSITORY_UID_KEY] = uid
    return EncryptionContext(pairs)


def placeholder_digest() -> Digest:
    """A digest-shaped stand-in: every real digest serializes to the same length."""
    return Digest("0" * 64)


@runtime_checkable
class RebindingKeyProvider(KeyProvider, Protocol):
    """A provider that moves an encrypted data key to another context without exposing it."""

    def rebind_data_key(
        self, data_key: DataKey, source: EncryptionContext, destination: EncryptionContext
    ) -> tuple[EncryptedDataKey, ...]:
        """``data_key``'s encrypted form, made under ``source``, re-bound to ``destination``."""
        ...


def rebind_data_key(
    provider: KeyProvider, data_key: DataKey, source: EncryptionContext, destination: EncryptionContext
) -> tuple[EncryptedDataKey, ...]:
    """Wrap ``data_key`` under ``destination``: a KMS repository re-encrypts (ReEncrypt under the
    ECR grant), a service-managed key simply wraps the plaintext again."""
    if isinstance(provider, RebindingKeyProvider):
        return provider.rebind_data_key(data_key, source, destination)
    return provider.encrypt_data_key(data_key.plaintext, destination)


@attrs.frozen(kw_only=True)
class Written:
    size: int
    sha256: Digest
    stored_size: int
    inner_size: int | None


def _frame_kwargs(frame_length: int | None) -> dict[str, Any]:
    return {} if frame_length is None else {"frame_length": frame_length}


def encrypt_stream(
    sink: BlobWriter,
    chunks: Callable[[], bytes],
    *,
    provider: KeyProvider,
    context: EncryptionContext,
    inner: EncryptionContext | None,
    frame_length: int | None,
) -> Written:
    """Encrypt everything ``chunks()`` yields (until ``b""``) into ``sink``; header first.

    The caller commits or aborts ``sink``: this function never does.
    """

    fk = _frame_kwargs(frame_length)
    if inner is None:
        w = EncryptingWriter(sink, provider=provider, context=context, compute_sha256=True, **fk)
        with contextlib.closing(w):
            _pump(chunks, w.write)
        assert w.sha256 is not None
        return Written(size=w.plaintext_length, sha256=w.sha256, stored_size=w.ciphertext_length, inner_size=None)
    outer = EncryptingWriter(sink, provider=provider, context=context, **fk)
    with contextlib.closing(outer):
        iw = EncryptingWriter(outer, provider=provider, context=inner, compute_sha256=True, **fk)
        with contextlib.closing(iw):
            _pump(chunks, iw.write)
    assert iw.sha256 is not None
    return Written(
        size=iw.plaintext_length, sha256=iw.sha256, stored_size=outer.ciphertext_length, inner_size=iw.ciphertext_length
    )


def _pump(chunks: Callable[[], bytes], write: Callable[[bytes], int]) -> None:
    while True:
        data = chunks()
        if not data:
            return
        write(data)


class VerifyingReader:
    """A readable that releases authenticated plaintext and checks its SHA-256 at EOF.

    Every frame is authenticated before any of its bytes are returned (the ESDK
    reader's contract); the digest check at the end catches an object stored under
    the right context but holding other content, which cannot happen through this
    registry but would through a store written by someone else.
    """

    def __init__(self, reader: Any, closers: list[IO[bytes] | BinaryIO | Any], expected: Digest) -> None:
        self._reader = reader
        self._closers = closers
        self._expected = expected
        self._done = False
        self._failure: DigestMismatchError | None = None
        self._closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise StreamClosedError("read from a closed layer reader")
        data: bytes = self._reader.read(size)
        if (not data and size != 0) or (size is None or size < 0):
            self._finish()
        return data

    def read_view(self) -> memoryview:
        """:meth:`DecryptingReader.read_view`: the next plaintext, a read-only view valid until the
        next call; empty at the end, once the digest matched."""
        if self._closed:
            raise StreamClosedError("read from a closed layer reader")
        view: memoryview = self._reader.read_view()
        if not view:
            self._finish()
        return view

    def read_chunk(self) -> bytes:
        """The next plaintext as ``bytes`` the caller may keep; ``b""`` at the end, once the digest matched."""
        return bytes(self.read_view())

    def _finish(self) -> None:
        if self._failure is not None:
            raise self._failure  # sticky: a later read must not look like a clean end
        if self._done:
            return
        self._done = True
        actual = self._reader.sha256
        if actual != self._expected:
            self._failure = DigestMismatchError(f"stored object has digest {actual}, expected {self._expected}")
            raise self._failure

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for c in reversed(self._closers):
            with contextlib.suppress(Exception):
                c.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_decrypting(
    source: BinaryIO,
    *,
    provider: KeyProvider,
    context: EncryptionContext,
    inner: EncryptionContext | None,
    expected: Digest,
) -> VerifyingReader:
    """A verifying plaintext reader over a stored object (takes ownership of ``source``)."""

    try:
        if inner is None:
            r = DecryptingReader(source, provider=provider, context=context, compute_sha256=True)
            return VerifyingReader(r, [source, r], expected)
        outer = DecryptingReader(source, provider=provider, context=context)
        r = DecryptingReader(outer, provider=provider, context=inner, compute_sha256=True)
        return VerifyingReader(r, [source, outer, r], expected)
    except BaseException:
        source.close()
        raise


@attrs.frozen
class DecryptedRangeSource:
    """Random access into the plaintext of an outer message (the inner message of DSSE)."""

    outer: RandomAccessSource
    provider: KeyProvider
    context: EncryptionContext
    plaintext_size: int

    def size(self) -> int:
        return self.plaintext_size

    def read_at(self, offset: int, length: int) -> bytes:

        return decrypt_range(self.outer, offset, length, provider=self.provider, context=self.context)


class OnceKeyProvider:
    """Decrypts one message's data key once for the many random reads of one range request.

    A DSSE range read opens the outer message for every inner read (header, final
    frame, covered frames); without this each would cost the KMS calls of a pull.
    The plaintext key is held only as long as this object (one request).
    """

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider
        self._seen: tuple[tuple[EncryptedDataKey, ...], EncryptionContext] | None = None
        self._key = b""

    def __repr__(self) -> str:
        return f"OnceKeyProvider({self._provider!r})"

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        return self._provider.generate_data_key(context, length=length)

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        return self._provider.encrypt_data_key(plaintext_key, context)

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        wanted = (tuple(encrypted_data_keys), context)
        if self._seen != wanted:
            self._key = self._provider.decrypt_data_key(encrypted_data_keys, context)
            self._seen = wanted
        return self._key


class BodyFirstUpload:
    """One pass of encryption for content whose digest (hence context) comes last.

    ESDK v2 derives the body key from the data key and the message id only, and a
    frame's AAD holds the message id, frame kind, sequence number and length -- not
    the encryption context. So the body is encrypted as it arrives and the header
    (context with the final digest, the data key wrapped under that context, header
    tag) is written last into bytes reserved at the front of the blob. The header's
    size is known at the start: the context has a fixed length (the digest is fixed
    length) and the encrypted data key's size is that of a provisional wrap made
    with a placeholder digest, which also fails fast when the key or grant is
    unusable before any byte is uploaded.
    """

    def __init__(
        self,
        store: BlobStore,
        key: str,
        *,
        provider: KeyProvider,
        context_for: Callable[[Digest], EncryptionContext],
        inner: EncryptionContext | None,
        frame_length: int | None,
    ) -> None:

        self._provider = provider
        self._context_for = context_for
        fk = _frame_kwargs(frame_length)
        self._provisional = context_for(placeholder_digest())
        data_key = provider.generate_data_key(self._provisional)
        self._data_key: DataKey | None = data_key
        self._reserve = header_length(context=self._provisional, encrypted_data_keys=data_key.encrypted_data_keys, **fk)
        self._sink = store.open_write(key, reserve=self._reserve)
        self._closed = False
        try:
            self._body = BodyFirstWriter(self._sink, data_key=data_key.plaintext, compute_sha256=inner is None, **fk)
            self._inner = (
                None
                if inner is None
                else EncryptingWriter(self._body, provider=provider, context=inner, compute_sha256=True, **fk)
            )
        except BaseException:
            self._sink.abort()
            raise
        self._top: Any = self._body if self._inner is None else self._inner

    def __repr__(self) -> str:
        return f"BodyFirstUpload(reserve={self._reserve}, closed={self._closed})"

    def write(self, data: bytes | memoryview) -> int:
        if self._closed:
            raise StreamClosedError("write to a completed or aborted upload")
        try:
            return int(self._top.write(data))
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._data_key = None
            self._sink.abort()

    def finish(self, declared: Digest, *, keep: Callable[[], bool]) -> Written | None:
        """Close the body, check ``declared`` and fill in the header; ``None`` when ``keep()`` says the
        object already exists (the upload is then discarded)."""
        if self._closed:
            raise StreamClosedError("upload already completed or aborted")
        try:
            if self._inner is not None:
                self._inner.close()
                actual = self._inner.sha256
                inner_size: int | None = self._inner.ciphertext_length
                self._body.close()
            else:
                self._body.close()
                actual = self._body.sha256
                inner_size = None
            size = self._inner.plaintext_length if self._inner is not None else self._body.plaintext_length
            if actual != declared:
                raise DigestMismatchError(f"uploaded content has digest {actual}, not the declared {declared}")
            if not keep():
                self.abort()
                return None
            context = self._context_for(declared)
            assert self._data_key is not None
            edks = rebind_data_key(self._provider, self._data_key, self._provisional, context)
            header = self._body.header(context=context, encrypted_data_keys=edks)
            if len(header) != self._reserve:
                raise EcrCryptError(
                    f"the final header is {len(header)} bytes but {self._reserve} were reserved: the key "
                    "provider's encrypted data key changed size between the provisional and the final wrap"
                )
            self._sink.write_reserved(header)
            self._sink.commit()
            self._closed = True
            self._data_key = None
            assert actual is not None
            return Written(
                size=size,
                sha256=actual,
                stored_size=self._reserve + self._body.body_length,
                inner_size=inner_size,
            )
        except BaseException:
            self.abort()
            raise
