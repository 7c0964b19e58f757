"""Encryption of an iterable of chunks, :func:`iter_encrypt` (private to :mod:`ecrcrypt.streams`).

Public through :mod:`ecrcrypt.streams`. A generator rather than a writer: each frame is
sealed straight into a consumer-owned buffer from ``streams.owned`` and yielded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ecrcrypt.format.frames import (
    FINAL_FRAME_OVERHEAD,
    FINAL_MARKER,
    FINAL_PREFIX,
    REGULAR_FRAME_OVERHEAD,
    REGULAR_PREFIX,
    FrameAad,
)
from ecrcrypt.format.message import DEFAULT_FRAME_LENGTH, start_message
from ecrcrypt.keyprovider import KeyProvider
from ecrcrypt.streams.owned import _give_back, _OwnedBuffers, _take_spare


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
    pend = _take_spare(f)  # the partial frame copied aside (at most one)
    pend_len = 0
    held: bytearray | None = None  # a full frame sealed as regular that may yet be the last
    seq = 0

    def sealed(plaintext: memoryview | bytearray) -> bytearray:
        out = pool.take(f + REGULAR_FRAME_OVERHEAD)
        REGULAR_PREFIX.pack_into(out, 0, seq, 0, seq)
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
    FINAL_PREFIX.pack_into(final, 0, FINAL_MARKER, seq, 0, seq, pend_len)
    with memoryview(final) as view, memoryview(pend) as plain:
        seal(view[8:20], plain[:pend_len], aad.final(seq, pend_len), view[24:])
    # Before the last yield: a consumer need not resume the generator after the final frame.
    pool.release()
    _give_back(pend)
    yield final
