"""A small IAM: users and roles per account, their inline and managed policies, role assumption.

Only what KMS and ECR authorization reads is modelled: who exists, which identity
policies each user or role has, and a role's trust policy (who may assume it, from
which account). Operations are named after IAM's (``CreateUser``, ``PutUserPolicy``,
``AttachRolePolicy``, ...) in snake_case, with IAM's error codes (``NoSuchEntity``,
``EntityAlreadyExists``, ``DeleteConflict``, ``MalformedPolicyDocument``,
``LimitExceeded``), and IAM's size limits for each kind of document (IAM User Guide,
"IAM and AWS STS quotas": inline user policies 2,048 characters, inline role
policies 10,240, managed policies 6,144, trust policies 2,048, white space not counted).

Every document is parsed with the policy engine when written, so a stored policy
always evaluates. Writes bump the store's generation: every ``LocalKms`` on the
file -- in this process or another -- drops its compiled policies at its next call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import attrs

from ecrcrypt.arns import AccountId
from ecrcrypt.authz import Policy, PolicyKind, PolicyLimit, Principal, Request, evaluate
from ecrcrypt.errors import (
    AccessDeniedError,
    DeleteConflictError,
    EntityAlreadyExistsError,
    NoSuchEntityError,
    ValidationError,
)
from ecrcrypt.kms.local import policy_store
from ecrcrypt.kms.local.store import KmsStore, Tx

__all__ = ["IamRole", "IamUser", "LocalIam", "ManagedPolicy"]

# IAM: user and role names are 1-64 characters of [\w+=,.@-]; policy names 1-128.
_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_PATH = re.compile(r"/(?:[\x21-\x7e]*/)?")
_SESSION = re.compile(r"[\w+=,.@-]{2,64}")


@attrs.frozen(kw_only=True)
class IamUser:
    user_name: str
    arn: str
    account: str
    path: str = "/"


@attrs.frozen(kw_only=True)
class IamRole:
    role_name: str
    arn: str
    account: str
    assume_role_policy_document: str = attrs.field(repr=False)
    path: str = "/"


@attrs.frozen(kw_only=True)
class ManagedPolicy:
    policy_name: str
    arn: str
    account: str
    document: str = attrs.field(repr=False)
    path: str = "/"


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise ValidationError(f"{what} must be 1 to 64 characters of letters, digits and +=,.@_-, not {value!r}")
    return value


def _policy_name(value: object) -> str:
    if not isinstance(value, str) or _POLICY_NAME.fullmatch(value) is None:
        raise ValidationError(f"PolicyName must be 1 to 128 characters of letters, digits and +=,.@_-, not {value!r}")
    return value


def _path(value: object) -> str:
    if not isinstance(value, str) or len(value) > 512 or _PATH.fullmatch(value) is None:
        raise ValidationError(f"Path must begin and end with '/' (at most 512 characters), not {value!r}")
    return value


class LocalIam:
    """IAM for one account of a local KMS store (``LocalKms.iam``; :meth:`for_account` for others)."""

    def __init__(self, store: KmsStore, account: str, *, on_write: Callable[[Tx], None], strict: bool = False) -> None:
        self._store = store
        self.account = str(AccountId(account))
        self._on_write = on_write
        self._strict = strict

    def __repr__(self) -> str:
        return f"LocalIam(account={self.account!r})"

    def for_account(self, account: str) -> LocalIam:
        """The IAM of another account in the same store (cross-account setups)."""
        return LocalIam(self._store, account, on_write=self._on_write, strict=self._strict)

    # -- users and roles -------------------------------------------------------------------
    def _arn(self, kind: str, name: str, path: str) -> str:
        return f"arn:aws:iam::{self.account}:{kind}{path}{name}"

    def _create(self, kind: str, name: str, path: str, trust: str | None) -> str:
        arn = self._arn(kind, name, path)
        with self._store.write() as tx:
            if policy_store.principal_row(tx.conn, self.account, kind, name) is not None:
                raise EntityAlreadyExistsError(f"{kind.capitalize()} with name {name} already exists.")
            tx.conn.execute(
                "INSERT INTO iam_principals (account, kind, name, arn, path, trust, created) VALUES (?,?,?,?,?,?,?)",
                (self.account, kind, name, arn, path, trust, time.time()),
            )
            self._on_write(tx)
        return arn

    def _require(self, tx: Tx, kind: str, name: str) -> tuple[str, str, str | None]:
        row = policy_store.principal_row(tx.conn, self.account, kind, name)
        if row is None:
            raise NoSuchEntityError(f"The {kind} with name {name} cannot be found.")
        return row

    def create_user(self, *, user_name: str, path: str = "/") -> IamUser:
        name, where = _name(user_name, "UserName"), _path(path)
        return IamUser(user_name=name, arn=self._create("user", name, where, None), account=self.account, path=where)

    def get_user(self, *, user_name: str) -> IamUser:
        with self._store.read() as tx:
            arn, path, _ = self._require(tx, "user", _name(user_name, "UserName"))
        return IamUser(user_name=user_name, arn=arn, account=self.account, path=path)

    def create_role(self, *, role_name: str, assume_role_policy_document: str, path: str = "/") -> IamRole:
        """A role whose trust policy says who may assume it (:meth:`assume_role`)."""
        name, where = _name(role_name, "RoleName"), _path(path)
        Policy.parse(assume_role_policy_document, kind=PolicyKind.TRUST, name=f"trust policy of role {name}")
        arn = self._create("role", name, where, assume_role_policy_document)
        return IamRole(
            role_name=name,
            arn=arn,
            account=self.account,
            assume_role_policy_document=assume_role_policy_document,
            path=where,
        )

    def get_role(self, *, role_name: str) -> IamRole:
        with self._store.read() as tx:
            arn, path, trust = self._require(tx, "role", _name(role_name, "RoleName"))
        return IamRole(
            role_name=role_name, arn=arn, account=self.account, assume_role_policy_document=trust or "", path=path
        )

    def _delete(self, kind: str, name: str) -> None:
        with self._store.write() as tx:
            self._require(tx, kind, name)
            for table in ("iam_inline_policies", "iam_attached_policies"):
                row = tx.conn.execute(
                    f"SELECT 1 FROM {table} WHERE account = ? AND kind = ? AND name = ? LIMIT 1",  # noqa: S608
                    (self.account, kind, name),
                ).fetchone()
                if row is not None:
                    # IAM: "you must delete the items attached to the user manually" first.
                    raise DeleteConflictError(
                        f"Cannot delete entity, must remove policies first ({kind} {name} still has some)."
                    )
            tx.conn.execute(
                "DELETE FROM iam_principals WHERE account = ? AND kind = ? AND name = ?", (self.account, kind, name)
            )
            self._on_write(tx)

    def delete_user(self, *, user_name: str) -> None:
        self._delete("user", _name(user_name, "UserName"))

    def delete_role(self, *, role_name: str) -> None:
        self._delete("role", _name(role_name, "RoleName"))

    # -- inline policies -------------------------------------------------------------------
    def _put_inline(self, kind: str, name: str, policy_name: str, document: str) -> None:
        limit = PolicyLimit.USER_INLINE if kind == "user" else PolicyLimit.ROLE_INLINE
        Policy.parse(document, kind=PolicyKind.IDENTITY, name=f"inline policy '{policy_name}'", limit=limit)
        with self._store.write() as tx:
            self._require(tx, kind, name)
            tx.conn.execute(
                "INSERT INTO iam_inline_policies (account, kind, name, policy_name, document) VALUES (?,?,?,?,?) "
                "ON CONFLICT (account, kind, name, policy_name) DO UPDATE SET document = excluded.document",
                (self.account, kind, name, policy_name, document),
            )
            self._on_write(tx)

    def _get_inline(self, kind: str, name: str, policy_name: str) -> str:
        with self._store.read() as tx:
            self._require(tx, kind, name)
            for found, document in policy_store.inline_policies(tx.conn, self.account, kind, name):
                if found == policy_name:
                    return document
        raise NoSuchEntityError(f"The {kind} policy with name {policy_name} cannot be found.")

    def _list_inline(self, kind: str, name: str) -> list[str]:
        with self._store.read() as tx:
            self._require(tx, kind, name)
            return [found for found, _ in policy_store.inline_policies(tx.conn, self.account, kind, name)]

    def _delete_inline(self, kind: str, name: str, policy_name: str) -> None:
        with self._store.write() as tx:
            self._require(tx, kind, name)
            gone = tx.conn.execute(
                "DELETE FROM iam_inline_policies WHERE account = ? AND kind = ? AND name = ? AND policy_name = ?",
                (self.account, kind, name, policy_name),
            ).rowcount
            if not gone:
                raise NoSuchEntityError(f"The {kind} policy with name {policy_name} cannot be found.")
            self._on_write(tx)

    def put_user_policy(self, *, user_name: str, policy_name: str, policy_document: str) -> None:
        self._put_inline("user", _name(user_name, "UserName"), _policy_name(policy_name), policy_document)

    def get_user_policy(self, *, user_name: str, policy_name: str) -> str:
        return self._get_inline("user", _name(user_name, "UserName"), _policy_name(policy_name))

    def list_user_policies(self, *, user_name: str) -> list[str]:
        return self._list_inline("user", _name(user_name, "UserName"))

    def delete_user_policy(self, *, user_name: str, policy_name: str) -> None:
        self._delete_inline("user", _name(user_name, "UserName"), _policy_name(policy_name))

    def put_role_policy(self, *, role_name: str, policy_name: str, policy_document: str) -> None:
        self._put_inline("role", _name(role_name, "RoleName"), _policy_name(policy_name), policy_document)

    def get_role_policy(self, *, role_name: str, policy_name: str) -> str:
        return self._get_inline("role", _name(role_name, "RoleName"), _policy_name(policy_name))

    def list_role_policies(self, *, role_name: str) -> list[str]:
        return self._list_inline("role", _name(role_name, "RoleName"))

    def delete_role_policy(self, *, role_name: str, policy_name: str) -> None:
        self._delete_inline("role", _name(role_name, "RoleName"), _policy_name(policy_name))

    # -- managed policies ------------------------------------------------------------------
    def create_policy(self, *, policy_name: str, policy_document: str, path: str = "/") -> ManagedPolicy:
        name, where = _policy_name(policy_name), _path(path)
        Policy.parse(policy_document, kind=PolicyKind.IDENTITY, name=f"managed policy {name}")
        arn = f"arn:aws:iam::{self.account}:policy{where}{name}"
        with self._store.write() as tx:
            if tx.conn.execute("SELECT 1 FROM iam_managed_policies WHERE arn = ?", (arn,)).fetchone() is not None:
                raise EntityAlreadyExistsError(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            tx.conn.execute(
                "INSERT INTO iam_managed_policies (arn, account, name, path, document, created) VALUES (?,?,?,?,?,?)",
                (arn, self.account, name, where, policy_document, time.time()),
            )
            self._on_write(tx)
        return ManagedPolicy(policy_name=name, arn=arn, account=self.account, document=policy_document, path=where)

    def get_policy(self, *, policy_arn: str) -> ManagedPolicy:
        with self._store.read() as tx:
            row = tx.conn.execute(
                "SELECT name, account, document, path FROM iam_managed_policies WHERE arn = ?", (policy_arn,)
            ).fetchone()
        if row is None:
            raise NoSuchEntityError(f"Policy {policy_arn} does not exist or is not attachable.")
        return ManagedPolicy(policy_name=row[0], arn=policy_arn, account=row[1], document=row[2], path=row[3])

    def delete_policy(self, *, policy_arn: str) -> None:
        with self._store.write() as tx:
            if tx.conn.execute("SELECT 1 FROM iam_managed_policies WHERE arn = ?", (policy_arn,)).fetchone() is None:
                raise NoSuchEntityError(f"Policy {policy_arn} does not exist or is not attachable.")
            if tx.conn.execute("SELECT 1 FROM iam_attached_policies WHERE policy_arn = ?", (policy_arn,)).fetchone():
                raise DeleteConflictError("Cannot delete a policy attached to entities.")
            tx.conn.execute("DELETE FROM iam_managed_policies WHERE arn = ?", (policy_arn,))
            self._on_write(tx)

    def _attach(self, kind: str, name: str, policy_arn: str) -> None:
        with self._store.write() as tx:
            self._require(tx, kind, name)
            if tx.conn.execute("SELECT 1 FROM iam_managed_policies WHERE arn = ?", (policy_arn,)).fetchone() is None:
                raise NoSuchEntityError(f"Policy {policy_arn} does not exist or is not attachable.")
            tx.conn.execute(
                "INSERT OR IGNORE INTO iam_attached_policies (account, kind, name, policy_arn) VALUES (?,?,?,?)",
                (self.account, kind, name, policy_arn),
            )
            self._on_write(tx)

    def _detach(self, kind: str, name: str, policy_arn: str) -> None:
        with self._store.write() as tx:
            self._require(tx, kind, name)
            gone = tx.conn.execute(
                "DELETE FROM iam_attached_policies WHERE account = ? AND kind = ? AND name = ? AND policy_arn = ?",
                (self.account, kind, name, policy_arn),
            ).rowcount
            if not gone:
                raise NoSuchEntityError(f"Policy {policy_arn} was not found (not attached to {kind} {name}).")
            self._on_write(tx)

    def _attached(self, kind: str, name: str) -> list[str]:
        with self._store.read() as tx:
            self._require(tx, kind, name)
            return [arn for arn, _ in policy_store.managed_policy_documents(tx.conn, self.account, kind, name)]

    def attach_user_policy(self, *, user_name: str, policy_arn: str) -> None:
        self._attach("user", _name(user_name, "UserName"), policy_arn)

    def detach_user_policy(self, *, user_name: str, policy_arn: str) -> None:
        self._detach("user", _name(user_name, "UserName"), policy_arn)

    def list_attached_user_policies(self, *, user_name: str) -> list[str]:
        return self._attached("user", _name(user_name, "UserName"))

    def attach_role_policy(self, *, role_name: str, policy_arn: str) -> None:
        self._attach("role", _name(role_name, "RoleName"), policy_arn)

    def detach_role_policy(self, *, role_name: str, policy_arn: str) -> None:
        self._detach("role", _name(role_name, "RoleName"), policy_arn)

    def list_attached_role_policies(self, *, role_name: str) -> list[str]:
        return self._attached("role", _name(role_name, "RoleName"))

    # -- STS -------------------------------------------------------------------------------
    def assume_role(self, *, caller: str, role_arn: str, role_session_name: str) -> str:
        """STS AssumeRole by ``caller``: the session ARN to make calls as, or ``AccessDeniedError``.

        The role's trust policy must allow ``sts:AssumeRole`` to the caller; from another
        account, the caller's own identity policies must allow it too (IAM: cross-account
        access needs both the trust policy and the caller's permission).
        """
        if not isinstance(role_session_name, str) or _SESSION.fullmatch(role_session_name) is None:
            raise ValidationError("RoleSessionName must be 2 to 64 characters of letters, digits and +=,.@_-")
        role = Principal.parse(role_arn)
        if role.account is None or role.kind.value != "role":
            raise ValidationError(f"{role_arn!r} is not a role ARN")
        name = role_arn.rsplit("/", 1)[1]
        who = Principal.parse(caller)
        with self._store.read() as tx:
            row = policy_store.principal_row(tx.conn, role.account, "role", name)
            if row is None:
                raise NoSuchEntityError(f"The role with name {name} cannot be found.")
            trust = Policy.parse(row[2] or "", kind=PolicyKind.TRUST, name=f"trust policy of role {name}")
            identity = (
                policy_store.identity_policies(tx.conn, who, strict=self._strict) if who.account is not None else ()
            )
        request = Request(principal=who, action="sts:AssumeRole", resource=row[0])
        decision = evaluate(request, resource_policy=trust, identity_policies=identity)
        if not decision.allowed:
            raise AccessDeniedError(decision.message)
        return f"arn:aws:sts::{role.account}:assumed-role/{name}/{role_session_name}"
