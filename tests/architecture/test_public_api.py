"""The public surface, pinned: an API change must show up in review as a change to this list."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import ecrcrypt

# Keep in sync with ecrcrypt/__init__.py: adding or removing a public name is a decision.
EXPECTED_ALL = [
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

# Optional extras: the core must import without any of them.
OPTIONAL = [
    "boto3",
    "botocore",
    "hypothesis",
    "click",
    "rich",
    "moto",
    "aws_encryption_sdk",
    "tink",
    "psycopg",
    "psycopg_pool",
]


def test_all_is_pinned() -> None:
    assert list(ecrcrypt.__all__) == EXPECTED_ALL


def test_all_is_alphabetical_and_unique() -> None:
    assert list(ecrcrypt.__all__) == sorted(set(ecrcrypt.__all__))


def test_every_public_name_is_importable() -> None:
    for name in ecrcrypt.__all__:
        assert getattr(ecrcrypt, name, None) is not None, name
    namespace: dict[str, object] = {}
    exec("from ecrcrypt import *", namespace)
    assert set(ecrcrypt.__all__) <= set(namespace)


def test_public_objects_come_from_the_package() -> None:
    for name in ecrcrypt.__all__:
        obj = getattr(ecrcrypt, name)
        if not callable(obj):
            continue  # constants such as DEFAULT_FRAME_LENGTH
        module = obj.__module__
        assert module.startswith("ecrcrypt"), (name, module)
        assert importlib.import_module(module) is not None


def test_import_ecrcrypt_loads_no_optional_dependency() -> None:
    code = (
        f"import json, sys\nimport ecrcrypt\nprint(json.dumps(sorted(m for m in {OPTIONAL!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_check_would_notice_an_optional_import() -> None:
    # The subprocess check is live: importing the strategies module does load hypothesis.
    code = "import sys, ecrcrypt.strategies\nprint('hypothesis' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
