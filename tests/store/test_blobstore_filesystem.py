"""FilesystemBlobStore beyond the shared contract: path safety, temporaries, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import FilesystemBlobStore, MemoryBlobStore
from ecrcrypt.errors import ValidationError
from ecrcrypt.store.protocol import validate_key


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".ecrcrypt-tmp")]


@given(key=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_a_valid_key_always_maps_inside_the_root(key: str) -> None:
    root = Path("/nonexistent-root/store")
    try:
        validate_key(key)
    except ValidationError:
        return
    resolved = Path(os.path.normpath(root.joinpath(*key.split("/"))))
    assert resolved.is_relative_to(root)
    assert resolved != root


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "/etc/passwd", "a/./b", "nul\0byte"])
def test_escaping_keys_are_rejected(tmp_path: Path, key: str) -> None:
    store = FilesystemBlobStore(tmp_path / "root")
    with pytest.raises(ValidationError):
        store.open_write(key)
    assert not (tmp_path / "escape").exists()


def test_atomic_write_leaves_only_the_final_file(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with store.open_write("a/b/c", reserve=2) as w:
        w.write(b"body")
        assert len(_tmp_files(tmp_path)) == 1
        assert not (tmp_path / "a/b/c").exists()
        w.write_reserved(b"hd")
        w.commit()
    assert (tmp_path / "a/b/c").read_bytes() == b"hdbody"
    assert _tmp_files(tmp_path) == []


def test_temporaries_are_invisible_and_cleaned_on_open(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with store.open_write("x/y") as w:
        w.write(b"1")
        w.commit()
    stale = tmp_path / "x" / ".y.deadbeef.ecrcrypt-tmp"
    stale.write_bytes(b"half a layer")
    assert list(store.list()) == ["x/y"]
    kept = FilesystemBlobStore(tmp_path, clean_temporaries=False)
    assert stale.exists()
    assert list(kept.list()) == ["x/y"]
    FilesystemBlobStore(tmp_path)
    assert stale.exists()  # fresh: may be another process's write in flight
    _age(stale, 3601)
    FilesystemBlobStore(tmp_path, clean_temporaries=False)
    assert stale.exists()
    FilesystemBlobStore(tmp_path)
    assert not stale.exists()
    assert (tmp_path / "x" / "y").read_bytes() == b"1"


def test_key_and_directory_conflicts_are_validation_errors(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with store.open_write("a/b") as w:
        w.write(b"1")
        w.commit()
    with pytest.raises(ValidationError), store.open_write("a/b/c"):  # "a/b" is an object
        pass
    w = store.open_write("a")  # "a" is a directory of keys
    w.write(b"2")
    with pytest.raises(ValidationError):
        w.commit()
    assert _tmp_files(tmp_path) == []
    assert list(store.list()) == ["a/b"]


def test_delete_prunes_empty_directories(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "r")
    with store.open_write("a/b/c") as w:
        w.commit()
    store.delete("a/b/c")
    assert list((tmp_path / "r").iterdir()) == []
    with store.open_write("a") as w:  # the name is free again
        w.write(b"x")
        w.commit()
    assert list(store.list()) == ["a"]


def test_concurrent_writers_of_one_key_leave_one_whole_version(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    payloads = [bytes([i]) * 200_000 for i in range(6)]

    def put(data: bytes) -> None:
        with store.open_write("k") as w:
            for i in range(0, len(data), 4096):
                w.write(data[i : i + 4096])
            w.commit()

    threads = [threading.Thread(target=put, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.open_read("k") as f:
        assert f.read() in payloads
    assert _tmp_files(tmp_path) == []


_CRASHING_WRITER = textwrap.dedent(
    """
    import os, sys
    from ecrcrypt import FilesystemBlobStore
    store = FilesystemBlobStore(sys.argv[1])
    w = store.open_write("layers/sha256:big", reserve=16)
    w.write(b"x" * (4 << 20))
    w._file.flush()
    print("written", flush=True)
    sys.stdin.readline()  # wait to be killed mid-write
    """
)


def test_process_killed_mid_write_leaves_the_store_consistent(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with store.open_write("layers/sha256:big") as w:
        w.write(b"old version")
        w.commit()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
        assert len(_tmp_files(tmp_path)) == 1  # the killed writer's temporary, on disk
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # What a reader sees after the crash: the old object, whole; the temporary invisible.
    assert list(store.list()) == ["layers/sha256:big"]
    assert store.read_range("layers/sha256:big", 0, 100) == b"old version"
    reopened = FilesystemBlobStore(tmp_path, stale_after=0)
    assert _tmp_files(tmp_path) == []
    with reopened.open_read("layers/sha256:big") as f:
        assert f.read() == b"old version"


def test_memory_store_is_thread_safe() -> None:
    store = MemoryBlobStore()

    def put(i: int) -> None:
        for j in range(50):
            with store.open_write(f"t{i}/k{j}") as w:
                w.write(b"%d" % j)
                w.commit()

    threads = [threading.Thread(target=put, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(store.list())) == 200
    assert repr(store) == "MemoryBlobStore(<200 objects>)"


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_opening_keeps_a_write_in_flight_and_removes_only_stale_temporaries(tmp_path: Path) -> None:
    # Another process (a second Registry.open of the directory) opening the store while
    # a write streams used to delete the writer's temporary: its commit then failed.
    store = FilesystemBlobStore(tmp_path)
    with store.open_write("layers/a") as w:
        w.write(b"first half, ")
        (temporary,) = _tmp_files(tmp_path)
        stale = temporary.with_name(".old.0123456789abcdef.ecrcrypt-tmp")
        stale.write_bytes(b"a crash's leftover")
        _age(stale, 2 * 3600)
        FilesystemBlobStore(tmp_path)
        assert not stale.exists()
        assert temporary.exists()
        w.write(b"second half")
        w.commit()
    assert store.read_range("layers/a", 0, 100) == b"first half, second half"
    assert _tmp_files(tmp_path) == []


@pytest.mark.parametrize("bad", [-1, True, "1", float("nan")])
def test_stale_after_must_be_seconds(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(ValidationError):
        FilesystemBlobStore(tmp_path, stale_after=bad)
