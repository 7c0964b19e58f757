"""Frame buffers reused instead of allocated, only when nobody else holds them (private).

Both iterators hand out frame-sized ``bytearray`` objects that the consumer may keep; whether a
buffer can be written again is decided by CPython's exact reference counts, so the test
for that (``_REUSE_OWNED``) and the two-buffer ring built on it live here, once. So does the
process-wide pool of spare frame buffers that finished iterators and closed readers leave for
the next stream (:func:`_take_spare`, :func:`_give_back`).
"""

from __future__ import annotations

import sys
import threading

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
        buf = self._ring[self._i] = _take_spare(size)
        return buf

    def release(self) -> None:
        """Give the buffers no consumer holds any more to the next stream (wiped there). Only where
        reference counts are exact: elsewhere a consumer's buffer could not be told from a free one."""
        if not _REUSE_OWNED:
            return
        for i in (0, 1):
            buf, self._ring[i] = self._ring[i], None
            if buf is not None and sys.getrefcount(buf) == 2:  # ``buf`` and the argument
                _give_back(buf)
            del buf


# Frame buffers left by finished streams (iterators, closed readers and writers), for
# the next one. A fresh frame-sized bytearray is paid in page faults on its first write: about
# 0.5 ms per MiB in this project's VM, a tenth of reading a 64 MiB layer from the page cache
# (benchmarks/streaming.py, reader_file_ratio); a recycled one is not. Bounded: at most 8 MiB
# idle, no buffer over 4 MiB, each wiped when given back, so no plaintext outlives its stream.
_SPARE_BYTES = 8 * 1024 * 1024
_SPARE_MAX_SIZE = 4 * 1024 * 1024
_spare_lock = threading.Lock()
_spare: list[bytearray] = []
_zeros = memoryview(b"")


def _take_spare(size: int) -> bytearray:
    """A recycled buffer of ``size`` bytes (zeroed), or a new one."""
    if _spare and size <= _SPARE_MAX_SIZE:
        with _spare_lock:
            for i, buf in enumerate(_spare):
                if len(buf) == size:
                    return _spare.pop(i)
    return bytearray(size)


def _give_back(buf: bytearray, dirty: int | None = None) -> None:
    """Keep ``buf``, which nothing else refers to any more, for a later :func:`_take_spare`.

    ``dirty``: how many bytes from its start its owner may have written (``None``: all of it).
    Only those are wiped, the rest still being the zeros it was taken with. A frame buffer of a
    small object is mostly untouched: wiping all of a 1 MiB buffer for the few KiB a manifest
    or config blob used cost more than decrypting it.
    """
    global _zeros
    size = len(buf)
    if size > _SPARE_MAX_SIZE or size == 0:
        return
    if len(_zeros) < size:
        # Never written: its pages stay the kernel's shared zero page (no memory of its own).
        _zeros = memoryview(bytes(_SPARE_MAX_SIZE))
    wipe = size if dirty is None else max(0, min(dirty, size))
    buf[:wipe] = _zeros[:wipe]
    with _spare_lock:
        held = sum(len(b) for b in _spare)
        while _spare and held + size > _SPARE_BYTES:
            held -= len(_spare.pop(0))
        _spare.append(buf)


def _unshared(buf: bytearray) -> bool:
    """Whether no buffer view of ``buf`` is alive (its owner released its own first): a bytearray
    with exports refuses to resize, so a one-byte append is the exact test."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True
