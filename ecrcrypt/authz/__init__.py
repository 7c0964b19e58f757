"""Who may do what: AWS policy documents, grants and their evaluation, as a pure engine.

Nothing here stores or fetches anything: callers (the local KMS, the registry) keep
policies and grants and pass them in with each request, so one engine serves
enforcement, the simulator and tests alike. ``enforce`` is ``simulate`` plus
raising on a denial.
"""

from __future__ import annotations

from ecrcrypt.authz.conditions import Condition, ConditionClause, ContextValue, Qualifier, parse_condition
from ecrcrypt.authz.decision import DecidingStatement, Decision, Reason
from ecrcrypt.authz.defaults import (
    aws_managed_key_document,
    aws_managed_key_policy,
    default_key_policy,
    default_key_policy_document,
)
from ecrcrypt.authz.errors import MalformedPolicyDocumentError, PolicyAccessDeniedError, PolicySizeLimitExceededError
from ecrcrypt.authz.evaluate import enforce, evaluate, simulate
from ecrcrypt.authz.grant import GRANT_OPERATIONS, Grant
from ecrcrypt.authz.policy import (
    Effect,
    Policy,
    PolicyKind,
    PolicyLimit,
    PrincipalMatch,
    PrincipalSpec,
    Statement,
    policy_size,
)
from ecrcrypt.authz.principal import Principal, PrincipalKind
from ecrcrypt.authz.request import Request, request_context
from ecrcrypt.authz.wildcard import Wildcard, wildcard_regex

__all__ = [
    "Condition",
    "ConditionClause",
    "ContextValue",
    "DecidingStatement",
    "Decision",
    "Effect",
    "GRANT_OPERATIONS",
    "Grant",
    "MalformedPolicyDocumentError",
    "Policy",
    "PolicyAccessDeniedError",
    "PolicyKind",
    "PolicyLimit",
    "PolicySizeLimitExceededError",
    "Principal",
    "PrincipalKind",
    "PrincipalMatch",
    "PrincipalSpec",
    "Qualifier",
    "Reason",
    "Request",
    "Statement",
    "Wildcard",
    "aws_managed_key_document",
    "aws_managed_key_policy",
    "default_key_policy",
    "default_key_policy_document",
    "enforce",
    "evaluate",
    "parse_condition",
    "policy_size",
    "request_context",
    "simulate",
    "wildcard_regex",
]
