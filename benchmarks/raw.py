"""The floor every ecrcrypt figure is divided by: framed AES-256-GCM with nothing else.

Per frame it does what any ESDK-framed writer must do at least: set the 12-byte IV
(the sequence number), set the frame AAD (message id, body AAD content string,
sequence number, length: the ESDK layout, reused buffers), ``encrypt_into`` or
``decrypt_into`` a reused buffer and hand the result to the destination.
"""

from __future__ import annotations

import hashlib
import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
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

    def encrypt(self, data: bytes | bytearray | memoryview, sink: Any, first: int = 1) -> int:
        """Encrypt ``data`` frame by frame into ``sink`` (frames only, no header), the first frame
        numbered ``first``; returns the next frame's number."""
        view = memoryview(data)
        f = self.frame_length
        out = memoryview(self.out)
        seq = first
        for seq, off in enumerate(range(0, len(view), f), start=first):
            chunk = view[off : off + f]
            n = len(chunk)
            self._set(seq, n)
            self.aead.encrypt_into(self.nonce, chunk, self.aad, out[: n + TAG])
            sink.write(out[: n + TAG])
        return seq + 1

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


class HashPipe:
    """SHA-256 on one helper thread over a ring of buffers, in order: the raw two-thread pipeline.

    ``buffer()`` hands out the next ring buffer once the hash of its previous contents is done;
    ``submit(i, view)`` queues its hash. Buffers are handed to the thread in batches of ``batch``
    bytes (a hand-off costs thread wake-ups: per frame, it would make this ceiling lower than what
    ecrcrypt's own hasher reaches). AES-GCM keeps the GIL and ``hashlib`` releases it on large
    updates, so this is what "AES beside SHA-256" can reach with nothing else in the way.
    """

    def __init__(self, size: int, batch: int = 2 << 20) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="bench-sha256")
        ring = 2 * -(-batch // size) + 1  # two batches in flight or queued, and the one being filled
        self.ring = [memoryview(bytearray(size)) for _ in range(ring)]
        self.pending: list[Future[None] | None] = [None] * ring
        self.batch = batch
        self.queued: list[tuple[int, memoryview]] = []
        self.queued_bytes = 0
        self.i = 0
        self.sha = hashlib.sha256()

    def reset(self) -> None:
        self.drain()
        self.sha = hashlib.sha256()

    def buffer(self) -> tuple[int, memoryview]:
        i = self.i = (self.i + 1) % len(self.ring)
        fut = self.pending[i]
        if fut is not None:
            fut.result()
            self.pending[i] = None
        return i, self.ring[i]

    def submit(self, i: int, view: memoryview) -> None:
        self.queued.append((i, view))
        self.queued_bytes += len(view)
        if self.queued_bytes >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if not self.queued:
            return
        views = [v for _, v in self.queued]
        update = self.sha.update

        def job() -> None:
            for v in views:
                update(v)

        fut = self.pool.submit(job)
        for i, _ in self.queued:
            self.pending[i] = fut
        self.queued, self.queued_bytes = [], 0

    def drain(self) -> str:
        self._flush()
        for i, fut in enumerate(self.pending):
            if fut is not None:
                fut.result()
                self.pending[i] = None
        return self.sha.hexdigest()

    def close(self) -> None:
        self.drain()
        self.pool.shutdown()


_U32 = struct.Struct(">I")


def _final_aad(message_id: bytes, seq: int, n: int) -> bytes:
    return message_id + b"AWSKMSEncryptionClient Final Frame" + struct.pack(">IQ", seq, n)


class RawMessageReader:
    """The reader's ceiling over a real ecrcrypt message: ``readinto`` one frame buffer, ``decrypt_into``.

    It opens the frames of the very message ``DecryptingReader`` reads (content key taken from
    an untimed ``open_header``), with the ESDK AAD, but checks nothing a format reader must
    (sequence numbers, truncation, trailing bytes): whatever the reader costs above it is its own.
    With ``pipe`` the plaintext is hashed on another thread (the pipeline of a verified pull).
    """

    def __init__(self, content_key: bytes, message_id: bytes, header_length: int, frame_length: int) -> None:
        self.aead = AESGCM(content_key)
        self.message_id = message_id
        self.header_length = header_length
        self.f = frame_length
        self.buf = memoryview(bytearray(frame_length + 40))
        self.out = memoryview(bytearray(frame_length))
        self.aad = bytearray(message_id + b"AWSKMSEncryptionClient Frame" + bytes(12))

    def read_from(self, source: Any, sink: Any, pipe: HashPipe | None = None) -> int:
        """Decrypt the frames of ``source`` (positioned at the body) into ``sink``; returns the plaintext bytes."""
        f, buf, aad, at = self.f, self.buf, self.aad, len(self.aad) - 12
        decrypt_into, readinto = self.aead.decrypt_into, source.readinto
        total, seq = 0, 0
        while True:
            got = readinto(buf[: f + 32])
            seq += 1
            if _U32.unpack_from(buf)[0] != 0xFFFFFFFF:
                i, out = pipe.buffer() if pipe is not None else (0, self.out)
                struct.pack_into(">IQ", aad, at, seq, f)
                decrypt_into(buf[4:16], buf[16 : f + 32], aad, out)
                if pipe is not None:
                    pipe.submit(i, out)
                sink.write(out)
                total += f
                continue
            (n,) = struct.unpack_from(">I", buf, 20)
            while got < n + 40:
                got += readinto(buf[got : n + 40])
            i, out = pipe.buffer() if pipe is not None else (0, self.out)
            decrypt_into(buf[8:20], buf[24 : n + 40], _final_aad(self.message_id, seq, n), out[:n])
            if pipe is not None:
                pipe.submit(i, out[:n])
            sink.write(out[:n])
            return total + int(n)

    def read_file(self, path: str, sink: Any, pipe: HashPipe | None = None) -> int:
        with open(path, "rb") as source:
            source.seek(self.header_length)
            return self.read_from(source, sink, pipe)
