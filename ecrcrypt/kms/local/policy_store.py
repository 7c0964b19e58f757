"""Key policies and the IAM model's records in the local KMS's SQLite file (private).

Additive tables beside the KMS's own (``CREATE TABLE IF NOT EXISTS`` when a service
opens the store), so a store written before policies existed opens unchanged: a
customer managed key without a ``key_policies`` row has KMS's default key policy,
and an AWS managed key always has its fixed one (it is never stored). Documents are
kept exactly as written, for Get* calls to return them unchanged; they are parsed
and compiled when read (:mod:`ecrcrypt.kms.local.access` caches the result until the
next state change).

IAM entities are per account: several accounts share one store, so that the
cross-account rules (both halves) can be exercised in one process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import attrs

from ecrcrypt.authz import (
    Policy,
    PolicyKind,
    PolicyLimit,
    Principal,
    PrincipalKind,
    aws_managed_key_document,
    default_key_policy_document,
)
from ecrcrypt.kms import KeyManager
from ecrcrypt.kms.local.store import KeyRecord, KmsStore

__all__ = [
    "compile_key_policy",
    "ensure_schema",
    "identity_policies",
    "inline_policies",
    "is_unregistered",
    "key_policy_document",
    "managed_policy_documents",
    "principal_row",
    "put_key_policy",
    "stored_key_policy",
]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS key_policies (
        key_id TEXT NOT NULL,
        policy_name TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (key_id, policy_name)
    ) WITHOUT ROWID""",
    # kind: 'user' or 'role'; trust: a role's trust policy (AssumeRolePolicyDocument).
    """CREATE TABLE IF NOT EXISTS iam_principals (
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        arn TEXT NOT NULL,
        path TEXT NOT NULL,
        trust TEXT,
        created REAL NOT NULL,
        PRIMARY KEY (account, kind, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS iam_inline_policies (
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        policy_name TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (account, kind, name, policy_name)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS iam_managed_policies (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        document TEXT NOT NULL,
        created REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS iam_attached_policies (
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        policy_arn TEXT NOT NULL,
        PRIMARY KEY (account, kind, name, policy_arn)
    ) WITHOUT ROWID""",
)


def ensure_schema(store: KmsStore) -> None:
    """Create the policy and IAM tables when missing (no generation bump: nothing changed)."""
    with store.write(bump=False) as tx:
        for statement in _SCHEMA:
            tx.conn.execute(statement)


def principal_row(conn: sqlite3.Connection, account: str, kind: str, name: str) -> tuple[str, str, str | None] | None:
    """``(arn, path, trust)`` of a user or role, or ``None``."""
    row = conn.execute(
        "SELECT arn, path, trust FROM iam_principals WHERE account = ? AND kind = ? AND name = ?",
        (account, kind, name),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def inline_policies(conn: sqlite3.Connection, account: str, kind: str, name: str) -> list[tuple[str, str]]:
    """``(policy_name, document)`` of every inline policy of a user or role, by name."""
    rows = conn.execute(
        "SELECT policy_name, document FROM iam_inline_policies WHERE account = ? AND kind = ? AND name = ? "
        "ORDER BY policy_name",
        (account, kind, name),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def managed_policy_documents(conn: sqlite3.Connection, account: str, kind: str, name: str) -> Sequence[tuple[str, str]]:
    """``(policy_arn, document)`` of every managed policy attached to a user or role, by ARN."""
    rows = conn.execute(
        "SELECT m.arn, m.document FROM iam_attached_policies a JOIN iam_managed_policies m ON m.arn = a.policy_arn "
        "WHERE a.account = ? AND a.kind = ? AND a.name = ? ORDER BY m.arn",
        (account, kind, name),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def stored_key_policy(conn: sqlite3.Connection, key_id: str, policy_name: str = "default") -> str | None:
    row = conn.execute(
        "SELECT document FROM key_policies WHERE key_id = ? AND policy_name = ?", (key_id, policy_name)
    ).fetchone()
    return None if row is None else str(row[0])


def put_key_policy(conn: sqlite3.Connection, key_id: str, document: str, policy_name: str = "default") -> None:
    conn.execute(
        "INSERT INTO key_policies (key_id, policy_name, document) VALUES (?, ?, ?) "
        "ON CONFLICT (key_id, policy_name) DO UPDATE SET document = excluded.document",
        (key_id, policy_name, document),
    )


def key_policy_document(conn: sqlite3.Connection, key: KeyRecord) -> str:
    """The key policy of ``key`` as JSON text: stored, or the default / AWS managed one."""
    if key.manager is KeyManager.AWS:
        return json.dumps(aws_managed_key_document(key.account, key.region), indent=2)
    stored = stored_key_policy(conn, key.key_id)
    if stored is not None:
        return stored
    return json.dumps(default_key_policy_document(key.account), indent=2)


def compile_key_policy(document: str) -> Policy:
    return Policy.parse(document, kind=PolicyKind.KEY, name="key policy")


def identity_policies(conn: sqlite3.Connection, principal: Principal, *, strict: bool) -> tuple[Policy, ...]:
    """Every identity policy of ``principal``, compiled: its inline and attached managed policies.

    A role session has its role's. The root user has none (it needs none in its own
    account). A user or role the IAM store does not know has none when ``strict``;
    otherwise -- a caller named by an ARN nobody registered, as before IAM existed
    here -- it acts as an administrator of its account (``Allow *``), which keeps
    callers that predate the IAM model working; register it to give it exactly its policies.
    """
    if principal.account is None or principal.kind is PrincipalKind.ROOT:
        return ()
    kind, name = _entity(principal)
    row = principal_row(conn, principal.account, kind, name)
    if row is None:
        if strict:
            return ()
        return (IMPLICIT_ADMIN.evolve_name(principal.policy_arn),)
    found: list[Policy] = []
    limit = PolicyLimit.USER_INLINE if kind == "user" else PolicyLimit.ROLE_INLINE
    for policy_name, document in inline_policies(conn, principal.account, kind, name):
        found.append(
            Policy.parse(
                document, kind=PolicyKind.IDENTITY, name=f"inline policy '{policy_name}' of {row[0]}", limit=limit
            )
        )
    for arn, document in managed_policy_documents(conn, principal.account, kind, name):
        found.append(Policy.parse(document, kind=PolicyKind.IDENTITY, name=f"managed policy {arn}"))
    return tuple(found)


def _entity(principal: Principal) -> tuple[str, str]:
    """``("user" | "role", name)`` of an IAM principal (a role session: its role)."""
    kind, _, rest = principal.policy_arn.split(":", 5)[5].partition("/")
    return kind, rest.rsplit("/", 1)[-1]


def is_unregistered(conn: sqlite3.Connection, principal: Principal) -> bool:
    """A user or role (or a session of a role) that the IAM store does not hold."""
    if principal.account is None or principal.kind is PrincipalKind.ROOT:
        return False
    kind, name = _entity(principal)
    return principal_row(conn, principal.account, kind, name) is None


class _ImplicitAdmin:
    """The identity policy of a principal not registered in IAM, when IAM is not strict."""

    def __init__(self) -> None:
        self._policy = Policy.parse(
            {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "implicit", "Effect": "Allow", "Action": "*", "Resource": "*"}],
            },
            kind=PolicyKind.IDENTITY,
            name="implicit administrator policy",
        )

    def evolve_name(self, arn: str) -> Policy:
        return attrs.evolve(self._policy, name=f"implicit administrator policy of {arn} (not registered in IAM)")


IMPLICIT_ADMIN = _ImplicitAdmin()
