"""How a server process is configured: passed through the environment because uvicorn builds the
application in each worker process from an import string (``app:app_from_environment``)."""

from __future__ import annotations

import json
import os

import attrs

from ecrcrypt.ecr.registry_blobs import BlobStoreChoice
from ecrcrypt.ecr.registry_kms import KMS_CHOICES, LOCAL

__all__ = ["ENVIRONMENT_VARIABLE", "ServerOptions"]

ENVIRONMENT_VARIABLE = "ECRCRYPT_SERVER_OPTIONS"


@attrs.frozen(kw_only=True)
class ServerOptions:
    """``directory``: the registry (``ecrcrypt --dir``); ``create_on_push``: a push to a repository that
    does not exist creates it, as the pushing principal, with the registry's default encryption
    configuration (otherwise repositories are created explicitly, as on ECR); ``s3_bucket``: the
    blobs go to S3 (``s3_endpoint_url`` for an S3-compatible endpoint) while the metadata, the
    service key and the local KMS stay in ``directory``; ``metadata_url``: the registry's outside
    metadata (``ecrcrypt --metadata-url``: PostgreSQL for a fleet of servers), never in a repr; ``kms``:
    the registry's KMS (``ecrcrypt --kms``): ``local`` (the directory's own) or ``aws`` (AWS KMS, which each
    worker reaches with boto3's default session and credential chain: no credential travels here)."""

    directory: str
    create_on_push: bool = False
    #: Blobs in this S3 bucket instead of ``directory/blobs`` (boto3's credentials and region).
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    #: The registry's metadata database (``postgresql://…``), when not ``directory``'s own.
    metadata_url: str | None = attrs.field(default=None, repr=False)
    #: ``local`` or ``aws`` (``ecr.registry_kms``).
    kms: str = attrs.field(default=LOCAL, validator=attrs.validators.in_(KMS_CHOICES))

    @property
    def blobs(self) -> BlobStoreChoice:
        """The blob store to open, checked against the one the registry records (``ecr.registry_blobs``)."""
        return BlobStoreChoice(s3_bucket=self.s3_bucket, s3_endpoint_url=self.s3_endpoint_url)

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerOptions:
        doc = json.loads(text)
        return cls(
            directory=str(doc["directory"]),
            create_on_push=bool(doc.get("create_on_push", False)),
            s3_bucket=doc.get("s3_bucket"),
            s3_endpoint_url=doc.get("s3_endpoint_url"),
            metadata_url=doc.get("metadata_url"),
            kms=str(doc.get("kms", LOCAL)),  # options of an ecrcrypt before --kms: the local KMS
        )

    @classmethod
    def from_environment(cls) -> ServerOptions:
        text = os.environ.get(ENVIRONMENT_VARIABLE)
        if not text:
            raise RuntimeError(f"{ENVIRONMENT_VARIABLE} is not set: start the server with `ecrcrypt serve`")
        return cls.from_json(text)
