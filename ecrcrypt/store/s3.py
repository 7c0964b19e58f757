"""A :class:`~ecrcrypt.store.filesystem.BlobStore` over an S3 bucket, through a boto3 client the caller passes.

Region, credentials and endpoint (S3 itself, moto, MinIO ...) are the client's
business: this module never creates clients or sessions and imports no boto3.

Writes stream through a multipart upload in constant memory: at most two part
buffers are held. The first part stays in memory until commit because the
``reserve`` bytes at the front of the object are filled last; S3 assembles parts
by part number, not by upload order ("Part numbers can be any number from 1 to
10,000 ... Amazon S3 ... assembles the parts in ascending order of part number",
UploadPart), so part 1 is uploaded last. An object smaller than one part is a
single PutObject at commit. Any failure, and any abort, calls
AbortMultipartUpload: no partial object ever becomes visible, because S3 shows a
multipart object only after CompleteMultipartUpload.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from ecrcrypt._aws_errors import client_error_code
from ecrcrypt.arns import S3BucketName
from ecrcrypt.errors import BlobNotFoundError, ValidationError
from ecrcrypt.store.protocol import BlobRangeReader, BlobWriter, validate_key, validate_prefix
from ecrcrypt.store.writer_base import BlobWriterBase, RangeReaderBase

__all__ = ["DEFAULT_PART_SIZE", "MIN_PART_SIZE", "S3BlobStore"]

#: S3 UploadPart: "Each part must be at least 5 MB in size, except the last part."
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: Bytes one UploadPartCopy copies (S3 allows up to 5 GiB per part).
_COPY_PART = 1024 * 1024 * 1024
#: S3: "Part numbers can be any number from 1 to 10,000, inclusive."
_MAX_PARTS = 10_000
#: Error codes S3 uses for a missing object: GetObject says NoSuchKey, HeadObject has no body so botocore sees "404".
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
#: GetObject with If-Match of an ETag the object no longer has: 412 PreconditionFailed.
_CHANGED = frozenset({"PreconditionFailed", "412"})


class _S3Writer(BlobWriterBase):
    def __init__(self, store: S3BlobStore, key: str, reserve: int) -> None:
        super().__init__(reserve=reserve)
        self._store = store
        self._client = store._client
        self._bucket = store.bucket
        self._key = key
        self._part_size = store.part_size
        self._first_cap = reserve + self._part_size
        # Part 1 = the reserve (a placeholder until commit) + the first body bytes; uploaded last.
        self._first = bytearray(reserve)
        self._pending = bytearray()  # body bytes of the part being filled (parts 2..n)
        self._upload_id: str | None = None
        self._parts: dict[int, dict[str, Any]] = {}
        self._next_part = 2

    def _write(self, data: memoryview) -> None:
        if len(self._first) < self._first_cap:
            take = min(self._first_cap - len(self._first), len(data))
            self._first += data[:take]
            data = data[take:]
        while data:
            take = min(self._part_size - len(self._pending), len(data))
            self._pending += data[:take]
            data = data[take:]
            if len(self._pending) == self._part_size:
                self._upload_part(self._next_part, self._pending)
                self._next_part += 1
                self._pending = bytearray()

    def _start_upload(self, number: int) -> None:
        if number > _MAX_PARTS:
            raise ValidationError(
                f"object exceeds {_MAX_PARTS} parts of {self._part_size} bytes; use a larger part_size"
            )
        if self._upload_id is None:
            # Name the checksum up front, as s3transfer does: botocore adds a CRC32 to every
            # UploadPart by default, and S3 requires "the checksum for each part" in the complete
            # request of an upload created with a checksum algorithm.
            resp = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key, ChecksumAlgorithm="CRC32")
            self._upload_id = str(resp["UploadId"])

    def _upload_part(self, number: int, body: bytes | bytearray) -> None:
        self._start_upload(number)
        resp = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        part = {"PartNumber": number, "ETag": str(resp["ETag"])}
        if resp.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = str(resp["ChecksumCRC32"])
        self._parts[number] = part

    # -- server-side copies (ecrcrypt.store.copy.SupportsWriteCopy) ----------------------------------
    @property
    def store(self) -> S3BlobStore:
        return self._store

    def write_copy(self, key: str, offset: int = 0) -> int:
        """Append object ``key`` of this writer's store from ``offset``: S3 copies it (UploadPartCopy)
        except what fills the buffered parts (at most two parts are read through here)."""
        with self._lock:
            self._check_open()
            try:
                n = self._copy_from(key, offset)
            except BaseException:
                self._abort_locked()
                raise
            self._written += n
            return n

    def _copy_from(self, key: str, offset: int) -> int:
        store = self._store
        size = store.size(key)
        if not isinstance(offset, int) or not 0 <= offset <= size:
            raise ValidationError(f"copy offset {offset!r} is not within the object's {size} bytes")
        position = offset

        def read_through(n: int) -> None:
            nonlocal position
            if n > 0:
                self._write(memoryview(store.read_range(key, position, n)))
                position += n

        # Parts must be at least 5 MiB except the last: fill the first part and the one being filled.
        if len(self._first) < self._first_cap:
            read_through(min(self._first_cap - len(self._first), size - position))
        if self._pending:
            read_through(min(self._part_size - len(self._pending), size - position))
        copied = (size - position) - (size - position) % self._part_size
        if copied and len(self._first) >= self._first_cap and not self._pending:
            source = {"Bucket": self._bucket, "Key": store._key(key)}
            step = max(self._part_size, _COPY_PART - _COPY_PART % self._part_size)
            end = position + copied
            while position < end:
                n = min(step, end - position)
                self._copy_part(self._next_part, source, position, n)
                self._next_part += 1
                position += n
        read_through(size - position)  # less than a part: buffered, later writes follow it
        return size - offset

    def _copy_part(self, number: int, source: dict[str, str], offset: int, length: int) -> None:
        self._start_upload(number)
        resp = self._client.upload_part_copy(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            CopySource=source,
            CopySourceRange=f"bytes={offset}-{offset + length - 1}",
        )
        result = resp["CopyPartResult"]
        part = {"PartNumber": number, "ETag": str(result["ETag"])}
        if result.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = str(result["ChecksumCRC32"])
        self._parts[number] = part

    def _commit(self, reserved: bytes) -> None:
        first, self._first = self._first, bytearray()
        first[: len(reserved)] = reserved
        if self._upload_id is None and not self._pending:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=first)
            return
        if self._pending:
            # S3: only the last part may be smaller than 5 MiB.
            self._upload_part(self._next_part, self._pending)
            self._pending = bytearray()
        self._upload_part(1, first)
        parts = [self._parts[n] for n in sorted(self._parts)]
        self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
        )
        self._upload_id = None

    def _abort(self) -> None:
        self._first = bytearray()
        self._pending = bytearray()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            # Best effort: the upload is invisible either way; a bucket lifecycle rule
            # (AbortIncompleteMultipartUpload) reclaims what a failed abort leaves.
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)


class _BodyReader(io.RawIOBase):
    """A raw stream over botocore's StreamingBody, so callers get a standard buffered reader."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


