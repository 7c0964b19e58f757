"""The errors the authorization layer raises on its own account.

They live here until the lead moves them into :mod:`ecrcrypt.errors`; each one is a
small subclass of an existing ecrcrypt error so that callers catching
``ValidationError`` or ``LimitExceededError`` already handle them.
"""

from __future__ import annotations

from ecrcrypt.errors import AccessDeniedError, LimitExceededError, ValidationError

__all__ = ["MalformedPolicyDocumentError", "PolicyAccessDeniedError", "PolicySizeLimitExceededError"]


class MalformedPolicyDocumentError(ValidationError):
    """A policy document breaks AWS's policy grammar; the message says which rule.

    KMS answers ``MalformedPolicyDocumentException``; IAM's wire code for the same
    refusal is ``MalformedPolicyDocument``.
    """

    code = "MalformedPolicyDocumentException"


class PolicySizeLimitExceededError(LimitExceededError, ValueError):
    """A policy document is longer than AWS allows for its kind.

    KMS (PutKeyPolicy) and IAM (PutUserPolicy, PutRolePolicy, CreatePolicy) both
    answer an over-long document with a limit error, not a grammar error.
    """

    code = "LimitExceededException"


class PolicyAccessDeniedError(AccessDeniedError):
    """``AccessDeniedException`` raised by policy evaluation, carrying the decision that denied.

    ``decision`` is an :class:`ecrcrypt.authz.Decision` (typed loosely so that this
    class can move to :mod:`ecrcrypt.errors`, which knows nothing of the engine).
    """

    def __init__(self, message: str, *, decision: object = None) -> None:
        super().__init__(message)
        self.decision = decision
