"""AWS KMS through a boto3 client: the :class:`ecrcrypt.kms.Kms` protocol over the real service.

The caller passes a boto3 KMS client (``Boto3Kms(client=session.client("kms"))``):
region, credentials, endpoint and retries are boto3's business, and the client's
credentials are the caller identity the protocol speaks of. This module never
creates sessions or clients and imports neither boto3 nor botocore, so importing
it is free.

botocore's ``ClientError`` becomes the ecrcrypt exception for its AWS error code
(:func:`ecrcrypt.errors.error_for_code`), keeping the code and message and chaining
the botocore error as ``__cause__``; botocore's client-side ``ParamValidationError``
becomes :class:`~ecrcrypt.errors.ValidationError`. Nothing else is rewritten: where
an emulator answers differently from AWS (moto: AccessDenied for a wrong Decrypt
KeyId), the caller sees what the service said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ecrcrypt._aws_errors import translate_client_error
from ecrcrypt.errors import ValidationError
from ecrcrypt.kms import (
    SYMMETRIC_DEFAULT,
    CancelKeyDeletionResponse,
    CreateGrantResponse,
    DataKeySpec,
    DecryptResponse,
    EncryptResponse,
    GenerateDataKeyResponse,
    GenerateDataKeyWithoutPlaintextResponse,
    GetKeyRotationStatusResponse,
    GrantConstraints,
    GrantOperation,
    KeyIdentifier,
    KeyMetadata,
    KeyState,
    Kms,
    ListAliasesResponse,
    ListGrantsResponse,
    ListKeyPoliciesResponse,
    ListKeysResponse,
    ReEncryptResponse,
    RotateKeyOnDemandResponse,
    ScheduleKeyDeletionResponse,
)
from ecrcrypt.kms import aws_shapes as shapes

__all__ = ["Boto3Kms"]


def _params(**fields: Any) -> dict[str, Any]:
    """Request parameters without the unset ones (boto3 rejects ``None`` members)."""
    return {k: v for k, v in fields.items() if v is not None}


def _ec(context: Mapping[str, str] | None) -> dict[str, str] | None:
    # KMS treats an absent and an empty EncryptionContext alike; send none for empty.
    return dict(context) if context else None


def _tokens(grant_tokens: Sequence[str]) -> list[str] | None:
    return list(grant_tokens) if grant_tokens else None


# botocore's KMS model, KeyIdType: 1 to 2048 characters. botocore checks only the minimum before
# sending; AWS answers the maximum with ValidationException, checked here so that both backends agree.
MAX_KEY_ID = 2048


def _key(key_id: KeyIdentifier | None) -> str | None:
    if key_id is None:
        return None
    text = str(key_id)
    if not 1 <= len(text) <= MAX_KEY_ID:
        raise ValidationError(f"KeyId must be 1 to {MAX_KEY_ID} characters long, not {len(text)}")
    return text


def _own_key(key_id: KeyIdentifier) -> str:
    """A key ARN reduced to its key id, for the operations that act on the caller's own key only.

    EnableKey, DisableKey, ScheduleKeyDeletion and CancelKeyDeletion take "the key ID or
    key ARN" and cannot act on another account's key ("Cross-account use: No"), so the
    bare id names the same key in the client's Region. moto 5 crashes (HTTP 500) on a key
    ARN in exactly these four operations; sending the id keeps one code path for both.
    """
    text = str(_key(key_id))
    if text.startswith("arn:") and ":key/" in text:
        return text.rsplit(":key/", 1)[1]
    return text


class Boto3Kms:
    """A :class:`~ecrcrypt.kms.Kms` over a boto3 KMS client, for the client's identity.

    Grant tokens given to a call are passed on as ``GrantTokens`` (KMS grants are
    eventually consistent: "use the grant token ... until the grant achieves eventual
    consistency", grant-manage.md). Responses are converted to ecrcrypt's response
    types; plaintext keys appear only in ``plaintext`` fields, never in a repr.
    """

    def __init__(self, *, client: Any) -> None:
        if not callable(getattr(client, "generate_data_key", None)):
            raise ValidationError("Boto3Kms needs a boto3 KMS client (session.client('kms'))")
        self._client = client

    @property
    def client(self) -> Any:
        return self._client

    def __repr__(self) -> str:
        meta = getattr(self._client, "meta", None)
        region = getattr(meta, "region_name", None)
        endpoint = getattr(meta, "endpoint_url", None)
        return f"Boto3Kms(region={region!r}, endpoint={endpoint!r})"

    def _call(self, operation: str, **fields: Any) -> Any:
        try:
            return getattr(self._client, operation)(**_params(**fields))
        except Exception as exc:
            translated = translate_client_error(exc)
            if translated is not None:
                raise translated from exc
            if type(exc).__name__ == "ParamValidationError" and type(exc).__module__.startswith("botocore"):
                raise ValidationError(f"{operation}: {exc}") from exc
            raise

    def _key_arn(self, key_id: str) -> str:
        """The key ARN for a response ``KeyId``.

        KMS returns key ARNs in these fields (e.g. ScheduleKeyDeletion "KeyId: The Amazon
        Resource Name (key ARN) of the KMS key"); moto 5 sometimes returns the bare key id,
        which is resolved with DescribeKey rather than passed on.
        """
        key_id = str(key_id)
        return key_id if key_id.startswith("arn:") else self.describe_key(key_id=key_id).arn

    # -- keys ---------------------------------------------------------------------------
    def create_key(
        self,
        *,
        description: str = "",
        key_spec: str = SYMMETRIC_DEFAULT,
        policy: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
    ) -> KeyMetadata:
        resp = self._call(
            "create_key",
            Description=description or None,
            KeySpec=str(key_spec),
            Policy=policy,
            BypassPolicyLockoutSafetyCheck=bypass_policy_lockout_safety_check or None,
        )
        return shapes.key_metadata(resp["KeyMetadata"])

    def list_keys(self, *, limit: int | None = None, marker: str | None = None) -> ListKeysResponse:
        return shapes.key_list(self._call("list_keys", Limit=limit, Marker=marker))

    def get_key_policy(self, *, key_id: KeyIdentifier, policy_name: str = "default") -> str:
        resp = self._call("get_key_policy", KeyId=_own_key(key_id), PolicyName=policy_name)
        return str(resp["Policy"])

    def put_key_policy(
        self,
        *,
        key_id: KeyIdentifier,
        policy: str,
        policy_name: str = "default",
        bypass_policy_lockout_safety_check: bool = False,
    ) -> None:
        self._call(
            "put_key_policy",
            KeyId=_own_key(key_id),
            Policy=policy,
            PolicyName=policy_name,
            BypassPolicyLockoutSafetyCheck=bypass_policy_lockout_safety_check or None,
        )

    def list_key_policies(
        self, *, key_id: KeyIdentifier, limit: int | None = None, marker: str | None = None
    ) -> ListKeyPoliciesResponse:
        resp = self._call("list_key_policies", KeyId=_own_key(key_id), Limit=limit, Marker=marker)
        return shapes.key_policy_list(resp)

    def describe_key(self, *, key_id: KeyIdentifier, grant_tokens: Sequence[str] = ()) -> KeyMetadata:
        resp = self._call("describe_key", KeyId=_key(key_id), GrantTokens=_tokens(grant_tokens))
        return shapes.key_metadata(resp["KeyMetadata"])

    def enable_key(self, *, key_id: KeyIdentifier) -> None:
        self._call("enable_key", KeyId=_own_key(key_id))

    def disable_key(self, *, key_id: KeyIdentifier) -> None:
        self._call("disable_key", KeyId=_own_key(key_id))

    def schedule_key_deletion(
        self, *, key_id: KeyIdentifier, pending_window_in_days: int = 30
    ) -> ScheduleKeyDeletionResponse:
        resp = self._call("schedule_key_deletion", KeyId=_own_key(key_id), PendingWindowInDays=pending_window_in_days)
        deletion_date = resp.get("DeletionDate")
        key_state = resp.get("KeyState")
        if deletion_date is None or key_state is None:
            # AWS returns both; moto 5 omits KeyState (and DeletionDate for an out-of-range window):
            # read them back rather than invent them.
            meta = self.describe_key(key_id=key_id)
            deletion_date = deletion_date or meta.deletion_date
            key_state = key_state or meta.key_state
        return ScheduleKeyDeletionResponse(
            key_id=self._key_arn(resp["KeyId"]),
            deletion_date=deletion_date or shapes.UNKNOWN_DATE,
            key_state=KeyState(key_state),
            pending_window_in_days=int(resp.get("PendingWindowInDays", pending_window_in_days)),
        )

    def cancel_key_deletion(self, *, key_id: KeyIdentifier) -> CancelKeyDeletionResponse:
        resp = self._call("cancel_key_deletion", KeyId=_own_key(key_id))
        return CancelKeyDeletionResponse(key_id=self._key_arn(resp["KeyId"]))

    # -- rotation -----------------------------------------------------------------------
    def enable_key_rotation(self, *, key_id: KeyIdentifier, rotation_period_in_days: int | None = None) -> None:
        self._call("enable_key_rotation", KeyId=_key(key_id), RotationPeriodInDays=rotation_period_in_days)

    def disable_key_rotation(self, *, key_id: KeyIdentifier) -> None:
        self._call("disable_key_rotation", KeyId=_key(key_id))

    def get_key_rotation_status(self, *, key_id: KeyIdentifier) -> GetKeyRotationStatusResponse:
        resp = self._call("get_key_rotation_status", KeyId=_key(key_id))
        arn = self._key_arn(resp.get("KeyId") or str(key_id))
        period = resp.get("RotationPeriodInDays")
        return GetKeyRotationStatusResponse(
            key_rotation_enabled=bool(resp["KeyRotationEnabled"]),
            key_id=str(arn),
            rotation_period_in_days=None if period is None else int(period),
        )

    def rotate_key_on_demand(self, *, key_id: KeyIdentifier) -> RotateKeyOnDemandResponse:
        resp = self._call("rotate_key_on_demand", KeyId=_key(key_id))
        return RotateKeyOnDemandResponse(key_id=self._key_arn(resp["KeyId"]))

    # -- aliases ------------------------------------------------------------------------
    def create_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        self._call("create_alias", AliasName=str(alias_name), TargetKeyId=_key(target_key_id))

    def update_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        self._call("update_alias", AliasName=str(alias_name), TargetKeyId=_key(target_key_id))

    def delete_alias(self, *, alias_name: str) -> None:
        self._call("delete_alias", AliasName=str(alias_name))

    def list_aliases(
        self, *, key_id: KeyIdentifier | None = None, limit: int | None = None, marker: str | None = None
    ) -> ListAliasesResponse:
        resp = self._call("list_aliases", KeyId=_key(key_id), Limit=limit, Marker=marker)
        return shapes.alias_list(resp)

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
        resp = self._call(
            "generate_data_key",
            KeyId=_key(key_id),
            EncryptionContext=_ec(encryption_context),
            NumberOfBytes=number_of_bytes,
            KeySpec=None if key_spec is None else str(key_spec),
            GrantTokens=_tokens(grant_tokens),
        )
        return GenerateDataKeyResponse(
            ciphertext_blob=bytes(resp["CiphertextBlob"]),
            plaintext=bytes(resp["Plaintext"]),
            key_id=self._key_arn(resp["KeyId"]),
        )

    def generate_data_key_without_plaintext(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyWithoutPlaintextResponse:
        resp = self._call(
            "generate_data_key_without_plaintext",
            KeyId=_key(key_id),
            EncryptionContext=_ec(encryption_context),
            NumberOfBytes=number_of_bytes,
            KeySpec=None if key_spec is None else str(key_spec),
            GrantTokens=_tokens(grant_tokens),
        )
        return GenerateDataKeyWithoutPlaintextResponse(
            ciphertext_blob=bytes(resp["CiphertextBlob"]), key_id=self._key_arn(resp["KeyId"])
        )

    def encrypt(
        self,
        *,
        key_id: KeyIdentifier,
        plaintext: bytes,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> EncryptResponse:
        resp = self._call(
            "encrypt",
            KeyId=_key(key_id),
            Plaintext=bytes(plaintext),
            EncryptionContext=_ec(encryption_context),
            GrantTokens=_tokens(grant_tokens),
        )
        return EncryptResponse(
            ciphertext_blob=bytes(resp["CiphertextBlob"]),
            key_id=self._key_arn(resp["KeyId"]),
            encryption_algorithm=str(resp.get("EncryptionAlgorithm") or SYMMETRIC_DEFAULT),
        )

    def decrypt(
        self,
        *,
        ciphertext_blob: bytes,
        encryption_context: Mapping[str, str] | None = None,
        key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> DecryptResponse:
        resp = self._call(
            "decrypt",
            CiphertextBlob=bytes(ciphertext_blob),
            EncryptionContext=_ec(encryption_context),
            KeyId=_key(key_id),
            GrantTokens=_tokens(grant_tokens),
        )
        return DecryptResponse(
            key_id=self._key_arn(resp["KeyId"]),
            plaintext=bytes(resp["Plaintext"]),
            encryption_algorithm=str(resp.get("EncryptionAlgorithm") or SYMMETRIC_DEFAULT),
        )

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
        resp = self._call(
            "re_encrypt",
            CiphertextBlob=bytes(ciphertext_blob),
            DestinationKeyId=_key(destination_key_id),
            SourceEncryptionContext=_ec(source_encryption_context),
            DestinationEncryptionContext=_ec(destination_encryption_context),
            SourceKeyId=_key(source_key_id),
            GrantTokens=_tokens(grant_tokens),
        )
        return ReEncryptResponse(
            ciphertext_blob=bytes(resp["CiphertextBlob"]),
            source_key_id=self._key_arn(resp["SourceKeyId"]),
            key_id=self._key_arn(resp["KeyId"]),
            source_encryption_algorithm=str(resp.get("SourceEncryptionAlgorithm") or SYMMETRIC_DEFAULT),
            destination_encryption_algorithm=str(resp.get("DestinationEncryptionAlgorithm") or SYMMETRIC_DEFAULT),
        )

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
        # The service principal members and SourceArn are passed as given: KMS checks them
        # (a botocore older than the members refuses them client-side: ParamValidationError).
        resp = self._call(
            "create_grant",
            KeyId=_key(key_id),
            GranteePrincipal=grantee_principal,
            Operations=[str(op) for op in operations],
            RetiringPrincipal=retiring_principal,
            Constraints=None if constraints is None else constraints.to_api(),
            GrantTokens=_tokens(grant_tokens),
            Name=name,
            GranteeServicePrincipal=grantee_service_principal,
            RetiringServicePrincipal=retiring_service_principal,
        )
        return CreateGrantResponse(grant_token=str(resp["GrantToken"]), grant_id=str(resp["GrantId"]))

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
        resp = self._call(
            "list_grants",
            KeyId=_key(key_id),
            GrantId=grant_id,
            GranteePrincipal=grantee_principal,
            Limit=limit,
            Marker=marker,
            GranteeServicePrincipal=grantee_service_principal,
        )
        return shapes.grant_list(resp, self._key_arn)

    def list_retirable_grants(
        self,
        *,
        retiring_principal: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        retiring_service_principal: str | None = None,
    ) -> ListGrantsResponse:
        resp = self._call(
            "list_retirable_grants",
            RetiringPrincipal=retiring_principal,
            Limit=limit,
            Marker=marker,
            RetiringServicePrincipal=retiring_service_principal,
        )
        return shapes.grant_list(resp, self._key_arn)

    def retire_grant(
        self, *, grant_token: str | None = None, key_id: KeyIdentifier | None = None, grant_id: str | None = None
    ) -> None:
        # KMS RetireGrant: "Identify the grant to retire by its grant token or by a combination
        # of the grant ID and the Amazon Resource Name (ARN) of the KMS key."
        if grant_token is None and (key_id is None or grant_id is None):
            raise ValidationError("RetireGrant needs grant_token, or key_id and grant_id")
        self._call("retire_grant", GrantToken=grant_token, KeyId=_key(key_id), GrantId=grant_id)

    def revoke_grant(self, *, key_id: KeyIdentifier, grant_id: str) -> None:
        self._call("revoke_grant", KeyId=_key(key_id), GrantId=grant_id)


if TYPE_CHECKING:  # mypy proves the adapter satisfies the protocol

    def _conforms(kms: Boto3Kms) -> Kms:
        return kms
