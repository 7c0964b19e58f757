"""An upload's lease names its holder (issue 14, fleet): a holder killed on this host is taken over at
once, one on another host or in another container holds until its lease runs out, two requests racing
for a dead holder's lease never both win, a live holder is never taken over, a request whose
client stalled while its upload was taken over stops before it seals another frame, and a
completion that stalled past its lease leaves the layer, the upload and the parts to the request
that took them over.

Every test runs on both metadata backends (a SQLite file, a database on the PostgreSQL server the
tests start, tests/pg_server.py). Time is driven through ``uploads.now``; nothing sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records, uploads
from ecrcrypt.ecr.liveness import current_owner, owner_gone
from ecrcrypt.ecr.metadata import RepositoryRecord
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.uploads import LayerUploads
from ecrcrypt.errors import InvalidLayerPartError
from ecrcrypt.store.copy import append_object
from ecrcrypt.streams import BodyFirstWriter
from tests.ecr.test_liveness import _owner_of_a_finished_child

FRAME = 1024
ACCOUNT = "111122223333"
REPO = "team/app"

# A registry process that takes the upload's lease and streams a part read from a file, then:
# "stream": reports it and waits for more bytes that never come (the parent SIGKILLs it);
# "stored": kills itself once the part is committed, before the upload's row lists it;
# "completing": saves the part and completes the upload, killing itself once the layer is
# recorded, before the upload's row is removed.
_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from ecrcrypt.ecr.crashpoints import set_crash_hook
    from ecrcrypt.ecr.registry import Registry
    from ecrcrypt.ecr.uploads import LayerUploads

    root, url, upload_id, mode, first, path, digest = sys.argv[1:]
    with open(path, "rb") as f:
        data = f.read()

    class Client:
        sent = 0
        def read(self, size=-1):
            if self.sent >= len(data) // 2 and mode == "stream":
                print("streaming", flush=True)
                sys.stdin.read()  # the rest never comes
            chunk = data[self.sent : self.sent + 4096]
            self.sent += len(chunk)
            return chunk

    def hook(name):
        if (mode, name) in (("stored", "layer-part:committed"), ("completing", "push:recorded")):
            print(mode, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    registry = Registry.open(root, frame_length=1024, metadata=url)
    set_crash_hook(hook)
    api = LayerUploads(registry.repository("team/app"))
    api.upload_layer_part(upload_id, Client(), part_first_byte=int(first))
    if mode == "completing":
        api.complete_layer_upload(upload_id, [digest])
    print("returned", flush=True)
    """
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def directory(tmp_path: Path, url: str) -> Path:
    root = tmp_path / "registry"
    with Registry.create(root, account=ACCOUNT, frame_length=FRAME, metadata=url) as reg:
        key = reg.kms().create_key(description="uploads")
        reg.create_repository(REPO, encryption_configuration={"encryptionType": "KMS", "kmsKey": str(key.arn)})
    return root


@pytest.fixture
def hosts(directory: Path, url: str) -> Iterator[tuple[Registry, Registry]]:
    """Two registries on the same state: two processes, or two hosts, serving the same uploads."""
    one = Registry.open(directory, frame_length=FRAME, metadata=url)
    two = Registry.open(directory, frame_length=FRAME, metadata=url)
    yield one, two
    one.close()
    two.close()


def _meta(reg: Registry) -> MetadataStore:
    return reg._core.metadata


def _record(reg: Registry) -> RepositoryRecord:
    return reg.repository(REPO)._record


def _row(reg: Registry, upload_id: str) -> records.UploadRow:
    row = records.get_upload(_meta(reg), upload_id)
    assert row is not None
    return row


def _plant(reg: Registry, upload_id: str, token: str, at: float) -> None:
    """A request holding the upload from ``at`` on (claimed, never renewed nor released)."""
    got = records.claim_upload(_meta(reg), _record(reg), upload_id, token, at, at + uploads.LEASE_SECONDS)
    assert isinstance(got, records.UploadRow), got


def _content(size: int) -> bytes:
    return bytes((i * 131 + 17) % 251 for i in range(size))