def _read_body(resp: dict[str, Any]) -> bytes:
    body = resp["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


class _S3RangeReader(RangeReaderBase):
    """Ranged GETs pinned to the version HeadObject saw: its ``VersionId`` when the bucket is
    versioned (that version stays readable), and always ``If-Match`` its ETag, so a GET after
    the key was written again fails (412) instead of returning bytes of another version."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        head = store._head(key)
        self._size = int(head["ContentLength"])
        self._pin: dict[str, str] = {"IfMatch": str(head["ETag"])}
        version = head.get("VersionId")
        if version and version != "null":
            self._pin["VersionId"] = str(version)

    def _read(self, start: int, stop: int) -> bytes:
        store = self._store
        try:
            resp = store._client.get_object(
                Bucket=store.bucket, Key=store._key(self._key), Range=f"bytes={start}-{stop - 1}", **self._pin
            )
        except Exception as exc:
            code = client_error_code(exc)
            if code in _NOT_FOUND or code in _CHANGED or code == "NoSuchVersion":
                raise BlobNotFoundError(
                    f"blob {self._key!r} in bucket {store.bucket!r} was deleted or replaced during the read"
                ) from exc
            raise
        return _read_body(resp)


class S3BlobStore:
    """Objects in ``bucket`` under ``prefix``; see the module docstring for the write path.

    ``prefix`` is prepended to every key (a ``/`` is added if missing), so several
    stores can share a bucket. Missing objects raise :class:`BlobNotFoundError`;
    other S3 errors propagate as botocore's ``ClientError``.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        list_page_size: int = 1000,
    ) -> None:
        self._client = client
        self.bucket = S3BucketName(bucket).value
        validate_prefix(prefix)
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        if not isinstance(part_size, int) or part_size < MIN_PART_SIZE:
            raise ValidationError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
        self.part_size = part_size
        # ListObjectsV2 MaxKeys: "returns up to 1,000 key names".
        if not isinstance(list_page_size, int) or not 1 <= list_page_size <= 1000:
            raise ValidationError("list_page_size must be 1 to 1000 (ListObjectsV2 MaxKeys)")
        self.list_page_size = list_page_size

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        full = self.prefix + validate_key(key)
        validate_key(full)  # the combined key must still respect S3's 1,024-byte limit
        return full

    def _missing(self, exc: Exception, key: str) -> BlobNotFoundError | None:
        if client_error_code(exc) in _NOT_FOUND:
            return BlobNotFoundError(f"no blob under key {key!r} in bucket {self.bucket!r}")
        return None

    def open_write(self, key: str, *, reserve: int = 0) -> BlobWriter:
        return _S3Writer(self, self._key(key), reserve)

    def open_read(self, key: str) -> BinaryIO:
        try:
            resp = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if (missing := self._missing(exc, key)) is not None:
                raise missing from exc
            raise
        return io.BufferedReader(_BodyReader(resp["Body"]), buffer_size=1 << 20)

    def open_ranges(self, key: str) -> BlobRangeReader:
        return _S3RangeReader(self, key)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        for name, value in (("offset", offset), ("length", length)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValidationError(f"read_range {name} must be a non-negative int, got {value!r}")
        if length == 0:
            size = self.size(key)
            if offset > size:
                raise ValidationError(f"read_range offset {offset} is beyond the object's size {size}")
            return b""
        try:
            resp = self._client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={offset}-{offset + length - 1}"
            )
        except Exception as exc:
            if (missing := self._missing(exc, key)) is not None:
                raise missing from exc
            # S3 answers a range starting at or after the end with 416 InvalidRange.
            if client_error_code(exc) == "InvalidRange":
                size = self.size(key)
                if offset == size:
                    return b""
                raise ValidationError(f"read_range offset {offset} is beyond the object's size {size}") from exc
            raise
        return _read_body(resp)

    def _head(self, key: str) -> dict[str, Any]:
        try:
            resp: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if (missing := self._missing(exc, key)) is not None:
                raise missing from exc
            raise
        return resp

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        # S3 DeleteObject succeeds for a missing key, as the protocol requires.
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        # S3 lists keys "in ascending order based on the UTF-8 binary representation"
        # (ListObjectsV2), which is code-point order: the protocol's order.
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": self.list_page_size}
        ):
            for obj in page.get("Contents", ()):
                yield str(obj["Key"])[len(self.prefix) :]
