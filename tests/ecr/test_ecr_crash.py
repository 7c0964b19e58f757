"""A process killed (SIGKILL) mid-push leaves the registry consistent and openable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry

_CHILD = textwrap.dedent(
    """
    import sys
    from ecrcrypt.ecr.registry import Registry
    from ecrcrypt.digest import Digest

    class Endless:
        def __init__(self):
            self.n = 0
        def read(self, size=-1):
            self.n += 1
            if self.n == 8:
                print("pushing", flush=True)
            return b"\\x5a" * 65536

    reg = Registry.open(sys.argv[1])
    repo = reg.repository("crash/app")
    if sys.argv[2] == "header-first":
        repo.push_layer(Endless(), digest=Digest("ab" * 32))
    else:
        up = repo.start_upload()
        src = Endless()
        while True:
            up.write(src.read())
    """
)


@pytest.mark.parametrize("path", ["header-first", "body-first"])
@pytest.mark.parametrize("encryption", ["AES256", "KMS"])
def test_sigkill_mid_push_leaves_store_consistent(tmp_path: Path, path: str, encryption: str) -> None:
    root = tmp_path / "registry"
    reg = Registry.create(root)
    reg.create_repository("crash/app", encryption_configuration={"encryptionType": encryption})
    good = os.urandom(100_000)
    reg.repository("crash/app").push_layer(good, digest=Digest.of(good))
    before = sorted(reg.store.list())
    reg.close()

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root), path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "pushing", child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL

    # The child died mid-write: its temporary is on disk, but it is never a visible object.
    blobs = root / "blobs"
    left = [p for p in blobs.rglob("*") if p.is_file() and p.name.endswith(".ecrcrypt-tmp")]
    assert left
    with Registry.open(root) as reopened:  # a fresh temporary may be a write in flight: kept
        assert sorted(reopened.store.list()) == before
    assert all(p.exists() for p in left)
    for p in left:  # an hour later, nothing has touched it: a crash's leftover
        os.utime(p, (p.stat().st_mtime - 7200, p.stat().st_mtime - 7200))
    with Registry.open(root) as reopened:  # opening cleans stale temporaries
        assert sorted(reopened.store.list()) == before
    assert not [p for p in blobs.rglob("*") if p.is_file() and p.name.endswith(".ecrcrypt-tmp")]
    reg = Registry.open(root)
    repo = reg.repository("crash/app")
    assert repo.list_layers() == [Digest.of(good)]
    assert repo.read_layer(Digest.of(good)) == good
    fresh = os.urandom(5000)
    repo.push_layer(fresh, digest=Digest.of(fresh))
    assert repo.read_layer(Digest.of(fresh)) == fresh
    reg.delete_repository("crash/app", force=True)
    assert list(reg.store.list()) == []
    reg.close()
