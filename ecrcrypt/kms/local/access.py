"""Who may do what with a local KMS key: callers, and the policy engine's decision for each request (private).

Every request is decided by :func:`ecrcrypt.authz.evaluate` (KMS Developer Guide,
"Determining access to a KMS key",
https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html):
an explicit deny in the key policy or any identity policy wins; otherwise the key
policy must allow the caller -- directly, or by naming the caller's account
(``arn:aws:iam::<acct>:root``), which *enables IAM policies*, when an identity policy
of the caller allows it too -- or a grant on the key must. Across accounts both
halves are needed. The policies come from the service (:class:`PolicySource`: the
stored key policy and the caller's IAM policies, compiled once per write and
cached); grants come from the key's :class:`GrantIndex`, looked up only when the
policies do not allow the call, so a grant check never scans the key's grants.

The request context carries what the client knows about the call:
``kms:ViaService`` when an AWS service (ECR) calls on the caller's behalf,
``kms:GrantIsForAWSResource`` for that service's grant operations, and the
encryption context of a cryptographic call (``kms:EncryptionContext:<key>``,
``kms:EncryptionContextKeys``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ecrcrypt.authz import (
    ContextValue,
    DecidingStatement,
    Decision,
    Grant,
    Policy,
    PolicyKind,
    Principal,
    PrincipalMatch,
    Reason,
    Request,
    evaluate,
)
from ecrcrypt.errors import AccessDeniedError, InvalidArnError, MalformedPolicyDocumentError, ValidationError
from ecrcrypt.kms import GrantConstraints, GrantOperation
from ecrcrypt.kms.local.store import GrantRecord, KeyRecord

_ACCOUNT = re.compile(r"[0-9]{12}")
_DENY_ACTION = re.compile(r"kms:[A-Za-z*?]+")

# KMS: grant constraints "are ignored for DescribeKey and RetireGrant".
_UNCONSTRAINED = frozenset({GrantOperation.DESCRIBE_KEY, GrantOperation.RETIRE_GRANT, GrantOperation.CREATE_GRANT})
# KMS: kms:GrantIsForAWSResource is true when "an AWS service integrated with AWS KMS calls" CreateGrant,
# ListGrants or RevokeGrant "on the user's behalf" (KMS Developer Guide, AWS KMS condition keys).
_GRANT_CALLS = frozenset({"CreateGrant", "ListGrants", "RevokeGrant"})
# The operations that take an encryption context (the kms:EncryptionContext keys exist only for them).
_CONTEXT_CALLS = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    }
)
# Condition keys whose value changes from one call to the next on the same client and key.
_PER_CALL_KEYS = ("kms:encryptioncontext", "kms:grantoperations", "kms:granteeprincipal", "kms:retiringprincipal")


@attrs.frozen(kw_only=True)
class Caller:
    """The identity a client is bound to, parsed once, with what it knows about its calls."""

    principal: str
    account: str | None  # None for a service principal
    identity_type: str
    parsed: Principal = attrs.field(eq=False, repr=False)
    denies: frozenset[str] = frozenset()
    deny_policy: Policy | None = attrs.field(default=None, eq=False, repr=False)
    """``deny`` as an identity policy of explicit denies (see :meth:`parse`)."""
    via_service: str | None = None
    """``kms:ViaService``: the service calling on this caller's behalf (``ecr.<region>.amazonaws.com``)."""
    source_arn: str | None = None
    """``aws:SourceArn``: the resource a service principal calls on behalf of (a grant's ``SourceArn``)."""
    user_identity: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    identity_json: str = attrs.field(default="{}", eq=False, repr=False)

    @classmethod
    def parse(
        cls, principal: str, deny: Iterable[str] = (), *, via_service: str | None = None, source_arn: str | None = None
    ) -> Caller:
        """``principal``: an account id (its root), an IAM/STS ARN or a service principal.

        ``deny`` lists ``kms:`` actions (wildcards allowed) the caller is explicitly
        denied, as an inline identity policy with one Deny statement would.
        """
        if not isinstance(principal, str):
            raise ValidationError(f"a principal must be a str, not {type(principal).__name__}")
        denies = frozenset(deny)
        for d in denies:
            if not isinstance(d, str) or _DENY_ACTION.fullmatch(d) is None:
                raise ValidationError(f"deny entries are IAM actions like 'kms:RetireGrant', not {d!r}")
        if _ACCOUNT.fullmatch(principal):
            principal = f"arn:aws:iam::{principal}:root"
        try:
            parsed = Principal.parse(principal)
        except InvalidArnError as exc:
            raise ValidationError(
                f"{principal!r} is not a principal: expected an account id, an IAM/STS ARN or a service principal"
            ) from exc
        identity: dict[str, Any]
        if parsed.account is not None:
            kinds = {"root": "Root", "user": "IAMUser", "role": "AssumedRole", "assumed-role": "AssumedRole"}
            kind = kinds[parsed.kind.value]
            identity = {"type": kind, "arn": principal, "accountId": parsed.account}
        else:
            kind = "AWSService"
            identity = {"type": kind, "invokedBy": principal}
        if via_service is not None:
            # CloudTrail: a call a service makes with the caller's credentials names it in invokedBy.
            identity["invokedBy"] = via_service
        deny_policy = None
        if denies:
            document = {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "deny", "Effect": "Deny", "Action": sorted(denies), "Resource": "*"}],
            }
            deny_policy = Policy.parse(document, kind=PolicyKind.IDENTITY, name="identity policy 'deny'")
        return cls(
            principal=principal,
            account=parsed.account,
            identity_type=kind,
            parsed=parsed,
            denies=denies,
            deny_policy=deny_policy,
            via_service=via_service,
            source_arn=None if source_arn is None else _checked_source_arn(source_arn),
            user_identity=identity,
            identity_json=json.dumps(identity, separators=(",", ":")),
        )

    def via(self, service: str) -> Caller:
        """This caller, calling through ``service`` (``kms:ViaService``)."""
        return Caller.parse(self.principal, self.denies, via_service=service, source_arn=self.source_arn)


