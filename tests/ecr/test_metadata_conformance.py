"""The registry's metadata behaves the same on SQLite and on PostgreSQL (issue 14).

Every test here runs once per backend, on a store made through ``create_metadata(url)``:
a SQLite file in the test's directory, or a fresh database on the PostgreSQL server the
tests start themselves (tests/pg_server.py; skipped only when PostgreSQL cannot be had).
It covers every method of the ``MetadataStore`` protocol, the compare-and-set of intents
and the first-writer-wins of objects under two connections racing, and a registry end to
end (create, push, pull, delete, recover) with the local KMS and the filesystem store.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrcrypt.digest import Digest
from ecrcrypt.ecr import records
from ecrcrypt.ecr.metadata import (
    BlobIntent,
    ImageLookup,
    ObjectLookup,
    ObjectRecord,
    RepositoryGrant,
    RepositoryIntent,
    RepositoryRecord,
)
from ecrcrypt.ecr.metadata_postgres import MIGRATIONS_TABLE, PostgresMetadata
from ecrcrypt.ecr.metadata_schema import SCHEMA_VERSION, steps
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.metadata_url import create_metadata, open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.service_key import FINGERPRINT, WRAPPED, ServiceKey
from ecrcrypt.ecr.types import build_manifest
from ecrcrypt.ecr.uploads import LayerUploads
from ecrcrypt.errors import (
    ImageNotFoundError,
    InvalidParameterError,
    LayersNotFoundError,
    RegistryStateError,
    RepositoryNotFoundError,
    ValidationError,
)
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.store.filesystem import FilesystemBlobStore
from tests.ecr.test_recovery import _half_created

ACCOUNT, REGION = "111122223333", "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEAD = "elsewhere|boot|pid:[1]|1|1"  # an intent owner on another host, long past the grace period


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


def test_find_object_and_find_image_read_liveness_with_what_was_asked(store: MetadataStore) -> None:
    """The pull path's one-statement reads: liveness of that very repository (its uid) and the record."""
    record = _created(store, _record())
    layer, manifest = _object(), _object("sha256:" + "2" * 64, kind="manifest", blob_key="blob-m")
    other_manifest = _object("sha256:" + "3" * 64, kind="manifest", blob_key="blob-n")
    for obj in (layer, manifest, other_manifest):
        store.put_object(record, obj)
    for tag, digest in (("v1", manifest.digest), ("latest", manifest.digest), ("old", other_manifest.digest)):
        assert store.put_tag(record, tag, digest)

    assert store.find_object(record, "layer", layer.digest) == ObjectLookup(live=True, record=layer)
    assert store.find_object(record, "manifest", layer.digest) == ObjectLookup(live=True, record=None)
    assert store.find_object(record, "layer", "sha256:" + "9" * 64) == ObjectLookup(live=True, record=None)
    by_tag = store.find_image(record, tag="v1")
    assert by_tag == ImageLookup(live=True, digest=manifest.digest, record=manifest, tags=("latest", "v1"))
    assert store.find_image(record, digest=manifest.digest) == by_tag
    assert store.find_image(record, tag="old") == ImageLookup(
        live=True, digest=other_manifest.digest, record=other_manifest, tags=("old",)
    )
    assert store.find_image(record, tag="nope") == ImageLookup(live=True)
    assert store.find_image(record, digest=layer.digest) == ImageLookup(live=True, digest=layer.digest)
    with pytest.raises(ValidationError):
        store.find_image(record, tag="v1", digest=manifest.digest)
    with pytest.raises(ValidationError):
        store.find_image(record)

    # Another repository of the same name (deleted and re-created): the old handle's reads find it gone,
    # even where the new one holds an object of the same digest (rows are keyed by name, not uid).
    assert store.begin_delete(record, RepositoryIntent.deleting(record, owner="me", started_at=1.0))
    assert store.find_object(record, "layer", layer.digest) == ObjectLookup(live=False)
    reborn = _created(store, _record(uid="e" * 32))
    store.put_object(reborn, layer)
    store.put_object(reborn, manifest)
    assert store.put_tag(reborn, "v1", manifest.digest)
    assert store.find_object(record, "layer", layer.digest) == ObjectLookup(live=False)
    assert store.find_image(record, tag="v1") == ImageLookup(live=False)
    assert store.find_image(record, digest=manifest.digest) == ImageLookup(live=False)
    assert store.find_object(reborn, "layer", layer.digest) == ObjectLookup(live=True, record=layer)
    never = _record("team/never", "f" * 32)
    assert store.find_object(never, "layer", layer.digest) == ObjectLookup(live=False)
    assert store.find_image(never, tag="v1") == ImageLookup(live=False)


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
def _race(workers: list[Callable[[], Any]]) -> list[Any]:
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


