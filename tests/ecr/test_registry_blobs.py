"""``check_blob_store``: which blob store a registry records, and every other one refused (``ecr.registry_blobs``).

On a real metadata database (a SQLite file); the command line's and the server's use of it are in
tests/cli/test_s3_blobs.py and tests/server/test_s3_cli_and_server.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt.ecr.metadata import RegistryMetadata
from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.registry_blobs import BLOB_STORE, DIRECTORY, BlobStoreChoice, check_blob_store
from ecrcrypt.ecr.registry_kms import open_registry_with
from ecrcrypt.errors import RegistryStateError, ValidationError
from ecrcrypt.store.filesystem import FilesystemBlobStore
from ecrcrypt.store.memory import MemoryBlobStore

BUCKETS = ("bucket-a", "bucket-b", "bucket-c")
CHOICES = [BlobStoreChoice(), *(BlobStoreChoice(s3_bucket=b) for b in BUCKETS)]


def _opened(root: Path, metadata: RegistryMetadata, choice: BlobStoreChoice, *, init: bool) -> bool:
    try:
        check_blob_store(root, metadata, choice, init=init)
    except RegistryStateError as exc:
        recorded = metadata.recorded(BLOB_STORE)
        assert recorded is not None and f"records {BLOB_STORE}={recorded}" in str(exc)
        return False
    return True


@given(opens=st.lists(st.tuples(st.sampled_from(CHOICES), st.booleans()), min_size=1, max_size=8))
def test_the_first_explicit_choice_is_recorded_and_every_other_is_refused(
    opens: list[tuple[BlobStoreChoice, bool]],
) -> None:
    """An explicit choice is a bucket, or init; a command naming no store neither records nor is refused
    while nothing is recorded (an empty registry: no objects, no local blobs)."""
    root = Path("/nonexistent-registry")  # its blobs/ is missing: no local blobs
    with RegistryMetadata() as metadata:
        first: BlobStoreChoice | None = None
        for choice, init in opens:
            explicit = init or choice.s3_bucket is not None
            if first is None and explicit:
                first = choice
            expected = first is None or choice == first
            assert _opened(root, metadata, choice, init=init) is expected
            assert metadata.recorded(BLOB_STORE) == (None if first is None else first.identity)


def test_hosts_racing_to_record_different_buckets_agree_on_one(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    RegistryMetadata.create(path, account="111122223333", region="us-east-1").close()
    start = threading.Barrier(len(BUCKETS))
    outcome: dict[str, bool] = {}

    def host(bucket: str) -> None:
        with RegistryMetadata.open(path) as metadata:
            start.wait()
            outcome[bucket] = _opened(tmp_path, metadata, BlobStoreChoice(s3_bucket=bucket), init=False)

    threads = [threading.Thread(target=host, args=(b,)) for b in BUCKETS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [b for b, ok in outcome.items() if ok]
    assert len(outcome) == len(BUCKETS) and len(winners) == 1
    with RegistryMetadata.open(path) as metadata:
        assert metadata.recorded(BLOB_STORE) == f"s3://{winners[0]}"


def test_local_blobs_keep_an_unrecorded_registry_on_its_directory(tmp_path: Path) -> None:
    (tmp_path / "blobs" / "team").mkdir(parents=True)
    (tmp_path / "blobs" / "team" / "object").write_bytes(b"ciphertext")
    with RegistryMetadata() as metadata:
        with pytest.raises(RegistryStateError, match="records no blob store") as refused:
            check_blob_store(tmp_path, metadata, BlobStoreChoice(s3_bucket="bucket-a"), init=True)
        assert refused.value.path == str(tmp_path / "blobs")
        assert metadata.recorded(BLOB_STORE) is None
        check_blob_store(tmp_path, metadata, BlobStoreChoice(), init=False)
        assert metadata.recorded(BLOB_STORE) is None  # a plain open records nothing ...
        check_blob_store(tmp_path, metadata, BlobStoreChoice(), init=True)
        assert metadata.recorded(BLOB_STORE) == DIRECTORY  # ... init does


def test_the_choice_is_validated_and_names_no_endpoint() -> None:
    with pytest.raises(ValidationError):
        BlobStoreChoice(s3_bucket="Not_A_Bucket")
    with pytest.raises(ValidationError, match="--s3-endpoint-url is the endpoint of --s3-bucket"):
        BlobStoreChoice(s3_endpoint_url="http://127.0.0.1:9000")
    here, there = (BlobStoreChoice(s3_bucket="bucket-a", s3_endpoint_url=u) for u in (None, "http://10.0.0.1"))
    assert here.identity == there.identity == "s3://bucket-a"  # the endpoint may differ per host


def test_the_check_on_outside_metadata_unwraps_the_service_key_once(tmp_path: Path) -> None:
    """With the local KMS and outside metadata every open unwraps the service key (a Decrypt in the trail):
    checking the blob store first must not add a second one, nor record into another registry's database."""
    url = f"sqlite:///{tmp_path / 'metadata.sqlite3'}"
    directory = tmp_path / "registry"
    Registry.create(directory, metadata=url).close()

    def decrypts() -> int:
        with Registry.open(directory, metadata=url) as registry:
            assert registry.audit is not None
            return len(list(registry.audit.query(event_name="Decrypt")))

    before = decrypts()
    open_registry_with(directory, kms="local", metadata=url, blobs=BlobStoreChoice(), init=True).close()
    assert decrypts() == before + 2  # the checked open's one unwrap, and decrypts()'s own
    with open_metadata(url) as metadata:
        assert metadata.recorded(BLOB_STORE) == DIRECTORY

    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    Registry.create(tmp_path / "other", metadata=other).close()
    with pytest.raises(RegistryStateError, match="is not this registry's"):
        open_registry_with(directory, kms="local", metadata=other, blobs=BlobStoreChoice(s3_bucket="bucket-a"))
    with open_metadata(other) as metadata:
        assert metadata.recorded(BLOB_STORE) is None


