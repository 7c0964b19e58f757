"""Where encrypted objects live: the blob-store interface and the embedded stores.

ECR keeps image layers in "an S3 bucket that ECR manages"; ecrcrypt keeps them in
a :class:`BlobStore`. The store sees only ciphertext, so it needs no crypto, but it
owes the layers above it three promises:

* **all or nothing** - an object becomes visible only when its writer commits; an
  aborted or crashed write leaves no object (at most an invisible temporary);
* **constant memory** - objects are written and read as streams;
* **reserve** - a writer can set aside bytes at the front of the object and fill
  them in last. The ECR layer uses this to write an ESDK v2 message body first and
  its header (whose encryption context holds the digest known only at the end)
  afterwards, in one pass of encryption.

:class:`MemoryBlobStore` is for tests; :class:`FilesystemBlobStore` is the
embedded default; ``ecrcrypt.s3.S3BlobStore`` stores in S3.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self, runtime_checkable

from ecrcrypt.errors import BlobNotFoundError, StreamClosedError, ValidationError

__all__ = [
    "BlobStore",
    "BlobWriter",
    "BlobWriterBase",
    "FilesystemBlobStore",
    "MemoryBlobStore",
    "validate_key",
    "validate_prefix",
]

#: Temporary files end with this; keys may not, so a temporary never looks like an object.
_TMP_SUFFIX = ".ecrcrypt-tmp"
#: S3: "The name for a key is a sequence of Unicode characters whose UTF-8 encoding is at most 1,024 bytes long."
_MAX_KEY_BYTES = 1024


# --------------------------------------------------------------------------- keys


def validate_key(key: str) -> str:
    """Return ``key`` if every store can hold it under that name, else raise :class:`ValidationError`.

    The rules are the intersection of S3's and a safe file path's, so that one key
    means the same object in every store: ``/``-separated non-empty segments, no
    ``.``/``..`` segment (no escaping the root), no leading ``/``, no NUL, at most
    1,024 UTF-8 bytes (S3's limit) and no segment ending in the temporary suffix.
    """
    if not isinstance(key, str):
        raise ValidationError(f"blob key must be a str, not {type(key).__name__}")
    _check_path_like(key, what="blob key")
    if not key:
        raise ValidationError("blob key must not be empty")
    if key.endswith("/"):
        raise ValidationError(f"blob key {key!r} must not end with '/'")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid start of a key ('' and a trailing '/' are allowed)."""
    if not isinstance(prefix, str):
        raise ValidationError(f"blob key prefix must be a str, not {type(prefix).__name__}")
    _check_path_like(prefix.removesuffix("/"), what="blob key prefix")
    return prefix


def _check_path_like(value: str, *, what: str) -> None:
    if "\0" in value:
        raise ValidationError(f"{what} must not contain NUL")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} must be valid Unicode (no lone surrogates)") from None
    if len(encoded) > _MAX_KEY_BYTES:
        raise ValidationError(f"{what} is at most {_MAX_KEY_BYTES} UTF-8 bytes, got {len(encoded)}")
    if value.startswith("/"):
        raise ValidationError(f"{what} {value!r} must be relative (no leading '/')")
    if "\\" in value:
        raise ValidationError(f"{what} {value!r} must not contain '\\'")
    if not value:
        return
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise ValidationError(f"{what} {value!r} has an empty, '.' or '..' segment")
        if segment.endswith(_TMP_SUFFIX):
            raise ValidationError(f"{what} {value!r} ends a segment with the reserved suffix {_TMP_SUFFIX!r}")


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class BlobWriter(Protocol):
    """A pending object. Nothing is visible until :meth:`commit` returns.

    Used as a context manager, leaving the block without :meth:`commit` (normally
    or by an exception) aborts. After commit or abort, :meth:`write`,
    :meth:`write_reserved` and :meth:`commit` raise :class:`StreamClosedError`;
    :meth:`abort` is always safe to call again. A failure inside :meth:`write` or
    :meth:`commit` aborts the upload before the exception propagates.
    """

    def write(self, data: bytes | memoryview) -> int:
        """Append ``data`` after the reserved bytes; returns ``len(data)``."""
        ...

    def write_reserved(self, data: bytes) -> None:
        """Fill the ``reserve`` bytes at the front; ``len(data)`` must equal ``reserve``
        (else :class:`ValidationError`). May be called again to overwrite, until commit."""
        ...

    def commit(self) -> None:
        """Make the object visible atomically under its key, replacing any old one.

        Raises :class:`ValidationError` (and leaves the writer open) when a reserve
        was requested but never filled.
        """
        ...

    def abort(self) -> None:
        """Discard everything written; a no-op once committed or aborted."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class BlobStore(Protocol):
    """A flat namespace of immutable byte objects under :func:`validate_key` keys.

    Every method raises :class:`ValidationError` for an invalid key and
    :class:`BlobNotFoundError` (``code`` ``NoSuchKey``) when the object is missing,
    except :meth:`exists` and :meth:`delete`, which never raise for a missing key.
    """

    def open_write(self, key: str, *, reserve: int = 0) -> BlobWriter:
        """Start writing ``key``; the first ``reserve`` bytes are filled by ``write_reserved``."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A readable binary stream over the whole object; close it (``with``) when done."""
        ...

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)``, cut short at the end of the object.

        ``offset == size`` gives ``b""``; ``offset > size`` raises :class:`ValidationError`
        (S3 answers such a range with ``InvalidRange``).
        """
        ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error (as S3 DeleteObject)."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (a plain string prefix), in ascending code-point order."""
        ...