def _rounds(store: MetadataStore, url: str, race: Callable[[MetadataStore, MetadataStore, int], None], n: int) -> None:
    """``n`` rounds of ``race`` between ``store`` and a second connection to the same database."""
    other = open_metadata(url)
    try:
        for round_ in range(n):
            race(store, other, round_)
    finally:
        other.close()


def test_two_connections_race_and_exactly_one_wins(store: MetadataStore, url: str) -> None:
    _rounds(store, url, _race_round, 15)


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


# -- the image API's and the uploads' tables (schema step 4) ----------------------------------
_M1, _M2 = "sha256:" + "2" * 64, "sha256:" + "4" * 64


def _with_manifests(store: MetadataStore, record: RepositoryRecord, *digests: str) -> None:
    for n, digest in enumerate(digests):
        store.put_object(record, _object(digest, kind="manifest", blob_key=f"blob-m{n}"))
        records.put_manifest(
            store,
            record,
            records.ManifestRow(
                digest=digest,
                media_type="application/vnd.oci.image.manifest.v1+json",
                artifact_media_type=None,
                subject=_M1 if digest != _M1 else None,
                size_in_bytes=5_000_000_000,
            ),
        )


def test_manifests_tags_and_tag_mutability(store: MetadataStore) -> None:
    record = _created(store, _record())
    ghost = attrs.evolve(record, uid="d" * 32)
    assert records.put_tag(store, record, "v1", _M1, immutable=False) == records.TagWrite.NO_MANIFEST
    _with_manifests(store, record, _M1, _M2)
    got = records.get_manifest(store, record, _M2)
    assert got is not None and got.subject == _M1 and got.size_in_bytes == 5_000_000_000  # past 32 bits
    assert records.get_manifest(store, ghost, _M2) is None  # keyed by the repository's uid
    assert [(row.digest, size) for row, size in records.referrers(store, record, _M1)] == [(_M2, 5_000_000_000)]
    assert records.get_tag_mutability(store, record) == "MUTABLE"
    assert (
        records.set_tag_mutability(store, record, "IMMUTABLE")
        and records.get_tag_mutability(store, record) == "IMMUTABLE"
    )
    assert not records.set_tag_mutability(store, ghost, "MUTABLE")
    assert records.put_tag(store, record, "v1", _M1, immutable=True) == records.TagWrite.DONE
    assert records.put_tag(store, record, "v1", _M1, immutable=True) == records.TagWrite.DONE  # same image
    assert records.put_tag(store, record, "v1", _M2, immutable=True) == records.TagWrite.IMMUTABLE
    assert records.put_tag(store, record, "v1", _M2, immutable=False) == records.TagWrite.DONE  # moved
    assert records.put_tag(store, ghost, "v2", _M2, immutable=False) == records.TagWrite.GONE
    assert records.list_tags(store, record) == [("v1", _M2)]
    assert records.untag(store, record, "v1") == _M2 and records.untag(store, record, "v1") is None
    records.put_tag(store, record, "a", _M2, immutable=False)
    records.put_tag(store, record, "b", _M2, immutable=False)
    assert records.delete_image(store, record, _M2) == (["a", "b"], "blob-m1")
    assert records.delete_image(store, record, _M2) is None
    assert records.list_tags(store, record) == [] and records.get_manifest(store, record, _M2) is None
    assert store.get_object(record.name, "manifest", _M2) is None


