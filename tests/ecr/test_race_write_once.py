"""Racing pushes of one new digest (threads and processes, header-first and body-first) while
others pull and range-read it: no read ever fails authentication, one blob per record remains."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.liveness import current_owner
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.errors import LayersNotFoundError
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.store.filesystem import FilesystemBlobStore
from ecrcrypt.store.s3 import S3BlobStore
from tests.ecr.crash_scenario import content

FRAME = 1024
SIZE = 40_000


def _push(repo: Repository, data: bytes, digest: Digest, body_first: bool) -> bool:
    if body_first:
        with repo.start_upload() as up:
            for i in range(0, len(data), 7000):
                up.write(data[i : i + 7000])
            return up.complete(digest).already_existed
    return repo.push_layer(data, digest=digest).already_existed


def _pusher(repo: Repository, data: bytes, digest: Digest, body_first: bool, existed: list[bool]) -> None:
    existed.append(_push(repo, data, digest, body_first))


def _reader(repo: Repository, data: bytes, digest: Digest, stop: threading.Event, errors: list[BaseException]) -> None:
    rng = random.Random()
    recorded = False
    while not stop.is_set():
        try:
            if rng.random() < 0.2:
                assert repo.read_layer(digest) == data
            else:
                # Ranges that straddle the whole message: header, first and final frames.
                offset = rng.randrange(0, SIZE)
                length = rng.randrange(1, SIZE - offset + 1)
                assert repo.read_layer_range(digest, offset, length) == data[offset : offset + length]
            recorded = True
        except LayersNotFoundError as exc:
            if recorded:  # once readable, the object never goes away (write-once)
                errors.append(exc)
                return
        except BaseException as exc:  # an AuthenticationError here is the false tamper alarm
            errors.append(exc)
            return


def _one_blob_per_record(registry: Registry, name: str) -> None:
    md = registry._core.metadata
    rec = md.get_repository(name)
    assert rec is not None
    recorded = {o.blob_key for kind in ("layer", "manifest") for o in md.list_objects(name, kind)}
    assert set(registry.store.list(f"{registry.account}/{rec.uid}/")) == recorded
    assert md.snapshot().blob_intents == ()


def _race_rounds(registry: Registry, encryption: str, rounds: int) -> None:
    registry.create_repository("race/app", encryption_configuration={"encryptionType": encryption})
    repo = registry.repository("race/app")
    for round_ in range(rounds):
        data = content(100 + round_, SIZE)
        digest = Digest.of(data)
        stop, errors = threading.Event(), list[BaseException]()
        existed: list[bool] = []
        readers = [threading.Thread(target=_reader, args=(repo, data, digest, stop, errors)) for _ in range(2)]
        pushers = [threading.Thread(target=_pusher, args=(repo, data, digest, bool(i % 2), existed)) for i in range(4)]
        for t in readers + pushers:
            t.start()
        for t in pushers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
        assert errors == []
        assert existed.count(False) == 1 and len(existed) == 4  # exactly one push stored it
        assert repo.read_layer(digest) == data
    _one_blob_per_record(registry, "race/app")


@pytest.mark.parametrize("encryption", ["AES256", "KMS"])
def test_threads_race_one_digest_while_others_read(tmp_path: Path, encryption: str) -> None:
    with Registry.create(tmp_path / "reg", frame_length=FRAME) as registry:
        _race_rounds(registry, encryption, 12)


@pytest.mark.moto
def test_threads_race_one_digest_on_s3(s3_client: Any, s3_bucket: str) -> None:
    """The same race over S3 (moto server): ranged GETs pinned by If-Match, never a mixed read."""
    kms = LocalKms()
    store = S3BlobStore(s3_client, s3_bucket, prefix="race")
    _race_rounds(Registry(kms=kms.client, store=store, frame_length=FRAME), "KMS", 3)


def _fork(work: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def test_processes_race_one_digest_while_threads_read(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with Registry.create(root, frame_length=FRAME) as registry:
        registry.create_repository("race/app", encryption_configuration={"encryptionType": "KMS"})
    for round_ in range(4):
        data = content(200 + round_, SIZE)
        digest = Digest.of(data)

        def child(body_first: bool, data: bytes = data, digest: Digest = digest) -> Callable[[], None]:
            def work() -> None:
                with Registry.open(root, frame_length=FRAME) as reg:  # its recovery runs amid the race
                    _push(reg.repository("race/app"), data, digest, body_first)

            return work

        pids = [_fork(child(i % 2 == 1)) for i in range(4)]
        with Registry.open(root, frame_length=FRAME) as registry:
            repo = registry.repository("race/app")
            stop, errors = threading.Event(), list[BaseException]()
            readers = [threading.Thread(target=_reader, args=(repo, data, digest, stop, errors)) for _ in range(2)]
            for t in readers:
                t.start()
            statuses = [os.waitpid(pid, 0)[1] for pid in pids]
            stop.set()
            for t in readers:
                t.join()
            assert errors == []
            assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses)
            assert repo.read_layer(digest) == data
    with Registry.open(root, frame_length=FRAME) as registry:
        _one_blob_per_record(registry, "race/app")
        assert len(registry.repository("race/app").list_layers()) == 4


def test_garbage_collection_keeps_in_flight_blobs_and_takes_dead_ones(tmp_path: Path) -> None:
    """A blob committed but not yet recorded survives collection while its process lives; a blob
    whose intent's process is dead, or with no intent and no record, is collected; idempotent."""
    kms = LocalKms()
    store = FilesystemBlobStore(tmp_path / "blobs")
    registry = Registry(kms=kms.client, store=store, frame_length=FRAME)
    registry.create_repository("gc/app")
    repo = registry.repository("gc/app")
    data = content(7, 5000)
    digest = Digest.of(data)
    md = registry._core.metadata
    seen: list[dict[str, object]] = []
    original = md.put_object

    def collect_first(*args: object, **kwargs: object) -> object:
        report = registry.collect_garbage()  # the blob is committed, not yet recorded
        seen.append({"deleted": report.deleted, "in_flight": report.in_flight})
        return original(*args, **kwargs)  # type: ignore[arg-type]

    md.put_object = collect_first  # type: ignore[method-assign,assignment]
    repo.push_layer(data, digest=digest)
    md.put_object = original  # type: ignore[method-assign]
    assert seen[0]["deleted"] == () and len(seen[0]["in_flight"]) == 1  # type: ignore[arg-type]
    assert repo.read_layer(digest) == data

    rec = md.get_repository("gc/app")
    assert rec is not None
    stray = f"{registry.account}/{rec.uid}/layers/{digest}.stray"
    with store.open_write(stray) as w:  # committed by a process that died before recording it
        w.write(b"x")
        w.commit()
    dead = f"{registry.account}/{rec.uid}/uploads/dead"
    with store.open_write(dead) as w:
        w.write(b"y")
        w.commit()
    md._db.execute(  # type: ignore[attr-defined]
        "INSERT INTO blob_intents VALUES (?, ?, ?, ?)", (dead, rec.uid, "elsewhere|boot|pid:[1]|1|1", 0.0)
    )  # another host's push, long past the grace period
    report = registry.collect_garbage()
    assert set(report.deleted) == {stray, dead} and report.referenced == 1
    assert registry.collect_garbage().deleted == ()
    assert md.snapshot().blob_intents == ()
    assert repo.read_layer(digest) == data


