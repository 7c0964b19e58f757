"""Policy evaluation as AWS does it, for KMS keys and for everything else (ECR).

One function decides (:func:`evaluate`); :func:`simulate` builds the request and
decides, :func:`enforce` simulates and raises on a denial, so the simulator and
enforcement cannot disagree.

Rules (IAM User Guide, "Policy evaluation logic" and "Cross-account policy
evaluation logic", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html;
KMS Developer Guide, "Key policies" and "Allowing users in other accounts to use
a KMS key", https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html):

1. an explicit ``Deny`` that applies -- in the resource policy or in any of the
   caller's identity policies -- wins over every allow;
2. a KMS key (``resource_policy`` of kind ``key``): the key policy allows the
   caller directly; or it allows the caller's *account* (``arn:aws:iam::<acct>:root``
   or the bare id -- which "enables IAM policies" for that account) and an
   identity policy allows the caller; or a grant allows it. Across accounts the
   key policy must allow the caller or its account **and** the caller's identity
   policy must allow the key -- or a grant allows it;
3. any other resource (an ECR repository, or no resource): within one account
   the identity policy or a resource policy naming the caller suffices; across
   accounts both are needed;
4. the account root user holds every identity permission in its own account
   (IAM policies cannot restrict it), so its identity side is always satisfied;
   it still needs the key policy for a KMS key;
5. ``kms:RetireGrant`` is an IAM permission of the key's account (KMS: it "is not
   effective in a key policy"): an identity policy there, or a grant listing
   ``RetireGrant``, allows it; whether the caller is a grant's retiring
   principal is for the KMS model, which knows the grant, to check;
6. a KMS request on a key must come with its key policy (every key has one);
7. a service principal has no identity policies: only a resource-policy
   statement naming it, or a grant, allows it. A call a service makes *on a
   caller's behalf* is the caller's request with ``kms:ViaService`` set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ecrcrypt.authz.conditions import ContextValue
from ecrcrypt.authz.decision import DecidingStatement, Decision, Reason
from ecrcrypt.authz.grant import Grant
from ecrcrypt.authz.policy import Effect, Policy, PolicyKind, PrincipalMatch
from ecrcrypt.authz.principal import Principal, PrincipalKind
from ecrcrypt.authz.request import Request
from ecrcrypt.errors import ValidationError

__all__ = ["enforce", "evaluate", "simulate"]


def _check_policies(resource_policy: Policy | None, identity_policies: Sequence[Policy], principal: Principal) -> None:
    if resource_policy is not None and resource_policy.kind is PolicyKind.IDENTITY:
        raise ValidationError(f"{resource_policy.name} is an identity policy, not a resource policy")
    for policy in identity_policies:
        if policy.kind is not PolicyKind.IDENTITY:
            raise ValidationError(f"{policy.name} is a {policy.kind.value} policy, not an identity policy")
    if identity_policies and principal.kind is PrincipalKind.SERVICE:
        raise ValidationError(f"{principal.arn} is a service principal: it has no identity policies")


def _labels(found: Sequence[DecidingStatement]) -> str:
    return ", ".join(str(item) for item in found)


class _Scan:
    """The statements of every policy that apply to one request, sorted by what they do."""

    def __init__(self, request: Request, resource_policy: Policy | None, identity_policies: Sequence[Policy]) -> None:
        self.denies: list[DecidingStatement] = []
        self.direct: list[DecidingStatement] = []
        self.account: list[DecidingStatement] = []
        self.identity: list[DecidingStatement] = []
        action, resource, context = request.action, request.resource, request.context
        principal = request.principal
        if resource_policy is not None:
            for statement in resource_policy.statements:
                match = statement.principal_match(principal)
                if match is PrincipalMatch.NONE or not statement.applies(action, resource, context):
                    continue
                found = DecidingStatement(policy=resource_policy.name, statement=statement)
                if statement.effect is Effect.DENY:
                    self.denies.append(found)
                elif match is PrincipalMatch.DIRECT:
                    self.direct.append(found)
                else:
                    self.account.append(found)
        for policy in identity_policies:
            for statement in policy.statements:
                if statement.applies(action, resource, context):
                    found = DecidingStatement(policy=policy.name, statement=statement)
                    (self.denies if statement.effect is Effect.DENY else self.identity).append(found)
        # The root user's own-account permissions are not written in any policy.
        self.identity_ok = bool(self.identity) or principal.kind is PrincipalKind.ROOT


def _decide(request: Request, reason: Reason, explanation: str, *found: Sequence[DecidingStatement]) -> Decision:
    statements = tuple(item for group in found for item in group)
    return Decision(
        request=request, allowed=reason.allows, reason=reason, statements=statements, explanation=explanation
    )


def _by_grant(request: Request, granted: tuple[Grant, ...]) -> Decision:
    labels = ", ".join(grant.label for grant in granted)
    return Decision(
        request=request, allowed=True, reason=Reason.ALLOWED_BY_GRANT, grants=granted, explanation=f"{labels} allows it"
    )


def _identity_words(scan: _Scan) -> str:
    if scan.identity:
        return _labels(scan.identity)
    return "the account root user's own permissions"


def _evaluate_key(request: Request, key_policy: Policy, scan: _Scan, grants: Sequence[Grant]) -> Decision:
    principal = request.principal
    owner = request.resource_account
    account = principal.account
    same_account = principal.kind is PrincipalKind.SERVICE or owner is None or owner == account
    granted = tuple(grant for grant in grants if grant.allows(request))
    policy = f"the {key_policy.name}"

    if same_account:
        if scan.direct:
            return _decide(request, Reason.ALLOWED_BY_RESOURCE_POLICY, f"{_labels(scan.direct)} allows it", scan.direct)
        if scan.account and scan.identity_ok:
            return _decide(
                request,
                Reason.ALLOWED_BY_BOTH,
                f"{_labels(scan.account)} enables IAM policies for account {account}, and {_identity_words(scan)} "
                "allows it",
                scan.account,
                scan.identity,
            )
        if granted:
            return _by_grant(request, granted)
        if scan.identity and not scan.account:
            return _decide(
                request,
                Reason.IAM_NOT_ENABLED,
                f"the key policy does not enable IAM policies for account {account}: no statement of {policy} "
                f"allows {request.action} to arn:aws:iam::{account}:root, so {_labels(scan.identity)} has no effect",
                scan.identity,
            )
        if scan.account:
            return _decide(
                request,
                Reason.NO_IDENTITY_ALLOW,
                f"{_labels(scan.account)} enables IAM policies for account {account}, but no identity policy allows it",
                scan.account,
            )
        return _decide(
            request,
            Reason.NO_RESOURCE_POLICY_ALLOW,
            f"no statement in {policy} allows it, and no grant does",
        )
    key_side = scan.direct + scan.account
    if key_side and scan.identity_ok:
        return _decide(
            request,
            Reason.ALLOWED_BY_BOTH,
            f"cross-account: {_labels(key_side)} allows it and {_identity_words(scan)} allows it",
            key_side,
            scan.identity,
        )
    if granted:
        return _by_grant(request, granted)
    if key_side:
        return _decide(
            request,
            Reason.CROSS_ACCOUNT_NO_IDENTITY_ALLOW,
            f"cross-account: {policy} allows it ({_labels(key_side)}) but the caller's IAM policy does not "
            f"(no identity policy of account {account} allows it)",
            key_side,
        )
    if scan.identity:
        return _decide(
            request,
            Reason.CROSS_ACCOUNT_NO_RESOURCE_POLICY_ALLOW,
            f"cross-account: the caller's IAM policy allows it ({_labels(scan.identity)}) but {policy} of "
            f"account {owner} does not allow {principal.policy_arn} or its account",
            scan.identity,
        )
    return _decide(
        request,
        Reason.NO_RESOURCE_POLICY_ALLOW,
        f"cross-account: no statement in {policy} of account {owner} allows it, no identity policy allows it, "
        "and no grant does",
    )


def _evaluate_retire(request: Request, key_policy: Policy, scan: _Scan, grants: Sequence[Grant]) -> Decision:
    """``kms:RetireGrant``: an IAM permission of the key's account, never a key-policy one.

    KMS: ``kms:RetireGrant`` "is not effective in a key policy"; principals of the
    account that owns the key may retire its grants when an IAM policy allows it
    (this is how ECR's repository deleter retires the grants, P1/P3), and a grant
    that lists ``RetireGrant`` lets its grantee retire. Whether the caller is the
    retiring principal of one particular grant is for the KMS model to check.
    """
    principal = request.principal
    owner = request.resource_account
    granted = tuple(grant for grant in grants if grant.allows(request))
    if scan.identity_ok and (owner is None or owner == principal.account):
        return _decide(request, Reason.ALLOWED_BY_IDENTITY_POLICY, f"{_identity_words(scan)} allows it", scan.identity)
    if granted:
        return _by_grant(request, granted)
    where = "" if owner is None or owner == principal.account else f" (the key belongs to account {owner})"
    return _decide(
        request,
        Reason.NO_IDENTITY_ALLOW,
        f"no identity policy of the key's account allows it{where}, and no grant does; kms:RetireGrant is an IAM "
        f"permission -- a statement in the {key_policy.name} does not grant it",
    )


def _evaluate_other(request: Request, resource_policy: Policy | None, scan: _Scan) -> Decision:
    principal = request.principal
    owner = request.resource_account
    policy = f"the {resource_policy.name}" if resource_policy is not None else "a resource policy"
    if principal.kind is PrincipalKind.SERVICE:
        if scan.direct:
            return _decide(request, Reason.ALLOWED_BY_RESOURCE_POLICY, f"{_labels(scan.direct)} allows it", scan.direct)
        return _decide(
            request, Reason.NO_RESOURCE_POLICY_ALLOW, f"no statement in {policy} allows the service principal"
        )
    if owner is None or owner == principal.account:
        if scan.direct and scan.identity:
            return _decide(
                request,
                Reason.ALLOWED_BY_BOTH,
                f"{_labels(scan.direct)} and {_labels(scan.identity)} allow it",
                scan.direct,
                scan.identity,
            )
        if scan.direct:
            return _decide(request, Reason.ALLOWED_BY_RESOURCE_POLICY, f"{_labels(scan.direct)} allows it", scan.direct)
        if scan.identity_ok:
            return _decide(
                request, Reason.ALLOWED_BY_IDENTITY_POLICY, f"{_identity_words(scan)} allows it", scan.identity
            )
        also = f", and no statement in {policy} allows {principal.policy_arn}" if resource_policy is not None else ""
        return _decide(request, Reason.NO_IDENTITY_ALLOW, f"no identity policy allows it{also}", scan.account)
    resource_side = scan.direct + scan.account
    if resource_side and scan.identity_ok:
        return _decide(
            request,
            Reason.ALLOWED_BY_BOTH,
            f"cross-account: {_labels(resource_side)} allows it and {_identity_words(scan)} allows it",
            resource_side,
            scan.identity,
        )
    if resource_side:
        return _decide(
            request,
            Reason.CROSS_ACCOUNT_NO_IDENTITY_ALLOW,
            f"cross-account: {policy} allows it ({_labels(resource_side)}) but the caller's IAM policy does not",
            resource_side,
        )
    if scan.identity_ok:
        return _decide(
            request,
            Reason.CROSS_ACCOUNT_NO_RESOURCE_POLICY_ALLOW,
            f"cross-account: the caller's IAM policy allows it ({_identity_words(scan)}) but {policy} of account "
            f"{owner} does not allow {principal.policy_arn} or its account",
            scan.identity,
        )
    return _decide(
        request,
        Reason.NO_RESOURCE_POLICY_ALLOW,
        f"cross-account: neither {policy} of account {owner} nor an identity policy allows it",
    )


def evaluate(
    request: Request,
    *,
    resource_policy: Policy | None = None,
    identity_policies: Sequence[Policy] = (),
    grants: Sequence[Grant] = (),
) -> Decision:
    """Decide ``request``.

    ``resource_policy`` is the key policy for a KMS key (kind ``key``: KMS rules
    apply), or the repository (or trust) policy otherwise; ``identity_policies``
    are every identity policy of the caller (a session's: its role's);
    ``grants`` are the grants on the key (ignored for other resources).
    """
    _check_policies(resource_policy, identity_policies, request.principal)
    if resource_policy is None and ":key/" in request.resource and request.action.lower().startswith("kms:"):
        # Every KMS key has a key policy; deciding without it would silently use the non-KMS rules.
        raise ValidationError(f"{request.action} on {request.resource}: pass the key's key policy as resource_policy")
    scan = _Scan(request, resource_policy, identity_policies)
    if scan.denies:
        return _decide(request, Reason.EXPLICIT_DENY, f"explicit deny in {_labels(scan.denies)}", scan.denies)
    if resource_policy is not None and resource_policy.kind is PolicyKind.KEY:
        if request.action.lower() == "kms:retiregrant":
            return _evaluate_retire(request, resource_policy, scan, grants)
        return _evaluate_key(request, resource_policy, scan, grants)
    return _evaluate_other(request, resource_policy, scan)


def simulate(
    principal: Principal | str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
    *,
    resource_policy: Policy | None = None,
    identity_policies: Sequence[Policy] = (),
    grants: Sequence[Grant] = (),
) -> Decision:
    """What would happen to this request: the decision, the statements that made it, and why."""
    request = Request(principal=principal, action=action, resource=resource, context=dict(context or {}))
    return evaluate(request, resource_policy=resource_policy, identity_policies=identity_policies, grants=grants)


def enforce(
    principal: Principal | str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
    *,
    resource_policy: Policy | None = None,
    identity_policies: Sequence[Policy] = (),
    grants: Sequence[Grant] = (),
) -> Decision:
    """:func:`simulate`, raising :class:`~ecrcrypt.authz.errors.PolicyAccessDeniedError` on a denial."""
    decision = simulate(
        principal,
        action,
        resource,
        context,
        resource_policy=resource_policy,
        identity_policies=identity_policies,
        grants=grants,
    )
    if not decision.allowed:
        raise decision.error()
    return decision