def test_uploads_leases_parts_and_tokens(store: MetadataStore) -> None:
    record = _created(store, _record())
    assert not records.insert_upload(store, attrs.evolve(record, uid="d" * 32), "u0", "{}", 1.0)
    assert records.insert_upload(store, record, "u1", '{"s": 0}', 10.0)
    row = records.claim_upload(store, record, "u1", "lease-a", at=11.0, until=41.0)
    assert isinstance(row, records.UploadRow) and row.received == 0 and row.created_at == 10.0
    assert records.claim_upload(store, record, "u1", "lease-b", at=12.0, until=42.0) == "busy"
    assert records.claim_upload(store, record, "nope", "lease-b", at=12.0, until=42.0) == "unknown"
    assert records.renew_lease(store, "u1", "lease-a", 60.0) and not records.renew_lease(store, "u1", "lease-b", 60.0)
    store.begin_blob(BlobIntent(blob_key="part-1", repository_uid=record.uid, owner="me", started_at=12.0))
    assert not records.save_upload(store, "u1", "lease-b", 6_000_000_000, '{"s": 1}', 13.0, "part-1")
    assert records.save_upload(store, "u1", "lease-a", 6_000_000_000, '{"s": 1}', 13.0, "part-1")
    snap = store.snapshot()
    assert "part-1" in snap.blob_keys and snap.blob_intents == ()  # the part is kept by its upload now
    saved = records.get_upload(store, "u1")
    assert saved is not None and saved.received == 6_000_000_000 and saved.lease is None and saved.state == '{"s": 1}'
    assert records.claim_upload(store, record, "u1", "lease-b", at=70.0, until=100.0) != "busy"  # expired
    records.release_upload(store, "u1", "lease-b")
    assert [u.upload_id for u in records.stale_uploads(store, before=20.0, at=200.0)] == ["u1"]
    assert records.stale_uploads(store, before=5.0, at=200.0) == []
    records.delete_upload(store, "u1")
    assert records.get_upload(store, "u1") is None and "part-1" not in store.snapshot().blob_keys
    records.insert_token(store, "h1", ROOT, expires_at=100.0, at=1.0)
    assert records.get_token(store, "h1") == (ROOT, 100.0)
    records.insert_token(store, "h2", ROOT, expires_at=300.0, at=150.0)  # expired tokens go then
    assert records.get_token(store, "h1") is None and records.get_token(store, "h2") == (ROOT, 300.0)


def test_tag_updates_and_image_deletes_are_atomic_under_two_racing_connections(store: MetadataStore, url: str) -> None:
    other = open_metadata(url)
    try:
        record = _created(store, _record())
        _with_manifests(store, record, _M1, _M2)
        for round_ in range(10):
            tag = f"t{round_}"
            # An immutable tag pushed at two images at once: exactly one wins, the other is refused.
            outcomes = _race(
                [
                    functools.partial(records.put_tag, store, record, tag, _M1, immutable=True),
                    functools.partial(records.put_tag, other, record, tag, _M2, immutable=True),
                ]
            )
            assert sorted(outcomes) == [records.TagWrite.DONE, records.TagWrite.IMMUTABLE]
            assert store.get_tag(record.name, tag) == (_M1 if outcomes[0] == records.TagWrite.DONE else _M2)
        digest = f"sha256:{'5' * 64}"
        for round_ in range(10):
            _with_manifests(store, record, digest)
            records.put_tag(store, record, "keep", digest, immutable=False)
            # Two deletes of one image: one deletes it with its tags, the other finds nothing.
            gone = _race(
                [
                    lambda: records.delete_image(store, record, digest),
                    lambda: records.delete_image(other, record, digest),
                ]
            )
            assert sorted(gone, key=lambda g: g is None) == [(["keep"], "blob-m0"), None]
            # A tag written while its image is deleted: never a tag left pointing at nothing.
            _with_manifests(store, record, digest)
            wrote, _ = _race(
                [
                    functools.partial(records.put_tag, store, record, f"late{round_}", digest, immutable=False),
                    lambda: records.delete_image(other, record, digest),
                ]
            )
            assert wrote in (records.TagWrite.DONE, records.TagWrite.NO_MANIFEST)
            assert store.get_tag(record.name, f"late{round_}") is None  # deleted with the image, or never written
            assert store.get_object(record.name, "manifest", digest) is None
    finally:
        other.close()


