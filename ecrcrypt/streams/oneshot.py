"""Whole messages in memory: :func:`encrypt` and :func:`decrypt`, for objects small enough to hold.

The small-object path of the registry and of users who hold bytes rather than streams; it shares
the header and body steps of :mod:`ecrcrypt.format.message` with the streaming forms.
"""

from __future__ import annotations

from collections.abc import Mapping

from ecrcrypt.format.frames import (
    FINAL_MARKER,
    FINAL_PREFIX,
    REGULAR_PREFIX,
    FrameAad,
    final_aad,
    frame_counts,
)
from ecrcrypt.format.message import DEFAULT_FRAME_LENGTH, DecryptPolicy, decrypt_body, open_parsed, start_message
from ecrcrypt.keyprovider import KeyProvider

__all__ = ["decrypt", "encrypt"]


def encrypt(
    plaintext: bytes | bytearray | memoryview,
    *,
    provider: KeyProvider,
    context: Mapping[str, str],
    frame_length: int = DEFAULT_FRAME_LENGTH,
) -> bytes:
    """Encrypt ``plaintext`` into one ESDK v2 message (suite 0x0478, framed)."""
    sealer, header, _ = start_message(provider, context, frame_length)
    view = memoryview(plaintext).cast("B")
    seal = sealer.aead.encrypt
    message_id = sealer.message_id
    n = len(view)
    if n <= frame_length:
        # One final frame (the small-object case): no per-frame buffers at all.
        prefix = FINAL_PREFIX.pack(FINAL_MARKER, 1, 0, 1, n)
        return b"".join((header, prefix, seal(prefix[8:20], view, final_aad(message_id, 1, n))))
    aad = FrameAad(message_id)
    regular, final = frame_counts(n, frame_length)
    parts = [header]
    pos = 0
    for seq in range(1, regular + 1):
        prefix = REGULAR_PREFIX.pack(seq, 0, seq)
        parts += (prefix, seal(prefix[4:], view[pos : pos + frame_length], aad.regular(seq, frame_length)))
        pos += frame_length
    seq = regular + 1
    prefix = FINAL_PREFIX.pack(FINAL_MARKER, seq, 0, seq, final)
    parts += (prefix, seal(prefix[8:20], view[pos:], aad.final(seq, final)))
    return b"".join(parts)


def decrypt(
    ciphertext: bytes | bytearray | memoryview,
    *,
    provider: KeyProvider,
    context: Mapping[str, str] | None,
    policy: DecryptPolicy = DecryptPolicy(),  # noqa: B008 - immutable
) -> bytes:
    """Decrypt one whole message of any supported suite and framing.

    ``context`` is the encryption context the caller expects (``None`` accepts the
    stored one; only for tools that inspect foreign messages).
    """
    header = policy.parse_header_bytes(ciphertext)
    opened = open_parsed(header, provider=provider, context=context)
    return decrypt_body(memoryview(ciphertext).cast("B"), header.length, opened, policy)
