"""SQLite persistence of the local KMS: keys, materials, aliases, grants, audit (private).

One file (or ``:memory:``), WAL journal, ``synchronous=NORMAL``: a commit is durable
against a process crash (the WAL is written before COMMIT returns) and the database
stays consistent after a power loss, at the cost of possibly losing the last
transactions then -- the usual WAL trade-off, which keeps an audited Decrypt at one
un-fsynced INSERT. Every operation is one transaction; writes take the write lock
up front (``BEGIN IMMEDIATE``) so that a quota check and the insert it guards cannot
interleave with another process's.

The audit table has no secondary index and no AUTOINCREMENT (rows are never
deleted, so rowids only grow): an audited call then dirties one page, which is what
keeps its INSERT cheap; queries scan, which is fine at a local store's scale.

Every state-changing write bumps ``meta.generation``; readers keep decoded rows
in memory and re-read only when ``PRAGMA data_version`` says another connection
committed *and* the generation moved (audit-only commits do not move it).

Key material is stored wrapped under the root key (see :mod:`ecrcrypt.kms.local.ciphertext`);
the root key never touches the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from ecrcrypt._statefile import create_private_file, database_problem, private_dir, structure_problem
from ecrcrypt.errors import KmsInternalError
from ecrcrypt.kms import GrantConstraints, GrantOperation, KeyManager, KeyState

SCHEMA_VERSION = 1
# Commits between two WAL checkpoints: an audit INSERT dirties one or two pages, so
# this keeps the WAL near SQLite's default threshold of 1,000 pages.
CHECKPOINT_COMMITS = 500
# A background checkpoint never completes while another connection keeps writing
# (SQLite: "checkpoint starvation"), so the writer's own automatic checkpoint stays on,
# at a threshold the background one normally pre-empts; when it fires it copies only
# the frames written since the last background checkpoint.
WAL_AUTOCHECKPOINT_PAGES = 4000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    arn TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    manager TEXT NOT NULL,
    created REAL NOT NULL,
    deletion_date REAL,
    rotation_enabled INTEGER NOT NULL DEFAULT 0,
    rotation_period INTEGER,
    ondemand_rotations INTEGER NOT NULL DEFAULT 0,
    current_version INTEGER NOT NULL DEFAULT 0,
    rotation_anchor REAL
);
CREATE TABLE IF NOT EXISTS materials (
    key_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deleted_keys (
    key_id TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    deleted REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aliases (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (account, region, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    name TEXT,
    grantee TEXT NOT NULL,
    retiring TEXT,
    issuing_account TEXT NOT NULL,
    operations TEXT NOT NULL,
    constraints TEXT,
    created REAL NOT NULL,
    service_principals INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS grants_by_key ON grants (key_id, grantee);
CREATE INDEX IF NOT EXISTS grants_by_retiring ON grants (retiring);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    event_time REAL NOT NULL,
    event_source TEXT NOT NULL,
    event_name TEXT NOT NULL,
    principal TEXT,
    resources TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""


@attrs.frozen(kw_only=True)
class KeyRecord:
    key_id: str
    account: str
    region: str
    arn: str
    description: str
    state: KeyState
    manager: KeyManager
    created: float
    deletion_date: float | None
    rotation_enabled: bool
    rotation_period: int | None
    ondemand_rotations: int
    current_version: int
    # Automatic rotation: the next one is due at anchor + period (the enable date, or
    # the last automatic rotation's scheduled date); None while rotation is off.
    rotation_anchor: float | None = None


@attrs.frozen(kw_only=True)
class GrantRecord:
    seq: int
    grant_id: str
    key_id: str
    name: str | None
    grantee: str
    retiring: str | None
    issuing_account: str
    operations: frozenset[GrantOperation]
    constraints: GrantConstraints | None
    created: float
    grantee_is_service: bool = False
    """Named with ``GranteeServicePrincipal`` (listed there, not as ``GranteePrincipal``)."""
    retiring_is_service: bool = False
    """Named with ``RetiringServicePrincipal``."""


# grants.service_principals: which of the grant's principals were given as service principals.
GRANTEE_SERVICE, RETIRING_SERVICE = 1, 2


@attrs.frozen(kw_only=True)
class AliasRecord:
    account: str
    region: str
    name: str
    key_id: str
    created: float
    updated: float


_INSERT_AUDIT = (
    "INSERT INTO audit (event_time, event_source, event_name, principal, resources, body) VALUES (?,?,?,?,?,?)"
)
_KEY_COLS = (
    "key_id, account, region, arn, description, state, manager, created, deletion_date, "
    "rotation_enabled, rotation_period, ondemand_rotations, current_version, rotation_anchor"
)
_GRANT_COLS = (
    "seq, grant_id, key_id, name, grantee, retiring, issuing_account, operations, constraints, created, "
    "service_principals"
)


def _key(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row[0],
        account=row[1],
        region=row[2],
        arn=row[3],
        description=row[4],
        state=KeyState(row[5]),
        manager=KeyManager(row[6]),
        created=row[7],
        deletion_date=row[8],
        rotation_enabled=bool(row[9]),
        rotation_period=row[10],
        ondemand_rotations=row[11],
        current_version=row[12],
        rotation_anchor=row[13],
    )


def _grant(row: Sequence[Any]) -> GrantRecord:
    return GrantRecord(
        seq=row[0],
        grant_id=row[1],
        key_id=row[2],
        name=row[3],
        grantee=row[4],
        retiring=row[5],
        issuing_account=row[6],
        operations=frozenset(GrantOperation(op) for op in json.loads(row[7])),
        constraints=GrantConstraints.from_api(json.loads(row[8])) if row[8] else None,
        created=row[9],
        grantee_is_service=bool(row[10] & GRANTEE_SERVICE),
        retiring_is_service=bool(row[10] & RETIRING_SERVICE),
    )


def resources_column(arns: Iterable[str]) -> str:
    """The audit ``resources`` column: space-delimited and space-padded ARNs (ARNs have
    no spaces), so "has resource X" is one ``instr()`` in SQL."""
    return " " + " ".join(arns) + " "


def constraints_json(constraints: GrantConstraints | None) -> str | None:
    return None if constraints is None else json.dumps(constraints.to_api(), sort_keys=True)


def operations_json(operations: frozenset[GrantOperation]) -> str:
    return json.dumps(sorted(op.value for op in operations))


class Tx:
    """The statements of one transaction (reads and writes on one connection).

    ``store`` is given for the autocommit ``Tx`` only: each of its audit INSERTs is
    a commit the store counts towards its next WAL checkpoint.
    """

    def __init__(
        self, conn: sqlite3.Connection, cursor: sqlite3.Cursor | None = None, store: KmsStore | None = None
    ) -> None:
        self.conn = conn
        self._cursor = cursor or conn.cursor()
        self._store = store

    # -- keys
    def key(self, key_id: str) -> KeyRecord | None:
        row = self.conn.execute(f"SELECT {_KEY_COLS} FROM keys WHERE key_id = ?", (key_id,)).fetchone()  # noqa: S608 (constant column lists)
        return None if row is None else _key(row)

    def is_deleted(self, key_id: str) -> str | None:
        row = self.conn.execute("SELECT arn FROM deleted_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else str(row[0])

    def insert_key(self, rec: KeyRecord) -> None:
        self.conn.execute(
            f"INSERT INTO keys ({_KEY_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 (constant column lists)
            attrs.astuple(rec, recurse=False),
        )

    def update_key(self, rec: KeyRecord) -> None:
        values = attrs.astuple(rec, recurse=False)
        cols = _KEY_COLS.split(", ")
        sets = ", ".join(f"{c} = ?" for c in cols[1:])
        self.conn.execute(f"UPDATE keys SET {sets} WHERE key_id = ?", (*values[1:], values[0]))  # noqa: S608 (constant column lists)

    def count_keys(self, account: str, region: str) -> int:
        row = self.conn.execute("SELECT count(*) FROM keys WHERE account = ? AND region = ?", (account, region))
        return int(row.fetchone()[0])

    def purge_key(self, rec: KeyRecord, now: float) -> None:
        # KMS: "deletes the KMS key, its key material, and all AWS KMS metadata
        # associated with it, including all aliases".
        for table in ("materials", "aliases", "grants", "keys"):
            self.conn.execute(f"DELETE FROM {table} WHERE key_id = ?", (rec.key_id,))  # noqa: S608
        self.conn.execute("INSERT OR REPLACE INTO deleted_keys VALUES (?,?,?)", (rec.key_id, rec.arn, now))

    # -- materials
    def insert_material(self, key_id: str, version: int, wrapped: bytes, now: float) -> None:
        self.conn.execute("INSERT INTO materials VALUES (?,?,?,?)", (key_id, version, wrapped, now))

    def material(self, key_id: str, version: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT wrapped FROM materials WHERE key_id = ? AND version = ?", (key_id, version)
        ).fetchone()
        return None if row is None else bytes(row[0])

    # -- aliases
    def alias(self, account: str, region: str, name: str) -> AliasRecord | None:
        row = self.conn.execute(
            "SELECT account, region, name, key_id, created, updated FROM aliases "
            "WHERE account = ? AND region = ? AND name = ?",
            (account, region, name),
        ).fetchone()
        return None if row is None else AliasRecord(**dict(zip(attrs.fields_dict(AliasRecord), row, strict=True)))

    def aliases(self, account: str, region: str, key_id: str | None) -> list[AliasRecord]:
        sql = "SELECT account, region, name, key_id, created, updated FROM aliases WHERE account = ? AND region = ?"
        args: tuple[str, ...] = (account, region)
        if key_id is not None:
            sql += " AND key_id = ?"
            args += (key_id,)
        rows = self.conn.execute(sql + " ORDER BY name", args).fetchall()
        return [AliasRecord(**dict(zip(attrs.fields_dict(AliasRecord), r, strict=True))) for r in rows]

    def count_aliases(self, key_id: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM aliases WHERE key_id = ?", (key_id,)).fetchone()[0])

    def put_alias(self, rec: AliasRecord) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO aliases VALUES (?,?,?,?,?,?)",
            (rec.account, rec.region, rec.name, rec.key_id, rec.created, rec.updated),
        )

    def delete_alias(self, account: str, region: str, name: str) -> None:
        self.conn.execute("DELETE FROM aliases WHERE account = ? AND region = ? AND name = ?", (account, region, name))

    # -- grants
    def grants_for_key(self, key_id: str) -> list[GrantRecord]:
        rows = self.conn.execute(f"SELECT {_GRANT_COLS} FROM grants WHERE key_id = ? ORDER BY seq", (key_id,))  # noqa: S608 (constant column lists)
        return [_grant(r) for r in rows.fetchall()]

    def grants_named(self, key_id: str, name: str) -> list[GrantRecord]:
        rows = self.conn.execute(
            f"SELECT {_GRANT_COLS} FROM grants WHERE key_id = ? AND name = ? ORDER BY seq",  # noqa: S608 (constant column lists)
            (key_id, name),
        )
        return [_grant(r) for r in rows.fetchall()]

    def grant(self, grant_id: str) -> GrantRecord | None:
        row = self.conn.execute(f"SELECT {_GRANT_COLS} FROM grants WHERE grant_id = ?", (grant_id,)).fetchone()  # noqa: S608 (constant column lists)
        return None if row is None else _grant(row)

    def grants_retirable_by(self, principal: str, after_seq: int, limit: int) -> list[GrantRecord]:
        rows = self.conn.execute(
            f"SELECT {_GRANT_COLS} FROM grants WHERE retiring = ? AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608 (constant column lists)
            (principal, after_seq, limit),
        )
        return [_grant(r) for r in rows.fetchall()]

    def count_grants(self, key_id: str, grantee: str | None = None) -> int:
        if grantee is None:
            row = self.conn.execute("SELECT count(*) FROM grants WHERE key_id = ?", (key_id,))
        else:
            row = self.conn.execute("SELECT count(*) FROM grants WHERE key_id = ? AND grantee = ?", (key_id, grantee))
        return int(row.fetchone()[0])

    def insert_grant(
        self,
        *,
        grant_id: str,
        key_id: str,
        name: str | None,
        grantee: str,
        retiring: str | None,
        issuing_account: str,
        operations: frozenset[GrantOperation],
        constraints: GrantConstraints | None,
        created: float,
        grantee_is_service: bool = False,
        retiring_is_service: bool = False,
    ) -> None:
        kinds = (GRANTEE_SERVICE if grantee_is_service else 0) | (RETIRING_SERVICE if retiring_is_service else 0)
        self.conn.execute(
            "INSERT INTO grants (grant_id, key_id, name, grantee, retiring, issuing_account, operations, "
            "constraints, created, service_principals) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                grant_id,
                key_id,
                name,
                grantee,
                retiring,
                issuing_account,
                operations_json(operations),
                constraints_json(constraints),
                created,
                kinds,
            ),
        )

    def delete_grant(self, grant_id: str) -> None:
        self.conn.execute("DELETE FROM grants WHERE grant_id = ?", (grant_id,))

    # -- audit
    def append_audit(
        self, *, event_time: float, source: str, name: str, principal: str | None, resources: str, body: str
    ) -> None:
        self._cursor.execute(_INSERT_AUDIT, (event_time, source, name, principal, resources, body))
        if self._store is not None:
            self._store.committed()


class _Checkpointer:
    """Runs WAL checkpoints on a thread of its own, with a connection of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold
    and, with ``synchronous=NORMAL``, fsyncs the WAL and the database there: an
    audited Decrypt would pay for it every ~1,000 commits. SQLite's documentation
    suggests disabling automatic checkpoints and running them "in a separate thread
    or process" instead (wal.html, "Application-Initiated Checkpoints"). A PASSIVE
    checkpoint never blocks readers or writers; the thread (started on the first
    request) sleeps between requests and releases the GIL while SQLite works.
    Durability is unchanged: a commit is in the WAL before COMMIT returns either way.
    See ``WAL_AUTOCHECKPOINT_PAGES`` for what bounds the WAL.
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self._path = path
        self._timeout = busy_timeout
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._stopped:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ecrcrypt-kms-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        conn = sqlite3.connect(str(self._path), timeout=self._timeout, isolation_level=None)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopped:
                    return
                with contextlib.suppress(sqlite3.Error):  # a busy or closing database: next time
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


