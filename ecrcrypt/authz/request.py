"""A request as policies see it: who, which action, on what, and the condition keys.

The global keys that follow from the caller (``aws:PrincipalArn``,
``aws:PrincipalAccount``, ``kms:CallerAccount``) are derived from the principal
and win over the same keys in a caller-supplied context, so that a request
cannot claim another account. ``kms:ViaService``, ``kms:GrantIsForAWSResource``,
the encryption-context keys and the grant keys describe the call itself and come
from the caller -- typically the KMS or ECR model acting on the caller's behalf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from ecrcrypt.authz.conditions import ContextValue
from ecrcrypt.authz.principal import Principal
from ecrcrypt.errors import ValidationError

__all__ = ["Request", "request_context"]

ENCRYPTION_CONTEXT_PREFIX = "kms:encryptioncontext:"


def _check_value(key: str, value: object) -> ContextValue:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple | frozenset | set) and all(isinstance(v, str) for v in value):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise ValidationError(f"request context key {key!r}: a value is a str, bool, int or list of str, not {value!r}")


def _fold(context: Mapping[str, object]) -> Mapping[str, ContextValue]:
    """Condition key names are case-insensitive: store them folded, values as given."""
    if not isinstance(context, Mapping):
        raise ValidationError(f"a request context is a mapping, not {type(context).__name__}")
    folded: dict[str, ContextValue] = {}
    for key, value in context.items():
        if not isinstance(key, str):
            raise ValidationError(f"request context keys are str, not {key!r}")
        folded[key.lower()] = _check_value(key, value)
    return MappingProxyType(folded)


def request_context(
    *,
    via_service: str | None = None,
    encryption_context: Mapping[str, str] | None = None,
    grant_is_for_aws_resource: bool | None = None,
    grant_operations: Iterable[str] | None = None,
    grantee_principal: str | None = None,
    retiring_principal: str | None = None,
    source_account: str | None = None,
    resource_tags: Mapping[str, str] | None = None,
) -> dict[str, ContextValue]:
    """The KMS/ECR condition keys of one call, named as policies name them."""
    context: dict[str, ContextValue] = {}
    if via_service is not None:
        context["kms:ViaService"] = via_service
    if encryption_context is not None:
        for key, value in encryption_context.items():
            context[f"kms:EncryptionContext:{key}"] = value
        context["kms:EncryptionContextKeys"] = list(encryption_context)
    if grant_is_for_aws_resource is not None:
        context["kms:GrantIsForAWSResource"] = grant_is_for_aws_resource
    if grant_operations is not None:
        context["kms:GrantOperations"] = list(grant_operations)
    if grantee_principal is not None:
        context["kms:GranteePrincipal"] = grantee_principal
    if retiring_principal is not None:
        context["kms:RetiringPrincipal"] = retiring_principal
    if source_account is not None:
        context["aws:SourceAccount"] = source_account
    for key, value in (resource_tags or {}).items():
        context[f"ecr:ResourceTag/{key}"] = value
        context[f"aws:ResourceTag/{key}"] = value
    return context


def _principal(value: Principal | str) -> Principal:
    return value if isinstance(value, Principal) else Principal.parse(value)


def _text(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"a request's action and resource are non-empty strings, not {value!r}")
    return value


@attrs.frozen(kw_only=True)
class Request:
    """One authorization question. ``context`` holds every condition key, folded to lower case."""

    principal: Principal = attrs.field(converter=_principal)
    action: str = attrs.field(converter=_text)
    """``service:Operation``, e.g. ``kms:Decrypt``; compared case-insensitively."""
    resource: str = attrs.field(converter=_text)
    """The resource ARN, or ``*`` for calls on no resource (``kms:ListKeys``)."""
    context: Mapping[str, ContextValue] = attrs.field(factory=dict, converter=_fold, eq=False)

    def __attrs_post_init__(self) -> None:
        derived: dict[str, ContextValue] = dict(self.context)
        principal = self.principal
        if principal.account is not None:
            derived["aws:principalarn"] = principal.policy_arn
            derived["aws:principalaccount"] = principal.account
            if self.action.lower().startswith("kms:"):
                derived["kms:calleraccount"] = principal.account
        else:
            derived["aws:principalservicename"] = principal.arn
        object.__setattr__(self, "context", MappingProxyType(derived))

    @property
    def resource_account(self) -> str | None:
        """The account that owns the resource, from its ARN (``None`` for ``*``)."""
        parts = self.resource.split(":", 5)
        if len(parts) == 6 and parts[0] == "arn" and parts[4]:
            return parts[4]
        return None

    @property
    def encryption_context(self) -> dict[str, str]:
        """The request's encryption context, keys folded (grant constraints compare keys case-insensitively)."""
        return {
            key[len(ENCRYPTION_CONTEXT_PREFIX) :]: value
            for key, value in self.context.items()
            if key.startswith(ENCRYPTION_CONTEXT_PREFIX) and isinstance(value, str)
        }
