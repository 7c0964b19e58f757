"""Who may call which ECR operation: ``ecr:`` actions, repository policies, and the article's stricter model.

ECR authorizes each API call against its ``ecr:`` action and the repository ARN
(ECR User Guide, "Private repository policies" and "How Amazon ECR works with IAM"):
within one account an allow in the caller's identity policy **or** in the
repository policy suffices; across accounts both are needed; an explicit deny
anywhere wins. The engine (:func:`ecrcrypt.authz.evaluate`) decides; this module
gathers the policies -- the repository's from the registry's metadata (compiled
once per text), the caller's from an :class:`IdentitySource` (the local KMS's IAM).

A registry without an :class:`EcrAuthorization` is in *open* mode: no ``ecr:`` action
is evaluated (KMS still enforces its own key policies and grants).

**The article's stricter model** (``caller_needs_kms=True``). The article says a
principal that pushes or pulls needs ``kms:GenerateDataKey`` / ``kms:Decrypt`` on the
repository's key (its P5/P6); AWS's ECR User Guide says the repository's grants give
ECR the key for object encryption and the pushing principal needs only the ``ecr:``
actions. ecrcrypt follows AWS by default; with the option, a push also needs the
caller's ``kms:GenerateDataKey`` and a pull its ``kms:Decrypt`` on the key, evaluated
as ECR's call on the caller's behalf (``kms:ViaService = ecr.<region>.amazonaws.com``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from ecrcrypt.authz import Decision, Policy, PolicyKind, Request, evaluate
from ecrcrypt.context import ECR_ARN_KEY
from ecrcrypt.errors import InvalidParameterError, MalformedPolicyDocumentError, PolicySizeLimitExceededError
from ecrcrypt.kms import KeyIdentifier

__all__ = [
    "EcrAuthorization",
    "IdentitySource",
    "RepositoryPolicy",
    "RepositoryPolicyCache",
    "check_repository_policy",
    "decide_ecr",
    "kms_on_behalf",
]


class IdentitySource(Protocol):
    """Where callers' identity policies live (``LocalKms``: its IAM), and the KMS simulator."""

    def identity_policies(self, principal: str) -> tuple[Policy, ...]: ...

    def simulate(
        self,
        principal: str,
        action: str,
        key_id: KeyIdentifier | None = None,
        encryption_context: Mapping[str, str] | None = None,
        *,
        via_service: str | None = None,
    ) -> Decision: ...


@attrs.frozen(kw_only=True)
class EcrAuthorization:
    """Turn on the evaluation of ``ecr:`` actions for a registry (without it: open mode)."""

    identities: IdentitySource
    caller_needs_kms: bool = False
    """The article's stricter model: pushes and pulls also need the caller's KMS permissions on the key."""


@attrs.frozen(kw_only=True)
class RepositoryPolicy:
    """GetRepositoryPolicy / SetRepositoryPolicy / DeleteRepositoryPolicy's answer."""

    registry_id: str
    repository_name: str
    policy_text: str

    def to_api(self) -> dict[str, str]:
        """ECR's ``SetRepositoryPolicyResponse`` (also Get's and Delete's): the policy as written."""
        return {"registryId": self.registry_id, "repositoryName": self.repository_name, "policyText": self.policy_text}


def check_repository_policy(text: object) -> Policy:
    """A repository policy as SetRepositoryPolicy takes it, compiled.

    ECR answers a bad policy with ``InvalidParameterException`` ("Invalid repository
    policy provided"); the engine's reason is kept in the message. Limit: 10,240 characters.
    """
    if not isinstance(text, str) or not text:
        raise InvalidParameterError("Invalid parameter at 'policyText': a repository policy is a non-empty JSON text")
    try:
        return Policy.parse(text, kind=PolicyKind.RESOURCE, name="repository policy")
    except (MalformedPolicyDocumentError, PolicySizeLimitExceededError) as exc:
        raise InvalidParameterError(
            f"Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided' "
            f"({exc})"
        ) from exc


class RepositoryPolicyCache:
    """Compiled repository policies, by repository name, re-parsed only when the stored text changes."""

    def __init__(self) -> None:
        self._compiled: dict[str, tuple[str, Policy]] = {}

    def get(self, name: str, text: str | None) -> Policy | None:
        if text is None:
            self._compiled.pop(name, None)
            return None
        found = self._compiled.get(name)
        if found is None or found[0] != text:
            found = self._compiled[name] = (text, check_repository_policy(text))
        return found[1]


def decide_ecr(
    authorization: EcrAuthorization,
    caller: str,
    actions: Sequence[str],
    resource: str,
    repository_policy: Policy | None,
    *,
    identity: Sequence[Policy] | None = None,
) -> Decision | None:
    """The first denial among ``actions`` on ``resource`` by ``caller``, or ``None`` when all are allowed
    (``identity``: the caller's identity policies, when the caller already has them)."""
    if identity is None:
        identity = authorization.identities.identity_policies(caller)
    for action in actions:
        request = Request(principal=caller, action=action, resource=resource)
        decision = evaluate(request, resource_policy=repository_policy, identity_policies=identity)
        if not decision.allowed:
            return decision
    return None


def kms_on_behalf(
    authorization: EcrAuthorization, caller: str, action: str, key_arn: str, repository_arn: str, region: str
) -> Decision | None:
    """The article's model: the caller's own KMS permission for a push or pull, through ECR (``None``: allowed)."""
    decision = authorization.identities.simulate(
        caller, action, key_arn, {ECR_ARN_KEY: repository_arn}, via_service=f"ecr.{region}.amazonaws.com"
    )
    return None if decision.allowed else decision
