"""The encrypting hot path shared by both writers: frames sealed into one reused buffer (private).

Plaintext that is an exact multiple of the frame length ends with a *full* final
frame (the spec's SHOULD). The writer cannot know a frame is the last until more
data or ``close()`` arrives, so a write that ends exactly on a frame boundary
seals that frame as a regular one and holds it; ``close()`` opens it again and
reseals it as the final frame. This costs two frame operations once per message
and keeps every ``write`` copy-free whatever the caller's buffer type.
"""

from __future__ import annotations

from ecrcrypt.digest import Digest
from ecrcrypt.format.frames import (
    FINAL_FRAME_OVERHEAD,
    FINAL_MARKER,
    FINAL_PREFIX,
    REGULAR_FRAME_OVERHEAD,
    REGULAR_PREFIX,
    FrameAad,
)
from ecrcrypt.format.message import Sealer
from ecrcrypt.streams.hashing import _Hasher
from ecrcrypt.streams.owned import _give_back, _take_spare, _unshared
from ecrcrypt.streams.protocols import SupportsWrite


class _FrameSealer:
    """Seals plaintext into frames of one message and writes them to the destination."""

    def __init__(
        self, destination: SupportsWrite, sealer: Sealer, compute_sha256: bool, sealed_frames: int = 0
    ) -> None:
        f = sealer.frame_length
        self._dest = destination
        self._f = f
        self._aad = FrameAad(sealer.message_id)
        self._encrypt_into = sealer.aead.encrypt_into
        self._decrypt_into = sealer.aead.decrypt_into
        self._out = _take_spare(f + FINAL_FRAME_OVERHEAD)
        out = memoryview(self._out)
        self._regular_iv = out[4:16]
        self._regular_body = out[16 : f + REGULAR_FRAME_OVERHEAD]
        self._regular_frame = out[: f + REGULAR_FRAME_OVERHEAD]
        self._outv = out
        self._pend = memoryview(_take_spare(f))
        self._pend_len = 0
        # How far from their start the two buffers were written: only that is wiped on recycle.
        self._out_dirty = 0
        self._pend_dirty = 0
        self._held = False
        self._seq = sealed_frames
        self._hasher = _Hasher() if compute_sha256 else None
        self.plaintext_length = 0
        self.body_length = 0

    def _seal_regular(self, plaintext: memoryview) -> None:
        self._out_dirty = len(self._regular_frame)
        self._seq += 1
        seq = self._seq
        REGULAR_PREFIX.pack_into(self._out, 0, seq, 0, seq)
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
                self._pend_dirty = max(self._pend_dirty, self._pend_len + take)
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
                self._pend_dirty = max(self._pend_dirty, rest)
                self._pend[:rest] = view[pos:]
                self._pend_len = rest
        finally:
            self.plaintext_length += n
            if hasher is not None and not deferred:
                hasher.wait()  # the caller may reuse its buffer once write() returns

    def _reopen_held(self) -> None:
        if self._held:
            self._held = False
            aad = self._aad.regular(self._seq, self._f)
            self._pend_dirty = self._f
            # The held frame never left this object, so its nonce is used for one emitted ciphertext only.
            self._decrypt_into(self._regular_iv, self._regular_body, aad, self._pend)
            self._pend_len = self._f
            self._seq -= 1

    def take_pending(self) -> bytes:
        """Stop here without a final frame: the plaintext not yet emitted as a regular frame (at most
        one frame, the held one reopened) for whoever continues the message from ``frames_emitted``."""
        self._reopen_held()
        pending = bytes(self._pend[: self._pend_len])
        self._pend_len = 0
        return pending

    @property
    def frames_emitted(self) -> int:
        return self._seq - (1 if self._held else 0)

    def finish(self) -> Digest | None:
        self._reopen_held()  # to reseal it as the final one (see module docstring)
        n = self._pend_len
        self._seq += 1
        seq = self._seq
        self._out_dirty = max(self._out_dirty, n + FINAL_FRAME_OVERHEAD)
        FINAL_PREFIX.pack_into(self._out, 0, FINAL_MARKER, seq, 0, seq, n)
        self._encrypt_into(self._outv[8:20], self._pend[:n], self._aad.final(seq, n), self._outv[24 : 40 + n])
        self._dest.write(self._outv[: n + FINAL_FRAME_OVERHEAD])
        self.body_length += n + FINAL_FRAME_OVERHEAD
        self._pend_len = 0
        return None if self._hasher is None else self._hasher.digest()

    def recycle(self) -> None:
        """Leave the two frame buffers to the next stream (``streams.owned``) once this message is
        over: the destination got views only for the duration of its ``write`` calls."""
        if not self._out:
            return  # recycled already
        if self._hasher is not None:
            self._hasher.wait()  # it may still read the plaintext buffer
        out, pend = self._out, self._pend.obj
        for view in (self._regular_iv, self._regular_body, self._regular_frame, self._outv, self._pend):
            view.release()
        self._out = bytearray(0)
        for buf, dirty in ((out, self._out_dirty), (pend, self._pend_dirty)):
            if type(buf) is bytearray and buf and _unshared(buf):
                _give_back(buf, dirty)