class PolicySource(Protocol):
    """Where the policies of a request come from: the service's stored, compiled documents."""

    def _key_policy(self, key: KeyRecord) -> Policy: ...

    def _identity_policies(self, caller: Caller) -> tuple[Policy, ...]: ...

    def _unregistered(self, caller: Caller) -> bool: ...


def request_context(
    caller: Caller,
    operation: str,
    encryption_context: Mapping[str, str] | None = None,
    extra: Mapping[str, ContextValue] | None = None,
) -> dict[str, ContextValue]:
    """The condition keys of one call (the principal's own keys are derived by :class:`Request`)."""
    context: dict[str, ContextValue] = dict(extra or {})
    if caller.source_arn is not None:
        context["aws:SourceArn"] = caller.source_arn
    if caller.via_service is not None:
        context["kms:ViaService"] = caller.via_service
        if operation in _GRANT_CALLS:
            context["kms:GrantIsForAWSResource"] = True
    if encryption_context and operation in _CONTEXT_CALLS:
        for k, v in encryption_context.items():
            context[f"kms:EncryptionContext:{k}"] = v
        context["kms:EncryptionContextKeys"] = list(encryption_context)
    return context


def decide(
    policies: PolicySource,
    caller: Caller,
    key: KeyRecord | None,
    operation: str,
    context: Mapping[str, ContextValue] | None = None,
    grants: Sequence[Any] = (),
) -> Decision:
    """The engine's decision on ``kms:<operation>`` by ``caller`` on ``key`` (``None``: no key, resource ``*``)."""
    request = Request(
        principal=caller.parsed,
        action=f"kms:{operation}",
        resource="*" if key is None else key.arn,
        context=dict(context) if context is not None else request_context(caller, operation),
    )
    identity = policies._identity_policies(caller)
    if caller.parsed.is_service and caller.deny_policy is not None:
        # A service principal has no identity policies; ``deny`` on one models access taken away from it.
        for statement in caller.deny_policy.statements:
            if statement.applies(request.action, request.resource, request.context):
                found = DecidingStatement(policy=caller.deny_policy.name, statement=statement)
                return Decision(
                    request=request,
                    allowed=False,
                    reason=Reason.EXPLICIT_DENY,
                    statements=(found,),
                    explanation=f"explicit deny in {found}",
                )
        identity = ()
    decision = evaluate(
        request,
        resource_policy=None if key is None else policies._key_policy(key),
        identity_policies=identity,
        grants=grants,
    )
    if not identity and decision.reason in _NO_IDENTITY and policies._unregistered(caller):
        # The likeliest mistake behind this denial is a caller nobody created (or a typo in its ARN).
        return attrs.evolve(
            decision,
            explanation=f"{decision.explanation} ({caller.principal} is not a user or role of the IAM store, so it "
            "has no identity policies: create it with LocalKms.iam.create_user or create_role)",
        )
    return decision


