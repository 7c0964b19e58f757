"""ecrcrypt: envelope encryption modelled on Amazon ECR's encryption at rest.

The whole public surface is listed here; everything else is an implementation
detail. Layers, from the bottom: values (ARNs, encryption context, configuration,
errors) → the ESDK message format and its streams → key providers and the KMS
(local model, or AWS through boto3) → blob stores → the ECR registry model.
``import ecrcrypt`` loads neither boto3, hypothesis nor a CLI library: those are
optional extras, imported only by the modules that need them.
"""

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
from ecrcrypt.audit import AuditEvent, AuditTrail
from ecrcrypt.aws_kms import Boto3Kms
from ecrcrypt.blobstore import BlobStore, BlobWriter, FilesystemBlobStore, MemoryBlobStore
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import EcrCryptError
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
from ecrcrypt.kms_keyring import KmsKeyProvider
from ecrcrypt.local_kms import LocalKms, LocalKmsClient, ManualClock
from ecrcrypt.message import DEFAULT_FRAME_LENGTH, DecryptPolicy, decrypt, encrypt
from ecrcrypt.migrate import MigrationReport, migrate
from ecrcrypt.ranges import FileRangeSource, RandomAccessSource, decrypt_range
from ecrcrypt.raw_aes import RawAesKeyProvider
from ecrcrypt.registry import Registry, find_repository_grants
from ecrcrypt.repository import (
    Image,
    ImageId,
    LayerPush,
    LayerUpload,
    Repository,
    RepositoryDescription,
    build_manifest,
)
from ecrcrypt.s3 import S3BlobStore
from ecrcrypt.streams import (
    BodyFirstWriter,
    DecryptingReader,
    EncryptingWriter,
    header_length,
    iter_decrypt,
    iter_encrypt,
)

__version__ = "0.1.0"

__all__ = [
    "AccountId",
    "AliasArn",
    "AliasName",
    "AuditEvent",
    "AuditTrail",
    "BlobStore",
    "BlobWriter",
    "BodyFirstWriter",
    "Boto3Kms",
    "DEFAULT_FRAME_LENGTH",
    "DataKey",
    "DecryptPolicy",
    "DecryptingReader",
    "Digest",
    "EcrCryptError",
    "EncryptedDataKey",
    "EncryptingWriter",
    "EncryptionConfiguration",
    "EncryptionContext",
    "EncryptionType",
    "FileRangeSource",
    "FilesystemBlobStore",
    "GrantConstraints",
    "GrantListEntry",
    "GrantOperation",
    "Image",
    "ImageId",
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
    "LocalKms",
    "LocalKmsClient",
    "ManualClock",
    "MemoryBlobStore",
    "MigrationReport",
    "Partition",
    "RandomAccessSource",
    "RawAesKeyProvider",
    "Region",
    "Registry",
    "Repository",
    "RepositoryArn",
    "RepositoryDescription",
    "RepositoryName",
    "S3BlobStore",
    "S3BucketName",
    "S3ObjectArn",
    "build_manifest",
    "decrypt",
    "decrypt_range",
    "encrypt",
    "find_repository_grants",
    "header_length",
    "iter_decrypt",
    "iter_encrypt",
    "migrate",
    "parse_key_reference",
]