# -- a registry process killed mid-part --------------------------------------------------------------
def _child(
    directory: Path, url: str, upload_id: str, mode: str, first: int, part: Path, digest: Digest
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), url, upload_id, mode, str(first), str(part), str(digest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reap(child: subprocess.Popen[str], *, kill: bool) -> None:
    """SIGKILL the child (unless it killed itself), wait for it and close its pipes."""
    try:
        if kill:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["stream", "stored", "completing"])
def test_a_process_killed_mid_part_is_taken_over_at_once(
    hosts: tuple[Registry, Registry], directory: Path, url: str, tmp_path: Path, mode: str
) -> None:
    reg, _ = hosts
    data = _content(9 * FRAME + 333)
    first = 3 * FRAME + 100
    api = LayerUploads(reg.repository(REPO))
    upload_id = api.initiate_layer_upload().upload_id
    api.upload_layer_part(upload_id, data[:first], part_first_byte=0)
    part = tmp_path / "part"
    part.write_bytes(data[first:])

    child = _child(directory, url, upload_id, mode, first, part, Digest.of(data))
    assert child.stdout is not None and child.stderr is not None
    said = child.stdout.readline().strip()
    if said != {"stream": "streaming"}.get(mode, mode):
        _reap(child, kill=True)
        pytest.fail(f"the child said {said!r}: {child.stderr.read() if child.stderr else ''}")
    if mode == "stream":
        # The child is alive and holds the lease: it is never taken over, from this process or another.
        holder = records.lease_holder(_row(reg, upload_id).lease or "")
        assert holder is not None and holder.split("|")[3] == str(child.pid)
        for host in hosts:
            with pytest.raises(InvalidLayerPartError, match="still writing"):
                LayerUploads(host.repository(REPO)).upload_layer_part(upload_id, data[first:], part_first_byte=first)
    _reap(child, kill=mode == "stream")  # the others killed themselves

    row = _row(reg, upload_id)
    # What the dead request streamed is not part of the upload, unless it saved its part.
    assert row.received == (len(data) if mode == "completing" else first)
    holder = records.lease_holder(row.lease or "")
    assert holder is not None and holder.split("|")[3] == str(child.pid) and owner_gone(holder)
    assert row.lease_until > time.time()  # its lease still runs: nothing below waits for it
    # "stored": the part committed, which no record and not the upload's row lists
    orphans = set(reg.store.list()) - set(_meta(reg).snapshot().blob_keys)
    assert all(".part-" in k for k in orphans) and len(orphans) == (1 if mode == "stored" else 0)

    # Another process continues at once, and completes the layer (the dead completion recorded it).
    if mode != "completing":
        status = api.upload_layer_part(upload_id, data[first:], part_first_byte=first)
        assert status.received == len(data)
    pushed = api.complete_layer_upload(upload_id, [Digest.of(data)])
    assert pushed.digest == Digest.of(data) and pushed.already_existed == (mode == "completing")
    assert records.get_upload(_meta(reg), upload_id) is None
    assert time.time() < row.lease_until  # all of it while the dead request's lease still ran
    for host in hosts:  # the digest is verified as it is read
        assert host.repository(REPO).read_layer(Digest.of(data)) == data

    report = reg.collect_garbage()
    assert set(report.deleted) == orphans
    snap = _meta(reg).snapshot()
    assert snap.blob_intents == ()
    left = set(reg.store.list())
    assert not [k for k in left if ".part-" in k]
    assert left == {k for k in snap.blob_keys if reg.store.exists(k)}


# -- whose lease waits for its deadline ----------------------------------------------------------------
def _here() -> tuple[str, str, str, str, str]:
    host, boot, namespace, pid, start = current_owner().split("|")
    return host, boot, namespace, pid, start


OWNERS: dict[str, tuple[Callable[[], str], bool]] = {
    # name: (owner of the planted lease, taken over at once)
    "a process of this host that exited": (_owner_of_a_finished_child, True),
    "a reused pid (another start time)": (lambda: "|".join((*_here()[:4], "1")), True),
    "another host": (lambda: f"elsewhere.{socket.gethostname()}|{_here()[1]}|pid:[1]|{os.getpid()}|1", False),
    "this host name before a reboot (or another machine of the same name)": (
        lambda: "|".join((_here()[0], "another-boot", *_here()[2:])),
        False,
    ),
    "another container of this kernel": (lambda: "|".join((*_here()[:2], "pid:[1]", "1", "1")), False),
    "this very process (alive)": (current_owner, False),
}