# -- the library's Registry.open(store=...): checked against the record, never recording ------------
def _library_registry(tmp_path: Path, recorded: str | None) -> Path:
    root = tmp_path / "registry"
    Registry.create(root).close()
    if recorded is not None:
        with RegistryMetadata.open(root / "registry.sqlite3") as metadata:
            metadata.record_once(BLOB_STORE, recorded)
    return root


def _s3(bucket: str) -> Any:
    import boto3

    from ecrcrypt.store.s3 import S3BlobStore

    # Never called: the refusal comes before the store is used (no endpoint, no credentials needed).
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return S3BlobStore(client, bucket)


@pytest.mark.parametrize(
    ("recorded", "store"),
    [
        ("s3://bucket-a", lambda root: None),  # the directory's blobs/ for a registry in S3
        ("s3://bucket-a", lambda root: FilesystemBlobStore(root / "blobs")),
        ("s3://bucket-a", lambda root: _s3("bucket-b")),  # another bucket
        (DIRECTORY, lambda root: _s3("bucket-a")),  # a bucket for a registry whose blobs are in its directory
    ],
)
def test_the_library_open_refuses_a_store_the_registry_does_not_record(
    tmp_path: Path, recorded: str, store: Any
) -> None:
    root = _library_registry(tmp_path, recorded)
    before = sorted(p.name for p in (root / "blobs").iterdir())
    with pytest.raises(RegistryStateError, match=f"records {BLOB_STORE}={recorded}"):
        Registry.open(root, store=store(root))
    assert sorted(p.name for p in (root / "blobs").iterdir()) == before
    with RegistryMetadata.open(root / "registry.sqlite3") as metadata:
        assert metadata.recorded(BLOB_STORE) == recorded  # refused, and nothing recorded over it


@pytest.mark.parametrize("recorded", [None, DIRECTORY])
def test_the_library_open_takes_the_recorded_store_and_never_records_one(tmp_path: Path, recorded: str | None) -> None:
    root = _library_registry(tmp_path, recorded)
    with Registry.open(root) as registry:
        registry.create_repository("app")
    with Registry.open(root, store=MemoryBlobStore()) as registry:  # a store it cannot identify: the caller's call
        assert registry.describe_repositories()
    with RegistryMetadata.open(root / "registry.sqlite3") as metadata:
        assert metadata.recorded(BLOB_STORE) == recorded
