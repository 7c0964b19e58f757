"""What a stream needs from its destination and its source (private to :mod:`ecrcrypt.streams`).

The two protocols are public through :mod:`ecrcrypt.streams`; they live here so that the
writers and the reader, which sit in separate modules, type their ends against one
definition. ``_reader_of`` adapts any source to the one "fill this view" call the reader's
frame loop makes, preferring the source's ``readinto`` (no intermediate ``bytes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class SupportsWrite(Protocol):
    """A destination. It receives memoryviews valid only for the duration of the call
    (as with any file's ``write``); it must copy what it keeps."""

    def write(self, data: bytes | memoryview, /) -> object: ...


class SupportsRead(Protocol):
    """A source: ``read(n)`` returns up to ``n`` bytes, ``b""`` only at EOF.
    ``readinto`` is used when present."""

    def read(self, size: int, /) -> bytes: ...


def _reader_of(source: SupportsRead) -> Callable[[memoryview], int]:
    """``fill(view) -> bytes read``: reads until ``view`` is full or EOF."""
    readinto = getattr(source, "readinto", None)

    if readinto is not None:

        def fill(view: memoryview) -> int:
            got = 0
            size = len(view)
            while got < size:
                n = readinto(view[got:])
                if not n:
                    break
                got += n
            return got

        return fill

    def fill_by_read(view: memoryview) -> int:
        got = 0
        size = len(view)
        while got < size:
            data = source.read(size - got)
            if not data:
                break
            view[got : got + len(data)] = data
            got += len(data)
        return got

    return fill_by_read