class KmsStore:
    """One SQLite connection shared by the threads of a process, behind a lock.

    ``path=None`` (or ``":memory:"``) is the in-memory store for tests. Several
    processes may open the same file; each opens its own ``KmsStore``.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 60.0, create: bool = True
    ) -> None:
        self.path = None if path is None or str(path) == ":memory:" else Path(path)
        if self.path is not None:
            self._check_file(self.path, create=create)
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(
                ":memory:" if self.path is None else str(self.path),
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self.database_error(exc) from exc
        self._closed = False
        self._cursor = self.conn.cursor()  # reused: the hot path's statements skip cursor creation
        self._tx = Tx(self.conn, self._cursor, self)
        self._commits = 0
        self._checkpointer: _Checkpointer | None = None
        try:
            version = self._open_schema(busy_timeout)
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.Error):
                raise self.database_error(exc) from exc
            raise
        if version != SCHEMA_VERSION:
            self.close()
            raise KmsInternalError(
                f"the KMS store {self.path} has schema version {version}; this ecrcrypt reads {SCHEMA_VERSION}"
            )

    @staticmethod
    def _check_file(path: Path, *, create: bool) -> None:
        """Refuse a damaged file (and a missing or empty one unless ``create``).

        SQLite opens a missing or 0-byte file as a fresh, empty database: without this
        check a lost store would silently come back empty (see ``ecrcrypt._statefile``).
        """
        problem = database_problem(path)
        if problem in ("is missing", "is empty (0 bytes)"):
            if not create:
                raise KmsInternalError(
                    f"the KMS store {path} {problem}: restore it (and its root key) from backup; "
                    "ecrcrypt never creates an empty store in place of one that went missing"
                )
            if problem == "is missing":
                private_dir(path.parent)
                create_private_file(path)  # 0600 before SQLite creates it (and its -wal, -shm) 0644
            return
        if problem is not None:
            raise KmsInternalError(f"the KMS store {path} {problem}: restore it from backup")

    def _open_schema(self, busy_timeout: float) -> Any:
        with self.lock:
            if self.path is not None:
                damage = structure_problem(self.conn)
                if damage is not None:
                    raise KmsInternalError(f"the KMS store {self.path} {damage}: restore it from backup")
                self.conn.execute("PRAGMA journal_mode=WAL")
                # Checkpoints run mostly off the calling thread (see _Checkpointer);
                # the automatic one remains as the bound on the WAL's size.
                self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
                self._checkpointer = _Checkpointer(self.path, busy_timeout)
                weakref.finalize(self, self._checkpointer.stop)
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        self.conn.execute(statement)
                columns = {row[1] for row in self.conn.execute("PRAGMA table_info(keys)")}
                if "rotation_anchor" not in columns:  # a store written before automatic rotation
                    self.conn.execute("ALTER TABLE keys ADD COLUMN rotation_anchor REAL")
                columns = {row[1] for row in self.conn.execute("PRAGMA table_info(grants)")}
                if "service_principals" not in columns:  # a store written before service principal grants
                    self.conn.execute("ALTER TABLE grants ADD COLUMN service_principals INTEGER NOT NULL DEFAULT 0")
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', 0)")
                # Names this store in a registry's manifest: a store swapped for another is told apart.
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
                version = self.conn.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()[0]
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        return version

    @contextmanager
    def surfaced(self) -> Iterator[None]:
        """Hold the store lock; a SQLite failure inside surfaces as ``KmsInternalError``."""
        with self.lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise self.database_error(exc) from exc

    def database_error(self, exc: sqlite3.Error) -> KmsInternalError:
        """The documented error for a SQLite failure on this store (docs/kms-model.md)."""
        where = "the in-memory KMS store" if self.path is None else f"the KMS store {self.path}"
        return KmsInternalError(f"{where} failed: {exc} (restore it from backup if it was damaged)")

    @property
    def store_id(self) -> str:
        """A random id given to the store when it was created (no secret)."""
        return str(self.meta("store_id"))

    @property
    def initialized(self) -> bool:
        """Whether a root key has been bound to the store (its check value is recorded)."""
        return self.meta("root_check") is not None

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                if self._checkpointer is not None:
                    self._checkpointer.stop()
                self.conn.close()  # the last connection to close checkpoints the WAL

    def append_audit(
        self, event_time: float, source: str, name: str, principal: str | None, resources: str, body: str
    ) -> None:
        """One audit INSERT as its own transaction (the hot path's; caller holds ``lock``)."""
        self._cursor.execute(_INSERT_AUDIT, (event_time, source, name, principal, resources, body))
        self._commits += 1
        if self._commits >= CHECKPOINT_COMMITS and self._checkpointer is not None:
            self._commits = 0
            self._checkpointer.request()

    def committed(self) -> None:
        """Count a commit; every ``CHECKPOINT_COMMITS`` ask for a WAL checkpoint."""
        self._commits += 1
        if self._commits >= CHECKPOINT_COMMITS and self._checkpointer is not None:
            self._commits = 0
            self._checkpointer.request()

    def meta(self, k: str) -> Any:
        with self.lock:
            row = self.conn.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
            return None if row is None else row[0]

    def set_meta_once(self, k: str, v: Any) -> Any:
        """Store ``v`` under ``k`` unless something is there; return what is there."""
        with self.write(bump=False) as tx:
            tx.conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, v))
            return tx.conn.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()[0]

    def data_version(self) -> int:
        return int(self._cursor.execute("PRAGMA data_version").fetchone()[0])

    def generation(self) -> int:
        return int(self.conn.execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()[0])

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent snapshot for several statements (WAL readers never block)."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield Tx(self.conn)
            finally:
                self.conn.execute("COMMIT")

    @contextmanager
    def write(self, *, bump: bool = True) -> Iterator[Tx]:
        """One write transaction: all of it is committed, or none of it."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self.conn)
                if bump:
                    self.conn.execute("UPDATE meta SET v = v + 1 WHERE k = 'generation'")
                self.conn.execute("COMMIT")
                self.committed()
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def autocommit(self) -> Tx:
        """Statements outside an explicit transaction (each its own); caller holds ``lock``."""
        return self._tx
