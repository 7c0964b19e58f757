"""Random access: decrypt a plaintext byte range of a framed message.

Frame offsets are pure arithmetic (digest §4): with header length H, frame length
F, k regular frames and a final frame of n bytes, frame j (1-based) starts at
``H + (j-1)(F+32)`` and the final frame at ``H + k(F+32)``; k and n follow from
the total size alone. Each range read still (1) parses the header and unwraps the
data key, (2) checks the key commitment, (3) verifies the header tag, which
authenticates F, the message id and the context the arithmetic depends on,
(4) verifies every frame it returns bytes from, and (5) verifies the final frame,
which authenticates the plaintext size and so rules out truncation (age's
``DecryptReaderAt`` does the same). Signed and non-framed messages cannot be read
this way (one signature / one tag covers everything).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Mapping
from typing import BinaryIO, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.errors import AuthenticationError, MessageFormatError, MessageLimitError, ValidationError
from ecrcrypt.format.frames import (
    FINAL_FRAME_OVERHEAD,
    FINAL_MARKER,
    REGULAR_FRAME_OVERHEAD,
    U32,
    FrameAad,
    split_body,
)
from ecrcrypt.format.message import DecryptPolicy, open_header
from ecrcrypt.keyprovider import KeyProvider

__all__ = ["FileRangeSource", "RandomAccessSource", "decrypt_range"]

_HEADER_BLOCK = 4096


@runtime_checkable
class RandomAccessSource(Protocol):
    """Random reads of a stored message (an S3 ranged GET, a file, a blob store).

    ``read_at`` returns exactly ``length`` bytes unless the object ends first.
    """

    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...


class FileRangeSource:
    """A seekable binary file as a :class:`RandomAccessSource` (thread-safe; does not own the file)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lock = threading.Lock()

    def size(self) -> int:
        with self._lock:
            return self._file.seek(0, 2)

    def read_at(self, offset: int, length: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            parts = []
            while length > 0:
                data = self._file.read(length)
                if not data:
                    break
                parts.append(data)
                length -= len(data)
            return b"".join(parts)


class _Cursor:
    """Sequential ``read(n)`` over a random-access source, fetching whole blocks."""

    def __init__(self, source: RandomAccessSource, size: int) -> None:
        self._source = source
        self._size = size
        self._buf = b""
        self._base = 0
        self.pos = 0

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if end > self._base + len(self._buf):
            want = min(max(end - self._base, len(self._buf) * 2, _HEADER_BLOCK), self._size - self._base)
            self._buf = self._source.read_at(self._base, want)
        data = self._buf[self.pos - self._base : end - self._base]
        self.pos += len(data)
        return data


def decrypt_range(
    source: RandomAccessSource,
    offset: int,
    length: int,
    *,
    provider: KeyProvider,
    context: Mapping[str, str] | None,
    policy: DecryptPolicy = DecryptPolicy(),  # noqa: B008 - immutable
) -> bytes:
    """Plaintext bytes ``[offset, offset + length)``, clamped to the plaintext's end.

    Reads the header, the final frame and the frames covering the range only. A
    range starting at or past the end returns ``b""`` (after the same checks).
    Tampering anywhere that is read, or a truncated object, raises
    :class:`AuthenticationError`.
    """
    if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
        raise ValidationError("offset and length must be non-negative ints")
    total = source.size()
    cursor = _Cursor(source, total)
    opened = open_header(cursor.read, provider=provider, context=context, policy=policy)
    header = opened.header
    if not header.framed or header.suite.signature is not None:
        raise MessageFormatError("random access needs a framed message of an unsigned algorithm suite")
    f = header.frame_length
    start_of_body = cursor.pos
    try:
        regular, final_len = split_body(total - start_of_body, f)
    except MessageFormatError:
        raise AuthenticationError("message length does not match its frames (truncated or extended)") from None
    size = regular * f + final_len
    if policy.max_body_size is not None and size > policy.max_body_size:
        raise MessageLimitError(f"message body exceeds the maximum body size of {policy.max_body_size} bytes")
    aad = FrameAad(header.message_id)
    aead = opened.aead

    # The final frame, always: it authenticates the plaintext size.
    final_at = start_of_body + regular * (f + REGULAR_FRAME_OVERHEAD)
    fin = source.read_at(final_at, final_len + FINAL_FRAME_OVERHEAD)
    if len(fin) != final_len + FINAL_FRAME_OVERHEAD:
        raise AuthenticationError("message is truncated in the final frame")
    marker, seq = struct.unpack_from(">II", fin, 0)
    (n,) = U32.unpack_from(fin, 20)
    if marker != FINAL_MARKER or seq != regular + 1 or n != final_len:
        raise AuthenticationError("message authentication failed (final frame)")
    final_plain = _open(aead, fin[8:20], fin[24:], aad.final(seq, n))

    stop = min(offset + length, size)
    if offset >= stop:
        return b""
    first, last = offset // f, (stop - 1) // f  # 0-based frame indexes
    parts: list[bytes] = []
    last_regular = min(last, regular - 1)
    if first <= last_regular:
        step = f + REGULAR_FRAME_OVERHEAD
        blob = memoryview(source.read_at(start_of_body + first * step, (last_regular - first + 1) * step))
        if len(blob) != (last_regular - first + 1) * step:
            raise AuthenticationError("message is truncated")
        for i in range(first, last_regular + 1):
            frame = blob[(i - first) * step : (i - first + 1) * step]
            (got,) = U32.unpack_from(frame, 0)
            if got != i + 1:
                raise AuthenticationError("message authentication failed (frame out of sequence)")
            parts.append(_open(aead, frame[4:16], frame[16:], aad.regular(i + 1, f)))
    if last >= regular:
        parts.append(final_plain)
    joined = b"".join(parts)
    skip = offset - first * f
    return joined[skip : skip + (stop - offset)]


def _open(aead: AESGCM, iv: bytes | memoryview, ct: bytes | memoryview, aad: bytearray) -> bytes:
    try:
        return aead.decrypt(iv, ct, aad)
    except InvalidTag:
        raise AuthenticationError("message authentication failed") from None
