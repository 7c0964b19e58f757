"""Framed-body arithmetic and the per-frame AAD, packed into reused buffers.

Spec ``data-format/message-body.md`` and ``message-body-aad.md``:

* regular frame ``SeqNum:u32 ‖ IV(12) ‖ ciphertext(F) ‖ tag(16)`` (F + 32 bytes);
* final frame ``FFFFFFFF ‖ SeqNum:u32 ‖ IV(12) ‖ n:u32 ‖ ciphertext(n) ‖ tag(16)`` (n + 40);
* body AAD ``message id ‖ content string ‖ SeqNum:u32 ‖ length:u64``;
* IV written by encryptors: 8 zero bytes ‖ SeqNum.

ecrcrypt ends a plaintext that is an exact multiple of F with a *full* final frame
(the spec's SHOULD); an empty plaintext is a single empty final frame. These sizes
are pure functions, so a reader can locate any frame without reading the others.
"""

from __future__ import annotations

import struct

from ecrcrypt.errors import MessageFormatError

__all__ = [
    "FINAL_FRAME_OVERHEAD",
    "FINAL_MARKER",
    "REGULAR_FRAME_OVERHEAD",
    "FINAL_PREFIX",
    "REGULAR_PREFIX",
    "U32",
    "FrameAad",
    "body_length",
    "final_aad",
    "frame_counts",
    "plaintext_length",
]

FRAME_STRING = b"AWSKMSEncryptionClient Frame"
FINAL_FRAME_STRING = b"AWSKMSEncryptionClient Final Frame"
SINGLE_BLOCK_STRING = b"AWSKMSEncryptionClient Single Block"
FINAL_MARKER = 0xFFFFFFFF
FINAL_MARKER_BYTES = b"\xff\xff\xff\xff"
REGULAR_FRAME_OVERHEAD = 4 + 12 + 16
FINAL_FRAME_OVERHEAD = 4 + 4 + 12 + 4 + 16
# Spec message-body.md: at most 2^32 - 1 frames, the final frame included.
MAX_FRAMES = 0xFFFFFFFF
_SEQ_LEN = struct.Struct(">IQ")
# Frame prefixes compiled once, so the writers, the reader, the iterators and the one-shot
# path pack or read a whole prefix with one ``pack_into`` / ``unpack_from`` call.
REGULAR_PREFIX = struct.Struct(">IQI")  # SeqNum ‖ IV = 8 zero bytes ‖ SeqNum
FINAL_PREFIX = struct.Struct(">IIQII")  # FFFFFFFF ‖ SeqNum ‖ IV(0^8 ‖ SeqNum) ‖ length
U32 = struct.Struct(">I")


def frame_counts(plaintext_length: int, frame_length: int) -> tuple[int, int]:
    """``(regular frames, final-frame content length)`` as ecrcrypt writes them."""
    if plaintext_length < 0 or frame_length <= 0:
        raise ValueError("lengths must be non-negative and the frame length positive")
    if plaintext_length == 0:
        return 0, 0
    regular = (plaintext_length - 1) // frame_length
    return regular, plaintext_length - regular * frame_length


def body_length(plaintext_length: int, frame_length: int) -> int:
    """Ciphertext bytes after the header for ``plaintext_length`` bytes of plaintext."""
    regular, final = frame_counts(plaintext_length, frame_length)
    return regular * (frame_length + REGULAR_FRAME_OVERHEAD) + final + FINAL_FRAME_OVERHEAD


def plaintext_length(body_len: int, frame_length: int) -> int:
    """Inverse of :func:`body_length` for any unsigned framed body (unique, since n ≤ F < F + 32).

    Also accepts the empty final frame other SDKs may write after a full frame.
    """
    _, final = split_body(body_len, frame_length)
    regular = (body_len - FINAL_FRAME_OVERHEAD - final) // (frame_length + REGULAR_FRAME_OVERHEAD)
    return regular * frame_length + final


def split_body(body_len: int, frame_length: int) -> tuple[int, int]:
    """``(regular frames, final content length)`` of an unsigned framed body of ``body_len`` bytes."""
    rest = body_len - FINAL_FRAME_OVERHEAD
    if rest < 0:
        raise MessageFormatError("message body is shorter than a final frame")
    regular, final = divmod(rest, frame_length + REGULAR_FRAME_OVERHEAD)
    if final > frame_length or regular + 1 > MAX_FRAMES:
        raise MessageFormatError("message body length does not match its frame length")
    return regular, final


class FrameAad:
    """The body-AAD layouts of one message, packed in place per frame.

    Each layout's buffer is made on first use: a one-frame message needs only the final one.
    """

    __slots__ = ("_final", "_id", "_regular", "_single")

    def __init__(self, message_id: bytes) -> None:
        self._id = message_id
        self._regular: bytearray | None = None
        self._final: bytearray | None = None
        self._single: bytearray | None = None

    def regular(self, seq: int, length: int) -> bytearray:
        buf = self._regular
        if buf is None:
            buf = self._regular = bytearray(self._id + FRAME_STRING + bytes(12))
        _SEQ_LEN.pack_into(buf, len(buf) - 12, seq, length)
        return buf

    def regular_template(self, length: int) -> tuple[bytearray, int]:
        """The regular-frame AAD buffer with ``length`` packed, and the offset of its SeqNum.

        For hot loops whose frames all have one length: they pack only the ``>I`` sequence
        number per frame (one ``pack_into``, no method call). The buffer is the one
        :meth:`regular` also packs.
        """
        buf = self.regular(0, length)
        return buf, len(buf) - 12

    def final(self, seq: int, length: int) -> bytearray:
        buf = self._final
        if buf is None:
            buf = self._final = bytearray(self._id + FINAL_FRAME_STRING + bytes(12))
        _SEQ_LEN.pack_into(buf, len(buf) - 12, seq, length)
        return buf

    def single_block(self, length: int) -> bytearray:
        # Non-framed bodies use sequence number 1 (spec message-body-aad.md).
        buf = self._single
        if buf is None:
            buf = self._single = bytearray(self._id + SINGLE_BLOCK_STRING + bytes(12))
        _SEQ_LEN.pack_into(buf, len(buf) - 12, 1, length)
        return buf


def final_aad(message_id: bytes, seq: int, length: int) -> bytes:
    """The final frame's AAD as a new bytes object (one-shot paths that seal one frame)."""
    return message_id + FINAL_FRAME_STRING + _SEQ_LEN.pack(seq, length)
