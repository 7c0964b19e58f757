"""The registry's metadata behaves the same on SQLite and on PostgreSQL (issue 14).

Every test here runs once per backend, on a store made through ``create_metadata(url)``:
a SQLite file in the test's directory, or a fresh database on the PostgreSQL server the
tests start themselves (tests/pg_server.py; skipped only when PostgreSQL cannot be had).
It covers every method of the ``MetadataStore`` protocol, the compare-and-set of intents
and the first-writer-wins of objects under two connections racing, and a registry end to
end (create, push, pull, delete, recover) with the local KMS and the filesystem store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.metadata import (
    BlobIntent,
    ObjectRecord,
    RepositoryGrant,
    RepositoryIntent,
    RepositoryRecord,
)
from ecrcrypt.ecr.metadata_postgres import MIGRATIONS_TABLE, PostgresMetadata
from ecrcrypt.ecr.metadata_schema import SCHEMA_VERSION
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.metadata_url import create_metadata, open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.service_key import FINGERPRINT, WRAPPED, ServiceKey
from ecrcrypt.ecr.types import build_manifest
from ecrcrypt.errors import RegistryStateError, ValidationError
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.store.filesystem import FilesystemBlobStore
from tests.ecr.test_recovery import _half_created

ACCOUNT, REGION = "111122223333", "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEAD = "elsewhere|boot|pid:[1]|1|1"  # an intent owner on another host, long past the grace period

_T = TypeVar("_T")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL where no registry metadata exists yet, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"  # sqlite:////abs/path
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[MetadataStore]:
    metadata = create_metadata(url, account=ACCOUNT, region=REGION)
    yield metadata
    metadata.close()


def _record(name: str = "team/app", uid: str = "a" * 32, *, binds_uid: bool = True) -> RepositoryRecord:
    grant = RepositoryGrant(role="ecr", grant_id="g1", grantee="ecr.us-east-1.amazonaws.com", grant_token="t", name="n")
    return RepositoryRecord(
        name=name,
        uid=uid,
        created_at=1_700_000_000.123456,
        encryption_type="KMS",
        kms_key="arn:aws:kms:us-east-1:111122223333:key/k",
        grants=(grant,),
        binds_uid=binds_uid,
    )


def _intent(record: RepositoryRecord, owner: str = "me") -> RepositoryIntent:
    """The creation intent of ``record`` (the same fields a deletion intent carries)."""
    return attrs.evolve(RepositoryIntent.deleting(record, owner=owner, started_at=1.5), operation="create")


def _created(store: MetadataStore, record: RepositoryRecord) -> RepositoryRecord:
    assert store.begin_create(_intent(record)) is None
    assert store.finish_create(record, "me")
    return record


def _object(digest: str = "sha256:" + "1" * 64, *, kind: str = "layer", blob_key: str = "blob-1") -> ObjectRecord:
    return ObjectRecord(
        kind=kind,
        digest=digest,
        size=5_000_000_000,
        stored_size=5_000_000_100,
        inner_size=None,
        pushed_at=2.25,
        blob_key=blob_key,
    )


# -- opening, identity, schema -------------------------------------------------------------
def test_open_never_creates_and_create_is_idempotent(url: str) -> None:
    with pytest.raises(RegistryStateError):
        open_metadata(url)
    first = create_metadata(url, account=ACCOUNT, region=REGION)
    store_id = first.store_id
    assert store_id and first.schema_version == SCHEMA_VERSION and first.persistent
    first.close()
    again = create_metadata(url, account=ACCOUNT, region=REGION)
    assert again.store_id == store_id
    again.close()
    with open_metadata(url) as reopened:
        assert reopened.store_id == store_id and reopened.recorded("account") == ACCOUNT


def test_a_database_of_another_registry_is_refused(store: MetadataStore, url: str) -> None:
    store.check_identity(account=ACCOUNT, region=REGION)
    with pytest.raises(RegistryStateError, match="belongs to the registry of account"):
        store.check_identity(account="444455556666", region=REGION)
    with pytest.raises(RegistryStateError, match="belongs to the registry of region"):
        create_metadata(url, account=ACCOUNT, region="eu-west-1")


def test_records_are_written_once(store: MetadataStore) -> None:
    assert store.recorded("a") is None
    assert store.record_once("a", "1") == "1"
    assert store.record_once("a", "2") == "1"
    assert store.record_once_many({"a": "3", "b": "4"}) == {"a": "1", "b": None}  # all or nothing
    assert store.record_once_many({"b": "4", "c": "5"}) == {"b": "4", "c": "5"}
    assert store.recorded("c") == "5"
    assert store.record_once_many({}) == {}


def test_a_bad_url_is_a_validation_error() -> None:
    for bad in ("mysql://h/db", "sqlite:", "sqlite:///", "/tmp/registry.sqlite3"):
        with pytest.raises(ValidationError):
            open_metadata(bad)


# -- repositories, policies ------------------------------------------------------------------
def test_repositories_are_created_through_their_intent(store: MetadataStore) -> None:
    record = _record()
    assert store.begin_create(_intent(record)) is None
    assert store.get_repository(record.name) is None and store.list_intents() == [_intent(record)]
    other = _intent(attrs.evolve(record, uid="b" * 32), owner="other")
    assert store.begin_create(other) == _intent(record)  # the name is held by the intent
    assert not store.finish_create(record, "someone else")  # not the owner: nothing written
    assert store.finish_create(record, "me")
    assert store.get_repository(record.name) == record  # floats, grants, uid binding round-trip
    assert store.begin_create(other) == record  # now held by the repository
    assert store.list_intents() == []
    legacy = _created(store, _record("team/old", "c" * 32, binds_uid=False))
    assert [r.name for r in store.list_repositories()] == ["team/app", "team/old"]  # by created_at, name
    assert store.get_repository("team/old") == legacy


def test_repository_policies(store: MetadataStore) -> None:
    assert not store.set_repository_policy("team/app", "{}")  # no such repository
    record = _created(store, _record())
    assert store.get_repository_policy(record.name) is None
    assert store.set_repository_policy(record.name, '{"v": 1}') and store.set_repository_policy(record.name, '{"v": 2}')
    assert store.get_repository_policy(record.name) == '{"v": 2}'
    assert store.delete_repository_policy(record.name) and not store.delete_repository_policy(record.name)
    assert store.get_repository_policy(record.name) is None


# -- objects, tags, deletion -------------------------------------------------------------------
def test_objects_first_writer_wins_and_replacing_only_the_named_blob(store: MetadataStore) -> None:
    record = _created(store, _record())
    first = _object()
    assert store.put_object(record, first) == first
    assert store.put_object(record, attrs.evolve(first, blob_key="blob-2")) == first  # the earlier one stays
    assert store.put_object(record, attrs.evolve(first, blob_key="blob-3"), replacing="blob-x") == first
    replaced = attrs.evolve(first, blob_key="blob-4")
    assert store.put_object(record, replaced, replacing="blob-1") == replaced
    manifest = _object("sha256:" + "2" * 64, kind="manifest", blob_key="blob-m")
    assert store.put_object(record, manifest) == manifest
    assert store.get_object(record.name, "layer", first.digest) == replaced
    assert store.get_object(record.name, "layer", manifest.digest) is None
    assert store.list_objects(record.name, "layer") == [replaced]
    assert store.list_objects(record.name, "manifest") == [manifest]
    assert store.count_objects(record.name) == 2
    ghost = attrs.evolve(record, uid="d" * 32)  # the same name, another repository: not live
    assert store.put_object(ghost, _object("sha256:" + "3" * 64)) is None
    assert not store.put_tag(ghost, "latest", manifest.digest)


def test_tags_point_at_manifests_only(store: MetadataStore) -> None:
    record = _created(store, _record())
    manifest = _object("sha256:" + "2" * 64, kind="manifest", blob_key="blob-m")
    assert not store.put_tag(record, "latest", manifest.digest)  # no such manifest yet
    store.put_object(record, manifest)
    assert store.put_tag(record, "latest", manifest.digest) and store.put_tag(record, "v1", manifest.digest)
    assert store.put_tag(record, "latest", manifest.digest)  # moving a tag onto the same image
    assert store.get_tag(record.name, "latest") == manifest.digest and store.get_tag(record.name, "nope") is None
    assert store.tags_of(record.name, manifest.digest) == ["latest", "v1"]


def test_delete_removes_everything_of_that_repository_with_its_intent(store: MetadataStore) -> None:
    record = _created(store, _record())
    manifest = _object("sha256:" + "2" * 64, kind="manifest", blob_key="blob-m")
    store.put_object(record, manifest)
    store.put_tag(record, "latest", manifest.digest)
    store.set_repository_policy(record.name, "{}")
    deleting = RepositoryIntent.deleting(record, owner="me", started_at=3.0)
    assert not store.begin_delete(attrs.evolve(record, uid="e" * 32), deleting)  # not that repository
    assert store.begin_delete(record, deleting)
    assert not store.begin_delete(record, deleting)  # already gone
    assert store.get_repository(record.name) is None and store.count_objects(record.name) == 0
    assert store.get_tag(record.name, "latest") is None and store.get_repository_policy(record.name) is None
    assert store.list_intents() == [deleting]
    assert store.snapshot().blob_keys == frozenset()
    again = _created(store, _record(uid="f" * 32))  # a new repository of the name starts empty
    assert store.list_objects(again.name, "manifest") == [] and again.binds_uid


# -- intents, blob intents, snapshot ---------------------------------------------------------
def test_intents_compare_and_set(store: MetadataStore) -> None:
    record = _record()
    store.begin_create(_intent(record, owner=DEAD))
    assert not store.claim_intent(record.uid, "not the owner", "me")
    assert store.claim_intent(record.uid, DEAD, "me")
    assert not store.claim_intent(record.uid, DEAD, "late")  # the owner changed under it
    assert not store.end_intent(record.uid, DEAD)
    assert store.end_intent(record.uid, "me") and store.list_intents() == []
    assert not store.end_intent(record.uid, "me")


def test_blob_intents_and_the_snapshot(store: MetadataStore) -> None:
    record = _created(store, _record())
    blob = BlobIntent(blob_key="blob-1", repository_uid=record.uid, owner="me", started_at=4.0)
    store.begin_blob(blob)
    store.begin_blob(blob)  # idempotent
    store.begin_blob(BlobIntent(blob_key="blob-9", repository_uid=record.uid, owner="me", started_at=5.0))
    store.end_blob("blob-9")
    snap = store.snapshot()
    assert snap.blob_intents == (blob,) and snap.repositories == (record,) and snap.intents == ()
    store.put_object(record, _object(blob_key="blob-1"))  # recording the object drops its blob intent
    snap = store.snapshot()
    assert snap.blob_intents == () and snap.blob_keys == frozenset({"blob-1"})
    # GC's second look: a recorded blob is never dead; an unrecorded one only with the intent it saw.
    assert not store.claim_dead_blob("blob-1", None) and not store.claim_dead_blob("blob-1", "me")
    store.begin_blob(BlobIntent(blob_key="blob-7", repository_uid=record.uid, owner=DEAD, started_at=0.0))
    assert not store.claim_dead_blob("blob-7", "someone else") and store.claim_dead_blob("blob-7", DEAD)
    assert store.claim_dead_blob("blob-never-seen", None)


# -- two connections racing ------------------------------------------------------------------
def _race(workers: list[Callable[[], _T]]) -> list[_T]:
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = workers[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def _race_round(store: MetadataStore, other: MetadataStore, round_: int) -> None:
    name, uid = f"race/r{round_}", f"{round_:032x}"
    record = _record(name, uid)
    store.begin_create(_intent(record, owner=DEAD))
    # Two recoveries take over the same dead intent: the compare-and-set lets exactly one through.
    claims = _race([lambda: store.claim_intent(uid, DEAD, "a"), lambda: other.claim_intent(uid, DEAD, "b")])
    assert sorted(claims) == [False, True]
    winner = "a" if claims[0] else "b"
    assert [i.owner for i in store.list_intents()] == [winner]
    ends = _race([lambda: store.end_intent(uid, winner), lambda: other.end_intent(uid, winner)])
    assert ends.count(True) == 1 and store.list_intents() == []
    # Two creations of one name: one intent recorded, the other told who holds the name.
    mine, theirs = _intent(record, owner="a"), _intent(attrs.evolve(record, uid="9" * 32), owner="b")
    held = _race([lambda: store.begin_create(mine), lambda: other.begin_create(theirs)])
    assert held.count(None) == 1 and len(store.list_intents()) == 1
    won = mine if held[0] is None else theirs
    assert held[1 if held[0] is None else 0] == won  # the loser is told the winner's intent
    assert other.finish_create(attrs.evolve(record, uid=won.uid), won.owner)
    live = store.get_repository(name)
    assert live is not None
    # Two pushes of one layer: the first writer wins and both are told the same record.
    pushes = [_object(blob_key=f"{name}-a"), _object(blob_key=f"{name}-b")]
    got = _race([lambda: store.put_object(live, pushes[0]), lambda: other.put_object(live, pushes[1])])
    assert got[0] == got[1] and got[0] in pushes
    assert store.list_objects(name, "layer") == [got[0]]


def test_two_connections_race_and_exactly_one_wins(store: MetadataStore, url: str) -> None:
    other = open_metadata(url)
    try:
        for round_ in range(15):
            _race_round(store, other, round_)
    finally:
        other.close()


# -- a registry end to end on each backend ----------------------------------------------------
def test_a_registry_creates_pushes_pulls_deletes_and_recovers(url: str, tmp_path: Path) -> None:
    kms = LocalKms(tmp_path / "kms.sqlite3", account=ACCOUNT, region=REGION)
    admin = kms.client(ROOT)
    wrapping, customer = admin.create_key().arn, admin.create_key().arn
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    metadata = create_metadata(url, account=ACCOUNT, region=REGION)
    ServiceKey.create_wrapped(metadata, admin, key_id=wrapping)

    def registry(store: MetadataStore) -> Registry:
        return Registry(kms=kms.client, store=blobs, metadata=store, account=ACCOUNT, region=REGION, audit=kms.audit)

    first = registry(metadata)
    first.create_repository("team/aes")
    first.create_repository("team/kms", encryption_configuration={"encryptionType": "KMS", "kmsKey": customer})
    pushed = {}
    for name in ("team/aes", "team/kms"):
        repo = first.repository(name)
        data = name.encode() * 5000
        push = repo.push_layer(data, digest=Digest.of(data))
        image = repo.put_image(build_manifest([push]), tag="latest")
        pushed[name] = (data, image)
    assert len(admin.list_grants(key_id=customer).grants) == 2
    first.close()

    # Another process (here: a second open of the same URL) sees everything and pulls it.
    second = registry(open_metadata(url))
    for name, (data, image) in pushed.items():
        repo = second.repository(name)
        assert repo.get_image(tag="latest").digest == image.digest
        assert repo.read_layer(Digest.of(data)) == data
    second.delete_repository("team/kms", force=True)
    assert [d.repository_name for d in second.describe_repositories()] == ["team/aes"]
    assert admin.list_grants(key_id=customer).grants == ()

    # A creation killed after its intent and one grant: recovery undoes it, grant and all.
    _half_created(second, admin, "team/half", customer, grants=1)
    report = second.recover()
    assert report.creations_undone == ("team/half",) and len(report.grants_retired) == 1 and report.clean
    assert admin.list_grants(key_id=customer).grants == () and second._core.metadata.list_intents() == []
    data, _ = pushed["team/aes"]
    assert second.repository("team/aes").read_layer(Digest.of(data)) == data  # untouched by recovery
    second.close()


# -- PostgreSQL only: where the schema version lives, and no password in any message ----------
def test_postgres_records_each_migration_and_refuses_a_newer_schema(postgres_url: str) -> None:
    import psycopg

    create_metadata(postgres_url, account=ACCOUNT, region=REGION).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(RegistryStateError, match=f"schema version {SCHEMA_VERSION + 1}"):
        open_metadata(postgres_url)


def test_postgres_messages_never_show_the_password(postgres_url: str) -> None:
    with_password = postgres_url.replace("ecrcrypt@", "ecrcrypt:s3cret-pw@")  # the test server trusts any
    with pytest.raises(RegistryStateError) as refused:
        open_metadata(with_password)  # no schema yet
    assert "s3cret-pw" not in str(refused.value) and "ecrcrypt@127.0.0.1" in str(refused.value)
    with create_metadata(with_password, account=ACCOUNT, region=REGION) as metadata:
        assert "s3cret-pw" not in repr(metadata) and "s3cret-pw" not in metadata.location
    unreachable = with_password.rsplit(":", 1)[0] + ":1/nowhere"  # nothing listens on port 1
    with pytest.raises(RegistryStateError) as failed:
        PostgresMetadata.open(unreachable, connect_timeout=1)
    assert "s3cret-pw" not in str(failed.value)


def test_a_persistent_store_without_its_wrapped_service_key_is_refused_not_given_a_new_one(
    store: MetadataStore, tmp_path: Path
) -> None:
    kms = LocalKms(tmp_path / "kms.sqlite3", account=ACCOUNT, region=REGION)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(RegistryStateError, match="records no KMS-wrapped service key") as refused:
        Registry(kms=kms.client, store=blobs, metadata=store, account=ACCOUNT, region=REGION)
    assert refused.value.path == (None if store.path is None else str(store.path))
    assert store.recorded(FINGERPRINT) is None and store.recorded(WRAPPED) is None  # nothing made in its place


def test_postgres_connections_killed_under_the_store_fail_one_call_and_then_heal(postgres_url: str) -> None:
    import psycopg

    with create_metadata(postgres_url, account=ACCOUNT, region=REGION) as store:
        record = _created(store, _record())
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # as a failover or a restart would
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(store.get_repository(record.name))
            except RegistryStateError:
                outcomes.append(None)  # the call on the dead connection fails as RegistryStateError
        assert outcomes[0] is None and outcomes[-1] == record  # and the pool replaces the connection
        assert store.put_tag(record, "t", "sha256:" + "0" * 64) is False
