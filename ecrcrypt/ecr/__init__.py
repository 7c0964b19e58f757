"""The ECR model: a registry of repositories with immutable encryption and their KMS grants.

``types`` holds the ECR value types, ``registry`` and ``repository`` the two objects users hold,
``metadata`` the registry's own records, ``codec`` how an object is laid out as messages,
``grant_provider`` the data keys of a KMS repository, ``service_key`` the AES256 key,
``migration`` the move to another configuration, ``audit_events`` the ECR records of the trail.

Layer: ecr. May import every layer below it (values, format, streams, kms, providers, store).
"""

from ecrcrypt.ecr.migration import MigrationReport, migrate
from ecrcrypt.ecr.registry import Registry, find_repository_grants
from ecrcrypt.ecr.repository import LayerUpload, Repository
from ecrcrypt.ecr.types import Image, ImageId, LayerPush, RepositoryDescription, build_manifest

__all__ = [
    "Image",
    "ImageId",
    "LayerPush",
    "LayerUpload",
    "MigrationReport",
    "Registry",
    "Repository",
    "RepositoryDescription",
    "build_manifest",
    "find_repository_grants",
    "migrate",
]