_NO_IDENTITY = frozenset({Reason.NO_IDENTITY_ALLOW, Reason.CROSS_ACCOUNT_NO_IDENTITY_ALLOW})


class Verdict(enum.Enum):
    """What the policies alone say about one caller, key and operation, when that holds for every call."""

    ALLOW = "allow"
    DENY = "deny"
    GRANTS = "grants"  # the policies neither allow nor deny: a grant must
    PER_CALL = "per-call"  # a relevant condition reads a per-call key (encryption context): decide each call


def verdict(policies: PolicySource, caller: Caller, key: KeyRecord, operation: str) -> Verdict:
    """The decision on ``operation`` that holds whatever the call's encryption context, if one does.

    Computed once per client, key and operation (the client caches it until the next
    state change), so that the hot path decides with a dictionary lookup.
    """
    principal = caller.parsed
    relevant = [
        s for s in policies._key_policy(key).statements if s.principal_match(principal) is not PrincipalMatch.NONE
    ]
    for policy in policies._identity_policies(caller):
        relevant.extend(policy.statements)
    if any(k.startswith(_PER_CALL_KEYS) for s in relevant for k in s.condition.keys):
        return Verdict.PER_CALL
    decision = decide(policies, caller, key, operation)
    if decision.allowed:
        return Verdict.ALLOW
    return Verdict.DENY if decision.reason is Reason.EXPLICIT_DENY else Verdict.GRANTS


def denied(decision: Decision) -> AccessDeniedError:
    """The ``AccessDeniedException`` of a denial: the engine's teaching message."""
    return decision.error()


def account_denied(caller: Caller, operation: str, account: str) -> AccessDeniedError:
    """A call on the account's resources by a principal of another account (this KMS serves one account)."""
    return AccessDeniedError(
        f"User: {caller.principal} is not authorized to perform: kms:{operation} on resource: * because this "
        f"local KMS serves account {account}, and kms:{operation} acts on the caller's own account"
    )


def authorize_account(policies: PolicySource, caller: Caller, operation: str, account: str) -> None:
    """An operation on no key (CreateKey, ListKeys, ListAliases): the caller's account, and its identity policies."""
    if caller.account != account:
        raise account_denied(caller, operation, account)
    decision = decide(policies, caller, None, operation)
    if not decision.allowed:
        raise denied(decision)


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
        self._sourced = 0  # how many grants have a SourceArn constraint
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
        if c is not None and c.source_arn is not None:
            self._sourced += 1
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
        if c is not None and c.source_arn is not None:
            self._sourced -= 1
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
        source_arn: str | None = None,
    ) -> GrantRecord | None:
        """A grant letting ``grantee`` call ``operation`` with ``context``, on behalf of ``source_arn``, if any
        (``pairs``: ``fold_pairs(context)``, when the caller has it at hand)."""
        mine = self._by_grantee.get(grantee)
        if not mine:
            return None
        if self._sourced:
            # A grant with a SourceArn constraint allows only requests on behalf of that resource
            # (RetireGrant excepted): the few keys that have such grants take the plain scan.
            folded = fold_pairs(context) if pairs is None else pairs
            return next((g for g in mine.values() if _grant_fits(g, operation, folded, source_arn)), None)
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


def _grant_fits(
    g: GrantRecord, operation: GrantOperation, pairs: frozenset[tuple[str, str]], source: str | None
) -> bool:
    """One grant against one request (``pairs``: its folded context), without the index."""
    if operation not in g.operations:
        return False
    c = g.constraints
    if c is None:
        return True
    if operation is not GrantOperation.RETIRE_GRANT and not c.allows_source(source):
        return False
    if operation in _UNCONSTRAINED or (c.encryption_context_equals is None and c.encryption_context_subset is None):
        return True
    if pairs is COLLIDING:
        return False
    if c.encryption_context_equals is not None:
        return fold_pairs(c.encryption_context_equals) == pairs
    assert c.encryption_context_subset is not None
    return fold_pairs(c.encryption_context_subset) <= pairs


def _checked_source_arn(value: str) -> str:
    return str(GrantConstraints(source_arn=value).source_arn)


def _discard(index: dict[Any, dict[str, Any]], key: Any, grant_id: str) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.pop(grant_id, None)
        if not bucket:
            del index[key]


EMPTY_GRANTS = GrantIndex(())


