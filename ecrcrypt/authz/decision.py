"""The answer to a request: allowed or not, which statements decided, and why in words.

A denial is meant to be debugged from its message alone, so the explanation
names the rule that failed (AWS's own messages only say "no identity-based policy
allows the action"; ecrcrypt also says which half of a cross-account pair is
missing, or that the key policy does not enable IAM policies).
"""

from __future__ import annotations

import enum

import attrs

from ecrcrypt.authz.errors import PolicyAccessDeniedError
from ecrcrypt.authz.grant import Grant
from ecrcrypt.authz.policy import Effect, Statement
from ecrcrypt.authz.request import Request

__all__ = ["Decision", "DecidingStatement", "Reason"]


class Reason(enum.Enum):
    """Why a request was allowed or denied; one value per rule of the evaluation."""

    ALLOWED_BY_RESOURCE_POLICY = "allowed by the resource policy"
    ALLOWED_BY_IDENTITY_POLICY = "allowed by an identity policy"
    ALLOWED_BY_BOTH = "allowed by the resource policy and an identity policy"
    ALLOWED_BY_GRANT = "allowed by a grant"
    EXPLICIT_DENY = "explicit deny"
    NO_RESOURCE_POLICY_ALLOW = "no resource policy statement allows it"
    IAM_NOT_ENABLED = "the key policy does not enable IAM policies"
    NO_IDENTITY_ALLOW = "no identity policy allows it"
    CROSS_ACCOUNT_NO_IDENTITY_ALLOW = "cross-account: no identity policy allows it"
    CROSS_ACCOUNT_NO_RESOURCE_POLICY_ALLOW = "cross-account: no resource policy statement allows it"

    @property
    def allows(self) -> bool:
        return self.name.startswith("ALLOWED")


@attrs.frozen(kw_only=True)
class DecidingStatement:
    """A statement that decided a request, with the policy it belongs to."""

    policy: str
    statement: Statement

    @property
    def effect(self) -> Effect:
        return self.statement.effect

    def __str__(self) -> str:
        return f"statement {self.statement.label} of {self.policy}"


@attrs.frozen(kw_only=True)
class Decision:
    """What :func:`~ecrcrypt.authz.evaluate.simulate` found; enforcement raises :meth:`error` on a denial."""

    request: Request
    allowed: bool
    reason: Reason
    statements: tuple[DecidingStatement, ...] = ()
    grants: tuple[Grant, ...] = ()
    explanation: str

    def __attrs_post_init__(self) -> None:
        if self.allowed != self.reason.allows:
            raise ValueError(f"a decision with reason {self.reason.name} cannot have allowed={self.allowed}")

    @property
    def message(self) -> str:
        """AWS's shape of an access-denied message, with ecrcrypt's explanation as the "because"."""
        request = self.request
        verdict = "is authorized" if self.allowed else "is not authorized"
        return (
            f"User: {request.principal.arn} {verdict} to perform: {request.action} "
            f"on resource: {request.resource} because {self.explanation}"
        )

    def error(self) -> PolicyAccessDeniedError:
        """The ``AccessDeniedException`` this denial raises (a decision that allows has none)."""
        if self.allowed:
            raise ValueError("an allowing decision has no error")
        return PolicyAccessDeniedError(self.message, decision=self)