@pytest.mark.parametrize("name", list(OWNERS))
def test_a_lease_is_taken_over_at_once_only_from_a_holder_provably_gone(
    hosts: tuple[Registry, Registry], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    make_owner, at_once = OWNERS[name]
    reg, other = hosts
    upload_id = LayerUploads(reg.repository(REPO)).initiate_layer_upload().upload_id
    t0 = time.time()
    _plant(reg, upload_id, f"{make_owner()}|{os.urandom(8).hex()}", t0)
    api = LayerUploads(other.repository(REPO))
    if not at_once:
        with pytest.raises(InvalidLayerPartError, match="still writing"):
            api.upload_layer_part(upload_id, b"x" * 10, part_first_byte=0)
        monkeypatch.setattr(uploads, "now", lambda: t0 + uploads.LEASE_SECONDS - 1)
        with pytest.raises(InvalidLayerPartError, match=r"still writing .*runs 1 s more"):
            api.upload_layer_part(upload_id, b"x" * 10, part_first_byte=0)
        monkeypatch.setattr(uploads, "now", lambda: t0 + uploads.LEASE_SECONDS + 1)
    assert api.upload_layer_part(upload_id, b"x" * 10, part_first_byte=0).received == 10
    assert _row(reg, upload_id).lease is None  # released by the request that took it


def test_a_token_that_names_no_holder_waits_for_its_deadline(
    hosts: tuple[Registry, Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, _ = hosts
    api = LayerUploads(reg.repository(REPO))
    upload_id = api.initiate_layer_upload().upload_id
    t0 = time.time()
    _plant(reg, upload_id, "0123456789abcdef", t0)  # as written before leases named their holder
    with pytest.raises(InvalidLayerPartError, match="still writing"):
        api.upload_layer_part(upload_id, b"x", part_first_byte=0)
    monkeypatch.setattr(uploads, "now", lambda: t0 + uploads.LEASE_SECONDS + 1)
    assert api.upload_layer_part(upload_id, b"x", part_first_byte=0).received == 1


def test_a_lease_token_names_this_process() -> None:
    token = records.lease_token()
    assert records.lease_holder(token) == current_owner()
    assert token != records.lease_token()  # two requests of one process hold different tokens
    for foreign in ("0123456789abcdef", "", "a|b", "|".join("abcdef") + "|g"):
        assert records.lease_holder(foreign) is None


_FIELD = st.text(st.characters(blacklist_characters="|"), max_size=12)


@given(fields=st.tuples(_FIELD, _FIELD, _FIELD, _FIELD, _FIELD), which=st.sampled_from([0, 1, 2]))
def test_only_an_owner_of_this_host_boot_and_namespace_is_ever_proved_gone(
    fields: tuple[str, str, str, str, str], which: int
) -> None:
    here = _here()
    owner = list(fields)
    if owner[which] == here[which]:
        owner[which] += "x"
    assert not owner_gone("|".join(owner))  # another host, boot or container: only its deadline tells
    token = "|".join(owner) + "|" + os.urandom(8).hex()
    assert records.lease_holder(token) == "|".join(owner)


# -- two requests racing for a dead holder's lease ------------------------------------------------------
def _race_claims(upload_id: str, *hosts: Registry) -> list[tuple[str, records.UploadRow | str]]:
    """Each host claims the upload with a token of its own, all at once: (token, what it got)."""
    barrier = threading.Barrier(len(hosts))
    results: list[tuple[str, records.UploadRow | str]] = []
    lock = threading.Lock()

    def claim(reg: Registry) -> None:
        token = records.lease_token()
        barrier.wait()
        at = time.time()
        got = records.claim_upload(_meta(reg), _record(reg), upload_id, token, at, at + uploads.LEASE_SECONDS)
        with lock:
            results.append((token, got))

    threads = [threading.Thread(target=claim, args=(reg,)) for reg in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(hosts)
    return results


def test_two_claimers_racing_for_a_dead_holder_s_lease_exactly_one_wins(hosts: tuple[Registry, Registry]) -> None:
    one, two = hosts
    upload_id = LayerUploads(one.repository(REPO)).initiate_layer_upload().upload_id
    dead = _owner_of_a_finished_child()
    for round_ in range(12):
        _plant(one, upload_id, f"{dead}|{round_:016x}", time.time())
        results = _race_claims(upload_id, one, two)
        won = [(token, got) for token, got in results if isinstance(got, records.UploadRow)]
        assert len(won) == 1 and [got for _, got in results if got == "busy"] == ["busy"], results
        assert _row(one, upload_id).lease == won[0][0]
        records.release_upload(_meta(one), upload_id, won[0][0])


# -- a request whose client stalls --------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.at = time.time()

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """The uploads' clock, moved by the tests; leases renewed on every chunk (any stall outlasts LEASE_RENEW)."""
    at = _Clock()
    monkeypatch.setattr(uploads, "now", at)
    monkeypatch.setattr(uploads, "LEASE_RENEW", 0.0)
    return at


class _Stalling:
    """A client that sends ``first``, then goes silent (``stall`` runs meanwhile), then sends ``rest``."""

    def __init__(self, first: bytes, rest: bytes, stall: Callable[[], None]) -> None:
        self._chunks = [first, rest]
        self._stall = stall

    def read(self, size: int = -1) -> bytes:
        if len(self._chunks) == 1:
            self._stall()
        return self._chunks.pop(0) if self._chunks else b""


def test_a_client_stalled_past_the_lease_keeps_its_upload_when_nobody_claimed_it(
    hosts: tuple[Registry, Registry], clock: _Clock
) -> None:
    reg, _ = hosts
    api = LayerUploads(reg.repository(REPO))
    upload_id = api.initiate_layer_upload().upload_id
    data = _content(5 * FRAME + 9)

    def stall() -> None:
        clock.at += 3 * uploads.LEASE_SECONDS  # the client said nothing for three leases

    assert api.upload_layer_part(
        upload_id, _Stalling(data[:1000], data[1000:], stall), part_first_byte=0
    ).received == len(data)
    api.complete_layer_upload(upload_id, [Digest.of(data)])
    assert reg.repository(REPO).read_layer(Digest.of(data)) == data


def test_a_stalled_request_whose_upload_was_claimed_fails_before_sealing_another_frame(
    hosts: tuple[Registry, Registry], clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled_host, other = hosts
    phase = ["stalled"]
    writes: list[tuple[str, str]] = []  # (the phase its writer was made in, the phase it wrote in)

    class Recording(BodyFirstWriter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.made_in = phase[0]

        def write(self, data: Any) -> int:
            writes.append((self.made_in, phase[0]))
            return super().write(data)

    monkeypatch.setattr(uploads, "BodyFirstWriter", Recording)
    api = LayerUploads(stalled_host.repository(REPO))
    upload_id = api.initiate_layer_upload().upload_id
    mine, theirs = _content(4 * FRAME), bytes(reversed(_content(4 * FRAME + 5)))

    def stall() -> None:
        # The client stalls past the lease; meanwhile its retry reaches another process.
        clock.at += 2 * uploads.LEASE_SECONDS
        phase[0] = "other"
        got = LayerUploads(other.repository(REPO)).upload_layer_part(upload_id, theirs, part_first_byte=0)
        assert got.received == len(theirs)
        phase[0] = "after"

    # Less than a frame first (nothing sealed yet); after the stall, more than two frames.
    stalling = _Stalling(mine[:1000], mine[1000:], stall)
    with pytest.raises(InvalidLayerPartError, match="taken over"):
        api.upload_layer_part(upload_id, stalling, part_first_byte=0)
    assert ("stalled", "stalled") in writes and ("other", "other") in writes
    assert ("stalled", "after") not in writes  # not a byte more went into a writer that seals frames
    row = _row(stalled_host, upload_id)
    assert row.received == len(theirs) and row.lease is None
    parts = [k for k in stalled_host.store.list() if ".part-" in k]
    assert len(parts) == 1  # the other request's; the stalled one's went with its failure
    pushed = api.complete_layer_upload(upload_id, [Digest.of(theirs)])
    assert other.repository(REPO).read_layer(pushed.digest) == theirs
    assert stalled_host.collect_garbage().deleted == ()


# -- a completion that stalls --------------------------------------------------------------------------
@pytest.fixture
def two_parts(hosts: tuple[Registry, Registry]) -> tuple[bytes, str]:
    """An upload whose parts the two hosts served (completion verifies by reading the layer back)."""
    data = _content(7 * FRAME + 3)
    upload_id = LayerUploads(hosts[0].repository(REPO)).initiate_layer_upload().upload_id
    half = len(data) // 2
    LayerUploads(hosts[0].repository(REPO)).upload_layer_part(upload_id, data[:half], part_first_byte=0)
    LayerUploads(hosts[1].repository(REPO)).upload_layer_part(upload_id, data[half:], part_first_byte=half)
    return data, upload_id


def test_a_completion_that_lost_its_lease_mid_copy_fails_and_leaves_the_other_s_layer(
    hosts: tuple[Registry, Registry], two_parts: tuple[bytes, str], clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    (stalled_host, other), (data, upload_id) = hosts, two_parts
    copies: list[str] = []
    original = append_object

    def stalling_copy(*args: Any, **kwargs: Any) -> int:
        copies.append(args[2])
        n = original(*args, **kwargs)
        if len(copies) == 1:  # after its first part, the completion stalls; the client's retry completes
            clock.at += 2 * uploads.LEASE_SECONDS
            pushed = LayerUploads(other.repository(REPO)).complete_layer_upload(upload_id, [Digest.of(data)])
            assert not pushed.already_existed
        return n

    monkeypatch.setattr(uploads, "append_object", stalling_copy)
    with pytest.raises(InvalidLayerPartError, match="taken over"):
        LayerUploads(stalled_host.repository(REPO)).complete_layer_upload(upload_id, [Digest.of(data)])
    assert len(copies) == 3  # the stalled completion's first part, then both of the other's
    for host in hosts:  # what the stalled completion removed on its way out was its own object only
        assert host.repository(REPO).read_layer(Digest.of(data)) == data
    assert records.get_upload(_meta(other), upload_id) is None
    snap = _meta(other).snapshot()
    assert snap.blob_intents == () and set(other.store.list()) == set(snap.blob_keys)
    assert other.collect_garbage().deleted == ()


def test_a_completion_that_lost_its_lease_after_recording_leaves_the_upload_to_its_new_holder(
    hosts: tuple[Registry, Registry], two_parts: tuple[bytes, str], clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    (stalled_host, other), (data, upload_id) = hosts, two_parts
    taker = records.lease_token()
    original = LayerUploads._complete

    def stalling_complete(self: LayerUploads, *args: Any) -> Any:
        pushed = original(self, *args)
        clock.at += 2 * uploads.LEASE_SECONDS  # recorded, then stalled: another request took the upload
        got = records.claim_upload(_meta(other), _record(other), upload_id, taker, clock.at, clock.at + 60)
        assert isinstance(got, records.UploadRow)
        return pushed

    monkeypatch.setattr(LayerUploads, "_complete", stalling_complete)
    pushed = LayerUploads(stalled_host.repository(REPO)).complete_layer_upload(upload_id, [Digest.of(data)])
    assert pushed.digest == Digest.of(data)  # the layer is recorded: the completion succeeded
    row = _row(other, upload_id)  # but the upload is the other request's now, parts and all
    assert row.lease == taker
    parts = [key for key in other.store.list() if ".part-" in key]
    assert len(parts) == 2
    monkeypatch.setattr(LayerUploads, "_complete", original)
    records.release_upload(_meta(other), upload_id, taker)
    again = LayerUploads(other.repository(REPO)).complete_layer_upload(upload_id, [Digest.of(data)])
    assert again.already_existed and records.get_upload(_meta(other), upload_id) is None
    assert not [key for key in other.store.list() if ".part-" in key]
    assert other.repository(REPO).read_layer(Digest.of(data)) == data
