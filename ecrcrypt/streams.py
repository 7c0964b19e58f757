"""Streaming ESDK messages: writer, reader, iterators, and the body-first writer.

Hot path design (why it is shaped like this): every stream owns one output
buffer of one frame and reuses it; frames are sealed with
``AESGCM.encrypt_into``/``decrypt_into`` straight from the caller's memory into
that buffer (or, when decrypting into a large enough caller buffer, straight into
it); the frame AAD and IV are packed in place with one ``struct.pack_into``. No
pending plaintext is concatenated or re-sliced: a write's bytes are sealed where
they lie, and at most one partial frame is copied aside.

Plaintext that is an exact multiple of the frame length ends with a *full* final
frame (the spec's SHOULD). The writer cannot know a frame is the last until more
data or ``close()`` arrives, so a write that ends exactly on a frame boundary
seals that frame as a regular one and holds it; ``close()`` opens it again and
reseals it as the final frame. This costs two frame operations once per message
and keeps every ``write`` copy-free whatever the caller's buffer type.

SHA-256 (``compute_sha256=True``): ``hashlib`` releases the GIL on large updates
while cryptography's AES-GCM keeps it, so the hash runs on a helper thread while
this thread encrypts; with the digest on, SHA-256 (≈1.65 GB/s) rather than AES is
the limit, and the encryption hides behind it.
"""

from __future__ import annotations

import hashlib
import io
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ecrcrypt._frames import FINAL_FRAME_OVERHEAD, FINAL_MARKER, REGULAR_FRAME_OVERHEAD, FrameAad
from ecrcrypt._header import header_length_v2
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import AuthenticationError, MessageLimitError, StreamClosedError
from ecrcrypt.keyprovider import EncryptedDataKey, KeyProvider
from ecrcrypt.message import (
    DEFAULT_FRAME_LENGTH,
    MAX_NON_FRAMED,
    DecryptPolicy,
    Opened,
    Sealer,
    check_frame_length,
    decrypt_body,
    encryption_context,
    open_header,
    start_message,
)
from ecrcrypt.suites import TAG_LENGTH

__all__ = [
    "BodyFirstWriter",
    "DecryptingReader",
    "EncryptingWriter",
    "SupportsRead",
    "SupportsWrite",
    "header_length",
    "iter_decrypt",
    "iter_encrypt",
]

_REGULAR_PREFIX = struct.Struct(">IQI")  # SeqNum ‖ IV = 8 zero bytes ‖ SeqNum
_FINAL_PREFIX = struct.Struct(">IIQII")  # FFFFFFFF ‖ SeqNum ‖ IV(0^8 ‖ SeqNum) ‖ length
_U32 = struct.Struct(">I")
# Below this many bytes a hand-off to the hashing thread costs more than it saves.
_ASYNC_HASH_MIN = 256 * 1024
_HASH_BATCH = 2 * 1024 * 1024
_DEFER_MIN = 64 * 1024


class SupportsWrite(Protocol):
    """A destination. It receives memoryviews valid only for the duration of the call
    (as with any file's ``write``); it must copy what it keeps."""

    def write(self, data: bytes | memoryview, /) -> object: ...


class SupportsRead(Protocol):
    """A source: ``read(n)`` returns up to ``n`` bytes, ``b""`` only at EOF.
    ``readinto`` is used when present."""

    def read(self, size: int, /) -> bytes: ...


# ------------------------------------------------------------------------------ hashing

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _hash_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ecrcrypt-sha256")
        return _pool


