"""The file-like decrypting reader, :class:`DecryptingReader` (private to :mod:`ecrcrypt.streams`).

Public through :mod:`ecrcrypt.streams`. It opens framed unsigned bodies frame by frame
into reused buffers (or straight into the caller's), reads an ``io.BytesIO`` source in
place, and leaves signed and non-framed bodies to ``streams.buffered``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag

from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import AuthenticationError, MessageLimitError, StreamClosedError
from ecrcrypt.format.frames import FINAL_FRAME_OVERHEAD, FINAL_MARKER, REGULAR_FRAME_OVERHEAD, U32, FrameAad
from ecrcrypt.format.message import DecryptPolicy, Opened, open_header, open_parsed
from ecrcrypt.format.suites import TAG_LENGTH
from ecrcrypt.keyprovider import KeyProvider
from ecrcrypt.streams.buffered import _decrypt_buffered
from ecrcrypt.streams.hashing import _DEFER_MIN, _HASH_BATCH, _Hasher
from ecrcrypt.streams.owned import _give_back, _take_spare, _unshared
from ecrcrypt.streams.protocols import SupportsRead, _reader_of


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
        # How far from their start the frame buffers were written (ciphertext into ``_in``,
        # plaintext into ``_plain``): only that much is wiped when they go back to the pool.
        self._in_dirty = 0
        self._plain_dirty = 0
        self._opened: Opened = self._open_header(provider, context)
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
            self._in = memoryview(bytearray(0) if self._in_memory else _take_spare(f + FINAL_FRAME_OVERHEAD))
            self._plain: list[memoryview] = []  # allocated on first use
            self._plain_next = -1
        else:
            self._avail = memoryview(self._decrypt_buffered())
            self._eof = True
            if self._hasher is not None:
                self._hasher.update(self._avail)

    def _read_source(self, n: int) -> bytes:
        return self._source.read(n)

    def _open_header(self, provider: KeyProvider, context: Mapping[str, str] | None) -> Opened:
        """Parse and authenticate the header. A source that shows what it has buffered without
        consuming it (``peek``: ``io.BufferedReader``, hence files and the blob stores' readers)
        usually holds a whole header: it is parsed in one pass and exactly its bytes consumed.
        Otherwise, or for anything but an ordinary framed v2 header, field by field."""
        peek = getattr(self._source, "peek", None)
        if peek is not None:
            ahead = peek(self._policy.max_header_size)
            header = self._policy.parse_complete_header(ahead) if type(ahead) is bytes else None
            if header is not None:
                if self._source.read(header.length) != ahead[: header.length]:
                    raise StreamClosedError("the source changed what it had shown (peek) before it was read")
                return open_parsed(header, provider=provider, context=context)
        return open_header(self._read_source, provider=provider, context=context, policy=self._policy)

    # -- buffered (signed / non-framed) ---------------------------------------------
    def _decrypt_buffered(self) -> bytes:
        return _decrypt_buffered(self._source.read, self._opened, self._policy)

    # -- streaming -------------------------------------------------------------------
    def _open_frame(self, target: memoryview) -> memoryview:
        """Read, check and open the next frame into ``target``; returns the plaintext view."""
        if not self._in_memory:
            got = self._fill(self._in[: self._f + REGULAR_FRAME_OVERHEAD])
            if got > self._in_dirty:
                self._in_dirty = got
            return self._open_from(self._in, got, None, target)
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
        (marker,) = U32.unpack_from(inv, 0)
        if marker != FINAL_MARKER:
            if got < f + REGULAR_FRAME_OVERHEAD:
                raise AuthenticationError("message is truncated (no final frame)")
            if marker != expected:
                raise AuthenticationError("message authentication failed (frame out of sequence)")
            self._count(f)
            out = self._decrypt(inv[4:16], inv[16 : f + REGULAR_FRAME_OVERHEAD], self._aad.regular(expected, f), target)
            self._seq = expected
            self._consumed = f + REGULAR_FRAME_OVERHEAD
            return out
        if got < 24:
            raise AuthenticationError("message is truncated in the final frame")
        (seq,) = U32.unpack_from(inv, 4)
        (n,) = U32.unpack_from(inv, 20)
        if seq != expected or n > f:
            raise AuthenticationError("message authentication failed (final frame)")
        end = n + FINAL_FRAME_OVERHEAD
        if avail is None:
            if got < end:
                got += self._fill(inv[got:end])
                if got > self._in_dirty:
                    self._in_dirty = got
            trailing = got > end or (got == end and self._fill(memoryview(bytearray(1))) > 0)
        else:
            got = min(avail, end)
            trailing = avail > end
        if got < end:
            raise AuthenticationError("message is truncated in the final frame")
        if trailing:
            raise AuthenticationError("message has trailing bytes after its final frame")
        self._count(n)
        out = self._decrypt(inv[8:20], inv[24:end], self._aad.final(seq, n), target)
        self._seq = seq
        self._eof = True
        self._consumed = end
        return out

    def _count(self, n: int) -> None:
        self._body += n
        limit = self._policy.max_body_size
        if limit is not None and self._body > limit:
            raise MessageLimitError(f"message body exceeds the maximum body size of {limit} bytes")

    def _decrypt(self, iv: memoryview, ct: memoryview, aad: bytearray, target: memoryview) -> memoryview:
        """Open one frame into the first ``len(ct) - 16`` bytes of ``target``, which are returned."""
        out = target[: len(ct) - TAG_LENGTH]
        if len(out) > self._plain_dirty:
            self._plain_dirty = len(out)
        try:
            self._decrypt_into(iv, ct, aad, out)
        except InvalidTag:
            # decrypt_into has written unverified plaintext: wipe it before anyone sees it.
            out[:] = bytes(len(out))
            raise AuthenticationError("message authentication failed") from None
        return out

    def _plain_buffer(self) -> memoryview:
        """The buffer for the next frame. With hashing of large frames, a ring: up to two
        hash batches may still refer to earlier frames (see :class:`_Hasher`)."""
        large = self._hasher is not None and self._f >= _DEFER_MIN
        ring = 2 * -(-_HASH_BATCH // self._f) + 1 if large else 1
        self._plain_next = (self._plain_next + 1) % ring
        if self._plain_next == len(self._plain):
            self._plain.append(memoryview(_take_spare(self._f)))  # grown on demand
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

    def read_view(self) -> memoryview:
        """The next verified plaintext (a frame, or what a ``readinto`` left of one) as a read-only
        view of the reader's own buffer, valid until the next call on the reader; empty only at the end.

        The copy-free way to drain the reader into a destination that does not keep what it is
        given -- any ``io`` object (``io.IOBase.write``: "the implementation should only access b
        during the method call"), a socket: frames are decrypted into the reader's buffers, the
        SHA-256 (``compute_sha256``) reads them on its thread, and nothing is copied out.
        """
        self._check_usable()
        try:
            if self._avail:
                out = self._avail
                self._avail = memoryview(b"")
                return out.toreadonly()
            while not self._eof:
                plain = self._open_frame(self._plain_buffer())
                if plain:
                    if self._hasher is not None:
                        self._hasher.defer(plain)
                    return plain.toreadonly()
            self._finish()
            return memoryview(b"")
        except BaseException as exc:
            self._failed = exc
            raise

    def read_chunk(self) -> bytes:
        """The next verified plaintext as a new ``bytes`` the caller may keep (one frame's worth,
        :meth:`read_view` copied once); ``b""`` only at the end."""
        return bytes(self.read_view())

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
        if not self.closed:
            if hasher is not None:
                hasher.wait()
            self._recycle()
        super().close()

    def _recycle(self) -> None:
        """Leave this reader's frame buffers to the next stream (``streams.owned``): those no view
        handed out (``read_view``) still refers to, wiped there."""
        failed = getattr(self, "_failed", None) is not None  # a source that raised mid-read: wipe all
        views: list[tuple[memoryview, int | None]] = [
            (getattr(self, "_in", memoryview(b"")), None if failed else getattr(self, "_in_dirty", None)),
            *(
                (plain, None if failed else getattr(self, "_plain_dirty", None))
                for plain in getattr(self, "_plain", ())
            ),
        ]
        self._in = self._avail = memoryview(b"")
        self._plain = []
        for view, dirty in views:
            buf = view.obj
            try:
                view.release()
            except BufferError:  # exported by someone still holding it: not ours to reuse
                continue
            if type(buf) is bytearray and buf and _unshared(buf):
                _give_back(buf, dirty)

    def __enter__(self) -> DecryptingReader:
        return self
