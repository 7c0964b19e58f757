"""append_object: one stored object appended to a writer, by S3 itself when the writer is S3's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.errors import ValidationError
from ecrcrypt.store.copy import SupportsWriteCopy, append_object
from ecrcrypt.store.protocol import BlobStore
from ecrcrypt.store.s3 import S3BlobStore
from tests.store.test_conformance_blobstore import PART, STORES, _get, _pattern, _put


@pytest.fixture(params=["memory", "filesystem", pytest.param("s3", marks=pytest.mark.moto)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return STORES[request.param](request, tmp_path)


@pytest.mark.parametrize(
    ("size", "offset", "before", "after"),
    [(0, 0, 10, 0), (1000, 10, 0, 5), (3 * PART + 123, 0, 100, 7), (3 * PART + 123, PART + 1, PART + 9, 3 * PART)],
)
def test_append_object_writes_exactly_the_source_bytes(
    any_store: BlobStore, size: int, offset: int, before: int, after: int
) -> None:
    store = any_store
    source = _pattern(size, seed=1)
    _put(store, "src", source)
    head, tail = _pattern(before, seed=2), _pattern(after, seed=3)
    with store.open_write("dst") as w:
        w.write(head)
        assert append_object(w, store, "src", offset) == size - offset
        w.write(tail)
        w.commit()
    assert _get(store, "dst") == head + source[offset:] + tail


def test_a_copy_within_s3_moves_no_bytes_through_the_client(s3_client: Any, s3_bucket: str, tmp_path: Path) -> None:
    store = S3BlobStore(s3_client, s3_bucket, prefix="p", part_size=PART)
    source = _pattern(6 * PART + 5, seed=4)
    _put(store, "src", source)
    calls: list[str] = []
    s3_client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    with store.open_write("dst") as w:
        assert isinstance(w, SupportsWriteCopy)
        w.write(b"header")
        append_object(w, store, "src")
        w.commit()
    assert calls.count("UploadPartCopy") == 1  # the middle parts, copied by S3 in one request
    read = calls.count("GetObject")
    assert read <= 3  # only what fills the first and the last part went through here
    assert _get(store, "dst") == b"header" + source
    with store.open_write("bad") as w, pytest.raises(ValidationError):
        w.write_copy("src", len(source) + 1)  # type: ignore[attr-defined]
