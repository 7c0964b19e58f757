"""PostgreSQL: a write transaction's ``BEGIN`` travels in one pipeline with its first statement.

``PostgresMetadata._write`` saves the round trip of ``BEGIN ISOLATION LEVEL SERIALIZABLE``
(and, for a transaction that need not be durable, of ``SET LOCAL synchronous_commit = off``)
by sending them with the operation's first statement. These tests hold it to what the round
trips gave before: every statement of the operation runs in that one serializable
transaction, a failure anywhere (the first statement included) commits nothing and leaves the
connection usable, and an operation that runs no statement opens and commits nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr.metadata import MetadataConnection, defer_write
from ecrcrypt.ecr.metadata_postgres import PostgresMetadata
from ecrcrypt.errors import RegistryStateError

ACCOUNT, REGION = "111122223333", "us-east-1"


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresMetadata]:
    metadata = PostgresMetadata.create(postgres_url, account=ACCOUNT, region=REGION, pool_size=1)
    yield metadata
    metadata.close()


def _one(db: MetadataConnection, sql: str) -> Any:
    return db.execute(sql).fetchone()[0]


@pytest.mark.parametrize("durable", [True, False])
def test_every_statement_runs_in_one_serializable_transaction(store: PostgresMetadata, durable: bool) -> None:
    def op(db: MetadataConnection) -> tuple[Any, ...]:
        return (
            _one(db, "SELECT current_setting('transaction_isolation')"),
            _one(db, "SELECT current_setting('synchronous_commit')"),
            _one(db, "SELECT txid_current()"),
            _one(db, "SELECT txid_current()"),
        )

    isolation, synchronous, first, second = store._write(op, durable=durable)
    assert isolation == "serializable" and first == second
    assert synchronous == ("on" if durable else "off")
    again = store._write(op, durable=durable)
    assert again[2] != first  # the next operation is a transaction of its own
    with store._read() as db:  # and outside an operation: autocommit, the session's own settings
        assert _one(db, "SELECT current_setting('synchronous_commit')") == "on"


def test_a_failing_statement_commits_nothing_and_the_connection_serves_on(store: PostgresMetadata) -> None:
    def first_fails(db: MetadataConnection) -> None:
        db.execute("SELECT 1 / 0")

    def second_fails(db: MetadataConnection) -> None:
        db.execute("INSERT INTO registry VALUES (?, ?)", ("pipelined", "x"))
        db.execute("SELECT 1 / 0")

    for op in (first_fails, second_fails):
        with pytest.raises(RegistryStateError, match="DivisionByZero"):
            store._write(op)
        assert store.recorded("pipelined") is None
    assert store.record_once("pipelined", "y") == "y"  # the one pooled connection is healthy
    assert store.recorded("pipelined") == "y"


def test_an_operation_that_runs_no_statement_opens_and_commits_nothing(store: PostgresMetadata) -> None:
    from psycopg.pq import TransactionStatus

    assert store._write(lambda db: 42) == 42
    with store._connection() as conn:
        assert conn.info.transaction_status == TransactionStatus.IDLE
    assert store.record_once("after", "z") == "z"


# -- deferred writes (``defer_write``): sent with the next statement or the COMMIT -------------------
def test_deferred_writes_run_in_order_inside_the_transaction(store: PostgresMetadata) -> None:
    def op(db: MetadataConnection) -> tuple[Any, ...]:
        defer_write(db, "INSERT INTO registry VALUES (?, ?)", ("deferred-1", "a"))
        defer_write(db, "UPDATE registry SET v = ? WHERE k = ?", ("b", "deferred-1"))
        seen = _one(db, "SELECT v FROM registry WHERE k = 'deferred-1'")  # sent with the two before it
        defer_write(db, "INSERT INTO registry VALUES (?, ?)", ("deferred-2", "c"))  # sent with the COMMIT
        return seen, _one(db, "SELECT txid_current()")

    seen, _ = store._write(op)
    assert seen == "b"
    assert (store.recorded("deferred-1"), store.recorded("deferred-2")) == ("b", "c")


@pytest.mark.parametrize("where", ["with the next statement", "with the commit", "alone"])
def test_a_failing_deferred_write_commits_nothing_and_the_connection_serves_on(
    store: PostgresMetadata, where: str
) -> None:
    store.record_once("taken", "x")

    def op(db: MetadataConnection) -> None:
        if where != "alone":
            db.execute("INSERT INTO registry VALUES (?, ?)", ("before", "y"))
        defer_write(db, "INSERT INTO registry VALUES (?, ?)", ("taken", "again"))  # a primary key violation
        if where == "with the next statement":
            db.execute("SELECT 1")

    with pytest.raises(RegistryStateError, match="UniqueViolation"):
        store._write(op)
    assert store.recorded("before") is None and store.recorded("taken") == "x"
    assert store.record_once("after", "z") == "z"


def test_a_push_costs_four_round_trips_a_layer(postgres_url: str, tmp_path: Path) -> None:
    """What a push waits for on PostgreSQL: a layer is its repository and record read (one statement),
    its blob intent (BEGIN, INSERT and COMMIT in one pipeline), and its record (the first writer
    check with BEGIN, then the writes with the COMMIT). Counted, not timed: a change that makes a
    push wait for one more answer from the server fails here."""
    from ecrcrypt.digest import Digest
    from ecrcrypt.ecr.metadata_postgres import _PgConnection
    from ecrcrypt.ecr.registry import Registry
    from ecrcrypt.ecr.service_key import ServiceKey
    from ecrcrypt.store.memory import MemoryBlobStore
    from tests.ecr.support import local_kms

    kms = local_kms()
    metadata = PostgresMetadata.create(postgres_url, account=ACCOUNT, region=REGION)
    admin = kms.client(f"arn:aws:iam::{ACCOUNT}:root")
    ServiceKey.create_wrapped(metadata, admin, key_id=admin.create_key().arn)
    registry = Registry(kms=kms.client, store=MemoryBlobStore(), metadata=metadata, account=ACCOUNT, region=REGION)
    trips = 0
    execute, commit = _PgConnection.execute, _PgConnection.commit

    def counted_execute(self: _PgConnection, sql: str, parameters: Any = (), /) -> Any:
        nonlocal trips
        trips += 1
        return execute(self, sql, parameters)

    def counted_commit(self: _PgConnection) -> None:
        nonlocal trips
        trips += 1 if self.begun else 0  # a COMMIT is one more answer to wait for
        commit(self)

    try:
        registry.create_repository("app")
        repo = registry.repository("app")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_PgConnection, "execute", counted_execute)
            mp.setattr(_PgConnection, "commit", counted_commit)
            for i in range(3):
                data = f"layer {i}".encode() * 100
                trips = 0
                repo.push_layer(data, digest=Digest.of(data))
                assert trips == 4
    finally:
        registry.close()
        kms.close()
