"""Who may do what with a local KMS key: callers, the default key policy, grants (private).

The model (docs/kms-model.md, kms-ecr-semantics.md §5):
``allowed = not explicit_deny and (key_policy_allows or grant_allows)``.

* The default key policy of a customer managed key gives the account's principals
  (``arn:aws:iam::<acct>:root`` / ``:user/...`` / ``:role/...``, STS assumed roles)
  everything, as its ``arn:aws:iam::<acct>:root`` + ``kms:*`` statement with IAM
  enabled does.
* An AWS managed key's fixed policy lets the account's principals only describe the
  key and manage grants on it; cryptographic use goes through the owning service
  (here: through grants to the service principal).
* Anyone else -- service principals such as ``ecr.us-east-1.amazonaws.com``, other
  accounts -- only through a grant naming them, for the grant's operations, when the
  request's encryption context satisfies the grant's constraint (KMS: constraints are
  ignored for DescribeKey and RetireGrant).
* ``deny`` models IAM explicit denies (``kms:RetireGrant``, ``kms:*``); an explicit
  deny always wins (KMS: "never denied, in a key policy, IAM policy, or grant").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ecrcrypt.errors import AccessDeniedError, ValidationError
from ecrcrypt.kms import GrantConstraints, GrantOperation, KeyManager
from ecrcrypt.kms.local.store import GrantRecord, KeyRecord

_IAM = re.compile(r"arn:aws[a-z-]*:(iam|sts)::([0-9]{12}):(root|user/.+|role/.+|assumed-role/.+)")
_SERVICE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com(\.cn)?")
_ACCOUNT = re.compile(r"[0-9]{12}")

# The operations an AWS managed key's policy lets the account's own principals call.
AWS_MANAGED_ACCOUNT_OPERATIONS = frozenset(
    {"DescribeKey", "CreateGrant", "ListGrants", "RetireGrant", "GetKeyRotationStatus", "ListAliases"}
)
# KMS: grant constraints "are ignored for DescribeKey and RetireGrant".
_UNCONSTRAINED = frozenset({GrantOperation.DESCRIBE_KEY, GrantOperation.RETIRE_GRANT, GrantOperation.CREATE_GRANT})


@attrs.frozen(kw_only=True)
class Caller:
    """The identity a client is bound to, parsed once."""

    principal: str
    account: str | None  # None for a service principal
    identity_type: str
    denies: frozenset[str] = frozenset()
    user_identity: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    identity_json: str = attrs.field(default="{}", eq=False, repr=False)

    @classmethod
    def parse(cls, principal: str, deny: Iterable[str] = ()) -> Caller:
        if not isinstance(principal, str):
            raise ValidationError(f"a principal must be a str, not {type(principal).__name__}")
        denies = frozenset(deny)
        for d in denies:
            if not isinstance(d, str) or not d.startswith("kms:"):
                raise ValidationError(f"deny entries are IAM actions like 'kms:RetireGrant', not {d!r}")
        if _ACCOUNT.fullmatch(principal):
            principal = f"arn:aws:iam::{principal}:root"
        m = _IAM.fullmatch(principal)
        if m is not None:
            account = m.group(2)
            resource = m.group(3)
            kind = "Root" if resource == "root" else "IAMUser" if resource.startswith("user/") else "AssumedRole"
            identity: dict[str, Any] = {"type": kind, "arn": principal, "accountId": account}
            return cls(
                principal=principal,
                account=account,
                identity_type=kind,
                denies=denies,
                user_identity=identity,
                identity_json=json.dumps(identity, separators=(",", ":")),
            )
        if _SERVICE.fullmatch(principal):
            identity = {"type": "AWSService", "invokedBy": principal}
            return cls(
                principal=principal,
                account=None,
                identity_type="AWSService",
                denies=denies,
                user_identity=identity,
                identity_json=json.dumps(identity, separators=(",", ":")),
            )
        raise ValidationError(
            f"{principal!r} is not a principal: expected an account id, an IAM/STS ARN or a service principal"
        )

    def denied(self, operation: str) -> bool:
        return bool(self.denies) and ("kms:*" in self.denies or f"kms:{operation}" in self.denies)


def access_denied(caller: Caller, operation: str, resource: str, *, explicit: bool = False) -> AccessDeniedError:
    # KMS's message shape: "User: <arn> is not authorized to perform: kms:<Op> on
    # resource: <key ARN> because ..."
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else "because no key policy, IAM policy or grant allows it"
    )
    return AccessDeniedError(
        f"User: {caller.principal} is not authorized to perform: kms:{operation} on resource: {resource} {why}"
    )


def check_denied(caller: Caller, operation: str, resource: str) -> None:
    if caller.denied(operation):
        raise access_denied(caller, operation, resource, explicit=True)


def policy_allows(caller: Caller, key: KeyRecord, operation: str) -> bool:
    """What the key policy alone allows (grants aside)."""
    if caller.account != key.account:
        return False
    if key.manager is KeyManager.CUSTOMER:
        return True
    return operation in AWS_MANAGED_ACCOUNT_OPERATIONS


def fold_pairs(context: Mapping[str, str] | None) -> frozenset[tuple[str, str]]:
    """A context's pairs as grant constraints compare them: keys lower-cased, values kept
    (folded exactly as ``GrantConstraints.allows`` folds them)."""
    return fold_items((context or {}).items())


# What a context two of whose keys differ only in case folds to. Folding would let the
# later key silently replace the other ({"tenant": "a", "TENANT": "b"} passing an
# Equals {"tenant": "a"} constraint), so such a context satisfies no grant constraint
# (GrantConstraints.allows says the same). Recognised by identity (``is``), never by
# value, so that no real context or grant can ever equal it.
COLLIDING: frozenset[tuple[str, str]] = frozenset({("\x00colliding-keys\x00", "\x00")})


def fold_items(items: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """:func:`fold_pairs` of a context given as its ``(key, value)`` pairs
    (:data:`COLLIDING` when two keys differ only in case)."""
    pairs = list(items)
    folded = {k.lower(): v for k, v in pairs}
    if len(folded) != len(pairs):
        return COLLIDING
    return frozenset(folded.items())


class GrantIndex:
    """The live grants of one key, indexed so that a grant check does not scan them.

    A key may hold 50,000 grants, most for one grantee (ECR's service principal,
    two per repository, each constrained to its repository). Subset-constrained
    grants are filed under each of their (folded) pairs, so a request looks up only
    the few pairs of its own context; Equals-constrained grants under their whole set.
    The index is updated in place by this process's CreateGrant / RetireGrant /
    RevokeGrant (:meth:`add`, :meth:`remove`), so that creating N grants one by one
    does not decode O(N²) rows.
    """

    def __init__(self, grants: Iterable[GrantRecord]) -> None:
        self._all: dict[str, GrantRecord] = {}
        self._last_seq = -1
        self._ordered = True
        self._by_grantee: dict[str, dict[str, GrantRecord]] = {}
        self._free: dict[str, dict[str, GrantRecord]] = {}
        self._subset: dict[tuple[str, tuple[str, str]], dict[str, tuple[frozenset[tuple[str, str]], GrantRecord]]] = {}
        self._equals: dict[tuple[str, frozenset[tuple[str, str]]], dict[str, GrantRecord]] = {}
        for g in grants:
            self.add(g)

    @property
    def all(self) -> tuple[GrantRecord, ...]:
        """Every grant, in creation (``seq``) order."""
        if self._ordered:
            return tuple(self._all.values())
        return tuple(sorted(self._all.values(), key=lambda g: g.seq))

    def __len__(self) -> int:
        return len(self._all)

    def add(self, g: GrantRecord) -> None:
        """File a grant (a grant id already present is replaced)."""
        if g.grant_id in self._all:
            self.remove(g.grant_id)
        self._all[g.grant_id] = g
        if g.seq < self._last_seq:
            self._ordered = False
        self._last_seq = max(self._last_seq, g.seq)
        self._by_grantee.setdefault(g.grantee, {})[g.grant_id] = g
        c = g.constraints
        if c is not None and c.encryption_context_equals is not None:
            self._equals.setdefault((g.grantee, fold_pairs(c.encryption_context_equals)), {})[g.grant_id] = g
            return
        pairs = fold_pairs(c.encryption_context_subset) if c is not None else frozenset()
        if not pairs:  # no constraint, or an empty subset: any context satisfies it
            self._free.setdefault(g.grantee, {})[g.grant_id] = g
            return
        for pair in pairs:
            self._subset.setdefault((g.grantee, pair), {})[g.grant_id] = (pairs, g)

    def remove(self, grant_id: str) -> None:
        """Forget a grant (retired, revoked); an unknown id is ignored."""
        g = self._all.pop(grant_id, None)
        if g is None:
            return
        _discard(self._by_grantee, g.grantee, grant_id)
        c = g.constraints
        if c is not None and c.encryption_context_equals is not None:
            _discard(self._equals, (g.grantee, fold_pairs(c.encryption_context_equals)), grant_id)
            return
        pairs = fold_pairs(c.encryption_context_subset) if c is not None else frozenset()
        if not pairs:
            _discard(self._free, g.grantee, grant_id)
            return
        for pair in pairs:
            _discard(self._subset, (g.grantee, pair), grant_id)

    def of(self, grantee: str) -> Sequence[GrantRecord]:
        mine = self._by_grantee.get(grantee)
        return () if mine is None else tuple(mine.values())

    def find(
        self,
        grantee: str,
        operation: GrantOperation,
        context: Mapping[str, str] | None,
        pairs: frozenset[tuple[str, str]] | None = None,
    ) -> GrantRecord | None:
        """A grant letting ``grantee`` call ``operation`` with ``context``, if any
        (``pairs``: ``fold_pairs(context)``, when the caller has it at hand)."""
        mine = self._by_grantee.get(grantee)
        if not mine:
            return None
        if operation in _UNCONSTRAINED:
            return next((g for g in mine.values() if operation in g.operations), None)
        if pairs is None:
            pairs = fold_pairs(context)
        free = self._free.get(grantee)
        if pairs is COLLIDING:  # only a grant without any constraint (not even an empty subset)
            return next((g for g in (free or {}).values() if g.constraints is None and operation in g.operations), None)
        if free:
            for g in free.values():
                if operation in g.operations:
                    return g
        equal = self._equals.get((grantee, pairs))
        if equal:
            for g in equal.values():
                if operation in g.operations:
                    return g
        for pair in pairs:
            filed = self._subset.get((grantee, pair))
            if filed:
                for wanted, g in filed.values():
                    if operation in g.operations and wanted <= pairs:
                        return g
        return None


def _discard(index: dict[Any, dict[str, Any]], key: Any, grant_id: str) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.pop(grant_id, None)
        if not bucket:
            del index[key]


EMPTY_GRANTS = GrantIndex(())


def authorize(
    caller: Caller,
    key: KeyRecord,
    operation: str,
    *,
    grants: GrantIndex | Callable[[], GrantIndex] = EMPTY_GRANTS,
    context: Mapping[str, str] | None = None,
    pairs: frozenset[tuple[str, str]] | None = None,
) -> None:
    """Raise ``AccessDeniedError`` unless the caller may call ``operation`` on ``key``.

    ``grants`` may be a function giving the index: it is called only when the key
    policy does not already allow the call (the key's account, usually), so that a
    DescribeKey by the account does not load the key's grants.
    """
    check_denied(caller, operation, key.arn)
    if policy_allows(caller, key, operation):
        return
    try:
        grant_op = GrantOperation(operation)
    except ValueError:
        grant_op = None
    if grant_op is not None:
        index = grants if isinstance(grants, GrantIndex) else grants()
        if index.find(caller.principal, grant_op, context, pairs) is not None:
            return
    raise access_denied(caller, operation, key.arn)


def child_grant_allowed(
    parent: GrantRecord, operations: frozenset[GrantOperation], constraints: GrantConstraints | None
) -> bool:
    """KMS: a grant allowing CreateGrant can only create grants with a subset of its
    operations and equally strict or stricter constraints."""
    if not operations <= parent.operations:
        return False
    pc = parent.constraints
    if pc is None:
        return True
    if constraints is None:
        return False
    pairs: Mapping[str, str] = constraints.encryption_context_equals or constraints.encryption_context_subset or {}
    child_pairs = {k.lower(): v for k, v in pairs.items()}
    if pc.encryption_context_equals is not None:
        wanted = {k.lower(): v for k, v in pc.encryption_context_equals.items()}
        return constraints.encryption_context_equals is not None and child_pairs == wanted
    assert pc.encryption_context_subset is not None
    return all(child_pairs.get(k.lower()) == v for k, v in pc.encryption_context_subset.items())
