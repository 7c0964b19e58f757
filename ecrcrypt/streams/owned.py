"""Output buffers the consumer owns, reused only when nobody holds them (private).

Both iterators hand out frame-sized ``bytearray`` objects that the consumer may keep; whether a
buffer can be written again is decided by CPython's exact reference counts, so the test
for that (``_REUSE_OWNED``) and the two-buffer ring built on it live here, once.
"""

from __future__ import annotations

import sys

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
