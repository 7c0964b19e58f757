"""ecrcrypt: envelope encryption modelled on Amazon ECR's encryption at rest.

The whole public surface is listed here; everything else is an implementation
detail. Layers, from the bottom: values (ARNs, encryption context, configuration,
errors) → the ESDK message format and its streams → key providers and the KMS
(local model, or AWS through boto3) → blob stores → the ECR registry model.
``import ecrcrypt`` loads neither boto3, hypothesis nor a CLI library: those are
optional extras, imported only by the modules that need them.
"""

import logging

from ecrcrypt.arns import (
    AccountId,
    AliasArn,
    AliasName,
    KeyArn,
    KeyId,
    Partition,
    Region,
    RepositoryArn,
    RepositoryName,
    S3BucketName,
    S3ObjectArn,
    parse_key_reference,
)
from ecrcrypt.authz import Decision, Policy, Principal, simulate
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.authorization import AuthorizationData, get_authorization_token
from ecrcrypt.ecr.gc import GarbageReport
from ecrcrypt.ecr.images import ImageApi, ImageIdentifier
from ecrcrypt.ecr.metadata import RegistryMetadata
from ecrcrypt.ecr.metadata_postgres import PostgresMetadata
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.metadata_url import create_metadata, open_metadata
from ecrcrypt.ecr.migration import MigrationReport, migrate
from ecrcrypt.ecr.permissions import EcrAuthorization, RepositoryPolicy
from ecrcrypt.ecr.recovery import RecoveryReport
from ecrcrypt.ecr.registry import Registry, find_repository_grants
from ecrcrypt.ecr.repository import LayerUpload, Repository
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.ecr.types import Image, ImageDetail, ImageId, LayerPush, RepositoryDescription, build_manifest
from ecrcrypt.ecr.uploads import LayerUploads
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.format.message import DEFAULT_FRAME_LENGTH, DecryptPolicy
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey, KeyProvider
from ecrcrypt.kms import (
    GrantConstraints,
    GrantListEntry,
    GrantOperation,
    KeyManager,
    KeyMetadata,
    KeyState,
    Kms,
    KmsQuotas,
)
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.kms.local.audit import AuditEvent, AuditTrail
from ecrcrypt.kms.local.iam import LocalIam
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient, ManualClock
from ecrcrypt.providers.kms_keyring import KmsKeyProvider
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.store.filesystem import FilesystemBlobStore
from ecrcrypt.store.memory import MemoryBlobStore
from ecrcrypt.store.protocol import BlobRangeReader, BlobStore, BlobWriter
from ecrcrypt.store.s3 import S3BlobStore
from ecrcrypt.streams import (
    BodyFirstWriter,
    DecryptingReader,
    EncryptingWriter,
    header_length,
    iter_decrypt,
    iter_encrypt,
)
from ecrcrypt.streams.oneshot import decrypt, encrypt
from ecrcrypt.streams.ranges import FileRangeSource, RandomAccessSource, decrypt_range

__version__ = "0.1.0"

# Library logging: ``ecrcrypt.*`` loggers, silent unless the application configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AccountId",
    "AliasArn",
    "AliasName",
    "AuditEvent",
    "AuditTrail",
    "AuthorizationData",
    "BlobRangeReader",
    "BlobStore",
    "BlobWriter",
    "BodyFirstWriter",
    "Boto3Kms",
    "DEFAULT_FRAME_LENGTH",
    "DataKey",
    "Decision",
    "DecryptPolicy",
    "DecryptingReader",
    "Digest",
    "EcrAuthorization",
    "EcrCryptError",
    "EncryptedDataKey",
    "EncryptingWriter",
    "EncryptionConfiguration",
    "EncryptionContext",
    "EncryptionType",
    "FileRangeSource",
    "FilesystemBlobStore",
    "GarbageReport",
    "GrantConstraints",
    "GrantListEntry",
    "GrantOperation",
    "Image",
    "ImageApi",
    "ImageDetail",
    "ImageId",
    "ImageIdentifier",
    "KeyArn",
    "KeyId",
    "KeyManager",
    "KeyMetadata",
    "KeyProvider",
    "KeyState",
    "Kms",
    "KmsKeyProvider",
    "KmsQuotas",
    "LayerPush",
    "LayerUpload",
    "LayerUploads",
    "LocalIam",
    "LocalKms",
    "LocalKmsClient",
    "ManualClock",
    "MemoryBlobStore",
    "MetadataStore",
    "MigrationReport",
    "Partition",
    "Policy",
    "PostgresMetadata",
    "Principal",
    "RandomAccessSource",
    "RawAesKeyProvider",
    "RecoveryReport",
    "Region",
    "Registry",
    "RegistryMetadata",
    "Repository",
    "RepositoryArn",
    "RepositoryDescription",
    "RepositoryName",
    "RepositoryPolicy",
    "S3BlobStore",
    "S3BucketName",
    "S3ObjectArn",
    "ServiceKey",
    "build_manifest",
    "create_metadata",
    "decrypt",
    "decrypt_range",
    "encrypt",
    "find_repository_grants",
    "get_authorization_token",
    "header_length",
    "iter_decrypt",
    "iter_encrypt",
    "migrate",
    "open_metadata",
    "parse_key_reference",
    "simulate",
]