class _Hasher:
    """SHA-256 over a sequence of buffers, hashed in batches on the pool, in order.

    Batching matters: each hand-off to the worker costs a few thread wake-ups, so
    buffers are grouped until :data:`_HASH_BATCH` bytes are pending. A buffer handed
    to :meth:`defer` must stay unchanged until :meth:`wait` returns or two more
    batches were submitted; :meth:`update` submits at once (then only until
    :meth:`wait`).
    """

    __slots__ = ("_future", "_pending", "_pending_bytes", "_sha")

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._future: Future[None] | None = None
        self._pending: list[memoryview] = []
        self._pending_bytes = 0

    def defer(self, view: memoryview) -> None:
        if len(view) < _DEFER_MIN:
            # Small buffers: hashing inline is cheaper than queueing them (and bounded).
            self.wait()
            self._sha.update(view)
            return
        self._pending.append(view)
        self._pending_bytes += len(view)
        if self._pending_bytes >= _HASH_BATCH:
            self._submit()

    def update(self, view: memoryview) -> None:
        self.defer(view)
        self._submit()  # no-op when defer() hashed inline

    def _submit(self) -> None:
        views, size = self._pending, self._pending_bytes
        if not views:
            return
        self._pending, self._pending_bytes = [], 0
        self._wait_in_flight()
        sha = self._sha
        if size < _ASYNC_HASH_MIN:
            for v in views:
                sha.update(v)
            return
        started = threading.Event()

        def job() -> None:
            started.set()
            for v in views:
                sha.update(v)  # releases the GIL for each large buffer

        self._future = _hash_pool().submit(job)
        # Wait until the worker is inside update() (GIL released) before this thread
        # starts an AES call that keeps the GIL: otherwise the two would not overlap.
        started.wait()

    def _wait_in_flight(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def wait(self) -> None:
        self._submit()
        self._wait_in_flight()

    def digest(self) -> Digest:
        self.wait()
        return Digest(self._sha.hexdigest())


# ------------------------------------------------------------------------------ writing


class _FrameSealer:
    """Seals plaintext into frames of one message and writes them to the destination."""

    def __init__(self, destination: SupportsWrite, sealer: Sealer, compute_sha256: bool) -> None:
        f = sealer.frame_length
        self._dest = destination
        self._f = f
        self._aad = FrameAad(sealer.message_id)
        self._encrypt_into = sealer.aead.encrypt_into
        self._decrypt_into = sealer.aead.decrypt_into
        self._out = bytearray(f + FINAL_FRAME_OVERHEAD)
        out = memoryview(self._out)
        self._regular_iv = out[4:16]
        self._regular_body = out[16 : f + REGULAR_FRAME_OVERHEAD]
        self._regular_frame = out[: f + REGULAR_FRAME_OVERHEAD]
        self._outv = out
        self._pend = memoryview(bytearray(f))
        self._pend_len = 0
        self._held = False
        self._seq = 0
        self._hasher = _Hasher() if compute_sha256 else None
        self.plaintext_length = 0
        self.body_length = 0

    def _seal_regular(self, plaintext: memoryview) -> None:
        self._seq += 1
        seq = self._seq
        _REGULAR_PREFIX.pack_into(self._out, 0, seq, 0, seq)
        self._encrypt_into(self._regular_iv, plaintext, self._aad.regular(seq, self._f), self._regular_body)

    def _emit_regular(self) -> None:
        self._dest.write(self._regular_frame)
        self.body_length += self._f + REGULAR_FRAME_OVERHEAD

    def write(self, view: memoryview) -> None:
        n = len(view)
        hasher = self._hasher
        # Immutable input (bytes, or views of it) may be hashed after write() returns.
        deferred = hasher is not None and isinstance(view.obj, bytes)
        if hasher is not None:
            if deferred:
                hasher.defer(view)
            else:
                hasher.update(view)
        try:
            f = self._f
            if self._held:
                self._held = False
                self._emit_regular()
            pos = 0
            if self._pend_len:
                take = min(f - self._pend_len, n)
                self._pend[self._pend_len : self._pend_len + take] = view[:take]
                self._pend_len += take
                if take == n:
                    return  # possibly a full frame: it may still be the final one
                self._seal_regular(self._pend)
                self._emit_regular()
                self._pend_len = 0
                pos = take
            while n - pos > f:
                self._seal_regular(view[pos : pos + f])
                self._emit_regular()
                pos += f
            rest = n - pos
            if rest == f:
                self._seal_regular(view[pos:])
                self._held = True
            elif rest:
                self._pend[:rest] = view[pos:]
                self._pend_len = rest
        finally:
            self.plaintext_length += n
            if hasher is not None and not deferred:
                hasher.wait()  # the caller may reuse its buffer once write() returns

    def finish(self) -> Digest | None:
        f = self._f
        if self._held:
            # Reopen the held frame and reseal it as the final one (see module docstring).
            self._held = False
            aad = self._aad.regular(self._seq, f)
            # The held frame never left this object, so its nonce is used for one emitted ciphertext only.
            self._decrypt_into(self._regular_iv, self._regular_body, aad, self._pend)
            self._pend_len = f
            self._seq -= 1
        n = self._pend_len
        self._seq += 1
        seq = self._seq
        _FINAL_PREFIX.pack_into(self._out, 0, FINAL_MARKER, seq, 0, seq, n)
        self._encrypt_into(self._outv[8:20], self._pend[:n], self._aad.final(seq, n), self._outv[24 : 40 + n])
        self._dest.write(self._outv[: n + FINAL_FRAME_OVERHEAD])
        self.body_length += n + FINAL_FRAME_OVERHEAD
        self._pend_len = 0
        return None if self._hasher is None else self._hasher.digest()


class _WriterBase:
    """Write/close/sticky-error plumbing shared by the two writers."""

    _frames: _FrameSealer

    def __init__(self) -> None:
        self._closed = False
        self._failed: BaseException | None = None
        self.sha256: Digest | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def plaintext_length(self) -> int:
        return self._frames.plaintext_length

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Nothing to flush: every complete frame is written when it is sealed."""

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise StreamClosedError("the stream failed earlier and cannot be used") from self._failed
        if self._closed:
            raise StreamClosedError("write to a closed encrypting stream")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt ``data``; complete frames go to the destination at once. Returns ``len(data)``."""
        self._check_usable()
        view = memoryview(data).cast("B")
        if not view:
            return 0
        try:
            self._frames.write(view)
        except BaseException as exc:
            self._failed = exc
            raise
        return len(view)

    def close(self) -> None:
        """Write the final frame. Does NOT close the destination (the caller owns it).

        Closing twice is a no-op; after close every ``write`` raises
        :class:`StreamClosedError`.
        """
        if self._closed:
            return
        self._check_usable()
        try:
            self.sha256 = self._frames.finish()
        except BaseException as exc:
            self._failed = exc
            raise
        self._closed = True

    def abandon(self) -> None:
        """Stop without writing the final frame: what was written is not a valid message."""
        self._closed = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


class EncryptingWriter(_WriterBase):
    """A file-like writer producing one ESDK v2 message (0x0478, framed) on ``destination``.

    The header goes out at construction (the provider is called then); each complete
    frame goes out as soon as it is known not to be the last; ``close()`` writes the
    final frame and does **not** close ``destination``. Leaving a ``with`` block by
    an exception writes no final frame, so the partial output never decrypts.
    ``sha256`` (when ``compute_sha256``) is the plaintext's digest after close.
    """

    def __init__(
        self,
        destination: SupportsWrite,
        *,
        provider: KeyProvider,
        context: Mapping[str, str],
        frame_length: int = DEFAULT_FRAME_LENGTH,
        compute_sha256: bool = False,
    ) -> None:
        super().__init__()
        sealer, header, ctx = start_message(provider, context, frame_length)
        self.context: EncryptionContext = ctx
        self.frame_length = frame_length
        self._header_length = len(header)
        self._frames = _FrameSealer(destination, sealer, compute_sha256)
        destination.write(memoryview(header))

    @property
    def ciphertext_length(self) -> int:
        return self._header_length + self._frames.body_length

    def __enter__(self) -> EncryptingWriter:
        return self


class BodyFirstWriter(_WriterBase):
    """Writes only the body (frames) of a message whose header is made afterwards.

    For one-pass layer uploads where the encryption context contains the digest of
    the very content being written: frames are sealed with ``data_key`` and a fresh
    message id now; :meth:`header` serializes the header (commit key, context, EDKs,
    header tag) once the context is known, and ``header ‖ body`` is an ordinary
    message. :func:`header_length` says how many bytes to reserve in front.
    ``close()`` does not close ``destination``.
    """

    def __init__(
        self,
        destination: SupportsWrite,
        *,
        data_key: bytes,
        frame_length: int = DEFAULT_FRAME_LENGTH,
        compute_sha256: bool = False,
    ) -> None:
        super().__init__()
        check_frame_length(frame_length)
        self._sealer = Sealer.for_data_key(data_key, frame_length)
        self.frame_length = frame_length
        self._frames = _FrameSealer(destination, self._sealer, compute_sha256)

    @property
    def body_length(self) -> int:
        return self._frames.body_length

    def header(self, *, context: Mapping[str, str], encrypted_data_keys: Sequence[EncryptedDataKey]) -> bytes:
        """The serialized v2 header for this body; its length is :func:`header_length` of the same inputs."""
        if not self._closed:
            raise StreamClosedError("the header is available only after close()")
        return self._sealer.header(encryption_context(context), tuple(encrypted_data_keys))

    def __enter__(self) -> BodyFirstWriter:
        return self


def header_length(
    *,
    context: Mapping[str, str],
    encrypted_data_keys: Sequence[EncryptedDataKey],
    frame_length: int = DEFAULT_FRAME_LENGTH,
) -> int:
    """Bytes of the v2 (0x0478, framed) header, tag included, for these inputs."""
    check_frame_length(frame_length)
    return header_length_v2(encryption_context(context), tuple(encrypted_data_keys))


# ------------------------------------------------------------------------------ reading


def _decrypt_buffered(read: Callable[[int], bytes], opened: Opened, policy: DecryptPolicy) -> bytes:
    """Signed or non-framed bodies: read whole (bounded), verify everything, then release."""
    header = opened.header
    limit = policy.max_body_size
    if limit is None:
        cap = MAX_NON_FRAMED + 1024
    elif header.framed:
        frames = limit // header.frame_length + 1
        cap = limit + frames * REGULAR_FRAME_OVERHEAD + FINAL_FRAME_OVERHEAD + 2 + 1024
    else:
        cap = limit + 36 + 2 + 1024
    buffered = policy.max_buffered_body_size
    if cap > buffered + 1024:
        cap, limit = buffered + 1024, buffered
    raw = opened.raw_header
    parts = [raw]
    total = 0
    while True:
        chunk = read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > cap:
            raise MessageLimitError(
                f"a signed or non-framed message body is held whole until it verifies; it exceeds {limit} bytes"
            )
        parts.append(bytes(chunk))
    return decrypt_body(memoryview(b"".join(parts)), len(raw), opened, policy)


def _reader_of(source: SupportsRead) -> Callable[[memoryview], int]:
    """``fill(view) -> bytes read``: reads until ``view`` is full or EOF."""
    readinto = getattr(source, "readinto", None)

    if readinto is not None:

        def fill(view: memoryview) -> int:
            got = 0
            size = len(view)
            while got < size:
                n = readinto(view[got:])
                if not n:
                    break
                got += n
            return got

        return fill

    def fill_by_read(view: memoryview) -> int:
        got = 0
        size = len(view)
        while got < size:
            data = source.read(size - got)
            if not data:
                break
            view[got : got + len(data)] = data
            got += len(data)
        return got

    return fill_by_read


class DecryptingReader(io.RawIOBase):
    """A file-like reader of the plaintext of one ESDK message read from ``source``.

    The header is read, checked against ``context`` and authenticated at
    construction. No byte of a frame is returned before that frame's tag verified;
    truncation, trailing bytes, reordered/dropped/duplicated frames raise
    :class:`AuthenticationError` and the stream then refuses every later call
    (:class:`StreamClosedError`). Framed unsigned messages stream in constant
    memory; signed and non-framed ones are buffered whole (bounded by
    ``policy.max_body_size`` when set) and released only after verification.
    ``sha256`` is the plaintext digest once EOF was reached (``compute_sha256``).
    ``close()`` does not close ``source``.
    """

    def __init__(
        self,
        source: SupportsRead,
        *,
        provider: KeyProvider,
        context: Mapping[str, str] | None,
        policy: DecryptPolicy = DecryptPolicy(),  # noqa: B008 - immutable
        compute_sha256: bool = False,
    ) -> None:
        super().__init__()
        self._source = source
        self._fill = _reader_of(source)
        self._policy = policy
        self._failed: BaseException | None = None
        self._opened: Opened = open_header(self._read_source, provider=provider, context=context, policy=policy)
        header = self._opened.header
        self.context: EncryptionContext = self._opened.context
        self.sha256: Digest | None = None
        self._hasher = _Hasher() if compute_sha256 else None
        self._avail = memoryview(b"")
        self._eof = False
        self._done = False
        self._seq = 0
        self._body = 0
        self._f = header.frame_length
        self._streaming = header.framed and header.suite.signature is None
        self._in_memory = type(source) is io.BytesIO and self._streaming
        self._memory = memoryview(source.getvalue()) if self._in_memory else memoryview(b"")  # type: ignore[attr-defined]
        self._consumed = 0
        if self._streaming:
            f = self._f
            self._aad = FrameAad(header.message_id)
            self._decrypt_into = self._opened.aead.decrypt_into
            self._in = memoryview(bytearray(0 if self._in_memory else f + FINAL_FRAME_OVERHEAD))
            self._plain: list[memoryview] = []  # allocated on first use
            self._plain_next = -1
        else:
            self._avail = memoryview(self._decrypt_buffered())
            self._eof = True
            if self._hasher is not None:
                self._hasher.update(self._avail)

    def _read_source(self, n: int) -> bytes:
        return self._source.read(n)

    # -- buffered (signed / non-framed) ---------------------------------------------
    def _decrypt_buffered(self) -> bytes:
        return _decrypt_buffered(self._source.read, self._opened, self._policy)

    # -- streaming -------------------------------------------------------------------
    def _open_frame(self, target: memoryview) -> memoryview:
        """Read, check and open the next frame into ``target``; returns the plaintext view."""
        if not self._in_memory:
            return self._open_from(self._in, self._fill(self._in[: self._f + REGULAR_FRAME_OVERHEAD]), None, target)
        # An io.BytesIO source is read in place: getvalue() hands out its internal bytes
        # object without copying (CPython bytesio.c), so frames are opened where they lie.
        source: io.BytesIO = self._source  # type: ignore[assignment]
        start = source.tell()
        inv = self._memory[start:]
        out = self._open_from(inv, min(len(inv), self._f + REGULAR_FRAME_OVERHEAD), len(inv), target)
        source.seek(start + self._consumed)
        return out

    def _open_from(self, inv: memoryview, got: int, avail: int | None, target: memoryview) -> memoryview:
        """Frame logic over ``inv`` (``got`` bytes present; ``avail`` = all there is, when known)."""
        f = self._f
        if got < 4:
            raise AuthenticationError("message is truncated (no final frame)")
        expected = self._seq + 1
        (marker,) = _U32.unpack_from(inv, 0)
        if marker != FINAL_MARKER:
            if got < f + REGULAR_FRAME_OVERHEAD:
                raise AuthenticationError("message is truncated (no final frame)")
            if marker != expected:
                raise AuthenticationError("message authentication failed (frame out of sequence)")
            self._count(f)
            out = target[:f]
            self._decrypt(inv[4:16], inv[16 : f + REGULAR_FRAME_OVERHEAD], self._aad.regular(expected, f), out)
            self._seq = expected
            self._consumed = f + REGULAR_FRAME_OVERHEAD
            return out
        if got < 24:
            raise AuthenticationError("message is truncated in the final frame")
        (seq,) = _U32.unpack_from(inv, 4)
        (n,) = _U32.unpack_from(inv, 20)
        if seq != expected or n > f:
            raise AuthenticationError("message authentication failed (final frame)")
        end = n + FINAL_FRAME_OVERHEAD
        if avail is None:
            if got < end:
                got += self._fill(inv[got:end])
            trailing = got > end or (got == end and self._fill(memoryview(bytearray(1))) > 0)
        else:
            got = min(avail, end)
            trailing = avail > end
        if got < end:
            raise AuthenticationError("message is truncated in the final frame")
        if trailing:
            raise AuthenticationError("message has trailing bytes after its final frame")
        self._count(n)
        out = target[:n]
        self._decrypt(inv[8:20], inv[24:end], self._aad.final(seq, n), out)
        self._seq = seq
        self._eof = True
        self._consumed = end
        return out

    def _count(self, n: int) -> None:
        self._body += n
        limit = self._policy.max_body_size
        if limit is not None and self._body > limit:
            raise MessageLimitError(f"message body exceeds the maximum body size of {limit} bytes")

    def _decrypt(self, iv: memoryview, ct: memoryview, aad: bytearray, out: memoryview) -> None:
        try:
            self._decrypt_into(iv, ct, aad, out)
        except InvalidTag:
            # decrypt_into has written unverified plaintext: wipe it before anyone sees it.
            out[:] = bytes(len(out))
            raise AuthenticationError("message authentication failed") from None

    def _plain_buffer(self) -> memoryview:
        """The buffer for the next frame. With hashing of large frames, a ring: up to two
        hash batches may still refer to earlier frames (see :class:`_Hasher`)."""
        large = self._hasher is not None and self._f >= _DEFER_MIN
        ring = 2 * -(-_HASH_BATCH // self._f) + 1 if large else 1
        self._plain_next = (self._plain_next + 1) % ring
        if self._plain_next == len(self._plain):
            self._plain.append(memoryview(bytearray(self._f)))  # grown on demand
        return self._plain[self._plain_next]

    # -- file-like API ---------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise StreamClosedError("the stream failed earlier and cannot be used") from self._failed
        if self.closed:
            raise StreamClosedError("read from a closed decrypting stream")

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with verified plaintext; 0 only at the end of the message."""
        self._check_usable()
        view = memoryview(buffer).cast("B")
        try:
            return self._readinto(view)
        except BaseException as exc:
            self._failed = exc
            raise

    def _readinto(self, view: memoryview) -> int:
        size = len(view)
        if size == 0:
            return 0
        while not self._avail:
            if self._eof:
                self._finish()
                return 0
            if self._hasher is None and size >= self._f:
                # Straight into the caller's buffer, as many whole frames as fit.
                n = 0
                while size - n >= self._f and not self._eof:
                    n += len(self._open_frame(view[n:]))
                if n:
                    return n
                continue
            plain = self._open_frame(self._plain_buffer())
            if self._hasher is not None:
                self._hasher.defer(plain)
            self._avail = plain
        n = min(size, len(self._avail))
        view[:n] = self._avail[:n]
        self._avail = self._avail[n:]
        return n

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            if self._hasher is not None:
                self.sha256 = self._hasher.digest()

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all remaining when negative); ``b""`` only at the end."""
        if size is None or size < 0:
            return self.readall()
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        while got < size:
            n = self.readinto(view[got:])
            if not n:
                break
            got += n
        del view
        del buf[got:]
        return bytes(buf)

    def readall(self) -> bytes:
        parts: list[bytes] = []
        chunk = max(self._f, 1 << 16) if self._f else 1 << 20
        while True:
            data = self.read(chunk)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def close(self) -> None:
        """Stop reading. Does NOT close ``source``."""
        hasher = getattr(self, "_hasher", None)  # absent when __init__ failed (IOBase.__del__ closes)
        if not self.closed and hasher is not None:
            hasher.wait()
        super().close()

    def __enter__(self) -> DecryptingReader:
        return self


# ------------------------------------------------------------------------------ iterators


# Exact reference counts: CPython before 3.14, with the GIL (free-threaded builds count lazily).
_REUSE_OWNED = (
    sys.implementation.name == "cpython"
    and sys.version_info < (3, 14)
    and getattr(sys, "_is_gil_enabled", lambda: True)()
)


class _OwnedBuffers:
    """Frame-sized output buffers for the iterators, each owned by the consumer while it holds it.

    A fresh frame-sized allocation per frame costs about a quarter of AES-GCM's throughput at
    1 MiB frames (allocator, page faults, cache misses: measured in docs/benchmarks.md). So two
    buffers alternate, and one is handed out again only once nothing but this pool refers to it:
    CPython's reference count is exact there (the pool's slot plus the call's argument = 2), and
    a consumer that keeps a buffer, or a memoryview of it, keeps it out of reuse. Where counts are
    not exact (other implementations, CPython 3.14's borrowed stack references) every buffer is
    fresh. Callers must hold no reference of their own to a buffer across the next two ``take``s.
    """

    __slots__ = ("_i", "_ring", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring: list[bytearray | None] = [None, None]
        self._i = 0

    def take(self, size: int) -> bytearray:
        if size != self._size or not _REUSE_OWNED:
            return bytearray(size)
        self._i ^= 1
        if self._ring[self._i] is not None and sys.getrefcount(self._ring[self._i]) == 2:
            return self._ring[self._i]  # type: ignore[return-value]
        buf = self._ring[self._i] = bytearray(size)
        return buf


def iter_encrypt(
    chunks: Iterable[bytes | bytearray | memoryview],
    *,
    provider: KeyProvider,
    context: Mapping[str, str],
    frame_length: int = DEFAULT_FRAME_LENGTH,
) -> Iterator[bytes | bytearray]:
    """Encrypt an iterable of plaintext chunks; yields ciphertext pieces the consumer owns.

    The first piece is the header (``bytes``); each further piece is one whole frame, sealed
    by ``encrypt_into`` straight into a ``bytearray`` of exactly the frame's size, which the
    consumer may keep (it is never written again while referenced; see :class:`_OwnedBuffers`).
    A chunk is read only when the previous one is done; the chunk objects are not kept.
    """
    sealer, header, _ = start_message(provider, context, frame_length)
    yield header
    f = frame_length
    aad = FrameAad(sealer.message_id)
    seal = sealer.aead.encrypt_into
    pool = _OwnedBuffers(f + REGULAR_FRAME_OVERHEAD)
    pend = bytearray(f)  # the partial frame copied aside (at most one)
    pend_len = 0
    held: bytearray | None = None  # a full frame sealed as regular that may yet be the last
    seq = 0

    def sealed(plaintext: memoryview | bytearray) -> bytearray:
        out = pool.take(f + REGULAR_FRAME_OVERHEAD)
        _REGULAR_PREFIX.pack_into(out, 0, seq, 0, seq)
        with memoryview(out) as view:
            seal(view[4:16], plaintext, aad.regular(seq, f), view[16:])
        return out

    for chunk in chunks:
        with memoryview(chunk) as raw, raw.cast("B") as view:
            n = len(view)
            if not n:
                continue
            if held is not None:
                out, held = held, None
                yield out
                del out
            pos = 0
            if pend_len:
                pos = min(f - pend_len, n)
                pend[pend_len : pend_len + pos] = view[:pos]
                pend_len += pos
                if pos == n:
                    continue  # possibly a full frame: it may still be the final one
                seq += 1
                out = sealed(pend)
                pend_len = 0
                yield out
                del out
            while n - pos > f:
                seq += 1
                out = sealed(view[pos : pos + f])
                pos += f
                yield out
                del out
            rest = n - pos
            if rest == f:
                seq += 1
                held = sealed(view[pos:])
            elif rest:
                pend[:rest] = view[pos:]
                pend_len = rest
    if held is not None:
        # The last frame was full: open it again and reseal it as the final frame.
        with memoryview(held) as view:
            sealer.aead.decrypt_into(view[4:16], view[16:], aad.regular(seq, f), pend)
        held = None
        pend_len = f
        seq -= 1
    seq += 1
    final = bytearray(pend_len + FINAL_FRAME_OVERHEAD)
    _FINAL_PREFIX.pack_into(final, 0, FINAL_MARKER, seq, 0, seq, pend_len)
    with memoryview(final) as view, memoryview(pend) as plain:
        seal(view[8:20], plain[:pend_len], aad.final(seq, pend_len), view[24:])
    yield final


class _Chunks:
    """Sequential reads over an iterable of byte chunks, without joining them.

    ``cur[pos:]`` is what is left of the current chunk; the frame loop of
    :func:`iter_decrypt` reads ``cur`` and ``pos`` directly (and writes ``pos`` back) so that
    a frame lying whole in one chunk costs no method call. Only the current chunk is
    referenced: earlier ones are released as soon as they are consumed.
    """

    __slots__ = ("_it", "cur", "pos")

    def __init__(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        self._it = iter(chunks)
        self.cur = memoryview(b"")
        self.pos = 0

    def advance(self) -> bool:
        """Move to the next non-empty chunk; ``False`` (and an empty ``cur``) at the end."""
        for chunk in self._it:
            view = memoryview(chunk).cast("B")
            if view:
                self.cur, self.pos = view, 0
                return True
        self.cur, self.pos = memoryview(b""), 0
        return False

    def read_into(self, target: memoryview) -> int:
        """Copy the next ``len(target)`` bytes into ``target``; fewer only at the end."""
        got, size = 0, len(target)
        while got < size:
            cur, pos = self.cur, self.pos
            take = min(len(cur) - pos, size - got)
            if take <= 0:
                if not self.advance():
                    break
                continue
            target[got : got + take] = cur[pos : pos + take]
            self.pos = pos + take
            got += take
        return got

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer only at the end), as a new ``bytes``."""
        cur, pos = self.cur, self.pos
        if len(cur) - pos >= size:
            self.pos = pos + size
            return bytes(cur[pos : pos + size])
        buf = bytearray(size)
        with memoryview(buf) as view:
            got = self.read_into(view)
        del buf[got:]
        return bytes(buf)

    def pieces(self, size: int) -> Iterator[memoryview]:
        """The next ``size`` bytes as views where they lie (fewer only at the end).

        Each view is consumed when it is yielded: the chunk it points into is released
        once the consumer moves on to the next piece.
        """
        while size > 0:
            cur, pos = self.cur, self.pos
            take = min(len(cur) - pos, size)
            if take <= 0:
                if not self.advance():
                    return
                continue
            self.pos = pos + take
            size -= take
            yield cur[pos : pos + take]

    def at_end(self) -> bool:
        return self.pos >= len(self.cur) and not self.advance()


# A frame split across chunks is opened either by copying its pieces into one reused buffer
# and decrypting that with one decrypt_into, or by incremental GCM over the pieces where they
# lie. Incremental GCM costs a fixed ≈ 4-8 µs per frame (Cipher/decryptor construction: key
# schedule and GHASH tables, which the one-shot AESGCM keeps) plus a few % per byte; a copy costs
# ≈ 1 µs per 24 KiB plus the cache traffic of a third frame-sized buffer. Measured (iter_decrypt
# ÷ raw decrypt_into, 1 MiB chunks, cryptography 50, this machine): 128 KiB frames copy 1.00 vs
# incremental 0.94; 256 KiB 0.89 vs 0.94; 1 MiB 0.69 vs 0.80. Up to this many bytes of
# ciphertext ‖ tag a split frame is copied.
_COPY_MAX = 192 * 1024
_TRUNCATED = "message is truncated (no final frame)"
_TRUNCATED_FINAL = "message is truncated in the final frame"


def _wipe(out: bytearray | memoryview) -> None:
    out[:] = bytes(len(out))


class _SplitOpener:
    """Opens frames whose ciphertext ‖ tag does not lie whole in the current chunk.

    The plaintext goes into ``out``, which the caller releases only if this returns: on any
    failure (bad tag, truncation, an error from the chunk iterator) ``out`` is wiped first.
    """

    __slots__ = ("_aead", "_cipher", "_key", "_scratch")

    def __init__(self, opened: Opened) -> None:
        self._aead = opened.aead
        self._key = opened.content_key
        self._cipher: algorithms.AES | None = None
        self._scratch: memoryview | None = None

    def open(self, src: _Chunks, iv: bytes, aad: bytearray, out: bytearray, truncated: str) -> None:
        """Open the next ``len(out) + 16`` bytes of ``src`` (ciphertext ‖ tag) into ``out``."""
        need = len(out) + TAG_LENGTH
        cur, pos = src.cur, src.pos
        try:
            if len(cur) - pos >= need:  # only the frame's prefix was split
                src.pos = pos + need
                self._aead.decrypt_into(iv, cur[pos : pos + need], aad, out)
            elif need <= _COPY_MAX:
                scratch = self._scratch
                if scratch is None or len(scratch) < need:
                    scratch = self._scratch = memoryview(bytearray(need))
                frame = scratch[:need]
                if src.read_into(frame) < need:
                    raise AuthenticationError(truncated)
                self._aead.decrypt_into(iv, frame, aad, out)
            else:
                self._incremental(src, iv, aad, out, truncated)
        except InvalidTag:
            _wipe(out)  # decrypt_into / update_into wrote unverified plaintext
            raise AuthenticationError("message authentication failed") from None
        except BaseException:
            _wipe(out)
            raise

    def _incremental(self, src: _Chunks, iv: bytes, aad: bytearray, out: bytearray, truncated: str) -> None:
        """Incremental GCM over the pieces where they lie, into ``out`` (private until the tag
        verified in ``finalize_with_tag``); the tag is the last 16 bytes, read after them."""
        if self._cipher is None:
            self._cipher = algorithms.AES(self._key)
        decryptor = Cipher(self._cipher, modes.GCM(iv)).decryptor()
        decryptor.authenticate_additional_data(aad)
        update_into = decryptor.update_into
        size = len(out)
        done = 0
        cur, pos = src.cur, src.pos
        with memoryview(out) as target:
            while done < size:
                take = min(len(cur) - pos, size - done)
                if take <= 0:
                    if not src.advance():
                        raise AuthenticationError(truncated)
                    cur, pos = src.cur, 0
                    continue
                # update_into wants 15 bytes of room beyond its input (cryptography's block rule):
                # the last bytes of the frame, which would overrun ``out``, go through update().
                direct = min(take, size - done - 15)
                if direct == take:
                    update_into(cur[pos : pos + take], target[done : done + take + 15])
                else:
                    if direct > 0:
                        update_into(cur[pos : pos + direct], target[done : done + direct + 15])
                    rest = decryptor.update(cur[pos + max(direct, 0) : pos + take])
                    target[done + take - len(rest) : done + take] = rest
                pos += take
                done += take
        src.pos = pos
        tag = src.read(TAG_LENGTH)
        if len(tag) < TAG_LENGTH:
            raise AuthenticationError(truncated)
        decryptor.finalize_with_tag(tag)


# Output buffers left by finished iter_decrypt generators, for the next one. A fresh
# frame-sized bytearray is paid in page faults on its first write, about 4 % of iter_decrypt's
# throughput at 1 MiB frames for the two a generator needs (benchmarks/streaming.py, 128 MiB
# messages); a recycled one is not. Bounded: at most two buffers of at most 4 MiB (idle memory
# ≤ 8 MiB), each wiped when given back, so no plaintext outlives the generator that made it.
_SPARE_COUNT = 2
_SPARE_MAX_SIZE = 4 * 1024 * 1024
_spare_lock = threading.Lock()
_spare: list[bytearray] = []
_zeros = memoryview(b"")
_NO_BUFFER = bytearray(0)  # an empty ring slot (never the size of a frame)


def _take_spare(size: int) -> bytearray:
    """A recycled buffer of ``size`` bytes (zeroed), or a new one."""
    if _spare and size <= _SPARE_MAX_SIZE:
        with _spare_lock:
            for i, buf in enumerate(_spare):
                if len(buf) == size:
                    return _spare.pop(i)
    return bytearray(size)


def _give_back(buf: bytearray) -> None:
    """Keep ``buf``, which nothing else refers to any more, for a later :func:`_take_spare`."""
    global _zeros
    size = len(buf)
    if size > _SPARE_MAX_SIZE or size == 0:
        return
    if len(_zeros) < size:
        # Never written: its pages stay the kernel's shared zero page (no memory of its own).
        _zeros = memoryview(bytes(_SPARE_MAX_SIZE))
    buf[:] = _zeros[:size]
    with _spare_lock:
        if len(_spare) >= _SPARE_COUNT:
            _spare.pop(0)
        _spare.append(buf)


def _iter_frames(src: _Chunks, opened: Opened, policy: DecryptPolicy) -> Iterator[bytearray]:
    """The frame loop of :func:`iter_decrypt` (framed, unsigned bodies).

    Fast path: a regular frame that lies whole in the current chunk is opened where it lies
    with one ``decrypt_into`` and no method call of ours; everything else (frames split across
    chunks, the final frame, every error) goes through :class:`_Chunks` and
    :class:`_SplitOpener`. Output buffers are recycled as :class:`_OwnedBuffers` does, inlined.
    """
    header = opened.header
    f = header.frame_length
    fr = f + REGULAR_FRAME_OVERHEAD
    frame_aad = FrameAad(header.message_id)
    regular_aad, seq_at = frame_aad.regular_template(f)
    pack_seq = _U32.pack_into
    unpack_from = _U32.unpack_from
    decrypt_into = opened.aead.decrypt_into
    split = _SplitOpener(opened)
    limit = policy.max_body_size
    ceiling = (1 << 64) if limit is None else limit  # above any body (2^32 frames of 2^31 bytes)
    reuse = _REUSE_OWNED
    refcount = sys.getrefcount
    ring: list[bytearray] = [_NO_BUFFER, _NO_BUFFER]
    slot = 0
    seq, total = 1, 0

    def take() -> bytearray:  # the fast path below inlines the same steps
        nonlocal slot
        slot ^= 1
        buf = ring[slot]
        if not reuse or len(buf) != f or refcount(buf) != 3:  # ring slot, ``buf``, the argument
            buf = _take_spare(f)
            if reuse:
                ring[slot] = buf
        return buf

    out: bytearray | None = None
    cur, pos = src.cur, src.pos
    end = len(cur)
    final: bytearray | None = None
    try:
        while True:
            if end - pos >= fr:
                (marker,) = unpack_from(cur, pos)
                if marker == seq:
                    total += f
                    if total > ceiling:
                        raise MessageLimitError(f"message body exceeds the maximum body size of {limit} bytes")
                    pack_seq(regular_aad, seq_at, seq)
                    # The buffer yielded two frames ago, unless its consumer still refers to it
                    # (references: the ring's slot, ``out`` and refcount's argument).
                    slot ^= 1
                    out = ring[slot]
                    if not reuse or len(out) != f or refcount(out) != 3:
                        out = _take_spare(f)
                        if reuse:
                            ring[slot] = out
                    try:
                        decrypt_into(cur[pos + 4 : pos + 16], cur[pos + 16 : pos + fr], regular_aad, out)
                    except InvalidTag:
                        _wipe(out)  # decrypt_into wrote unverified plaintext
                        raise AuthenticationError("message authentication failed") from None
                    pos += fr
                    seq += 1
                    yield out
                    continue
            # The general path: a frame not whole in this chunk, the final frame, or an error.
            src.pos = pos
            head = src.read(4)
            if len(head) < 4:
                raise AuthenticationError(_TRUNCATED)
            (marker,) = unpack_from(head, 0)
            if marker != FINAL_MARKER:
                if marker != seq:
                    raise AuthenticationError("message authentication failed (frame out of sequence)")
                iv = src.read(12)
                if len(iv) < 12:
                    raise AuthenticationError(_TRUNCATED)
                total += f
                if total > ceiling:
                    raise MessageLimitError(f"message body exceeds the maximum body size of {limit} bytes")
                pack_seq(regular_aad, seq_at, seq)
                out = take()
                split.open(src, iv, regular_aad, out, _TRUNCATED)
                seq += 1
                cur, pos = src.cur, src.pos
                end = len(cur)
                yield out
                continue
            rest = src.read(20)
            if len(rest) < 20:
                raise AuthenticationError(_TRUNCATED_FINAL)
            (got,) = unpack_from(rest, 0)
            (n,) = unpack_from(rest, 16)
            if got != seq or n > f:
                raise AuthenticationError("message authentication failed (final frame)")
            total += n
            if total > ceiling:
                raise MessageLimitError(f"message body exceeds the maximum body size of {limit} bytes")
            out = None  # a reference of ours would keep the ring's buffer out of reuse
            final = take() if n == f else bytearray(n)  # a full final frame: ecrcrypt's multiples of F
            split.open(src, rest[4:16], frame_aad.final(seq, n), final, _TRUNCATED_FINAL)
            if not src.at_end():
                _wipe(final)
                raise AuthenticationError("message has trailing bytes after its final frame")
            yield final
            return
    finally:
        # Hand the ring's buffers that nobody else holds to the next generator (wiped).
        out = final = None
        if reuse:
            for i in (0, 1):
                buf, ring[i] = ring[i], _NO_BUFFER
                if len(buf) == f and refcount(buf) == 2:  # ``buf`` and refcount's argument
                    _give_back(buf)
                del buf


def iter_decrypt(
    chunks: Iterable[bytes | bytearray | memoryview],
    *,
    provider: KeyProvider,
    context: Mapping[str, str] | None,
    policy: DecryptPolicy = DecryptPolicy(),  # noqa: B008 - immutable
) -> Iterator[bytes | bytearray]:
    """Decrypt a message given as an iterable of chunks; yields verified plaintext pieces.

    Same guarantees as :class:`DecryptingReader`: a frame's plaintext is yielded only
    after its tag verified, and the final frame only once no byte follows it.
    A frame lying whole in a chunk is opened where it lies (no copy of the ciphertext); one
    split across chunks is copied into a reused buffer when small, opened incrementally
    where its pieces lie when large (see :data:`_COPY_MAX`); only the current chunk is
    referenced. Each frame goes into a ``bytearray`` of exactly its plaintext size that the
    consumer owns and may keep: two buffers alternate as in :class:`_OwnedBuffers`, and
    those no consumer holds when the generator ends are wiped and passed to the next one
    (:func:`_give_back`). Signed and non-framed messages come as one ``bytes``.
    """
    source = _Chunks(chunks)
    opened = open_header(source.read, provider=provider, context=context, policy=policy)
    header = opened.header
    if not header.framed or header.suite.signature is not None:
        yield _decrypt_buffered(source.read, opened, policy)
        return
    yield from _iter_frames(source, opened, policy)
