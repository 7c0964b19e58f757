"""Grants as the engine sees them: who, which operations, under which encryption context.

The engine stores nothing, so a grant is a plain value the caller passes in with
the request; the KMS model keeps the records and hands over the ones on the key.
Semantics (KMS Developer Guide, "Grants in AWS KMS" and "Using grant constraints",
https://docs.aws.amazon.com/kms/latest/developerguide/grants.html):

* a grant allows only its operations, only to its grantee; an assumed-role
  session uses grants made to its role;
* ``EncryptionContextEquals`` needs the request's context to be exactly the
  constraint's, ``EncryptionContextSubset`` needs it to contain every pair;
  keys compare case-insensitively, values exactly (the current CreateGrant API
  reference);
* constraints bind only operations that take an encryption context; DescribeKey,
  RetireGrant and the other grant operations ignore them;
* a ``SourceArn`` constraint (botocore's current model) allows the grant only for
  requests made on behalf of that resource (``aws:SourceArn`` in the request), for
  every operation but RetireGrant.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ecrcrypt.authz.request import Request
from ecrcrypt.errors import ValidationError

__all__ = ["GRANT_OPERATIONS", "Grant"]

# botocore's KMS model, GrantOperation enum.
GRANT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "Sign",
        "Verify",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    }
)
_CONSTRAINED = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    }
)


def _operations(value: object) -> frozenset[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValidationError(f"Grant.operations is a collection of operation names, not {value!r}")
    operations = frozenset(value)
    if not operations:
        raise ValidationError("Grant.operations must name at least one operation")
    unknown = sorted(str(op) for op in operations - GRANT_OPERATIONS)
    if unknown:
        raise ValidationError(f"Grant.operations: {unknown[0]!r} is not a KMS grant operation")
    return operations


def _pairs(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError(f"a grant constraint maps str to str, not {value!r}")
    return MappingProxyType({k.lower(): v for k, v in value.items()})


@attrs.frozen(kw_only=True)
class Grant:
    """One grant on the key a request is about."""

    grantee_principal: str = attrs.field(validator=attrs.validators.instance_of(str))
    operations: frozenset[str] = attrs.field(converter=_operations)
    encryption_context_equals: Mapping[str, str] | None = attrs.field(default=None, converter=_pairs, eq=False)
    encryption_context_subset: Mapping[str, str] | None = attrs.field(default=None, converter=_pairs, eq=False)
    source_arn: str | None = None
    grant_id: str = ""

    def __attrs_post_init__(self) -> None:
        if self.encryption_context_equals is not None and self.encryption_context_subset is not None:
            raise ValidationError("a grant has EncryptionContextEquals or EncryptionContextSubset, not both")

    def operation_of(self, action: str) -> str | None:
        """The grant operation a ``kms:`` action is, or ``None`` for other services."""
        service, _, name = action.partition(":")
        if service.lower() != "kms":
            return None
        return next((op for op in GRANT_OPERATIONS if op.lower() == name.lower()), None)

    def allows(self, request: Request) -> bool:
        principal = request.principal
        if self.grantee_principal not in (principal.arn, principal.policy_arn):
            return False
        operation = self.operation_of(request.action)
        if operation is None or operation not in self.operations:
            return False
        unsourced = request.context.get("aws:sourcearn") != self.source_arn
        if self.source_arn is not None and operation != "RetireGrant" and unsourced:
            return False
        if operation not in _CONSTRAINED:
            return True
        context = request.encryption_context
        if self.encryption_context_equals is not None:
            return dict(self.encryption_context_equals) == context
        if self.encryption_context_subset is not None:
            return all(context.get(k) == v for k, v in self.encryption_context_subset.items())
        return True

    @property
    def label(self) -> str:
        return self.grant_id or f"grant to {self.grantee_principal}"
