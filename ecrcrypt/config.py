"""A repository's encryption configuration: chosen at creation, never changed.

There is deliberately no setter and no ``evolve`` helper: to change how a
repository is encrypted, create a new repository and migrate its images
(:func:`ecrcrypt.ecr.migration`), as ECR requires.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ecrcrypt.arns import AliasArn, AliasName, KeyArn, KeyId, KeyReference, parse_key_reference
from ecrcrypt.errors import InvalidParameterError, ValidationError

__all__ = ["EncryptionConfiguration", "EncryptionType"]


class EncryptionType(enum.StrEnum):
    """ECR's ``encryptionType`` values."""

    AES256 = "AES256"
    KMS = "KMS"
    KMS_DSSE = "KMS_DSSE"


def _to_type(value: object) -> EncryptionType:
    if isinstance(value, str) and value in EncryptionType.__members__.values():
        return EncryptionType(value)
    raise InvalidParameterError(f"encryptionType {value!r} is invalid: expected one of AES256, KMS, KMS_DSSE")


def _to_key(value: object) -> KeyReference | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not 1 <= len(value) <= 2048:
            raise InvalidParameterError("kmsKey must be 1 to 2048 characters")
        try:
            return parse_key_reference(value)
        except ValidationError as exc:
            raise InvalidParameterError(f"kmsKey is invalid: {exc}") from None
    if isinstance(value, KeyId | KeyArn | AliasName | AliasArn):
        return value
    # A number or another object from a decoded request: accepted, to_api would print it as a key ("5").
    raise InvalidParameterError(f"kmsKey must be a str, not {type(value).__name__}")


@attrs.frozen(kw_only=True)
class EncryptionConfiguration:
    """``AES256`` (the default), ``KMS`` or ``KMS_DSSE``, with an optional KMS key.

    ``kms_key`` may be a key id, key ARN, alias name or alias ARN; ``None`` with a
    KMS type means the AWS managed key ``alias/aws/ecr``. Once a repository exists
    its configuration records the resolved key ARN.
    """

    encryption_type: EncryptionType = attrs.field(default=EncryptionType.AES256, converter=_to_type)
    kms_key: KeyReference | None = attrs.field(default=None, converter=_to_key)

    def __attrs_post_init__(self) -> None:
        if self.encryption_type is EncryptionType.AES256 and self.kms_key is not None:
            # ECR: a KMS key only makes sense with KMS or KMS_DSSE encryption.
            raise InvalidParameterError("kmsKey can only be specified when encryptionType is KMS or KMS_DSSE")

    @property
    def uses_kms(self) -> bool:
        return self.encryption_type is not EncryptionType.AES256

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> EncryptionConfiguration:
        """From ECR's ``encryptionConfiguration`` structure (``None``: the default)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidParameterError(f"encryptionConfiguration must be a mapping, not {type(data).__name__}")
        unknown = set(data) - {"encryptionType", "kmsKey"}
        if unknown:
            raise InvalidParameterError(f"encryptionConfiguration has unknown fields: {sorted(unknown)}")
        if "encryptionType" not in data:
            raise InvalidParameterError("encryptionConfiguration.encryptionType is required")
        return cls(encryption_type=data["encryptionType"], kms_key=data.get("kmsKey"))

    def to_api(self) -> dict[str, str]:
        out = {"encryptionType": self.encryption_type.value}
        if self.kms_key is not None:
            out["kmsKey"] = str(self.kms_key)
        return out