def authorize(
    policies: PolicySource,
    caller: Caller,
    key: KeyRecord,
    operation: str,
    *,
    grants: GrantIndex | Callable[[], GrantIndex] = EMPTY_GRANTS,
    context: Mapping[str, str] | None = None,
    pairs: frozenset[tuple[str, str]] | None = None,
) -> Decision | None:
    """Raise ``AccessDeniedError`` unless the caller may call ``operation`` on ``key``.

    The policies decide first; ``grants`` (or a function giving them, called only
    then) are consulted when the policies neither allow nor explicitly deny. Returns
    the allowing decision of the policies, or ``None`` when a grant allowed.
    """
    decision = decide(policies, caller, key, operation, request_context(caller, operation, context))
    if decision.allowed:
        return decision
    if decision.reason is not Reason.EXPLICIT_DENY and grant_allows(caller, key, operation, grants, context, pairs):
        return None
    raise denied(decision)


def grant_allows(
    caller: Caller,
    key: KeyRecord,
    operation: str,
    grants: GrantIndex | Callable[[], GrantIndex],
    context: Mapping[str, str] | None,
    pairs: frozenset[tuple[str, str]] | None = None,
) -> bool:
    """A grant on ``key`` lets the caller (or, for a role session, its role) call ``operation``."""
    try:
        grant_op = GrantOperation(operation)
    except ValueError:
        return False
    index = grants if isinstance(grants, GrantIndex) else grants()
    for grantee in {caller.principal, caller.parsed.policy_arn}:
        if index.find(grantee, grant_op, context, pairs, caller.source_arn) is not None:
            return True
    return False


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
    if pc.source_arn is not None and constraints.source_arn != pc.source_arn:
        return False
    if pc.encryption_context_equals is None and pc.encryption_context_subset is None:
        return True
    pairs: Mapping[str, str] = constraints.encryption_context_equals or constraints.encryption_context_subset or {}
    child_pairs = {k.lower(): v for k, v in pairs.items()}
    if pc.encryption_context_equals is not None:
        wanted = {k.lower(): v for k, v in pc.encryption_context_equals.items()}
        return constraints.encryption_context_equals is not None and child_pairs == wanted
    assert pc.encryption_context_subset is not None
    return all(child_pairs.get(k.lower()) == v for k, v in pc.encryption_context_subset.items())


# KMS PolicyType: 1 to 131072 characters of tab, LF, CR and U+0020-U+00FF (botocore's model);
# the key policy quota (32 KB) is the engine's to check.
MAX_POLICY_TEXT = 131_072


def check_key_policy(document: object) -> Policy:
    """A key policy document as CreateKey / PutKeyPolicy take it, compiled (refused with KMS's codes)."""
    if not isinstance(document, str) or not 1 <= len(document) <= MAX_POLICY_TEXT:
        raise ValidationError(f"Policy must be a str of 1 to {MAX_POLICY_TEXT} characters")
    return Policy.parse(document, kind=PolicyKind.KEY, name="key policy")


def check_lockout(policies: PolicySource, caller: Caller, key_arn: str, policy: Policy) -> None:
    """KMS's policy lockout safety check: the new key policy must let the caller change it again.

    KMS: without ``BypassPolicyLockoutSafetyCheck`` it refuses a policy under which
    "the principal that is making the request" could not make a later PutKeyPolicy
    request (MalformedPolicyDocumentException), because a key nobody can manage
    cannot be repaired.
    """
    request = Request(principal=caller.parsed, action="kms:PutKeyPolicy", resource=key_arn, context={})
    decision = evaluate(request, resource_policy=policy, identity_policies=policies._identity_policies(caller))
    if not decision.allowed:
        raise MalformedPolicyDocumentError(
            "The new key policy will not allow you to update the key policy in the future "
            f"(PutKeyPolicy by {caller.principal}: {decision.explanation})."
        )


def engine_grant(grant: GrantRecord) -> Grant:
    """A stored grant as the policy engine's value (for the simulator)."""
    c = grant.constraints
    return Grant(
        grantee_principal=grant.grantee,
        operations=frozenset(op.value for op in grant.operations),
        encryption_context_equals=None
        if c is None or c.encryption_context_equals is None
        else dict(c.encryption_context_equals),
        encryption_context_subset=None
        if c is None or c.encryption_context_subset is None
        else dict(c.encryption_context_subset),
        source_arn=None if c is None else c.source_arn,
        grant_id=grant.grant_id,
    )
