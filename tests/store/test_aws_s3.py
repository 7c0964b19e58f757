"""S3BlobStore beyond the shared contract: the multipart protocol, aborts, prefixes (moto server)."""

from __future__ import annotations

from typing import Any

import pytest

from ecrcrypt.errors import BlobNotFoundError, ValidationError
from ecrcrypt.store.s3 import MIN_PART_SIZE, S3BlobStore

pytestmark = pytest.mark.moto

PART = MIN_PART_SIZE


class _Spy:
    """Wraps a real boto3 S3 client: records calls, can fail one chosen call."""

    def __init__(self, client: Any, *, fail: tuple[str, int] | None = None) -> None:
        self._client = client
        self._fail = fail
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name.startswith("_") or name in ("get_paginator", "meta"):
            return target

        def call(**kwargs: Any) -> Any:
            summary = {k: (len(v) if k == "Body" else v) for k, v in kwargs.items()}
            self.calls.append((name, summary))
            if self._fail and self._fail[0] == name:
                nth = sum(1 for c in self.calls if c[0] == name)
                if nth == self._fail[1]:
                    raise ConnectionError(f"injected failure in {name}")
            return target(**kwargs)

        return call

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def _uploads(client: Any, bucket: str) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_small_object_is_one_put_object(s3_client: Any, s3_bucket: str) -> None:
    spy = _Spy(s3_client)
    store = S3BlobStore(spy, s3_bucket, part_size=PART)
    with store.open_write("small", reserve=3) as w:
        w.write(b"x" * (PART - 3))
        w.write_reserved(b"abc")
        w.commit()
    assert spy.names() == ["put_object"]
    assert spy.calls[0][1]["Body"] == PART


def test_large_object_uploads_part_one_last(s3_client: Any, s3_bucket: str) -> None:
    spy = _Spy(s3_client)
    store = S3BlobStore(spy, s3_bucket, part_size=PART)
    body = bytes(range(256)) * ((2 * PART + 1000) // 256)
    with store.open_write("big", reserve=10) as w:
        for i in range(0, len(body), 1 << 20):
            w.write(body[i : i + (1 << 20)])
        w.write_reserved(b"H" * 10)
        w.commit()
    parts = [c[1] for c in spy.calls if c[0] == "upload_part"]
    assert [p["PartNumber"] for p in parts] == [2, 3, 1]
    assert all(p["Body"] >= PART for p in parts if p["PartNumber"] != 3)  # only the last part may be small
    assert spy.names()[0] == "create_multipart_upload"
    assert spy.names()[-1] == "complete_multipart_upload"
    obj = s3_client.get_object(Bucket=s3_bucket, Key="big")["Body"].read()
    assert obj == b"H" * 10 + body


@pytest.mark.parametrize(
    ("operation", "nth"), [("upload_part", 2), ("upload_part", 3), ("complete_multipart_upload", 1)]
)
def test_failure_mid_upload_aborts_and_leaves_nothing(s3_client: Any, s3_bucket: str, operation: str, nth: int) -> None:
    spy = _Spy(s3_client, fail=(operation, nth))
    store = S3BlobStore(spy, s3_bucket, part_size=PART)
    with pytest.raises(ConnectionError), store.open_write("layer") as w:
        for _ in range(3 * PART // (1 << 20) + 1):
            w.write(b"z" * (1 << 20))
        w.commit()
    assert "abort_multipart_upload" in spy.names()
    assert _uploads(s3_client, s3_bucket) == []
    assert not store.exists("layer")


def test_abort_after_parts_aborts_the_multipart_upload(s3_client: Any, s3_bucket: str) -> None:
    store = S3BlobStore(s3_client, s3_bucket, part_size=PART)
    w = store.open_write("layer")
    w.write(b"q" * (2 * PART + 1))
    assert len(_uploads(s3_client, s3_bucket)) == 1  # part 2 is already in S3, invisibly
    assert not store.exists("layer")
    w.abort()
    assert _uploads(s3_client, s3_bucket) == []
    assert not store.exists("layer")


def test_prefix_isolates_stores_sharing_a_bucket(s3_client: Any, s3_bucket: str) -> None:
    a = S3BlobStore(s3_client, s3_bucket, prefix="tenant-a")
    b = S3BlobStore(s3_client, s3_bucket, prefix="tenant-b/")
    assert a.prefix == "tenant-a/"
    for store, data in ((a, b"A"), (b, b"B")):
        with store.open_write("layers/x") as w:
            w.write(data)
            w.commit()
    assert list(a.list()) == ["layers/x"]
    assert a.read_range("layers/x", 0, 1) == b"A"
    assert b.read_range("layers/x", 0, 1) == b"B"
    raw = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert raw == ["tenant-a/layers/x", "tenant-b/layers/x"]
    a.delete("layers/x")
    assert not a.exists("layers/x") and b.exists("layers/x")


def test_prefix_counts_towards_the_key_limit(s3_client: Any, s3_bucket: str) -> None:
    store = S3BlobStore(s3_client, s3_bucket, prefix="p" * 1000)
    with pytest.raises(ValidationError):
        store.open_write("k" * 30)


def test_list_paginates(s3_client: Any, s3_bucket: str) -> None:
    spy = _Spy(s3_client)
    store = S3BlobStore(spy, s3_bucket, prefix="many", list_page_size=10)
    keys = [f"k{i:04d}" for i in range(25)]
    for k in keys:
        s3_client.put_object(Bucket=s3_bucket, Key="many/" + k, Body=b"")
    s3_client.put_object(Bucket=s3_bucket, Key="other/k", Body=b"")
    assert list(store.list()) == keys
    assert list(store.list("k001")) == keys[10:20]


@pytest.mark.parametrize("size", [0, 1001])
def test_list_page_size_is_bounded(s3_client: Any, size: int) -> None:
    with pytest.raises(ValidationError):
        S3BlobStore(s3_client, "valid-bucket", list_page_size=size)


@pytest.mark.parametrize("part_size", [0, MIN_PART_SIZE - 1])
def test_part_size_below_s3_minimum_is_rejected(s3_client: Any, part_size: int) -> None:
    with pytest.raises(ValidationError):
        S3BlobStore(s3_client, "valid-bucket", part_size=part_size)


def test_bucket_name_is_validated(s3_client: Any) -> None:
    with pytest.raises(ValidationError):
        S3BlobStore(s3_client, "Not_A_Bucket")


def test_missing_bucket_is_an_s3_error_not_a_missing_blob(s3_client: Any) -> None:
    from botocore.exceptions import ClientError

    store = S3BlobStore(s3_client, "no-such-bucket-here")
    with pytest.raises(ClientError) as info:
        store.open_read("k")
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"
    assert not isinstance(info.value, BlobNotFoundError)