@pytest.fixture
def hosts(url: str, tmp_path: Path) -> Iterator[tuple[Registry, Registry]]:
    """Two registries on one metadata URL and one blob store, as two hosts of a fleet."""
    kms = LocalKms(tmp_path / "kms.sqlite3", account=ACCOUNT, region=REGION)
    admin = kms.client(ROOT)
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    metadata = create_metadata(url, account=ACCOUNT, region=REGION)
    ServiceKey.create_wrapped(metadata, admin, key_id=admin.create_key().arn)
    one, two = (
        Registry(kms=kms.client, store=blobs, metadata=m, account=ACCOUNT, region=REGION, audit=kms.audit)
        for m in (metadata, open_metadata(url))
    )
    yield one, two
    one.close()
    two.close()
    kms.close()


def test_a_chunked_upload_started_on_one_host_finishes_on_another(hosts: tuple[Registry, Registry]) -> None:
    one, two = hosts
    one.create_repository("team/up")
    data = bytes(range(256)) * 4096
    started = LayerUploads(one.repository("team/up"))
    upload_id = started.initiate_layer_upload().upload_id
    started.upload_layer_part(upload_id, data[:300_000], part_first_byte=0)
    finishing = LayerUploads(two.repository("team/up"))  # another host: it knows the upload from the metadata
    assert finishing.describe_upload(upload_id).last_byte_received == 299_999
    finishing.upload_layer_part(upload_id, data[300_000:], part_first_byte=300_000)
    pushed = finishing.complete_layer_upload(upload_id, [Digest.of(data)])
    assert pushed.digest == Digest.of(data)
    assert one.repository("team/up").read_layer(Digest.of(data)) == data  # and the first host reads it
    assert one.collect_garbage().deleted == ()  # nothing of the upload is left for collection to find


