"""An in-memory blob store, for tests and for embedders who keep objects elsewhere."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import BinaryIO

from ecrcrypt.errors import BlobNotFoundError
from ecrcrypt.store.protocol import BlobRangeReader, BlobWriter, validate_key, validate_prefix
from ecrcrypt.store.writer_base import BlobWriterBase, RangeReaderBase, check_range, range_slice

__all__ = ["MemoryBlobStore"]


class _MemoryWriter(BlobWriterBase):
    def __init__(self, store: MemoryBlobStore, key: str, reserve: int) -> None:
        super().__init__(reserve=reserve)
        self._store = store
        self._key = key
        self._buffer = bytearray()

    def _write(self, data: memoryview) -> None:
        self._buffer += data

    def _commit(self, reserved: bytes) -> None:
        self._store._put(self._key, reserved + bytes(self._buffer))
        self._buffer = bytearray()

    def _abort(self) -> None:
        self._buffer = bytearray()


class _MemoryRangeReader(RangeReaderBase):
    """Holds the object's bytes as they were at open: a later write or delete does not touch them."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._size = len(data)

    def _read(self, start: int, stop: int) -> bytes:
        return self._data[start:stop]

    def _close(self) -> None:
        self._data = b""


class MemoryBlobStore:
    """A thread-safe in-memory store for tests (objects are held whole)."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBlobStore(<{len(self._objects)} objects>)"

    def _put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._objects[key] = value

    def _get(self, key: str) -> bytes:
        validate_key(key)
        with self._lock:
            try:
                return self._objects[key]
            except KeyError:
                raise BlobNotFoundError(f"no blob under key {key!r}") from None

    def open_write(self, key: str, *, reserve: int = 0) -> BlobWriter:
        return _MemoryWriter(self, validate_key(key), reserve)

    def open_read(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key))

    def open_ranges(self, key: str) -> BlobRangeReader:
        return _MemoryRangeReader(self._get(key))

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        data = self._get(key)
        start, stop = range_slice(len(data), offset, length)
        return data[start:stop]

    def size(self, key: str) -> int:
        return len(self._get(key))

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._objects

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        return iter(keys)
