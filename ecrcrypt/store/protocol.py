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
  afterwards, in one pass of encryption;
* **one version per read** - :meth:`BlobStore.open_read` and every read of one
  :meth:`BlobStore.open_ranges` reader see the same object from start to end, even if
  the key is deleted or written again meanwhile (then a reader either keeps reading the
  version it opened or fails with :class:`BlobNotFoundError`, never mixes versions). A
  random-access decryption reads a message's header, final frame and covered frames in
  separate reads: from two versions, the tags would not verify -- a false tamper alarm.

Implementations: :mod:`ecrcrypt.store.memory` (tests), :mod:`ecrcrypt.store.filesystem` (the
embedded default), :mod:`ecrcrypt.store.s3`.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO, Protocol, Self, runtime_checkable

from ecrcrypt.errors import ValidationError

__all__ = [
    "BlobRangeReader",
    "BlobStore",
    "BlobWriter",
    "MAX_KEY_BYTES",
    "TMP_SUFFIX",
    "validate_key",
    "validate_prefix",
]


#: Temporary files end with this; keys may not, so a temporary never looks like an object.
TMP_SUFFIX = ".ecrcrypt-tmp"
# A '/'-separated segment is a file name in the filesystem store: NAME_MAX is 255 bytes on Linux
# and the writer's temporary adds 31 ("." + name + "." + 16 hex digits + TMP_SUFFIX).
MAX_SEGMENT_BYTES = 200
#: S3: "The name for a key is a sequence of Unicode characters whose UTF-8 encoding is at most 1,024 bytes long."
MAX_KEY_BYTES = 1024


def validate_key(key: str) -> str:
    """Return ``key`` if every store can hold it under that name, else raise :class:`ValidationError`.

    The rules are the intersection of S3's and a safe file path's, so that one key
    means the same object in every store: ``/``-separated non-empty segments, no
    ``.``/``..`` segment (no escaping the root), no leading ``/``, no NUL, at most
    1,024 UTF-8 bytes (S3's limit), segments of at most 200 bytes (a file name) and no
    segment ending in the temporary suffix.
    """
    if not isinstance(key, str):
        raise ValidationError(f"blob key must be a str, not {type(key).__name__}")
    _check_path_like(key, what="blob key")
    if not key:
        raise ValidationError("blob key must not be empty")
    if key.endswith("/"):
        raise ValidationError(f"blob key {key!r} must not end with '/'")
    for segment in key.split("/"):
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise ValidationError(
                f"blob key has a segment of {len(segment.encode('utf-8'))} UTF-8 bytes; a segment is at most "
                f"{MAX_SEGMENT_BYTES} (a file name, with room for the writer's temporary name)"
            )
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
    if len(encoded) > MAX_KEY_BYTES:
        raise ValidationError(f"{what} is at most {MAX_KEY_BYTES} UTF-8 bytes, got {len(encoded)}")
    if value.startswith("/"):
        raise ValidationError(f"{what} {value!r} must be relative (no leading '/')")
    if "\\" in value:
        raise ValidationError(f"{what} {value!r} must not contain '\\'")
    if not value:
        return
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise ValidationError(f"{what} {value!r} has an empty, '.' or '..' segment")
        if segment.endswith(TMP_SUFFIX):
            raise ValidationError(f"{what} {value!r} ends a segment with the reserved suffix {TMP_SUFFIX!r}")


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
class BlobRangeReader(Protocol):
    """One version of one object, open for random reads (``streams.ranges.RandomAccessSource``).

    Every read sees the version that was current when the reader was opened; if that
    version can no longer be read, :class:`BlobNotFoundError`. Close it (``with``) when done.
    """

    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes:
        """As :meth:`BlobStore.read_range`, on the version this reader holds."""
        ...

    def close(self) -> None: ...

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

    def open_ranges(self, key: str) -> BlobRangeReader:
        """A random-access reader pinned to the object's current version (see :class:`BlobRangeReader`)."""
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
