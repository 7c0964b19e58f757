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
from typing import Any

import pytest

from ecrcrypt.ecr.metadata import MetadataConnection
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
