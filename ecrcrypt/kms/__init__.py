"""The KMS API as a Python protocol: what the ECR layer and the KMS keyring code against.

A :class:`Kms` is a *client bound to one caller identity*, like a boto3 KMS client
bound to credentials: ``LocalKms(...).client("arn:aws:iam::111122223333:root")`` and
``Boto3Kms(boto3_client)`` both implement it, so one conformance suite runs against
both. Operations are KMS's, in snake_case, with keyword-only arguments named after
AWS's request fields; responses are frozen attrs classes named after AWS's response
shapes (``KeyMetadata``, ``GenerateDataKeyResponse`` ...). Where an AWS response
holds a single member (``CreateKeyResponse`` / ``DescribeKeyResponse`` hold only
``KeyMetadata``) the member itself is returned; operations whose AWS response is
empty return ``None``.

Every ``key_id`` parameter accepts what KMS's ``KeyId`` accepts -- a key id, key ARN,
alias name or alias ARN, as ``str`` or as the :mod:`ecrcrypt.arns` value -- except
where an operation's docstring says "key id or key ARN" (KMS: "Specify the key ID or
key ARN"). Every ``KeyId`` in a response is the key ARN (KMS: GenerateDataKey
"KeyId: the Amazon Resource Name (key ARN) of the KMS key").

Errors common to every operation (not repeated below):

* :class:`~ecrcrypt.errors.NotFoundError` (``NotFoundException``): the key, alias or
  grant does not exist for this caller -- including a key ARN naming another Region,
  and a key whose deletion waiting period has elapsed.
* :class:`~ecrcrypt.errors.AccessDeniedError` (``AccessDeniedException``): the caller
  is not authorized (no key-policy permission and no grant, an explicit IAM deny, a
  grant whose constraint the encryption context does not satisfy).
* :class:`~ecrcrypt.errors.ValidationError` (``ValidationException``) and its
  subclasses :class:`~ecrcrypt.errors.InvalidArnError` / ``InvalidAliasNameError``:
  a malformed request parameter.
* :class:`~ecrcrypt.errors.InvalidGrantTokenError` (``InvalidGrantTokenException``):
  a ``grant_tokens`` entry that is not a grant token.
* :class:`~ecrcrypt.errors.KmsError` with the AWS code set: anything else the service
  reports (the boto3 adapter maps unknown codes this way).

Messages carry identifiers only, never key material.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeAlias, runtime_checkable

import attrs

from ecrcrypt.arns import AliasArn, AliasName, KeyArn, KeyId
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import ValidationError

__all__ = [
    "SYMMETRIC_DEFAULT",
    "AliasListEntry",
    "CancelKeyDeletionResponse",
    "CreateGrantResponse",
    "DataKeySpec",
    "DecryptResponse",
    "EncryptResponse",
    "GenerateDataKeyResponse",
    "GenerateDataKeyWithoutPlaintextResponse",
    "GetKeyRotationStatusResponse",
    "GrantConstraints",
    "GrantListEntry",
    "GrantOperation",
    "KeyIdentifier",
    "KeyListEntry",
    "KeyManager",
    "KeyMetadata",
    "KeyState",
    "Kms",
    "KmsQuotas",
    "ListAliasesResponse",
    "ListGrantsResponse",
    "ListKeyPoliciesResponse",
    "ListKeysResponse",
    "ReEncryptResponse",
    "RotateKeyOnDemandResponse",
    "ScheduleKeyDeletionResponse",
    "SupportsViaService",
]

KeyIdentifier: TypeAlias = str | KeyId | KeyArn | AliasName | AliasArn
"""What a ``key_id`` parameter accepts (KMS ``KeyIdType``)."""

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
"""The only key spec / encryption algorithm the local KMS implements (AES-256-GCM)."""


class KeyState(enum.StrEnum):
    """KMS ``KeyState`` (botocore KeyState enum)."""

    CREATING = "Creating"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"
    PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
    UNAVAILABLE = "Unavailable"
    UPDATING = "Updating"


class KeyManager(enum.StrEnum):
    """KMS ``KeyManagerType``: who manages the key (AWS managed keys: ``alias/aws/...``)."""

    AWS = "AWS"
    CUSTOMER = "CUSTOMER"


class DataKeySpec(enum.StrEnum):
    """KMS ``DataKeySpec`` for GenerateDataKey."""

    AES_256 = "AES_256"
    AES_128 = "AES_128"

    @property
    def number_of_bytes(self) -> int:
        return 32 if self is DataKeySpec.AES_256 else 16


class GrantOperation(enum.StrEnum):
    """KMS ``GrantOperation`` (botocore enum, all members)."""

    DECRYPT = "Decrypt"
    ENCRYPT = "Encrypt"
    GENERATE_DATA_KEY = "GenerateDataKey"
    GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = "GenerateDataKeyWithoutPlaintext"
    RE_ENCRYPT_FROM = "ReEncryptFrom"
    RE_ENCRYPT_TO = "ReEncryptTo"
    SIGN = "Sign"
    VERIFY = "Verify"
    GET_PUBLIC_KEY = "GetPublicKey"
    CREATE_GRANT = "CreateGrant"
    RETIRE_GRANT = "RetireGrant"
    DESCRIBE_KEY = "DescribeKey"
    GENERATE_DATA_KEY_PAIR = "GenerateDataKeyPair"
    GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT = "GenerateDataKeyPairWithoutPlaintext"
    GENERATE_MAC = "GenerateMac"
    VERIFY_MAC = "VerifyMac"
    DERIVE_SHARED_SECRET = "DeriveSharedSecret"  # noqa: S105 (an operation name)
    ENCAPSULATE = "Encapsulate"
    DECAPSULATE = "Decapsulate"


# KMS: grant operations valid for a symmetric encryption key; the others (Sign,
# Verify, GetPublicKey, key pairs, MACs, DeriveSharedSecret, and Encapsulate /
# Decapsulate, which are for ML-KEM keys) give ValidationException.
SYMMETRIC_GRANT_OPERATIONS = frozenset(
    {
        GrantOperation.DECRYPT,
        GrantOperation.ENCRYPT,
        GrantOperation.GENERATE_DATA_KEY,
        GrantOperation.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
        GrantOperation.RE_ENCRYPT_FROM,
        GrantOperation.RE_ENCRYPT_TO,
        GrantOperation.CREATE_GRANT,
        GrantOperation.RETIRE_GRANT,
        GrantOperation.DESCRIBE_KEY,
    }
)


@attrs.frozen(kw_only=True)
class KmsQuotas:
    """Grant quotas (see docs/kms-model.md and kms-ecr-semantics.md §1.7, §7).

    ``grants_per_key`` is today's AWS quota (50,000 per customer managed key, not
    applied to AWS managed keys); ``grants_per_grantee_per_key`` is the 2017-2021
    quota of 500 grants for one grantee principal on one key, which the seed's
    "500 grants per CMK" rule came from. ``None`` disables a quota.
    """

    grants_per_grantee_per_key: int | None = attrs.field(default=500)
    grants_per_key: int | None = attrs.field(default=50_000)

    @grants_per_grantee_per_key.validator
    @grants_per_key.validator
    def _positive(self, attribute: Any, value: object) -> None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValidationError(f"KmsQuotas.{attribute.name} must be a positive int or None")


def _api(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A response as botocore parses it: members that are unset are absent, not null."""
    return {k: v for k, v in fields.items() if v is not None}