def test_collection_never_takes_a_blob_recorded_after_its_snapshot(tmp_path: Path, monkeypatch: Any) -> None:
    """The liveness verdict comes after the snapshot: a push that records its blob and exits in
    between looks dead, and its blob is absent from the (older) snapshot's records. Collection
    must look again before deleting, or it deletes an acknowledged object."""
    kms = LocalKms()
    registry = Registry(kms=kms.client, store=FilesystemBlobStore(tmp_path / "blobs"), frame_length=FRAME)
    registry.create_repository("gc/app")
    repo = registry.repository("gc/app")
    data = content(11, 5000)
    digest = Digest.of(data)
    dead = _fork(lambda: None)
    os.waitpid(dead, 0)
    # The pushing process, as its intent will name it: one that has exited by the time GC judges it.
    owner = current_owner().rsplit("|", 2)[0] + f"|{dead}|1"
    monkeypatch.setattr("ecrcrypt.ecr.repository.current_owner", lambda: owner)
    md = registry._core.metadata
    may_record, recorded = threading.Event(), threading.Event()
    original_put, original_snapshot = md.put_object, md.snapshot

    def put_object(*args: Any, **kwargs: Any) -> Any:
        may_record.wait(10)
        try:
            return original_put(*args, **kwargs)
        finally:
            recorded.set()

    def snapshot() -> Any:
        snap = original_snapshot()
        may_record.set()  # the push records (and "exits") after the snapshot, before the verdict
        recorded.wait(10)
        return snap

    monkeypatch.setattr(md, "put_object", put_object)
    monkeypatch.setattr(md, "snapshot", snapshot)
    pusher = threading.Thread(target=lambda: repo.push_layer(data, digest=digest))
    pusher.start()
    for _ in range(1000):  # until the push has committed its blob and waits to record it
        if list(registry._core.store.list("")):
            break
        threading.Event().wait(0.01)
    report = registry.collect_garbage()
    pusher.join()
    assert report.deleted == ()
    assert repo.read_layer(digest) == data
