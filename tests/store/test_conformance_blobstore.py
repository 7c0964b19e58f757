"""One BlobStore contract, three stores: memory, filesystem, S3 (moto server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import itertools
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrcrypt import BlobStore, BlobWriter, FilesystemBlobStore, MemoryBlobStore
from ecrcrypt.errors import BlobNotFoundError, StreamClosedError, ValidationError
from ecrcrypt.store.s3 import MIN_PART_SIZE, S3BlobStore

PART = MIN_PART_SIZE  # S3 stores in the suite use the smallest legal part, to cross part boundaries cheaply


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return MemoryBlobStore()


def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("s3_bucket")
    return S3BlobStore(client, bucket, prefix="registry/blobs", part_size=PART)


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], BlobStore]] = {
    "memory": _memory,
    "filesystem": _filesystem,
    "s3": _s3,
}


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("filesystem"),
        pytest.param("s3", marks=pytest.mark.moto),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return STORES[request.param](request, tmp_path)


def _put(store: BlobStore, key: str, data: bytes, *, step: int = 1 << 20) -> None:
    with store.open_write(key) as w:
        for i in range(0, len(data), step):
            assert w.write(data[i : i + step]) == len(data[i : i + step])
        w.commit()


def _get(store: BlobStore, key: str) -> bytes:
    with store.open_read(key) as f:
        return f.read()


def _pattern(n: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    return (block * (n // len(block) + 1))[:n]


# --------------------------------------------------------------------------- protocol shape


def test_implements_the_protocols(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)
    w = store.open_write("k")
    assert isinstance(w, BlobWriter)
    w.abort()


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("size", [0, 1, 4096, PART - 1, PART, PART + 1, 2 * PART + 500])
def test_round_trip_across_part_boundaries(store: BlobStore, size: int) -> None:
    data = _pattern(size, seed=size)
    _put(store, "layers/sha256:abc", data, step=PART // 3 + 7)
    assert store.exists("layers/sha256:abc")
    assert store.size("layers/sha256:abc") == size
    assert _get(store, "layers/sha256:abc") == data


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    key=st.from_regex(r"[a-z0-9_:-]{1,12}(/[a-z0-9_.:-]{1,12}){0,3}", fullmatch=True).filter(
        lambda k: all(seg not in (".", "..") for seg in k.split("/"))
    ),
)
def test_round_trip_any_chunking(store: BlobStore, data: bytes, cuts: list[int], key: str) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    with store.open_write(key) as w:
        for a, b in itertools.pairwise(bounds):
            w.write(memoryview(data)[a:b])
        w.commit()
    assert _get(store, key) == data
    assert store.size(key) == len(data)
    store.delete(key)
    assert not store.exists(key)


def test_overwrite_replaces_whole_object(store: BlobStore) -> None:
    _put(store, "k", b"first version, longer")
    _put(store, "k", b"second")
    assert _get(store, "k") == b"second"


# --------------------------------------------------------------------------- reserve


@pytest.mark.parametrize("reserve", [1, 37, 4096])
@pytest.mark.parametrize("body_size", [0, 100, PART + 3])
def test_reserve_is_filled_last(store: BlobStore, reserve: int, body_size: int) -> None:
    body = _pattern(body_size, seed=1)
    header = _pattern(reserve, seed=2)
    with store.open_write("obj", reserve=reserve) as w:
        w.write(body)
        w.write_reserved(b"\xff" * reserve)  # may be overwritten until commit
        w.write_reserved(header)
        w.commit()
    assert _get(store, "obj") == header + body
    assert store.size("obj") == reserve + body_size


def test_reserve_wrong_length_is_rejected(store: BlobStore) -> None:
    with store.open_write("obj", reserve=8) as w:
        with pytest.raises(ValidationError):
            w.write_reserved(b"1234567")
        with pytest.raises(ValidationError):
            w.write_reserved(b"123456789")
    assert not store.exists("obj")


def test_commit_without_filling_reserve_fails_and_leaves_nothing(store: BlobStore) -> None:
    with store.open_write("obj", reserve=4) as w:
        w.write(b"body")
        with pytest.raises(ValidationError):
            w.commit()
        w.write_reserved(b"head")  # the writer stayed open
        w.commit()
    assert _get(store, "obj") == b"headbody"


@pytest.mark.parametrize("reserve", [-1, True, 1.5])
def test_invalid_reserve(store: BlobStore, reserve: Any) -> None:
    with pytest.raises(ValidationError):
        store.open_write("obj", reserve=reserve)


def test_write_reserved_without_reserve_takes_empty(store: BlobStore) -> None:
    with store.open_write("obj") as w:
        w.write(b"x")
        w.write_reserved(b"")
        with pytest.raises(ValidationError):
            w.write_reserved(b"y")
        w.commit()
    assert _get(store, "obj") == b"x"


# --------------------------------------------------------------------------- all or nothing


def test_nothing_visible_before_commit(store: BlobStore) -> None:
    w = store.open_write("pending")
    w.write(b"abc")
    assert not store.exists("pending")
    assert list(store.list()) == []
    with pytest.raises(BlobNotFoundError):
        store.size("pending")
    w.commit()
    assert store.exists("pending")


@pytest.mark.parametrize("size", [10, 2 * PART + 1])
def test_abort_leaves_nothing(store: BlobStore, size: int) -> None:
    w = store.open_write("gone")
    w.write(_pattern(size))
    w.abort()
    w.abort()  # idempotent
    assert not store.exists("gone")
    assert list(store.list()) == []


def test_abort_keeps_the_previous_version(store: BlobStore) -> None:
    _put(store, "k", b"old")
    with store.open_write("k") as w:
        w.write(b"new bytes that never land")
        w.abort()
    assert _get(store, "k") == b"old"


def test_exception_in_with_block_aborts(store: BlobStore) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.open_write("k", reserve=3) as w:
        w.write(_pattern(PART + 10))
        w.write_reserved(b"abc")
        raise Boom
    assert not store.exists("k")
    assert list(store.list()) == []


def test_leaving_with_block_without_commit_aborts(store: BlobStore) -> None:
    with store.open_write("k") as w:
        w.write(b"data")
    assert not store.exists("k")


def test_writer_is_closed_after_commit_and_abort(store: BlobStore) -> None:
    w = store.open_write("k")
    w.write(b"x")
    w.commit()
    with pytest.raises(StreamClosedError):
        w.write(b"y")
    with pytest.raises(StreamClosedError):
        w.write_reserved(b"")
    with pytest.raises(StreamClosedError):
        w.commit()
    w.abort()  # no-op once committed
    assert _get(store, "k") == b"x"

    w2 = store.open_write("k2")
    w2.abort()
    with pytest.raises(StreamClosedError):
        w2.write(b"y")
    with pytest.raises(StreamClosedError):
        w2.commit()
    assert not store.exists("k2")


# --------------------------------------------------------------------------- ranges


def test_read_range_edges(store: BlobStore) -> None:
    data = _pattern(1000)
    _put(store, "r", data)
    assert store.read_range("r", 0, 1000) == data
    assert store.read_range("r", 0, 1) == data[:1]
    assert store.read_range("r", 999, 1) == data[999:]
    assert store.read_range("r", 10, 0) == b""
    assert store.read_range("r", 990, 100) == data[990:]  # cut short at the end
    assert store.read_range("r", 1000, 5) == b""  # offset == size
    assert store.read_range("r", 1000, 0) == b""
    with pytest.raises(ValidationError):
        store.read_range("r", 1001, 1)
    with pytest.raises(ValidationError):
        store.read_range("r", 1001, 0)
    with pytest.raises(ValidationError):
        store.read_range("r", -1, 1)
    with pytest.raises(ValidationError):
        store.read_range("r", 0, -1)


def test_read_range_of_empty_object(store: BlobStore) -> None:
    _put(store, "empty", b"")
    assert store.read_range("empty", 0, 10) == b""
    assert store.read_range("empty", 0, 0) == b""
    with pytest.raises(ValidationError):
        store.read_range("empty", 1, 1)


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 2 * PART + 600), length=st.integers(0, PART + 100))
def test_read_range_matches_slice(store: BlobStore, offset: int, length: int) -> None:
    data = _pattern(2 * PART + 500, seed=9)
    if not store.exists("big"):
        _put(store, "big", data)
    if offset > len(data):
        with pytest.raises(ValidationError):
            store.read_range("big", offset, length)
    else:
        assert store.read_range("big", offset, length) == data[offset : offset + length]


# --------------------------------------------------------------------------- list / delete / missing


def test_list_is_sorted_and_filtered_by_plain_prefix(store: BlobStore) -> None:
    keys = ["a/b/sha256:01", "a/b/sha256:02", "a/c", "a-b", "b", "a/b/other"]
    for k in keys:
        _put(store, k, k.encode())
    assert list(store.list()) == sorted(keys)
    assert list(store.list("a/")) == ["a/b/other", "a/b/sha256:01", "a/b/sha256:02", "a/c"]
    assert list(store.list("a/b/sha256:0")) == ["a/b/sha256:01", "a/b/sha256:02"]
    assert list(store.list("a")) == sorted(k for k in keys if k.startswith("a"))
    assert list(store.list("zzz")) == []
    assert list(store.list("a/b/sha256:01")) == ["a/b/sha256:01"]


def test_delete(store: BlobStore) -> None:
    _put(store, "d/x", b"1")
    _put(store, "d/y", b"2")
    store.delete("d/x")
    assert not store.exists("d/x")
    assert list(store.list()) == ["d/y"]
    store.delete("d/x")  # missing: no error
    store.delete("never/was")


def test_missing_key_raises_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.open_read("nope")
    with pytest.raises(BlobNotFoundError):
        store.read_range("nope", 0, 1)
    with pytest.raises(BlobNotFoundError):
        store.read_range("nope", 0, 0)
    with pytest.raises(BlobNotFoundError):
        store.size("nope")
    assert store.exists("nope") is False
    assert BlobNotFoundError.code == "NoSuchKey"


def test_a_directory_of_keys_is_not_an_object(store: BlobStore) -> None:
    _put(store, "dir/child", b"c")
    assert not store.exists("dir")
    with pytest.raises(BlobNotFoundError):
        store.open_read("dir")


BAD_KEYS = ["", "/abs", "a/../b", "..", ".", "a//b", "a\0b", "a/", "back\\slash", "x" * 1025, "a.ecrcrypt-tmp"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected_everywhere(store: BlobStore, key: str) -> None:
    with pytest.raises(ValidationError):
        store.open_write(key)
    with pytest.raises(ValidationError):
        store.open_read(key)
    with pytest.raises(ValidationError):
        store.read_range(key, 0, 1)
    with pytest.raises(ValidationError):
        store.size(key)
    with pytest.raises(ValidationError):
        store.exists(key)
    with pytest.raises(ValidationError):
        store.delete(key)


@pytest.mark.parametrize("prefix", ["/abs", "a/../", "a\0"])
def test_invalid_prefixes_are_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(ValidationError):
        list(store.list(prefix))


# --------------------------------------------------------------------------- constant memory


def _chunks(total: int, step: int) -> Iterator[bytes]:
    block = _pattern(step, seed=3)
    for i in range(0, total, step):
        yield block[: min(step, total - i)]


@pytest.mark.slow
def test_large_object_streams_in_constant_memory(store: BlobStore) -> None:
    """A 24 MiB object (5 parts on S3) goes in and out without being held whole.

    The bound is generous (well below the object size); the memory store holds objects
    whole by design and is exempt from the bound, not from the round trip.
    """
    total, step = 24 * 1024 * 1024, 1024 * 1024
    expected = hashlib.sha256()
    for chunk in _chunks(total, step):
        expected.update(chunk)
    tracemalloc.start()
    try:
        with store.open_write("large") as w:
            for chunk in _chunks(total, step):
                w.write(chunk)
            w.write_reserved(b"")
            w.commit()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        with store.open_read("large") as f:
            while block := f.read(step):
                got.update(block)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == expected.hexdigest()
    assert store.size("large") == total
    if not isinstance(store, MemoryBlobStore):
        # S3 holds part 1 plus the part being filled (2 x 5 MiB, measured ~11 MiB); files ~3 MiB.
        assert write_peak < total // 2, write_peak
        assert read_peak < total // 4, read_peak


# --------------------------------------------------------------------------- one version per range reader


def test_range_reader_reads_one_version_whatever_happens_to_the_key(store: BlobStore) -> None:
    """All reads of one ``open_ranges`` reader see the version it opened, or fail: never another version."""
    old, new = _pattern(3000, seed=1), _pattern(3000, seed=2)
    _put(store, "v/k", old)
    with store.open_ranges("v/k") as reader:
        assert reader.size() == 3000
        assert reader.read_at(0, 100) == old[:100]
        _put(store, "v/k", new)  # the key now names another object of the same size
        try:
            assert reader.read_at(2900, 500) == old[2900:]  # cut short at the end, as read_range
            assert reader.read_at(3000, 10) == b""
        except BlobNotFoundError:
            assert isinstance(store, S3BlobStore)  # S3 without versioning: If-Match refuses the new ETag
        store.delete("v/k")
        try:
            assert reader.read_at(1000, 10) == old[1000:1010]
        except BlobNotFoundError:
            assert isinstance(store, S3BlobStore)
        with pytest.raises(ValidationError):
            reader.read_at(3001, 1)
    with pytest.raises(StreamClosedError):
        reader.read_at(0, 1)
    with pytest.raises(BlobNotFoundError):
        store.open_ranges("v/k")


def test_range_reader_matches_read_range(store: BlobStore) -> None:
    data = _pattern(10_000, seed=3)
    _put(store, "r", data)
    with store.open_ranges("r") as reader:
        for offset, length in ((0, 0), (0, 1), (17, 4000), (9_999, 5), (10_000, 3)):
            assert (
                reader.read_at(offset, length)
                == store.read_range("r", offset, length)
                == data[offset : offset + length]
            )
