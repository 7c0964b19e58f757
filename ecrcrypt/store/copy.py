"""Appending a stored object to a writer, server-side when the store can.

Two registry operations build an object mostly out of another one's bytes: completing a durable
upload (its parts, behind a header made last) and re-wrapping a layer (a new header before the same
encrypted body). Through the :class:`BlobStore` protocol that means reading every byte and writing it
back; a writer that can do better offers ``write_copy`` (:class:`SupportsWriteCopy`): S3's writer
copies with UploadPartCopy, so the bytes never leave S3. :func:`append_object` picks the best path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ecrcrypt.store.protocol import BlobStore, BlobWriter

__all__ = ["COPY_CHUNK", "SupportsWriteCopy", "append_object"]

COPY_CHUNK = 1 << 20


@runtime_checkable
class SupportsWriteCopy(Protocol):
    """A writer that appends another object of its own store without the bytes passing through."""

    @property
    def store(self) -> BlobStore: ...

    def write_copy(self, key: str, offset: int = 0) -> int:
        """Append object ``key`` (of :attr:`store`) from ``offset`` to its end; returns the byte count."""
        ...


def append_object(
    writer: BlobWriter,
    store: BlobStore,
    key: str,
    offset: int = 0,
    *,
    progress: Callable[[], None] | None = None,
) -> int:
    """Append ``store``'s object ``key`` from ``offset`` to ``writer``; the byte count appended.
    Constant memory; server-side when ``writer`` belongs to ``store`` and can copy. ``progress`` is
    called after each chunk that passes through here (a long copy keeping a lease alive)."""
    if isinstance(writer, SupportsWriteCopy) and writer.store is store:
        return writer.write_copy(key, offset)
    total = 0
    with store.open_read(key) as source:
        if offset and source.seekable():
            source.seek(offset)
        else:
            skip = offset
            while skip and (got := len(source.read(min(skip, COPY_CHUNK)))):
                skip -= got
        while data := source.read(COPY_CHUNK):
            writer.write(data)
            total += len(data)
            if progress is not None:
                progress()
    return total