def test_repository_policies_are_shared_by_every_host(hosts: tuple[Registry, Registry]) -> None:
    one, two = hosts
    one.create_repository("team/pol")
    statement = {"Sid": "r", "Effect": "Allow", "Principal": "*", "Action": "ecr:ListImages"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    one.set_repository_policy("team/pol", policy)
    assert json.loads(two.get_repository_policy("team/pol").policy_text) == json.loads(policy)
    two.delete_repository("team/pol", force=True)
    assert [d.repository_name for d in one.describe_repositories()] == []
    assert one._core.metadata.get_repository_policy("team/pol") is None


def test_gc_never_deletes_a_blob_a_push_on_another_host_is_about_to_reference(hosts: tuple[Registry, Registry]) -> None:
    one, two = hosts
    one.create_repository("team/gc")
    pushing, collecting = one.repository("team/gc"), two
    stop = threading.Event()
    pushed: list[bytes] = []

    def push() -> None:
        for n in range(25):
            data = f"layer {n} ".encode() * 1000
            pushing.push_layer(data, digest=Digest.of(data))
            pushed.append(data)
        stop.set()

    def collect() -> int:
        runs = 0
        while not stop.is_set() or runs == 0:
            collecting.collect_garbage(grace=0.0)  # every intent's owner is judged on liveness alone
            runs += 1
        return runs

    runs = _race([push, collect])[1]
    assert runs >= 1 and len(pushed) == 25
    for data in pushed:  # every acknowledged push is readable from either host
        assert two.repository("team/gc").read_layer(Digest.of(data)) == data
    # The second look, across hosts: a blob recorded on one host after the other's snapshot is not dead.
    store, other = one._core.metadata, two._core.metadata
    record = store.get_repository("team/gc")
    assert record is not None
    other.begin_blob(BlobIntent(blob_key="late", repository_uid=record.uid, owner=DEAD, started_at=0.0))
    snap = other.snapshot()
    assert "late" not in snap.blob_keys
    store.put_object(record, _object("sha256:" + "6" * 64, blob_key="late"))  # recorded since the snapshot
    assert not other.claim_dead_blob("late", DEAD)


def _delete_racing_lookups(store: MetadataStore, other: MetadataStore, round_: int) -> None:
    record = _created(store, _record(f"race/pull{round_}", f"{round_ + 1:032x}"))
    layer, manifest = _object(), _object("sha256:" + "2" * 64, kind="manifest", blob_key="blob-m")
    store.put_object(record, layer)
    store.put_object(record, manifest)
    assert store.put_tag(record, "latest", manifest.digest)
    deleted = threading.Event()
    whole_image = ImageLookup(live=True, digest=manifest.digest, record=manifest, tags=("latest",))

    def pull() -> tuple[int, int]:
        seen = [0, 0]  # lookups that found the repository live, gone
        while True:
            done = deleted.is_set()  # read before the lookups: once set, they must find it gone
            found = (store.find_image(record, tag="latest"), store.find_object(record, "layer", layer.digest))
            # Each lookup finds the repository whole or gone, never live without what it holds.
            assert found[0] in (whole_image, ImageLookup(live=False)), found[0]
            assert found[1] in (ObjectLookup(live=True, record=layer), ObjectLookup(live=False)), found[1]
            for lookup in found:
                seen[0 if lookup.live else 1] += 1
                assert not (done and lookup.live)
            if done:
                return seen[0], seen[1]

    def delete() -> bool:
        try:
            return other.begin_delete(record, RepositoryIntent.deleting(record, owner="me", started_at=1.0))
        finally:
            deleted.set()

    seen, removed = _race([pull, delete])
    assert removed and seen[1] >= 2  # the lookups after the deletion found it gone


def test_a_delete_racing_lookups_is_seen_whole_or_not_at_all(store: MetadataStore, url: str) -> None:
    """The pull path's one-statement reads under a concurrent deletion on another connection."""
    _rounds(store, url, _delete_racing_lookups, 10)


def test_a_repository_deleted_on_one_host_while_another_pulls_refuses_the_pulls(
    hosts: tuple[Registry, Registry],
) -> None:
    """Pulls racing a deletion: the image whole, or the repository gone (RepositoryNotFoundError); never
    a "does not exist in the repository" for a repository that was live. A pull whose record was read
    just before the deletion committed may find its blob deleted since: the blob store's error."""
    one, two = hosts
    outcomes: dict[str, int] = {}
    for round_ in range(4):
        name = f"team/race{round_}"
        one.create_repository(name)
        repo = one.repository(name)
        blobs = [f"{name} blob {n} ".encode() * (200 * (n + 1)) for n in range(3)]
        pushed = [repo.push_layer(b, digest=Digest.of(b)) for b in blobs]
        repo.put_image(build_manifest(pushed[1:], config=pushed[0]), tag="latest")
        deleted = threading.Event()

        def pull(repo: Any = repo, blobs: list[bytes] = blobs, deleted: threading.Event = deleted) -> None:
            while True:
                done = deleted.is_set()
                try:
                    image = repo.get_image(tag="latest")
                    assert [repo.read_layer(d) for d in image.layer_digests] == blobs
                    outcome = "whole"
                except RepositoryNotFoundError:
                    outcome = "gone"
                except LayersNotFoundError as exc:
                    assert "missing from the blob store" in str(exc), exc
                    outcome = "blob deleted"
                assert not done or outcome == "gone", outcome
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if done:
                    return

        def delete(name: str = name, deleted: threading.Event = deleted) -> None:
            try:
                two.delete_repository(name, force=True)
            finally:
                deleted.set()

        _race([pull, delete])
    assert outcomes.get("gone", 0) >= 4, outcomes


def test_pull_errors_keep_their_kind_message_and_order(hosts: tuple[Registry, Registry]) -> None:
    """The one-read pull path raises what the separate reads raised: an ill-formed argument after the
    repository's liveness, a missing tag / manifest / layer by its own error and message."""
    one, two = hosts
    one.create_repository("team/errors")
    repo = one.repository("team/errors")
    data = b"a layer " * 100
    image = repo.put_image(build_manifest([repo.push_layer(data, digest=Digest.of(data))]), tag="v1")
    absent = Digest.of(b"absent")
    with pytest.raises(ImageNotFoundError, match=r"^The image with tag 'nope' does not exist in 'team/errors'$"):
        repo.get_image(tag="nope")
    with pytest.raises(ImageNotFoundError, match=rf"^The image with digest {absent} does not exist in 'team/errors'$"):
        repo.get_image(digest=absent)
    message = rf"^The layer {absent} does not exist in the repository 'team/errors'$"
    for read in (repo.read_layer, repo.open_layer, repo.layer_size, lambda d: repo.read_layer_range(d, 0, 1)):
        with pytest.raises(LayersNotFoundError, match=message):
            read(absent)
        with pytest.raises(ValidationError):
            read("sha256:not-a-digest")
    with pytest.raises(InvalidParameterError):
        repo.get_image(tag="v1", digest=image.digest)
    with pytest.raises(InvalidParameterError):
        repo.get_image(tag="-bad")
    assert repo.get_image(digest=image.digest).tags == ("v1",)

    two.delete_repository("team/errors", force=True)  # on the other host: this handle is stale
    gone = r"^The repository with name 'team/errors' does not exist in the registry with id '111122223333'$"
    for call in (
        lambda: repo.get_image(tag="v1"),
        lambda: repo.get_image(digest=image.digest),
        lambda: repo.get_image(tag="-bad"),
        lambda: repo.get_image(),
        lambda: repo.read_layer(Digest.of(data)),
        lambda: repo.read_layer("sha256:not-a-digest"),
        lambda: repo.layer_size(Digest.of(data)),
        lambda: repo.read_layer_range(Digest.of(data), 0, 1),
    ):
        with pytest.raises(RepositoryNotFoundError, match=gone):
            call()


def test_a_pull_reads_the_metadata_once_for_the_image_and_once_per_blob(
    hosts: tuple[Registry, Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read is a round trip on PostgreSQL: a pull of a config and three layers makes five, and no write."""
    one, _ = hosts
    one.create_repository("team/trips")
    repo = one.repository("team/trips")
    blobs = [bytes([n]) * 1000 * (n + 1) for n in range(4)]
    pushed = [repo.push_layer(b, digest=Digest.of(b)) for b in blobs]
    repo.put_image(build_manifest(pushed[1:], config=pushed[0]), tag="latest")
    metadata = one._core.metadata
    calls = {"read": 0, "write": 0}
    read, write = metadata._read, metadata._write  # type: ignore[attr-defined]

    def counted(kind: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[kind] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(metadata, "_read", counted("read", read))
    monkeypatch.setattr(metadata, "_write", counted("write", write))
    image = repo.get_image(tag="latest")
    assert [repo.read_layer(d) for d in image.layer_digests] == blobs
    assert calls == {"read": 1 + len(blobs), "write": 0}


def test_postgres_schema_3_is_migrated_forward_at_open_with_its_rows(postgres_url: str) -> None:
    """A database at step 3 (before the image API's tables) gains step 4 at open, keeping every row."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for number, step in enumerate(steps("postgresql")[:3], start=1):
            for statement in step:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (%s, 0)", (number,))
        for key, value in (("store_id", "s" * 32), ("account", ACCOUNT), ("region", REGION)):
            conn.execute("INSERT INTO registry VALUES (%s, %s)", (key, value))
    with open_metadata(postgres_url) as metadata:
        assert metadata.schema_version == SCHEMA_VERSION and metadata.store_id == "s" * 32
        record = _created(metadata, _record())
        _with_manifests(metadata, record, _M1)
        assert records.put_tag(metadata, record, "v1", _M1, immutable=True) == records.TagWrite.DONE
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        versions = [r[0] for r in conn.execute(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


# -- find_image with the image API's manifest row (one statement per OCI pull request) ---------------
_INDEX = "application/vnd.oci.image.index.v1+json"


def _row(digest: str, media_type: str = _INDEX, *, size: int = 7, subject: str | None = None) -> records.ManifestRow:
    return records.ManifestRow(
        digest=digest,
        media_type=media_type,
        artifact_media_type="application/x.art",
        subject=subject,
        size_in_bytes=size,
    )


def _manifest_fields(row: records.ManifestRow | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "media_type": row.media_type,
        "artifact_media_type": row.artifact_media_type,
        "subject": row.subject,
        "size_in_bytes": row.size_in_bytes,
    }


def _separate_reads(store: MetadataStore, record: RepositoryRecord, *, tag: str | None, digest: str | None) -> Any:
    """What find_image answers, read the way the image API read it before: one statement per fact."""
    current = store.get_repository(record.name)
    if current is None or current.uid != record.uid:
        return ImageLookup(live=False)
    found = store.get_tag(record.name, tag) if tag is not None else digest
    if found is None:
        return ImageLookup(live=True)
    obj = store.get_object(record.name, "manifest", found)
    if obj is None:
        return ImageLookup(live=True, digest=found)
    return ImageLookup(
        live=True,
        digest=found,
        record=obj,
        tags=tuple(store.tags_of(record.name, found)),
        **_manifest_fields(records.get_manifest(store, record, found)),
    )


def test_find_image_reads_the_manifest_row_of_that_very_repository(store: MetadataStore) -> None:
    record = _created(store, _record())
    with_row, without_row = _object(_M1, kind="manifest", blob_key="m1"), _object(_M2, kind="manifest", blob_key="m2")
    store.put_object(record, with_row)
    store.put_object(record, without_row)  # stored before the image API recorded media types
    records.put_manifest(store, record, _row(_M1, size=5_000_000_000, subject=_M2))
    assert store.put_tag(record, "v1", _M1) and store.put_tag(record, "old", _M2)
    expected = ImageLookup(
        live=True,
        digest=_M1,
        record=with_row,
        tags=("v1",),
        media_type=_INDEX,
        artifact_media_type="application/x.art",
        subject=_M2,
        size_in_bytes=5_000_000_000,  # past 32 bits on both backends
    )
    assert store.find_image(record, tag="v1") == expected == store.find_image(record, digest=_M1)
    assert store.find_image(record, tag="old") == ImageLookup(live=True, digest=_M2, record=without_row, tags=("old",))
    # A row without its manifest object (the object's row is what a deletion removes) does not show.
    records.put_manifest(store, record, _row("sha256:" + "9" * 64))
    assert store.find_image(record, digest="sha256:" + "9" * 64) == ImageLookup(live=True, digest="sha256:" + "9" * 64)
    for tag, digest in (("v1", None), (None, _M1), ("old", None)):
        assert store.find_image(record, tag=tag, digest=digest) == _separate_reads(
            store, record, tag=tag, digest=digest
        )

    # Deleted and re-created under the same name, holding the same manifest: the new repository has no
    # row of its own yet, and the old repository's row (keyed by the old uid, still in the table) must
    # not show through; the old handle finds its repository gone.
    assert store.begin_delete(record, RepositoryIntent.deleting(record, owner="me", started_at=1.0))
    assert store.list_intents()[0].uid == record.uid and store.end_intent(record.uid, "me")
    reborn = _created(store, _record(uid="e" * 32))
    store.put_object(reborn, with_row)
    assert store.put_tag(reborn, "v1", _M1)
    assert records.get_manifest(store, record, _M1) is not None  # the old row is there, unreachable
    assert store.find_image(reborn, tag="v1") == ImageLookup(live=True, digest=_M1, record=with_row, tags=("v1",))
    assert store.find_image(record, tag="v1") == ImageLookup(live=False)
    records.put_manifest(store, reborn, _row(_M1, media_type="application/vnd.oci.image.manifest.v1+json", size=3))
    got = store.find_image(reborn, digest=_M1)
    assert (got.media_type, got.size_in_bytes, got.subject) == ("application/vnd.oci.image.manifest.v1+json", 3, None)


def test_a_tag_moved_between_two_lookups_gives_each_image_whole(store: MetadataStore) -> None:
    record = _created(store, _record())
    one, two = _object(_M1, kind="manifest", blob_key="m1"), _object(_M2, kind="manifest", blob_key="m2")
    for obj, media_type in ((one, _INDEX), (two, "application/vnd.docker.distribution.manifest.v2+json")):
        store.put_object(record, obj)
        records.put_manifest(store, record, _row(obj.digest, media_type, size=len(media_type)))
    assert store.put_tag(record, "latest", _M1) and store.put_tag(record, "stable", _M2)
    before = store.find_image(record, tag="latest")
    assert store.put_tag(record, "latest", _M2)  # moved between the two reads
    after = store.find_image(record, tag="latest")
    assert (before.digest, before.record, before.tags, before.media_type) == (_M1, one, ("latest",), _INDEX)
    docker = "application/vnd.docker.distribution.manifest.v2+json"
    assert (after.digest, after.record, after.tags, after.media_type) == (_M2, two, ("latest", "stable"), docker)
    assert before.size_in_bytes == len(_INDEX) and after.size_in_bytes == len(docker)
    # The manifest the tag left keeps its own row and no tags.
    assert store.find_image(record, digest=_M1) == attrs.evolve(before, tags=())


_DIGESTS = (_M1, _M2, "sha256:" + "5" * 64)
_EXAMPLES = itertools.count()
_TAGS = ("a", "b")
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from(_DIGESTS), st.booleans()),  # with its manifest row or not
        st.tuples(st.just("tag"), st.sampled_from(_TAGS), st.sampled_from(_DIGESTS)),
        st.tuples(st.just("untag"), st.sampled_from(_TAGS)),
        st.tuples(st.just("delete"), st.sampled_from(_DIGESTS)),
        st.tuples(st.just("recreate")),  # the repository deleted and re-created under its name
    ),
    max_size=14,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_find_image_answers_what_the_separate_reads_answer_when_nothing_interleaves(
    store: MetadataStore, ops: list[tuple[Any, ...]]
) -> None:
    """For any history of pushes, tags, untags, image deletions and re-creations, the one-statement
    lookup of every handle (old ones included), tag and digest equals the separate reads' answer."""
    number = next(_EXAMPLES)  # every example its own repository (name and uids)
    name = f"prop/{number}"
    handles = [_created(store, _record(name, f"{number:016x}{0:016x}"))]
    for op in ops:
        current = handles[-1]
        if op[0] == "push":
            store.put_object(current, _object(op[1], kind="manifest", blob_key=f"{current.uid}/{op[1]}"))
            if op[2]:
                records.put_manifest(store, current, _row(op[1], size=len(handles)))
        elif op[0] == "tag":
            store.put_tag(current, op[1], op[2])
        elif op[0] == "untag":
            records.untag(store, current, op[1])
        elif op[0] == "delete":
            records.delete_image(store, current, op[1])
        else:
            assert store.begin_delete(current, RepositoryIntent.deleting(current, owner="me", started_at=1.0))
            assert store.end_intent(current.uid, "me")
            handles.append(_created(store, _record(name, f"{number:016x}{len(handles):016x}")))
    for handle in handles:
        for tag in _TAGS:
            assert store.find_image(handle, tag=tag) == _separate_reads(store, handle, tag=tag, digest=None)
        for digest in _DIGESTS:
            assert store.find_image(handle, digest=digest) == _separate_reads(store, handle, tag=None, digest=digest)
    current = handles[-1]
    assert store.begin_delete(current, RepositoryIntent.deleting(current, owner="me", started_at=1.0))
    assert store.end_intent(current.uid, "me")
