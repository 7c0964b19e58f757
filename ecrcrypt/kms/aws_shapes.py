"""AWS KMS response dicts (as boto3 returns them) to ecrcrypt.kms response types (private).

Named constructors for foreign data, in one place, so that the adapter itself
reads as a list of calls. Where an emulator omits a field AWS always returns,
the fallback is stated at the line that applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ecrcrypt.arns import KeyArn
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.kms import (
    SYMMETRIC_DEFAULT,
    AliasListEntry,
    GrantConstraints,
    GrantListEntry,
    GrantOperation,
    KeyListEntry,
    KeyManager,
    KeyMetadata,
    KeyState,
    ListAliasesResponse,
    ListGrantsResponse,
    ListKeyPoliciesResponse,
    ListKeysResponse,
)

__all__ = ["alias_list", "grant_list", "key_list", "key_metadata", "key_policy_list"]

#: Shown when a service omits a grant's CreationDate (moto 5 does; AWS always returns it).
UNKNOWN_DATE = datetime(1970, 1, 1, tzinfo=UTC)


def key_metadata(data: Mapping[str, Any]) -> KeyMetadata:
    return KeyMetadata(
        aws_account_id=str(data.get("AWSAccountId", "")),
        key_id=str(data["KeyId"]),
        arn=str(data["Arn"]),
        creation_date=data.get("CreationDate") or UNKNOWN_DATE,
        enabled=bool(data.get("Enabled", False)),
        description=str(data.get("Description") or ""),
        key_state=KeyState(data["KeyState"]),
        key_manager=KeyManager(data.get("KeyManager", KeyManager.CUSTOMER)),
        deletion_date=data.get("DeletionDate"),
        key_usage=str(data.get("KeyUsage", "ENCRYPT_DECRYPT")),
        origin=str(data.get("Origin", "AWS_KMS")),
        key_spec=str(data.get("KeySpec") or data.get("CustomerMasterKeySpec") or SYMMETRIC_DEFAULT),
        encryption_algorithms=tuple(data.get("EncryptionAlgorithms") or (SYMMETRIC_DEFAULT,)),
        multi_region=bool(data.get("MultiRegion", False)),
    )


def _issuing_account(key_arn: str) -> str:
    # ListGrants "IssuingAccount: The Amazon Web Services account under which the grant was
    # issued" is the account root ARN; moto omits it, and an in-account grant is issued by
    # the key's own account.
    try:
        arn = KeyArn.parse(key_arn)
    except EcrCryptError:
        return ""
    return f"arn:{arn.partition}:iam::{arn.account}:root"


def _operation(value: str) -> GrantOperation:
    return GrantOperation(value)


def grant_entry(data: Mapping[str, Any], key_arn: Callable[[str], str]) -> GrantListEntry:
    key_id = str(data["KeyId"])
    if not key_id.startswith("arn:"):
        # GrantListEntry.KeyId is the key ARN on AWS; moto 5 returns the bare key id.
        key_id = key_arn(key_id)
    return GrantListEntry(
        key_id=key_id,
        grant_id=str(data["GrantId"]),
        name=data.get("Name") or None,
        creation_date=data.get("CreationDate") or UNKNOWN_DATE,
        grantee_principal=data.get("GranteePrincipal") or None,
        retiring_principal=data.get("RetiringPrincipal") or None,
        issuing_account=str(data.get("IssuingAccount") or _issuing_account(key_id)),
        operations=tuple(_operation(op) for op in data.get("Operations", ())),
        constraints=GrantConstraints.from_api(data.get("Constraints")),
        grantee_service_principal=data.get("GranteeServicePrincipal") or None,
        retiring_service_principal=data.get("RetiringServicePrincipal") or None,
    )


def grant_list(data: Mapping[str, Any], key_arn: Callable[[str], str]) -> ListGrantsResponse:
    """``key_arn`` resolves a bare key id to its ARN (called only when a service omits the ARN)."""
    cache: dict[str, str] = {}

    def resolve(key_id: str) -> str:
        if key_id not in cache:
            cache[key_id] = key_arn(key_id)
        return cache[key_id]

    return ListGrantsResponse(
        grants=tuple(grant_entry(g, resolve) for g in data.get("Grants", ())),
        next_marker=data.get("NextMarker") or None,
        truncated=bool(data.get("Truncated", False)),
    )


def alias_list(data: Mapping[str, Any]) -> ListAliasesResponse:
    return ListAliasesResponse(
        aliases=tuple(
            AliasListEntry(
                alias_name=str(a["AliasName"]),
                alias_arn=str(a.get("AliasArn", "")),
                target_key_id=a.get("TargetKeyId"),
                creation_date=a.get("CreationDate"),
                last_updated_date=a.get("LastUpdatedDate"),
            )
            for a in data.get("Aliases", ())
        ),
        next_marker=data.get("NextMarker") or None,
        truncated=bool(data.get("Truncated", False)),
    )


def key_list(data: Mapping[str, Any]) -> ListKeysResponse:
    return ListKeysResponse(
        keys=tuple(KeyListEntry(key_id=str(k["KeyId"]), key_arn=str(k["KeyArn"])) for k in data.get("Keys", ())),
        next_marker=data.get("NextMarker") or None,
        truncated=bool(data.get("Truncated", False)),
    )


def key_policy_list(data: Mapping[str, Any]) -> ListKeyPoliciesResponse:
    return ListKeyPoliciesResponse(
        policy_names=tuple(str(name) for name in data.get("PolicyNames", ())),
        next_marker=data.get("NextMarker") or None,
        truncated=bool(data.get("Truncated", False)),
    )
