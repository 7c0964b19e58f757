"""The registry's metadata on PostgreSQL, so several registry hosts share one state.

The same operations as the SQLite default (``ecr.metadata.MetadataOperations``: one text
of every transaction for both), over psycopg 3 and a ``psycopg_pool`` connection pool.
psycopg is an optional dependency (the ``postgres`` extra) and is imported only when a
:class:`PostgresMetadata` is made, so ``import ecrcrypt`` never loads it.

Transactions: SQLite serializes writers (``BEGIN IMMEDIATE``); here every writing
transaction runs at ``SERIALIZABLE`` and is re-run from the start when PostgreSQL reports a
serialization failure or a deadlock, so each one behaves as if it ran alone -- the same
guarantee, with hosts writing in parallel where they do not touch the same rows. An
operation therefore re-reads everything it decides on (liveness, first-writer-wins,
intents' compare-and-set) inside its transaction; nothing it computed before is trusted.
``BEGIN`` goes to the server in one pipeline with the operation's first statement, and the
writes whose results an operation never reads (``MetadataConnection.defer``) in one pipeline
with its next statement or its ``COMMIT``: a transaction costs a round trip per statement whose
answer it waits for, plus one (the server runs pipelined statements in order, so nothing else
changes; a failure among them fails the transaction before its commit).
A transaction ``durable=False`` (blob intents) commits with ``synchronous_commit = off``:
atomic and visible at once, only a server crash may lose its last moments, as SQLite's
``synchronous=NORMAL``.

Schema: the steps of ``ecr.metadata_schema`` rendered for PostgreSQL, each applied step
recorded as a row of ``ecrcrypt_schema_migrations`` (version, applied_at), all pending steps
in one transaction under an advisory lock so hosts starting together migrate once. As with
the SQLite file, only :meth:`PostgresMetadata.create` makes the schema: :meth:`open` refuses
a database without it (``RegistryStateError``), because an empty database in place of a
lost one would forget every repository while their grants and blobs live on.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ecrcrypt.arns import AccountId, Region
from ecrcrypt.ecr.metadata import MetadataConnection, MetadataOperations
from ecrcrypt.ecr.metadata_schema import SCHEMA_VERSION, steps
from ecrcrypt.errors import RegistryStateError

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["MIGRATIONS_TABLE", "PostgresMetadata"]

MIGRATIONS_TABLE = "ecrcrypt_schema_migrations"
# pg_advisory_xact_lock key of the migration (any constant; "ecrcrypt" in ASCII).
_MIGRATION_LOCK = 0x6563726372797074
# Re-runs of a transaction that keeps losing serialization races before giving up.
_MAX_ATTEMPTS = 64
_NOT_DURABLE = "SET LOCAL synchronous_commit = off"

_T = TypeVar("_T")


class _PgConnection:
    """A psycopg connection that takes the shared ``?``-placeholder statements.

    ``opening`` are statements (``BEGIN ...``) sent in one pipeline with the first statement
    the operation runs, so opening a transaction costs no round trip of its own: the server
    runs them in order exactly as if each had been sent alone, and the first statement's
    results (rows, ``rowcount``) are in its cursor when :meth:`execute` returns.
    """

    _texts: dict[str, str] = {}  # noqa: RUF012 -- a cache of translations, shared on purpose

    def __init__(self, conn: psycopg.Connection[Any], opening: Sequence[str] = ()) -> None:
        self._conn = conn
        self._opening = tuple(opening)
        self._deferred: list[tuple[str, Sequence[Any]]] = []

    @property
    def begun(self) -> bool:
        """Whether the operation ran or deferred a statement (then :meth:`commit` sends a ``COMMIT``)."""
        return not self._opening or bool(self._deferred)

    def defer(self, sql: str, parameters: Sequence[Any] = (), /) -> None:
        """A write whose result the operation never reads: sent in one pipeline with the next
        statement, or with the ``COMMIT`` (:meth:`commit`). The server runs everything in order,
        as if each had been sent alone; a failure of it fails the transaction there, before the
        commit, and is what the caller sees (a serialization failure is re-run as any other)."""
        self._deferred.append((self._sql(sql), tuple(parameters)))

    def _send_pending(self) -> None:
        """The opening and the deferred writes, into the pipeline the caller holds open. Nothing sent
        in a pipeline is prepared (``prepare=False``, here and for the statement that ends it): a
        pipeline that fails midway skips the rest, and psycopg could then count as prepared a
        statement the server never prepared (it did: "prepared statement _pg3_0 does not exist"
        under racing transactions, reproduced by ``tests/ecr/test_metadata_conformance.py``'s racing
        connections). Statements sent alone are still prepared as psycopg decides."""
        opening, self._opening = self._opening, ()
        for statement in opening:
            self._conn.execute(statement, prepare=False)
        deferred, self._deferred = self._deferred, []
        for sql, parameters in deferred:
            self._conn.execute(sql, parameters, prepare=False)

    def commit(self) -> None:
        """End the transaction: ``COMMIT`` in one pipeline with the writes still deferred (and the
        opening, if the operation sent nothing else); nothing when it neither ran nor deferred one."""
        if not self.begun:
            return  # no statement: no transaction was begun
        with self._conn.pipeline():
            self._send_pending()
            self._conn.execute("COMMIT", prepare=False)

    @classmethod
    def _sql(cls, sql: str) -> str:
        text = cls._texts.get(sql)
        if text is None:
            text = cls._texts[sql] = sql.replace("?", "%s")
        return text

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        if not self._opening and not self._deferred:
            return self._conn.execute(self._sql(sql), parameters)
        with self._conn.pipeline():
            self._send_pending()
            cursor = self._conn.execute(self._sql(sql), parameters, prepare=False)
        return cursor  # the pipeline's sync fetched every result, this one's included

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        if self._opening or self._deferred:
            with self._conn.pipeline():
                self._send_pending()
        with self._conn.cursor() as cur:
            cur.executemany(self._sql(sql), parameters)
        return None


class PostgresMetadata(MetadataOperations):
    """Registry metadata in a PostgreSQL database at ``url`` (a libpq URL or conninfo string).

    ``PostgresMetadata(url)`` opens a database :meth:`create` made; ``pool_size`` bounds the
    connections this object holds (one per concurrent call); the server must answer
    within ``connect_timeout`` seconds.
    """

    def __init__(self, url: str, *, create: bool = False, pool_size: int = 4, connect_timeout: float = 30.0) -> None:
        import psycopg
        import psycopg_pool

        self._psycopg = psycopg
        self._location = _describe(url)
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=max(1, pool_size), kwargs={"autocommit": True}, open=False
            )
            self._pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise self._error(exc) from exc
        try:
            self._migrate(create=create)
        except BaseException:
            self._pool.close()
            raise

    @classmethod
    def create(
        cls, url: str, *, account: AccountId | str, region: Region | str, pool_size: int = 4
    ) -> PostgresMetadata:
        """The registry schema in the database at ``url``, made if missing, for ``account`` in ``region``.

        Idempotent (every host may call it at start): a database of the same registry is
        opened and migrated; one of another account or Region is refused (``RegistryStateError``).
        """
        metadata = cls(url, create=True, pool_size=pool_size)
        metadata._claim_for(account, region)
        return metadata

    @classmethod
    def open(cls, url: str, *, pool_size: int = 4, connect_timeout: float = 30.0) -> PostgresMetadata:
        """The registry schema :meth:`create` made at ``url``; never makes one (``RegistryStateError``).

        ``connect_timeout``: seconds to keep trying to reach the server before giving up.
        """
        return cls(url, pool_size=pool_size, connect_timeout=connect_timeout)

    def _migrate(self, *, create: bool) -> None:
        """Apply the pending steps in one transaction, recording each (forward only)."""

        def op(db: MetadataConnection) -> None:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            if db.execute("SELECT to_regclass(?)", (MIGRATIONS_TABLE,)).fetchone()[0] is None:
                if not create:
                    raise RegistryStateError(
                        f"the registry database {self._location} holds no ecrcrypt registry (no {MIGRATIONS_TABLE} "
                        "table): restore it from backup, or make a new registry with its create path (ecrcrypt never "
                        "makes an empty registry in place of one that went missing)"
                    )
                db.execute(
                    f"CREATE TABLE {MIGRATIONS_TABLE} "
                    "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
                )
            version = self._version(db)
            if version > SCHEMA_VERSION:
                raise RegistryStateError(
                    f"the registry database {self._location} has schema version {version}; this ecrcrypt reads up "
                    f"to {SCHEMA_VERSION}: open it with a newer ecrcrypt"
                )
            for number, step in enumerate(steps("postgresql")[version:], start=version + 1):
                for statement in step:
                    db.execute(statement)
                db.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?)", (number, time.time()))  # noqa: S608

        self._write(op)

    @staticmethod
    def _version(db: MetadataConnection) -> int:
        return int(db.execute(f"SELECT COALESCE(MAX(version), 0) FROM {MIGRATIONS_TABLE}").fetchone()[0])  # noqa: S608

    @property
    def schema_version(self) -> int:
        with self._read() as db:
            return self._version(db)

    @property
    def location(self) -> str:
        return self._location

    @property
    def persistent(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"PostgresMetadata({self._location!r})"

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.close()

    def __enter__(self) -> PostgresMetadata:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: BaseException) -> RegistryStateError:
        return RegistryStateError(f"the registry database {self._location} failed: {type(exc).__name__}: {exc}")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise RegistryStateError(f"the registry database {self._location} is closed")
        try:
            with self._pool.connection(timeout=60) as conn:
                yield conn
        except RegistryStateError:
            raise
        except self._psycopg.Error as exc:
            raise self._error(exc) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg_pool"):  # PoolTimeout, PoolClosed
                raise self._error(exc) from exc
            raise

    def _write(self, op: Callable[[MetadataConnection], _T], *, durable: bool = True) -> _T:
        errors = self._psycopg.errors
        retryable = (errors.SerializationFailure, errors.DeadlockDetected)
        with self._connection() as conn:
            opening = ("BEGIN ISOLATION LEVEL SERIALIZABLE",) + (() if durable else (_NOT_DURABLE,))
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                db = _PgConnection(conn, opening)
                try:
                    result = op(db)
                    db.commit()
                    return result
                except retryable:
                    self._roll_back(conn)
                    if attempt == _MAX_ATTEMPTS:
                        raise
                    # Jittered backoff: the transactions that collided do not collide again in step.
                    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
                except BaseException:
                    self._roll_back(conn)  # the failure is what the caller sees, never a failed rollback
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _roll_back(self, conn: psycopg.Connection[Any]) -> None:
        status = self._psycopg.pq.TransactionStatus
        if not conn.closed and conn.info.transaction_status in (status.INTRANS, status.INERROR):
            with contextlib.suppress(self._psycopg.Error):
                conn.execute("ROLLBACK")

    @contextmanager
    def _read(self) -> Iterator[MetadataConnection]:
        """One statement at a time in autocommit (each reads the latest commit)."""
        with self._connection() as conn:
            yield _PgConnection(conn)


def _describe(url: str) -> str:
    """``url`` without its password, for messages (never the secret)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://(an unparsable URL)"
    user = parts.get("user")
    host = parts.get("host") or "localhost"
    port = parts.get("port")
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{f'{user}@' if user else ''}{where}/{parts.get('dbname') or ''}"
