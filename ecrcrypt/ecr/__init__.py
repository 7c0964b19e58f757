"""The ECR model: a registry of repositories with immutable encryption and their KMS grants.

``types`` holds the ECR value types, ``registry`` and ``repository`` the two objects users hold,
``metadata`` the registry's own records, ``directory`` the embedded registry directory (its
manifest, explicit create, verified open), ``registry_kms`` which KMS a directory opens with
(its local one or AWS KMS), ``registry_blobs`` where its blobs are (its ``blobs/`` or an S3 bucket,
recorded in the metadata), ``codec`` how an object is laid out as messages,
``grant_provider`` the data keys of a KMS repository, ``service_key`` the AES256 key,
``migration`` the move to another configuration, ``audit_events`` the ECR records of the trail;
``lifecycle`` a repository's grants (names, constraints, retirement), ``recovery`` the finishing or
undoing of what a killed process left, ``gc`` the collection of unreferenced blobs, ``liveness``
whose intent is whose, ``crashpoints`` the points the crash tests kill at.

Layer: ecr. May import every layer below it (values, format, streams, kms, providers, store).
"""

from ecrcrypt.ecr.gc import GarbageReport
from ecrcrypt.ecr.migration import MigrationReport, migrate
from ecrcrypt.ecr.recovery import RecoveryReport
from ecrcrypt.ecr.registry import Registry, find_repository_grants
from ecrcrypt.ecr.repository import LayerUpload, Repository
from ecrcrypt.ecr.types import Image, ImageId, LayerPush, RepositoryDescription, build_manifest

__all__ = [
    "GarbageReport",
    "Image",
    "ImageId",
    "LayerPush",
    "LayerUpload",
    "MigrationReport",
    "RecoveryReport",
    "Registry",
    "Repository",
    "RepositoryDescription",
    "build_manifest",
    "find_repository_grants",
    "migrate",
]