# --------------------------------------------------------------------------- writer base


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


def _check_range(offset: int, length: int) -> None:
    for name, value in (("offset", offset), ("length", length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(f"read_range {name} must be a non-negative int, got {value!r}")


def _slice(size: int, offset: int, length: int) -> tuple[int, int]:
    """The ``[start, stop)`` actually readable, per the read_range contract."""
    if offset > size:
        raise ValidationError(f"read_range offset {offset} is beyond the object's size {size}")
    return offset, min(size, offset + length)


# --------------------------------------------------------------------------- memory


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

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        _check_range(offset, length)
        data = self._get(key)
        start, stop = _slice(len(data), offset, length)
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


# --------------------------------------------------------------------------- filesystem


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter(BlobWriterBase):
    """Writes a temporary file beside the target and renames it over the target on commit.

    The reserve is left as a hole (``seek``) and filled with ``os.pwrite`` at
    commit, after the buffered body has been flushed, so the body streams
    through a fixed-size buffer whatever the object's size.
    """

    def __init__(self, store: FilesystemBlobStore, key: str, reserve: int) -> None:
        super().__init__(reserve=reserve)
        self._target = store._path(key)
        self._tmp = self._target.with_name(f".{self._target.name}.{secrets.token_hex(8)}{_TMP_SUFFIX}")
        for attempt in range(3):
            store._make_parent(self._target)
            try:
                fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
                break
            except FileNotFoundError:
                # A concurrent delete pruned the (then empty) directory: create it again.
                if attempt == 2:
                    raise
        self._file = open(fd, "wb", buffering=1 << 20)  # noqa: SIM115 - lifetime spans several calls
        if reserve:
            self._file.seek(reserve)

    def _write(self, data: memoryview) -> None:
        self._file.write(data)

    def _commit(self, reserved: bytes) -> None:
        self._file.flush()
        fd = self._file.fileno()
        if reserved:
            os.pwrite(fd, reserved, 0)
        os.fsync(fd)
        self._file.close()
        try:
            os.replace(self._tmp, self._target)
        except (IsADirectoryError, NotADirectoryError):
            raise ValidationError(
                f"blob key for {self._target.name!r} conflicts with a directory of other keys"
            ) from None
        _fsync_dir(self._target.parent)

    def _abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class FilesystemBlobStore:
    """Objects as files under ``root``; the embedded default.

    A key maps to the path ``root/<key>``. Writes go to a temporary file in the
    target's directory (same file system, so the rename is atomic), are fsynced,
    renamed over the target with ``os.replace`` and the directory is fsynced: a
    reader sees the old object or the new one, never a part, and a crash leaves at
    most a temporary that :meth:`list`/:meth:`exists` ignore and that opening the
    store removes once it is stale: not modified for ``stale_after`` seconds (an hour
    by default; ``clean_temporaries=False`` keeps them all). A temporary modified more
    recently may be another process's write in flight (a second ``Registry.open`` of
    the same directory while a push streams), whose commit would fail if its file
    vanished; a writer touches its temporary with every chunk, so only one silent for
    ``stale_after`` is taken for a crash's leftover.

    A key cannot also be a "directory" of other keys here (``a`` and ``a/b``),
    although S3 allows it; such a write raises :class:`ValidationError`.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, clean_temporaries: bool = True, stale_after: float = 3600.0
    ) -> None:
        if isinstance(stale_after, bool) or not isinstance(stale_after, int | float) or not stale_after >= 0:
            raise ValidationError("stale_after must be a number of seconds >= 0")
        self._root = Path(root).absolute()
        self._root.mkdir(parents=True, exist_ok=True)
        if clean_temporaries:
            self._clean_temporaries(stale_after)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self._root)!r})"

    def _clean_temporaries(self, stale_after: float) -> None:
        cutoff = time.time() - stale_after
        for dirpath, _dirnames, filenames in os.walk(self._root):
            for name in filenames:
                if name.endswith(_TMP_SUFFIX):
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(FileNotFoundError):
                        if os.stat(path).st_mtime <= cutoff:
                            os.unlink(path)

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def _make_parent(self, path: Path) -> None:
        """Create missing parent directories, fsyncing each new entry's parent so it survives a crash."""
        missing: list[Path] = []
        parent = path.parent
        while not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise ValidationError(
                    f"blob key path {path.relative_to(self._root)} runs through an existing object"
                ) from None
            _fsync_dir(directory.parent)

    def open_write(self, key: str, *, reserve: int = 0) -> BlobWriter:
        return _FileWriter(self, validate_key(key), reserve)

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFoundError(f"no blob under key {key!r}") from None

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        _check_range(offset, length)
        with self.open_read(key) as f:
            size = os.fstat(f.fileno()).st_size
            start, stop = _slice(size, offset, length)
            if stop == start:
                return b""
            out = bytearray(stop - start)
            view = memoryview(out)
            done = 0
            while done < len(out):
                n = os.preadv(f.fileno(), [view[done:]], start + done)
                if n == 0:  # truncated concurrently: cannot happen with rename-only updates
                    break
                done += n
            return bytes(out[:done])

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(f"no blob under key {key!r}") from None
        if not path.is_file():
            raise BlobNotFoundError(f"no blob under key {key!r}")
        return st.st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        with contextlib.suppress(OSError):
            _fsync_dir(path.parent)
        # Prune directories left empty, so a later key may use the name (``a/b`` gone, ``a`` written).
        # rmdir never removes a non-empty directory, and writers recreate a pruned one.
        parent = path.parent
        while parent != self._root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix fully names, then filter by string prefix
        # (a prefix such as "layers/sha256:ab" is not a directory boundary).
        base_parts = prefix.split("/")[:-1]
        base = self._root.joinpath(*base_parts)
        keys: list[str] = []
        if base.is_dir():
            for dirpath, _dirnames, filenames in os.walk(base):
                rel = os.path.relpath(dirpath, self._root)
                head = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                for name in filenames:
                    if name.endswith(_TMP_SUFFIX):
                        continue
                    key = head + name
                    if key.startswith(prefix):
                        keys.append(key)
        keys.sort()
        return iter(keys)
