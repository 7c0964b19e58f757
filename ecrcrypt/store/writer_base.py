"""The writer state machine every store shares: order of calls, reserve length, sticky closure."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from ecrcrypt.errors import StreamClosedError, ValidationError

__all__ = ["BlobWriterBase", "RangeReaderBase", "check_range", "range_slice"]


class BlobWriterBase:
    """The writer state machine shared by the stores (a helper for implementers).

    Subclasses implement :meth:`_write`, :meth:`_commit` (receives the reserved
    bytes) and :meth:`_abort`; this class enforces the order of calls, the reserve
    length, sticky closure and abort-on-failure.
    """

    def __init__(self, *, reserve: int) -> None:
        if not isinstance(reserve, int) or isinstance(reserve, bool) or reserve < 0:
            raise ValidationError(f"reserve must be a non-negative int, got {reserve!r}")
        self._reserve = reserve
        self._reserved: bytes | None = None if reserve else b""
        self._state = "open"  # open -> committed | aborted
        self._lock = threading.Lock()
        self._written = 0

    @property
    def reserve(self) -> int:
        return self._reserve

    @property
    def closed(self) -> bool:
        return self._state != "open"

    @property
    def bytes_written(self) -> int:
        """Bytes written so far, including the reserve."""
        return self._reserve + self._written

    def _check_open(self) -> None:
        if self._state != "open":
            raise StreamClosedError(f"blob writer is already {self._state}")

    def write(self, data: bytes | memoryview) -> int:
        with self._lock:
            self._check_open()
            view = memoryview(data).cast("B")
            n = len(view)
            if n:
                try:
                    self._write(view)
                except BaseException:
                    self._abort_locked()
                    raise
                self._written += n
            return n

    def write_reserved(self, data: bytes) -> None:
        with self._lock:
            self._check_open()
            data = bytes(data)
            if len(data) != self._reserve:
                raise ValidationError(f"write_reserved needs exactly {self._reserve} bytes, got {len(data)}")
            self._reserved = data

    def commit(self) -> None:
        with self._lock:
            self._check_open()
            if self._reserved is None:
                raise ValidationError(f"{self._reserve} reserved bytes were never filled with write_reserved")
            try:
                self._commit(self._reserved)
            except BaseException:
                self._abort_locked()
                raise
            self._state = "committed"

    def abort(self) -> None:
        with self._lock:
            self._abort_locked()

    def _abort_locked(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    # subclass hooks -------------------------------------------------------------
    def _write(self, data: memoryview) -> None:
        raise NotImplementedError

    def _commit(self, reserved: bytes) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        raise NotImplementedError


def check_range(offset: int, length: int) -> None:
    for name, value in (("offset", offset), ("length", length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(f"read_range {name} must be a non-negative int, got {value!r}")


def range_slice(size: int, offset: int, length: int) -> tuple[int, int]:
    """The ``[start, stop)`` actually readable, per the read_range contract."""
    if offset > size:
        raise ValidationError(f"read_range offset {offset} is beyond the object's size {size}")
    return offset, min(size, offset + length)


class RangeReaderBase:
    """The checks and context management every store's range reader shares (a helper for implementers).

    Subclasses set ``self._size`` and implement :meth:`_read` (``[start, stop)``, within the object)
    and :meth:`_close`.
    """

    _size: int
    _closed: bool = False

    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        check_range(offset, length)
        if self._closed:
            raise StreamClosedError("read from a closed blob range reader")
        start, stop = range_slice(self._size, offset, length)
        return b"" if stop == start else self._read(start, stop)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read(self, start: int, stop: int) -> bytes:
        raise NotImplementedError

    def _close(self) -> None:
        pass
