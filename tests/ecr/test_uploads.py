"""Durable layer uploads: InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload across registries
opened on the same directory (what two server processes see)."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records, uploads
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.uploads import LayerUploads, collect_abandoned_uploads
from ecrcrypt.errors import DigestMismatchError, InvalidLayerPartError, UploadNotFoundError
from ecrcrypt.streams import DecryptingReader

FRAME = 1024
ACCOUNT = "111122223333"


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "registry"


def _open(directory: Path) -> Registry:
    # create: makes the registry the first time, opens it afterwards (two opens = two processes)
    return Registry.create(directory, account=ACCOUNT, frame_length=FRAME)


@pytest.fixture(params=["AES256", "KMS", "KMS_DSSE"])
def repo_name(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    with _open(directory) as reg:
        config: dict[str, str] = {"encryptionType": request.param}
        if request.param != "AES256":
            config["kmsKey"] = str(reg.kms().create_key(description="uploads").arn)
        reg.create_repository("app", encryption_configuration=config)
    yield "app"


@pytest.mark.parametrize("cuts", [[], [1], [FRAME], [FRAME - 1, FRAME, 3 * FRAME + 5], [10, 20, 30, 4000]])
def test_parts_served_by_two_registries_make_one_layer(directory: Path, repo_name: str, cuts: list[int]) -> None:
    data = os.urandom(5 * FRAME + 17)
    one, two = _open(directory), _open(directory)
    try:
        status = LayerUploads(one.repository(repo_name)).initiate_layer_upload()
        bounds = [0, *cuts, len(data)]
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            reg = (one, two)[i % 2]
            got = LayerUploads(reg.repository(repo_name)).upload_layer_part(
                status.upload_id, data[a:b], part_first_byte=a, part_last_byte=b - 1
            )
            assert got.received == b
        finisher = (two, one)[len(cuts) % 2]
        push = LayerUploads(finisher.repository(repo_name)).complete_layer_upload(status.upload_id, [Digest.of(data)])
        assert push.size == len(data) and not push.already_existed
        assert one.repository(repo_name).read_layer(Digest.of(data)) == data
        assert (
            two.repository(repo_name).read_layer_range(Digest.of(data), FRAME - 3, 2000)
            == data[FRAME - 3 : FRAME + 1997]
        )
        # nothing of the upload is left but the layer's own object, which holds no plaintext
        keys = list(one.store.list())
        assert len(keys) == 1
        with one.store.open_read(keys[0]) as f:
            stored = f.read()
        assert data[:64] not in stored and data[-64:] not in stored
        assert one.store.size(keys[0]) == push.stored_size
    finally:
        one.close()
        two.close()


def test_a_part_must_start_where_the_upload_stands(directory: Path, repo_name: str) -> None:
    with _open(directory) as reg:
        uploads = LayerUploads(reg.repository(repo_name))
        uid = uploads.initiate_layer_upload().upload_id
        uploads.upload_layer_part(uid, b"a" * 100, part_first_byte=0)
        with pytest.raises(InvalidLayerPartError) as info:
            uploads.upload_layer_part(uid, b"b" * 10, part_first_byte=50)
        assert info.value.last_valid_byte_received == 99
        with pytest.raises(InvalidLayerPartError):
            uploads.upload_layer_part(uid, b"b" * 10, part_first_byte=100, part_last_byte=200)
        # the refused parts changed nothing: the upload continues where it stood
        uploads.upload_layer_part(uid, b"c" * 10, part_first_byte=100)
        assert uploads.describe_upload(uid).received == 110
        push = uploads.complete_layer_upload(uid, [Digest.of(b"a" * 100 + b"c" * 10)])
        assert reg.repository(repo_name).read_layer(push.digest) == b"a" * 100 + b"c" * 10


def test_a_wrong_digest_stores_nothing_even_when_the_hash_is_not_cached(directory: Path, repo_name: str) -> None:
    data = os.urandom(3000)
    with _open(directory) as one, _open(directory) as two:
        uid = LayerUploads(one.repository(repo_name)).initiate_layer_upload().upload_id
        LayerUploads(two.repository(repo_name)).upload_layer_part(uid, data, part_first_byte=0)
        for reg in (one, two):  # one has a stale hash state, two none: both verify by reading back
            with pytest.raises(DigestMismatchError):
                LayerUploads(reg.repository(repo_name)).complete_layer_upload(uid, [Digest.of(b"other")])
            with pytest.raises(UploadNotFoundError):
                LayerUploads(reg.repository(repo_name)).describe_upload(uid)
            uid = LayerUploads(one.repository(repo_name)).initiate_layer_upload().upload_id
            LayerUploads(two.repository(repo_name)).upload_layer_part(uid, data, part_first_byte=0)
        assert not one.repository(repo_name).has_layer(Digest.of(b"other"))
        assert [k for k in one.store.list() if ".part-" not in k] == []


def test_the_tail_between_parts_is_sealed(directory: Path) -> None:
    with _open(directory) as reg:
        reg.create_repository("rr")
        uploads = LayerUploads(reg.repository("rr"))
        uid = uploads.initiate_layer_upload().upload_id
        secret = b"plaintext-marker-" * 20
        uploads.upload_layer_part(uid, secret, part_first_byte=0)  # less than one frame: all of it pending
    raw = b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())
    assert b"plaintext-marker-" not in raw


def test_abandoned_uploads_are_collected(directory: Path) -> None:
    with _open(directory) as reg:
        reg.create_repository("rr")
        uploads = LayerUploads(reg.repository("rr"))
        uid = uploads.initiate_layer_upload().upload_id
        uploads.upload_layer_part(uid, os.urandom(5000), part_first_byte=0)
        assert collect_abandoned_uploads(reg._core.metadata, reg.store) == 0
        assert collect_abandoned_uploads(reg._core.metadata, reg.store, ttl=-1) == 1
        assert list(reg.store.list()) == []
        with pytest.raises(UploadNotFoundError):
            uploads.upload_layer_part(uid, b"x", part_first_byte=5000)


def test_the_stored_layer_is_an_ordinary_message(directory: Path) -> None:
    with _open(directory) as reg:
        reg.create_repository("rr")
        repo = reg.repository("rr")
        uploads = LayerUploads(repo)
        data = os.urandom(2 * FRAME)
        uid = uploads.initiate_layer_upload().upload_id
        uploads.upload_layer_part(uid, data, part_first_byte=0)
        uploads.complete_layer_upload(uid, [Digest.of(data)])
        (key,) = list(reg.store.list())
        with reg.store.open_read(key) as f:
            out = DecryptingReader(f, provider=repo._provider(), context=repo._context("layer", Digest.of(data))).read()
        assert out == data


def test_a_dead_writer_blocks_the_upload_only_until_its_lease_expires(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(directory) as reg:
        reg.create_repository("rr")
        api = LayerUploads(reg.repository("rr"))
        uid = api.initiate_layer_upload().upload_id
        record = reg.repository("rr")._record
        t0 = time.time()
        # A server that took the upload and died: its lease is never released.
        assert isinstance(
            records.claim_upload(reg._core.metadata, record, uid, "dead", t0, t0 + uploads.LEASE_SECONDS),
            records.UploadRow,
        )
        with pytest.raises(InvalidLayerPartError):
            api.upload_layer_part(uid, b"x" * 10, part_first_byte=0)
        monkeypatch.setattr(uploads, "now", lambda: t0 + uploads.LEASE_SECONDS + 1)
        assert api.upload_layer_part(uid, b"x" * 10, part_first_byte=0).received == 10


def test_a_writer_that_lost_its_lease_stops_and_stores_nothing(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "LEASE_RENEW", 0.0)  # renew on every chunk
    with _open(directory) as reg:
        reg.create_repository("rr")
        api = LayerUploads(reg.repository("rr"))
        uid = api.initiate_layer_upload().upload_id
        record = reg.repository("rr")._record

        class Stealing:
            """A slow client: while it streams, another process takes the upload over."""

            def __init__(self) -> None:
                self.reads = 0

            def read(self, size: int = -1) -> bytes:
                self.reads += 1
                if self.reads == 2:
                    later = time.time() + 10 * uploads.LEASE_SECONDS
                    records._write(  # the lease has expired...
                        reg._core.metadata,
                        lambda db: db.execute("UPDATE layer_uploads SET lease_until = 0 WHERE upload_id = ?", (uid,)),
                    )
                    got = records.claim_upload(reg._core.metadata, record, uid, "thief", time.time(), later)
                    assert isinstance(got, records.UploadRow)  # ...and another request took it
                return b"y" * 1000 if self.reads < 5 else b""

        with pytest.raises(InvalidLayerPartError, match="taken over"):
            api.upload_layer_part(uid, Stealing(), part_first_byte=0)
        assert [k for k in reg.store.list() if ".part-" in k] == []
        assert records.get_upload(reg._core.metadata, uid).received == 0  # type: ignore[union-attr]


def test_collection_removes_a_dead_completion_s_object_but_never_a_recorded_layer(directory: Path) -> None:
    with _open(directory) as reg:
        reg.create_repository("rr")
        api = LayerUploads(reg.repository("rr"))
        dead, done = api.initiate_layer_upload().upload_id, api.initiate_layer_upload().upload_id
        prefix = reg.repository("rr")._prefix("upload")
        with reg.store.open_write(f"{prefix}/{dead}") as w:  # written, never recorded: the process died
            w.write(b"orphan")
            w.commit()
        api.upload_layer_part(done, b"layer bytes", part_first_byte=0)
        api.complete_layer_upload(done, [Digest.of(b"layer bytes")])
        # As if that completion had died after recording the layer, before removing its upload row:
        state = json.loads(records.get_upload(reg._core.metadata, dead).state)  # type: ignore[union-attr]
        state["final"] = f"{prefix}/{done}"
        records.insert_upload(reg._core.metadata, reg.repository("rr")._record, "f" * 32, json.dumps(state), 0.0)
        assert collect_abandoned_uploads(reg._core.metadata, reg.store, ttl=-1) == 2
        assert not reg.store.exists(f"{prefix}/{dead}")
        assert reg.repository("rr").read_layer(Digest.of(b"layer bytes")) == b"layer bytes"


def test_a_part_cut_off_midway_changes_nothing_and_the_upload_resumes(directory: Path) -> None:
    data = os.urandom(10 * FRAME + 7)

    class Disconnecting:
        """A client that goes away after sending some bytes."""

        def __init__(self) -> None:
            self.sent = 0

        def read(self, size: int = -1) -> bytes:
            if self.sent >= 3 * FRAME:
                raise ConnectionResetError("client went away")
            self.sent += FRAME
            return data[4 * FRAME : 10 * FRAME][self.sent - FRAME : self.sent]

    with _open(directory) as reg:
        reg.create_repository("rr")
        api = LayerUploads(reg.repository("rr"))
        uid = api.initiate_layer_upload().upload_id
        api.upload_layer_part(uid, data[: 4 * FRAME], part_first_byte=0)
        with pytest.raises(ConnectionResetError):
            api.upload_layer_part(uid, Disconnecting(), part_first_byte=4 * FRAME)
        assert api.describe_upload(uid).received == 4 * FRAME  # the client asks, and resends from there
        api.upload_layer_part(uid, data[4 * FRAME :], part_first_byte=4 * FRAME)
        api.complete_layer_upload(uid, [Digest.of(data)])
        assert reg.repository("rr").read_layer(Digest.of(data)) == data


def test_garbage_collection_keeps_the_parts_of_an_upload_in_progress(directory: Path) -> None:
    data = os.urandom(6 * FRAME + 1)
    with _open(directory) as first:
        first.create_repository("rr")
        uid = LayerUploads(first.repository("rr")).initiate_layer_upload().upload_id
        LayerUploads(first.repository("rr")).upload_layer_part(uid, data[: 3 * FRAME], part_first_byte=0)
    with _open(directory) as later:  # the process that wrote the part is gone; the upload is not
        report = later.collect_garbage()
        assert report.deleted == ()
        uploads = LayerUploads(later.repository("rr"))
        uploads.upload_layer_part(uid, data[3 * FRAME :], part_first_byte=3 * FRAME)
        uploads.complete_layer_upload(uid, [Digest.of(data)])
        assert later.collect_garbage().deleted == ()
        assert later.repository("rr").read_layer(Digest.of(data)) == data
        assert len(list(later.store.list())) == 1  # the layer; the parts went with the upload