def _context(value: Mapping[str, str] | None) -> EncryptionContext | None:
    if value is None or isinstance(value, EncryptionContext):
        return value
    return EncryptionContext(value)


# botocore's KMS model, GrantConstraintSourceArnType: 20-512 characters, an ARN naming an account.
_SOURCE_ARN = re.compile(r"arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+", re.S)


def _source_arn(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 20 <= len(value) <= 512 or _SOURCE_ARN.fullmatch(value) is None:
        raise ValidationError(
            f"SourceArn must be an ARN of 20 to 512 characters matching "
            f"^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{{12}}:.+$, not {value!r}"
        )
    return value


@attrs.frozen(kw_only=True)
class GrantConstraints:
    """KMS ``GrantConstraints``: at most one of the two encryption-context constraints, and/or ``SourceArn``.

    KMS: "in a grant constraint, the key in each key-value pair is not case
    sensitive, but the value is case sensitive" (CreateGrant API reference).
    ``SourceArn`` (botocore's current model) allows the grant's permissions only for
    requests made on behalf of that resource -- "effectively the same as having the
    aws:SourceArn global condition key in the grant" -- and does not bind RetireGrant.
    """

    encryption_context_subset: EncryptionContext | None = attrs.field(default=None, converter=_context)
    encryption_context_equals: EncryptionContext | None = attrs.field(default=None, converter=_context)
    source_arn: str | None = attrs.field(default=None, converter=_source_arn)

    def __attrs_post_init__(self) -> None:
        if self.encryption_context_subset is not None and self.encryption_context_equals is not None:
            raise ValidationError(
                "GrantConstraints takes one of EncryptionContextSubset and EncryptionContextEquals, not both"
            )
        if self.encryption_context_subset is None and self.encryption_context_equals is None:
            if self.source_arn is None:
                raise ValidationError(
                    "GrantConstraints takes EncryptionContextSubset, EncryptionContextEquals or SourceArn"
                )
            return
        pairs: Mapping[str, str] = self.encryption_context_subset or self.encryption_context_equals or {}
        # KMS GrantConstraints: at most 8 pairs, each value at most 384 characters.
        if len(pairs) > 8:
            raise ValidationError("a grant constraint holds at most 8 encryption context pairs")
        if any(len(v) > 384 for v in pairs.values()):
            raise ValidationError("a grant constraint value is at most 384 characters")
        folded = {k.lower() for k in pairs}
        if len(folded) != len(pairs):
            raise ValidationError("grant constraint keys are case-insensitive; two keys differ only in case")

    def allows(self, context: Mapping[str, str] | None) -> bool:
        """Whether a request's encryption context satisfies this constraint.

        A context with two keys that differ only in case satisfies none: folding it
        would let one key silently replace the other and defeat Equals / Subset.
        """
        if self.encryption_context_subset is None and self.encryption_context_equals is None:
            return True  # a SourceArn-only constraint says nothing of the context
        request = {k.lower(): v for k, v in (context or {}).items()}
        if len(request) != len(context or {}):
            return False
        if self.encryption_context_equals is not None:
            wanted = {k.lower(): v for k, v in self.encryption_context_equals.items()}
            return request == wanted
        assert self.encryption_context_subset is not None
        return all(request.get(k.lower()) == v for k, v in self.encryption_context_subset.items())

    def allows_source(self, source_arn: str | None) -> bool:
        """Whether a request made on behalf of ``source_arn`` (``None``: of no resource) satisfies ``SourceArn``."""
        return self.source_arn is None or self.source_arn == source_arn

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.encryption_context_equals is not None:
            out["EncryptionContextEquals"] = dict(self.encryption_context_equals)
        if self.encryption_context_subset is not None:
            out["EncryptionContextSubset"] = dict(self.encryption_context_subset)
        if self.source_arn is not None:
            out["SourceArn"] = self.source_arn
        return out

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> GrantConstraints | None:
        if not data:
            return None
        if not isinstance(data, Mapping):
            raise ValidationError(f"Constraints must be a mapping, not {type(data).__name__}")
        return cls(
            encryption_context_subset=data.get("EncryptionContextSubset"),
            encryption_context_equals=data.get("EncryptionContextEquals"),
            source_arn=data.get("SourceArn"),
        )


@attrs.frozen(kw_only=True)
class KeyMetadata:
    """KMS ``KeyMetadata`` (the fields a symmetric, single-Region key has)."""

    aws_account_id: str
    key_id: str
    arn: str
    creation_date: datetime
    enabled: bool
    description: str
    key_state: KeyState
    key_manager: KeyManager
    deletion_date: datetime | None = None
    key_usage: str = "ENCRYPT_DECRYPT"
    origin: str = "AWS_KMS"
    key_spec: str = SYMMETRIC_DEFAULT
    encryption_algorithms: tuple[str, ...] = (SYMMETRIC_DEFAULT,)
    multi_region: bool = False

    def to_api(self) -> dict[str, Any]:
        """The ``KeyMetadata`` structure as boto3 returns it (dates as ``datetime``).

        ``CustomerMasterKeySpec`` is deprecated but KMS still returns it beside ``KeySpec``.
        """
        return _api(
            {
                "AWSAccountId": self.aws_account_id,
                "KeyId": self.key_id,
                "Arn": self.arn,
                "CreationDate": self.creation_date,
                "Enabled": self.enabled,
                "Description": self.description,
                "KeyUsage": self.key_usage,
                "KeyState": self.key_state.value,
                "DeletionDate": self.deletion_date,
                "Origin": self.origin,
                "KeyManager": self.key_manager.value,
                "CustomerMasterKeySpec": self.key_spec,
                "KeySpec": self.key_spec,
                "EncryptionAlgorithms": list(self.encryption_algorithms),
                "MultiRegion": self.multi_region,
            }
        )


@attrs.frozen(kw_only=True)
class KeyListEntry:
    """One key of ListKeys: its id and ARN."""

    key_id: str
    key_arn: str

    def to_api(self) -> dict[str, Any]:
        return {"KeyId": self.key_id, "KeyArn": self.key_arn}


@attrs.frozen(kw_only=True)
class ListKeysResponse:
    keys: tuple[KeyListEntry, ...]
    next_marker: str | None = None
    truncated: bool = False

    def to_api(self) -> dict[str, Any]:
        return _api(
            {"Keys": [k.to_api() for k in self.keys], "NextMarker": self.next_marker, "Truncated": self.truncated}
        )


@attrs.frozen(kw_only=True)
class GenerateDataKeyResponse:
    ciphertext_blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    plaintext: bytes = attrs.field(repr=False)
    key_id: str

    def to_api(self) -> dict[str, Any]:
        return {"CiphertextBlob": self.ciphertext_blob, "Plaintext": self.plaintext, "KeyId": self.key_id}


@attrs.frozen(kw_only=True)
class GenerateDataKeyWithoutPlaintextResponse:
    ciphertext_blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    key_id: str

    def to_api(self) -> dict[str, Any]:
        return {"CiphertextBlob": self.ciphertext_blob, "KeyId": self.key_id}


@attrs.frozen(kw_only=True)
class EncryptResponse:
    ciphertext_blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    key_id: str
    encryption_algorithm: str = SYMMETRIC_DEFAULT

    def to_api(self) -> dict[str, Any]:
        return {
            "CiphertextBlob": self.ciphertext_blob,
            "KeyId": self.key_id,
            "EncryptionAlgorithm": self.encryption_algorithm,
        }


@attrs.frozen(kw_only=True)
class DecryptResponse:
    key_id: str
    plaintext: bytes = attrs.field(repr=False)
    encryption_algorithm: str = SYMMETRIC_DEFAULT

    def to_api(self) -> dict[str, Any]:
        return {"KeyId": self.key_id, "Plaintext": self.plaintext, "EncryptionAlgorithm": self.encryption_algorithm}


@attrs.frozen(kw_only=True)
class ReEncryptResponse:
    ciphertext_blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    source_key_id: str
    key_id: str
    source_encryption_algorithm: str = SYMMETRIC_DEFAULT
    destination_encryption_algorithm: str = SYMMETRIC_DEFAULT

    def to_api(self) -> dict[str, Any]:
        return {
            "CiphertextBlob": self.ciphertext_blob,
            "SourceKeyId": self.source_key_id,
            "KeyId": self.key_id,
            "SourceEncryptionAlgorithm": self.source_encryption_algorithm,
            "DestinationEncryptionAlgorithm": self.destination_encryption_algorithm,
        }


@attrs.frozen(kw_only=True)
class CreateGrantResponse:
    grant_token: str = attrs.field(repr=False)
    grant_id: str

    def to_api(self) -> dict[str, Any]:
        return {"GrantToken": self.grant_token, "GrantId": self.grant_id}


@attrs.frozen(kw_only=True)
class GrantListEntry:
    """KMS ``GrantListEntry``; ``key_id`` is the key ARN.

    A grant made with ``GranteeServicePrincipal`` lists it there and has no ``GranteePrincipal``
    (likewise ``RetiringServicePrincipal``), as botocore's current model shapes it.
    """

    key_id: str
    grant_id: str
    name: str | None
    creation_date: datetime
    grantee_principal: str | None
    retiring_principal: str | None
    issuing_account: str
    operations: tuple[GrantOperation, ...]
    constraints: GrantConstraints | None = None
    grantee_service_principal: str | None = None
    retiring_service_principal: str | None = None

    def to_api(self) -> dict[str, Any]:
        return _api(
            {
                "KeyId": self.key_id,
                "GrantId": self.grant_id,
                "Name": self.name,
                "CreationDate": self.creation_date,
                "GranteePrincipal": self.grantee_principal,
                "RetiringPrincipal": self.retiring_principal,
                "IssuingAccount": self.issuing_account,
                "Operations": [op.value for op in self.operations],
                "Constraints": None if self.constraints is None else self.constraints.to_api(),
                "GranteeServicePrincipal": self.grantee_service_principal,
                "RetiringServicePrincipal": self.retiring_service_principal,
            }
        )


@attrs.frozen(kw_only=True)
class ListGrantsResponse:
    grants: tuple[GrantListEntry, ...]
    next_marker: str | None = None
    truncated: bool = False

    def to_api(self) -> dict[str, Any]:
        return _api(
            {"Grants": [g.to_api() for g in self.grants], "NextMarker": self.next_marker, "Truncated": self.truncated}
        )


@attrs.frozen(kw_only=True)
class AliasListEntry:
    alias_name: str
    alias_arn: str
    target_key_id: str | None
    creation_date: datetime | None = None
    last_updated_date: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return _api(
            {
                "AliasName": self.alias_name,
                "AliasArn": self.alias_arn,
                "TargetKeyId": self.target_key_id,
                "CreationDate": self.creation_date,
                "LastUpdatedDate": self.last_updated_date,
            }
        )


@attrs.frozen(kw_only=True)
class ListAliasesResponse:
    aliases: tuple[AliasListEntry, ...]
    next_marker: str | None = None
    truncated: bool = False

    def to_api(self) -> dict[str, Any]:
        return _api(
            {"Aliases": [a.to_api() for a in self.aliases], "NextMarker": self.next_marker, "Truncated": self.truncated}
        )


@attrs.frozen(kw_only=True)
class ScheduleKeyDeletionResponse:
    key_id: str
    deletion_date: datetime
    key_state: KeyState
    pending_window_in_days: int

    def to_api(self) -> dict[str, Any]:
        return {
            "KeyId": self.key_id,
            "DeletionDate": self.deletion_date,
            "KeyState": self.key_state.value,
            "PendingWindowInDays": self.pending_window_in_days,
        }


@attrs.frozen(kw_only=True)
class CancelKeyDeletionResponse:
    key_id: str

    def to_api(self) -> dict[str, Any]:
        return {"KeyId": self.key_id}


@attrs.frozen(kw_only=True)
class GetKeyRotationStatusResponse:
    key_rotation_enabled: bool
    key_id: str
    rotation_period_in_days: int | None = None
    next_rotation_date: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return _api(
            {
                "KeyRotationEnabled": self.key_rotation_enabled,
                "KeyId": self.key_id,
                "RotationPeriodInDays": self.rotation_period_in_days,
                "NextRotationDate": self.next_rotation_date,
            }
        )


@attrs.frozen(kw_only=True)
class RotateKeyOnDemandResponse:
    key_id: str

    def to_api(self) -> dict[str, Any]:
        return {"KeyId": self.key_id}


@attrs.frozen(kw_only=True)
class ListKeyPoliciesResponse:
    """ListKeyPolicies: KMS keys have one key policy, ``default``."""

    policy_names: tuple[str, ...]
    next_marker: str | None = None
    truncated: bool = False

    def to_api(self) -> dict[str, Any]:
        return _api(
            {"PolicyNames": list(self.policy_names), "NextMarker": self.next_marker, "Truncated": self.truncated}
        )


@runtime_checkable
class Kms(Protocol):
    """The KMS API for one caller identity. Error contract per operation below.

    Key-state errors follow KMS's key-state table (kms-ecr-semantics.md §1.4):
    ``DisabledError`` ("<key ARN> is disabled.") for a Disabled key,
    ``KmsInvalidStateError`` ("<key ARN> is pending deletion.") for a key pending
    deletion -- KMS documents either code for PendingDeletion; ecrcrypt picks
    KMSInvalidStateException.
    """

    # -- keys ---------------------------------------------------------------------------
    def create_key(
        self,
        *,
        description: str = "",
        key_spec: str = SYMMETRIC_DEFAULT,
        policy: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
    ) -> KeyMetadata:
        """Create a customer managed symmetric key (Enabled, rotation off).

        ``policy`` is the key policy (JSON text); without one the key gets KMS's default
        key policy (the account root: ``kms:*``, which enables IAM policies).
        ``ValidationError`` for a key spec other than SYMMETRIC_DEFAULT or a description
        over 8192 characters; ``MalformedPolicyDocumentError`` for a policy that breaks
        the grammar or would lock the caller out of PutKeyPolicy (unless
        ``bypass_policy_lockout_safety_check``); ``LimitExceededError`` past the key quota
        or a policy over 32 KB.
        """
        ...

    def list_keys(self, *, limit: int | None = None, marker: str | None = None) -> ListKeysResponse:
        """The keys of the account and Region. ``limit`` 1-1000 (default 100); a marker not
        returned by an earlier call is ``InvalidMarkerError``."""
        ...

    def get_key_policy(self, *, key_id: KeyIdentifier, policy_name: str = "default") -> str:
        """The key policy document, as written. Key id or ARN; every key state."""
        ...

    def put_key_policy(
        self,
        *,
        key_id: KeyIdentifier,
        policy: str,
        policy_name: str = "default",
        bypass_policy_lockout_safety_check: bool = False,
    ) -> None:
        """Replace the key policy. ``MalformedPolicyDocumentError`` as for CreateKey;
        ``UnsupportedOperationError`` (local KMS) or ``AccessDeniedError`` for an AWS managed key."""
        ...

    def list_key_policies(
        self, *, key_id: KeyIdentifier, limit: int | None = None, marker: str | None = None
    ) -> ListKeyPoliciesResponse:
        """The key policy names of a key: ``("default",)``."""
        ...

    def describe_key(self, *, key_id: KeyIdentifier, grant_tokens: Sequence[str] = ()) -> KeyMetadata:
        """Metadata of a key, in every key state.

        ``alias/aws/<service>`` with no key yet creates the AWS managed key (KMS: "AWS
        services use DescribeKey to create AWS managed keys from a predefined AWS alias
        with no key ID"). ``NotFoundError`` for an unknown key or alias.
        """
        ...

    def enable_key(self, *, key_id: KeyIdentifier) -> None:
        """Key id or ARN. ``KmsInvalidStateError`` when pending deletion."""
        ...

    def disable_key(self, *, key_id: KeyIdentifier) -> None:
        """Key id or ARN. ``KmsInvalidStateError`` when pending deletion."""
        ...

    def schedule_key_deletion(
        self, *, key_id: KeyIdentifier, pending_window_in_days: int = 30
    ) -> ScheduleKeyDeletionResponse:
        """Key id or ARN; 7-30 days (``ValidationError`` otherwise).

        ``KmsInvalidStateError`` when already pending deletion; ``UnsupportedOperationError``
        (or ``AccessDeniedError``) for an AWS managed key.
        """
        ...

    def cancel_key_deletion(self, *, key_id: KeyIdentifier) -> CancelKeyDeletionResponse:
        """Key id or ARN; the key becomes **Disabled** (KMS: "the key state of the KMS key
        is Disabled"). ``KmsInvalidStateError`` when not pending deletion."""
        ...

    # -- rotation -----------------------------------------------------------------------
    def enable_key_rotation(self, *, key_id: KeyIdentifier, rotation_period_in_days: int | None = None) -> None:
        """Key id or ARN; period 90-2560 days (default 365). ``DisabledError`` /
        ``KmsInvalidStateError`` per key state."""
        ...

    def disable_key_rotation(self, *, key_id: KeyIdentifier) -> None:
        """Key id or ARN. ``DisabledError`` / ``KmsInvalidStateError`` per key state."""
        ...

    def get_key_rotation_status(self, *, key_id: KeyIdentifier) -> GetKeyRotationStatusResponse:
        """Key id or ARN; reads ``False`` while the key is pending deletion."""
        ...

    def rotate_key_on_demand(self, *, key_id: KeyIdentifier) -> RotateKeyOnDemandResponse:
        """New backing material for new encryptions; every earlier ciphertext still decrypts.

        ``DisabledError`` / ``KmsInvalidStateError`` per key state; ``LimitExceededError``
        after 25 on-demand rotations; ``UnsupportedOperationError`` for AWS managed keys.
        """
        ...

    # -- aliases ------------------------------------------------------------------------
    def create_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        """``InvalidAliasNameError`` for a bad name or one under ``alias/aws/``;
        ``AlreadyExistsError`` for a taken name; ``KmsInvalidStateError`` when the target is
        pending deletion; ``LimitExceededError`` past 50 aliases on the key."""
        ...

    def update_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        """Point an existing alias at another key. ``NotFoundError`` for an unknown alias;
        ``KmsInvalidStateError`` when the new target is pending deletion."""
        ...

    def delete_alias(self, *, alias_name: str) -> None:
        """``NotFoundError`` for an unknown alias; ``InvalidAliasNameError`` for ``alias/aws/``."""
        ...

    def list_aliases(
        self, *, key_id: KeyIdentifier | None = None, limit: int | None = None, marker: str | None = None
    ) -> ListAliasesResponse:
        """Aliases of the account and Region, or of one key. ``InvalidMarker`` is a
        ``ValidationError``."""
        ...

    # -- cryptography -------------------------------------------------------------------
    def generate_data_key(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyResponse:
        """A fresh data key and its ciphertext bound to ``encryption_context``.

        Exactly one of ``number_of_bytes`` (1-1024) and ``key_spec`` (``ValidationError``
        otherwise). ``DisabledError`` / ``KmsInvalidStateError`` per key state.
        """
        ...

    def generate_data_key_without_plaintext(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyWithoutPlaintextResponse:
        """As :meth:`generate_data_key`, returning only the ciphertext."""
        ...

    def encrypt(
        self,
        *,
        key_id: KeyIdentifier,
        plaintext: bytes,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> EncryptResponse:
        """Encrypt 1-4096 bytes (``ValidationError`` otherwise). Key-state errors as above."""
        ...

    def decrypt(
        self,
        *,
        ciphertext_blob: bytes,
        encryption_context: Mapping[str, str] | None = None,
        key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> DecryptResponse:
        """Decrypt a blob made by Encrypt / GenerateDataKey*.

        ``InvalidCiphertextError`` when the blob is malformed or corrupted or the
        encryption context is not exactly the one used to encrypt (a missing, extra or
        differently cased pair); ``IncorrectKeyError`` when ``key_id`` names another key
        than the blob's; ``DisabledError`` / ``KmsInvalidStateError`` per key state.
        """
        ...

    def re_encrypt(
        self,
        *,
        ciphertext_blob: bytes,
        destination_key_id: KeyIdentifier,
        source_encryption_context: Mapping[str, str] | None = None,
        destination_encryption_context: Mapping[str, str] | None = None,
        source_key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> ReEncryptResponse:
        """Decrypt under the source key (needs ReEncryptFrom) and encrypt under the
        destination (needs ReEncryptTo). Errors of :meth:`decrypt` for the source; a
        destination pending deletion gives ``KmsInvalidStateError``."""
        ...

    # -- grants -------------------------------------------------------------------------
    def create_grant(
        self,
        *,
        key_id: KeyIdentifier,
        grantee_principal: str | None = None,
        operations: Sequence[GrantOperation | str],
        retiring_principal: str | None = None,
        constraints: GrantConstraints | None = None,
        grant_tokens: Sequence[str] = (),
        name: str | None = None,
        grantee_service_principal: str | None = None,
        retiring_service_principal: str | None = None,
    ) -> CreateGrantResponse:
        """Key id or ARN. A retry with identical parameters and the same ``name`` returns
        the original grant id (a new token) and creates nothing.

        Exactly one of ``grantee_principal`` and ``grantee_service_principal``, at most one of
        ``retiring_principal`` and ``retiring_service_principal``; a service grantee needs a
        ``SourceArn`` constraint and a retiring principal (botocore's current KMS model).

        ``ValidationError`` for empty or non-symmetric operations, a bad principal or
        name; ``LimitExceededError`` past a grant quota (nothing is created);
        ``DisabledError`` / ``KmsInvalidStateError`` per key state.
        """
        ...

    def list_grants(
        self,
        *,
        key_id: KeyIdentifier,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        grantee_service_principal: str | None = None,
    ) -> ListGrantsResponse:
        """Key id or ARN; every key state. ``limit`` 1-100 (default 50); a marker not
        returned by an earlier call is a ``ValidationError`` (``InvalidMarkerException``)."""
        ...

    def list_retirable_grants(
        self,
        *,
        retiring_principal: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        retiring_service_principal: str | None = None,
    ) -> ListGrantsResponse:
        """Grants of the account and Region that name ``retiring_principal`` (or ``retiring_service_principal``)."""
        ...

    def retire_grant(
        self, *, grant_token: str | None = None, key_id: KeyIdentifier | None = None, grant_id: str | None = None
    ) -> None:
        """By token, or by key ARN + grant id; every key state.

        ``InvalidGrantTokenError`` for a token that names no live grant;
        ``InvalidGrantIdError`` for a malformed grant id; ``NotFoundError`` for an
        unknown grant; ``AccessDeniedError`` unless the caller is the retiring principal,
        the grantee of a grant allowing RetireGrant, or a principal of the key's account whose
        IAM policy allows ``kms:RetireGrant`` -- and is not explicitly denied it.
        """
        ...

    def revoke_grant(self, *, key_id: KeyIdentifier, grant_id: str) -> None:
        """Key id or ARN + grant id; every key state. ``NotFoundError`` for an unknown
        grant, ``InvalidGrantIdError`` for a malformed id."""
        ...


@runtime_checkable
class SupportsViaService(Protocol):
    """A client that can make the calls an AWS service makes on its caller's behalf.

    ECR calls KMS with the caller's credentials; KMS then evaluates the caller's
    request with ``kms:ViaService`` set to the service's endpoint name
    (``ecr.<region>.amazonaws.com``). The local KMS models that with this method;
    against AWS, ECR itself makes those calls, so ``Boto3Kms`` has no such method.
    """

    def via_service(self, service: str) -> Kms: ...
