"""The floor every ecrcrypt figure is divided by: framed AES-256-GCM with nothing else.

Per frame it does what any ESDK-framed writer must do at least: set the 12-byte IV
(the sequence number), set the frame AAD (message id, body AAD content string,
sequence number, length: the ESDK layout, reused buffers), ``encrypt_into`` or
``decrypt_into`` a reused buffer and hand the result to the destination.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG = 16
_AAD_PREFIX = os.urandom(32) + b"AWSKMSEncryptionClient Frame"


class RawFramer:
    """Framed AES-GCM over a contiguous buffer, buffers reused across frames."""

    def __init__(self, frame_length: int) -> None:
        self.frame_length = frame_length
        self.aead = AESGCM(os.urandom(32))
        self.nonce = bytearray(12)
        self.aad = bytearray(_AAD_PREFIX + bytes(12))
        self.out = bytearray(frame_length + TAG)

    def _set(self, seq: int, length: int) -> None:
        struct.pack_into(">I", self.nonce, 8, seq)
        struct.pack_into(">IQ", self.aad, len(_AAD_PREFIX), seq, length)

    def encrypt(self, data: bytes | bytearray | memoryview, sink: Any) -> None:
        """Encrypt ``data`` frame by frame into ``sink`` (frames only, no header)."""
        view = memoryview(data)
        f = self.frame_length
        out = memoryview(self.out)
        for seq, off in enumerate(range(0, len(view), f), start=1):
            chunk = view[off : off + f]
            n = len(chunk)
            self._set(seq, n)
            self.aead.encrypt_into(self.nonce, chunk, self.aad, out[: n + TAG])
            sink.write(out[: n + TAG])

    def encrypt_to_bytes(self, data: bytes | memoryview) -> bytearray:
        f = self.frame_length
        frames = -(-len(data) // f)
        result = bytearray(len(data) + frames * TAG)
        pos = 0

        class _Into:
            def write(_self, b: memoryview) -> int:
                nonlocal pos
                result[pos : pos + len(b)] = b
                pos += len(b)
                return len(b)

        self.encrypt(data, _Into())
        return result

    def decrypt(self, ciphertext: bytes | bytearray | memoryview, sink: Any) -> None:
        """Decrypt frames made by :meth:`encrypt_to_bytes` into ``sink``."""
        view = memoryview(ciphertext)
        step = self.frame_length + TAG
        out = memoryview(self.out)
        for seq, off in enumerate(range(0, len(view), step), start=1):
            frame = view[off : off + step]
            n = len(frame) - TAG
            self._set(seq, n)
            self.aead.decrypt_into(self.nonce, frame, self.aad, out[:n])
            sink.write(out[:n])
