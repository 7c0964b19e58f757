"""ecrcrypt: envelope encryption modelled on Amazon ECR's encryption at rest."""

from ecrcrypt.arns import (
    AccountId,
    AliasArn,
    AliasName,
    KeyArn,
    KeyId,
    Region,
    RepositoryArn,
    RepositoryName,
    S3BucketName,
    S3ObjectArn,
    parse_key_reference,
)
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey, KeyProvider

__all__ = [
    "AccountId",
    "AliasArn",
    "AliasName",
    "DataKey",
    "Digest",
    "EcrCryptError",
    "EncryptedDataKey",
    "EncryptionConfiguration",
    "EncryptionContext",
    "EncryptionType",
    "KeyArn",
    "KeyId",
    "KeyProvider",
    "Region",
    "RepositoryArn",
    "RepositoryName",
    "S3BucketName",
    "S3ObjectArn",
    "parse_key_reference",
]
