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

``LocalIam`` as ``LocalKms.iam`` gives it is the account's administrator (no ``iam:``
action is checked: it is how an embedder sets the model up). :meth:`LocalIam.as_caller`
makes every call a principal's request instead, evaluated against its ``iam:`` action and
the entity's ARN with the caller's identity policies, as IAM does (IAM has no resource
policies, so only the caller's own account is reachable); the command line uses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from ecrcrypt.arns import AccountId
from ecrcrypt.authz import Policy, PolicyKind, PolicyLimit, Principal, PrincipalKind, Request, evaluate
from ecrcrypt.errors import (
    DeleteConflictError,
    EntityAlreadyExistsError,
    IamAccessDeniedError,
    NoSuchEntityError,
    ValidationError,
)
from ecrcrypt.kms.local import policy_store
from ecrcrypt.kms.local.store import KmsStore, Tx

__all__ = ["AttachedPolicy", "IamRole", "IamUser", "InlinePolicy", "LocalIam", "ManagedPolicy"]

# IAM: user and role names are 1-64 characters of [\w+=,.@-]; policy names 1-128.
_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_PATH = re.compile(r"/(?:[\x21-\x7e]*/)?")
_SESSION = re.compile(r"[\w+=,.@-]{2,64}")
_ACCOUNT = re.compile(r"[0-9]{12}")


def _unique_id(prefix: str, arn: str, created: float) -> str:
    """IAM's unique id form ("Unique identifiers", IAM User Guide): a four-letter prefix telling the
    entity's type (AIDA user, AROA role, ANPA managed policy) and 17 more upper-case characters;
    derived from the ARN and creation time, so a re-created entity gets a new one, as in IAM."""
    digest = hashlib.sha256(f"{arn}\0{created!r}".encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:17]


def _date(created: float) -> datetime:
    return datetime.fromtimestamp(created, UTC)


def _document(text: str) -> Any:
    """A policy document as boto3 returns it: botocore's ``json_decode_policies`` decodes IAM's documents."""
    return json.loads(text)


@attrs.frozen(kw_only=True)
class IamUser:
    user_name: str
    arn: str
    account: str
    path: str = "/"
    user_id: str
    create_date: datetime

    def to_api(self) -> dict[str, Any]:
        """IAM's ``User`` structure (CreateUser, GetUser, ListUsers) as boto3 returns it."""
        return {
            "Path": self.path,
            "UserName": self.user_name,
            "UserId": self.user_id,
            "Arn": self.arn,
            "CreateDate": self.create_date,
        }


@attrs.frozen(kw_only=True)
class IamRole:
    role_name: str
    arn: str
    account: str
    assume_role_policy_document: str = attrs.field(repr=False)
    path: str = "/"
    role_id: str
    create_date: datetime

    def to_api(self) -> dict[str, Any]:
        """IAM's ``Role`` structure (CreateRole, GetRole, ListRoles), the trust policy decoded as boto3 does."""
        return {
            "Path": self.path,
            "RoleName": self.role_name,
            "RoleId": self.role_id,
            "Arn": self.arn,
            "CreateDate": self.create_date,
            "AssumeRolePolicyDocument": _document(self.assume_role_policy_document),
        }


@attrs.frozen(kw_only=True)
class ManagedPolicy:
    policy_name: str
    arn: str
    account: str
    document: str = attrs.field(repr=False)
    path: str = "/"
    policy_id: str
    create_date: datetime
    attachment_count: int = 0

    def to_api(self) -> dict[str, Any]:
        """IAM's ``Policy`` structure (CreatePolicy, GetPolicy, ListPolicies).

        Policy versions are not modelled: a policy has its one document, ``v1``, never updated.
        """
        return {
            "PolicyName": self.policy_name,
            "PolicyId": self.policy_id,
            "Arn": self.arn,
            "Path": self.path,
            "DefaultVersionId": "v1",
            "AttachmentCount": self.attachment_count,
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": True,
            "CreateDate": self.create_date,
            "UpdateDate": self.create_date,
        }


@attrs.frozen(kw_only=True)
class InlinePolicy:
    """GetUserPolicy / GetRolePolicy's answer: an inline policy and the user or role it is embedded in."""

    owner_kind: str = attrs.field(validator=attrs.validators.in_(("user", "role")))
    owner_name: str
    policy_name: str
    policy_document: str = attrs.field(repr=False)

    def to_api(self) -> dict[str, Any]:
        owner = "UserName" if self.owner_kind == "user" else "RoleName"
        return {
            owner: self.owner_name,
            "PolicyName": self.policy_name,
            "PolicyDocument": _document(self.policy_document),
        }


@attrs.frozen
class AttachedPolicy:
    """One item of ListAttachedUserPolicies / ListAttachedRolePolicies."""

    policy_arn: str

    @property
    def policy_name(self) -> str:
        return self.policy_arn.rsplit("/", 1)[-1]

    def to_api(self) -> dict[str, Any]:
        return {"PolicyName": self.policy_name, "PolicyArn": self.policy_arn}


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise ValidationError(f"{what} must be 1 to 64 characters of letters, digits and +=,.@_-, not {value!r}")
    return value


def _policy_name(value: object) -> str:
    if not isinstance(value, str) or _POLICY_NAME.fullmatch(value) is None:
        raise ValidationError(f"PolicyName must be 1 to 128 characters of letters, digits and +=,.@_-, not {value!r}")
    return value


def _path_prefix(value: object) -> str:
    # IAM pathPrefixType: 1-512 characters, "/" then [\u0021-\u007F]*.
    if not isinstance(value, str) or not 1 <= len(value) <= 512 or re.fullmatch(r"/[\x21-\x7f]*", value) is None:
        raise ValidationError(f"PathPrefix must begin with '/' (at most 512 characters), not {value!r}")
    return value


def _path(value: object) -> str:
    if not isinstance(value, str) or len(value) > 512 or _PATH.fullmatch(value) is None:
        raise ValidationError(f"Path must begin and end with '/' (at most 512 characters), not {value!r}")
    return value


_PREFIX = {"user": "AIDA", "role": "AROA"}


class LocalIam:
    """IAM for one account of a local KMS store (``LocalKms.iam``; :meth:`for_account` for others).

    Without a caller it is the account's administrator; :meth:`as_caller` checks each
    call's ``iam:`` action against the caller's identity policies.
    """

    def __init__(
        self,
        store: KmsStore,
        account: str,
        *,
        on_write: Callable[[Tx], None],
        strict: bool = False,
        caller: Principal | None = None,
    ) -> None:
        self._store = store
        self.account = str(AccountId(account))
        self._on_write = on_write
        self._strict = strict
        self._caller = caller

    def __repr__(self) -> str:
        who = "" if self._caller is None else f", caller={str(self._caller)!r}"
        return f"LocalIam(account={self.account!r}{who})"

    def for_account(self, account: str) -> LocalIam:
        """The IAM of another account in the same store (cross-account setups)."""
        return LocalIam(self._store, account, on_write=self._on_write, strict=self._strict)

    def as_caller(self, principal: str) -> LocalIam:
        """The IAM of ``principal``'s account, every call made by ``principal``.

        Each operation asks for its ``iam:`` action (``iam:CreateUser``, ``iam:PutUserPolicy``,
        ...) on the entity's ARN: the account root may do everything, a user or role what its
        identity policies allow (an unregistered one, outside ``strict_iam``, is its
        account's implicit administrator, as for KMS). A service principal has no IAM account.
        """
        # An account id stands for its root, as LocalKms.client takes it.
        who = Principal.root(principal) if isinstance(principal, str) and _ACCOUNT.fullmatch(principal) else None
        who = who or Principal.parse(principal)
        if who.account is None:
            raise ValidationError(f"{principal!r} has no AWS account: IAM calls are made by an account's principals")
        return LocalIam(self._store, who.account, on_write=self._on_write, strict=self._strict, caller=who)

    def _authorize(self, operation: str, resource: str) -> None:
        who = self._caller
        if who is None or (who.kind is PrincipalKind.ROOT and who.account == self.account):
            return
        with self._store.read() as tx:
            identity = policy_store.identity_policies(tx.conn, who, strict=self._strict)
        decision = evaluate(
            Request(principal=who, action=f"iam:{operation}", resource=resource), identity_policies=identity
        )
        if not decision.allowed:
            raise IamAccessDeniedError(decision.message, decision=decision)

    # -- users and roles -------------------------------------------------------------------
    def _arn(self, kind: str, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account}:{kind}{path}{name}"

    def _entity_arn(self, kind: str, name: str) -> str:
        """The ARN an existing user or role has (its path included), for the check of a call on it."""
        if self._caller is None:
            return self._arn(kind, name)  # no check will read it: spare the lookup
        with self._store.read() as tx:
            row = policy_store.principal_row(tx.conn, self.account, kind, name)
        return self._arn(kind, name) if row is None else row[0]

    def _policy_arn(self, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account}:policy{path}{name}"

    def _create(self, kind: str, name: str, path: str, trust: str | None) -> tuple[str, float]:
        arn = self._arn(kind, name, path)
        created = time.time()
        with self._store.write() as tx:
            if policy_store.principal_row(tx.conn, self.account, kind, name) is not None:
                raise EntityAlreadyExistsError(f"{kind.capitalize()} with name {name} already exists.")
            tx.conn.execute(
                "INSERT INTO iam_principals (account, kind, name, arn, path, trust, created) VALUES (?,?,?,?,?,?,?)",
                (self.account, kind, name, arn, path, trust, created),
            )
            self._on_write(tx)
        return arn, created

    def _require(self, tx: Tx, kind: str, name: str) -> tuple[str, str, str | None]:
        row = policy_store.principal_row(tx.conn, self.account, kind, name)
        if row is None:
            raise NoSuchEntityError(f"The {kind} with name {name} cannot be found.")
        return row

    def _rows(self, kind: str, name: str | None, path_prefix: str) -> list[tuple[str, str, str, str | None, float]]:
        """``(name, arn, path, trust, created)`` of one user or role, or of every one under ``path_prefix``."""
        query = "SELECT name, arn, path, trust, created FROM iam_principals WHERE account = ? AND kind = ?"
        params: tuple[object, ...] = (self.account, kind)
        if name is not None:
            query, params = query + " AND name = ?", (*params, name)
        with self._store.read() as tx:
            rows = tx.conn.execute(query + " ORDER BY name", params).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows if str(r[2]).startswith(path_prefix)]

    @staticmethod
    def _user(row: tuple[str, str, str, str | None, float], account: str) -> IamUser:
        name, arn, path, _, created = row
        return IamUser(
            user_name=name,
            arn=arn,
            account=account,
            path=path,
            user_id=_unique_id(_PREFIX["user"], arn, created),
            create_date=_date(created),
        )

    @staticmethod
    def _role(row: tuple[str, str, str, str | None, float], account: str) -> IamRole:
        name, arn, path, trust, created = row
        return IamRole(
            role_name=name,
            arn=arn,
            account=account,
            assume_role_policy_document=trust or "",
            path=path,
            role_id=_unique_id(_PREFIX["role"], arn, created),
            create_date=_date(created),
        )

    def _one(self, kind: str, name: str) -> tuple[str, str, str, str | None, float]:
        rows = self._rows(kind, name, "/")
        if not rows:
            raise NoSuchEntityError(f"The {kind} with name {name} cannot be found.")
        return rows[0]

    def create_user(self, *, user_name: str, path: str = "/") -> IamUser:
        name, where = _name(user_name, "UserName"), _path(path)
        self._authorize("CreateUser", self._arn("user", name, where))
        arn, created = self._create("user", name, where, None)
        return self._user((name, arn, where, None, created), self.account)

    def get_user(self, *, user_name: str) -> IamUser:
        name = _name(user_name, "UserName")
        self._authorize("GetUser", self._entity_arn("user", name))
        return self._user(self._one("user", name), self.account)

    def list_users(self, *, path_prefix: str = "/") -> list[IamUser]:
        """ListUsers: every user of the account whose path starts with ``path_prefix``, by name."""
        self._authorize("ListUsers", self._arn("user", "*"))
        return [self._user(r, self.account) for r in self._rows("user", None, _path_prefix(path_prefix))]

    def create_role(self, *, role_name: str, assume_role_policy_document: str, path: str = "/") -> IamRole:
        """A role whose trust policy says who may assume it (:meth:`assume_role`)."""
        name, where = _name(role_name, "RoleName"), _path(path)
        self._authorize("CreateRole", self._arn("role", name, where))
        Policy.parse(assume_role_policy_document, kind=PolicyKind.TRUST, name=f"trust policy of role {name}")
        arn, created = self._create("role", name, where, assume_role_policy_document)
        return self._role((name, arn, where, assume_role_policy_document, created), self.account)

    def get_role(self, *, role_name: str) -> IamRole:
        name = _name(role_name, "RoleName")
        self._authorize("GetRole", self._entity_arn("role", name))
        return self._role(self._one("role", name), self.account)

    def list_roles(self, *, path_prefix: str = "/") -> list[IamRole]:
        """ListRoles: every role of the account whose path starts with ``path_prefix``, by name."""
        self._authorize("ListRoles", self._arn("role", "*"))
        return [self._role(r, self.account) for r in self._rows("role", None, _path_prefix(path_prefix))]

    def _delete(self, kind: str, name: str) -> None:
        self._authorize(f"Delete{kind.capitalize()}", self._entity_arn(kind, name))
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
        self._authorize(f"Put{kind.capitalize()}Policy", self._entity_arn(kind, name))
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
        self._authorize(f"Get{kind.capitalize()}Policy", self._entity_arn(kind, name))
        with self._store.read() as tx:
            self._require(tx, kind, name)
            for found, document in policy_store.inline_policies(tx.conn, self.account, kind, name):
                if found == policy_name:
                    return document
        raise NoSuchEntityError(f"The {kind} policy with name {policy_name} cannot be found.")

    def _list_inline(self, kind: str, name: str) -> list[str]:
        self._authorize(f"List{kind.capitalize()}Policies", self._entity_arn(kind, name))
        with self._store.read() as tx:
            self._require(tx, kind, name)
            return [found for found, _ in policy_store.inline_policies(tx.conn, self.account, kind, name)]

    def _delete_inline(self, kind: str, name: str, policy_name: str) -> None:
        self._authorize(f"Delete{kind.capitalize()}Policy", self._entity_arn(kind, name))
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
    def _managed(self, row: tuple[Any, ...]) -> ManagedPolicy:
        arn, name, account, document, path, created, attached = row
        return ManagedPolicy(
            policy_name=name,
            arn=arn,
            account=account,
            document=document,
            path=path,
            policy_id=_unique_id("ANPA", arn, created),
            create_date=_date(created),
            attachment_count=attached,
        )

    def _managed_rows(self, arn: str | None) -> list[tuple[Any, ...]]:
        query = (
            "SELECT m.arn, m.name, m.account, m.document, m.path, m.created, "
            "(SELECT COUNT(*) FROM iam_attached_policies a WHERE a.policy_arn = m.arn) "
            "FROM iam_managed_policies m WHERE "
        )
        with self._store.read() as tx:
            if arn is not None:
                return list(tx.conn.execute(query + "m.arn = ?", (arn,)).fetchall())
            return list(tx.conn.execute(query + "m.account = ? ORDER BY m.name", (self.account,)).fetchall())

    def create_policy(self, *, policy_name: str, policy_document: str, path: str = "/") -> ManagedPolicy:
        name, where = _policy_name(policy_name), _path(path)
        arn = self._policy_arn(name, where)
        self._authorize("CreatePolicy", arn)
        Policy.parse(policy_document, kind=PolicyKind.IDENTITY, name=f"managed policy {name}")
        created = time.time()
        with self._store.write() as tx:
            if tx.conn.execute("SELECT 1 FROM iam_managed_policies WHERE arn = ?", (arn,)).fetchone() is not None:
                raise EntityAlreadyExistsError(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            tx.conn.execute(
                "INSERT INTO iam_managed_policies (arn, account, name, path, document, created) VALUES (?,?,?,?,?,?)",
                (arn, self.account, name, where, policy_document, created),
            )
            self._on_write(tx)
        return self._managed((arn, name, self.account, policy_document, where, created, 0))

    def get_policy(self, *, policy_arn: str) -> ManagedPolicy:
        self._authorize("GetPolicy", policy_arn)
        rows = self._managed_rows(policy_arn)
        if not rows:
            raise NoSuchEntityError(f"Policy {policy_arn} does not exist or is not attachable.")
        return self._managed(rows[0])

    def list_policies(
        self, *, scope: str = "All", only_attached: bool = False, path_prefix: str = "/"
    ) -> list[ManagedPolicy]:
        """ListPolicies: the account's managed policies (``Local``); AWS managed policies are not modelled."""
        if scope not in ("All", "AWS", "Local"):
            raise ValidationError(f"Scope must be one of All, AWS, Local, not {scope!r}")
        self._authorize("ListPolicies", self._policy_arn("*"))
        if scope == "AWS":
            return []
        prefix = _path_prefix(path_prefix)
        return [
            self._managed(r)
            for r in self._managed_rows(None)
            if str(r[4]).startswith(prefix) and (r[6] > 0 or not only_attached)
        ]

    def delete_policy(self, *, policy_arn: str) -> None:
        self._authorize("DeletePolicy", policy_arn)
        with self._store.write() as tx:
            if tx.conn.execute("SELECT 1 FROM iam_managed_policies WHERE arn = ?", (policy_arn,)).fetchone() is None:
                raise NoSuchEntityError(f"Policy {policy_arn} does not exist or is not attachable.")
            if tx.conn.execute("SELECT 1 FROM iam_attached_policies WHERE policy_arn = ?", (policy_arn,)).fetchone():
                raise DeleteConflictError("Cannot delete a policy attached to entities.")
            tx.conn.execute("DELETE FROM iam_managed_policies WHERE arn = ?", (policy_arn,))
            self._on_write(tx)

    def _attach(self, kind: str, name: str, policy_arn: str) -> None:
        self._authorize(f"Attach{kind.capitalize()}Policy", self._entity_arn(kind, name))
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
        self._authorize(f"Detach{kind.capitalize()}Policy", self._entity_arn(kind, name))
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
        self._authorize(f"ListAttached{kind.capitalize()}Policies", self._entity_arn(kind, name))
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
            raise IamAccessDeniedError(decision.message, decision=decision)
        return f"arn:aws:sts::{role.account}:assumed-role/{name}/{role_session_name}"
