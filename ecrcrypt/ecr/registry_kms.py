"""Which KMS a registry directory is opened with: its own local KMS, or AWS KMS through boto3.

The command line (``ecrcrypt --kms aws``, ``$ECRCRYPT_KMS``) and every server worker
(``ServerOptions.kms``) choose the same way, so it is decided here, once. ``aws`` builds a
:class:`~ecrcrypt.kms.aws.Boto3Kms` from boto3's default session: credentials from boto3's
chain (environment, profile, instance or task role), the endpoint from boto3's own
configuration (``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL``, the profile's ``endpoint_url``),
the Region the registry's. Nothing here holds or passes credentials: a worker process gets
them from the chain as any AWS process does.

A registry is made for one KMS and its manifest says which (``ecr.directory``): the local
KMS's files, or ``"kms": "aws"``. Opening it with the other one is refused before anything is
opened, with the option to pass -- never silently served by a KMS that holds none of its keys.
A manifest of an outside-KMS registry that names no KMS (made by ``Registry.create(kms=...)``,
or before the field existed) opens with ``aws``, the only outside KMS the command line knows.

Creating a registry on AWS KMS (``ecrcrypt --kms aws init``) takes the account from STS
GetCallerIdentity (the registry id is the credentials' account, as in ECR) and, when the metadata
is an outside database, first makes the AES256 service key there, wrapped under the KMS key the
caller names (``ServiceKey.create_wrapped``): no host writes key material to its disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecrcrypt.ecr.core import KmsFactory
from ecrcrypt.ecr.directory import (
    KMS_DB,
    MANIFEST,
    Manifest,
    check_caller_identity,
    create_directory,
    open_directory,
    outside_metadata,
    read_manifest,
)
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.metadata_url import create_metadata, open_metadata
from ecrcrypt.ecr.registry import DEFAULT_ACCOUNT, Registry
from ecrcrypt.ecr.registry_blobs import BlobStoreChoice, check_blob_store
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.errors import ValidationError
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.store.protocol import BlobStore

__all__ = [
    "AWS",
    "KMS_CHOICES",
    "LOCAL",
    "aws_account",
    "aws_kms",
    "aws_session",
    "check_kms_choice",
    "create_aws_registry",
    "create_local_registry",
    "open_registry_with",
]

LOCAL, AWS = "local", "aws"
KMS_CHOICES = (LOCAL, AWS)
_NAMES = {LOCAL: "a local KMS", AWS: "AWS KMS"}


def check_kms_choice(root: Path, manifest: Manifest, choice: str) -> None:
    """Refuse ``choice`` unless it is the KMS the registry in ``root`` was made for (``ValidationError``)."""
    if choice not in KMS_CHOICES:
        raise ValidationError(f"the KMS is one of {', '.join(KMS_CHOICES)}, not {choice!r}")
    if manifest.kms_store_id is not None:
        if choice != LOCAL:
            raise ValidationError(
                f"the registry in {root} uses its own local KMS ({root / KMS_DB}), which holds its keys, not "
                f"{_NAMES[choice]}: open it with --kms {LOCAL} (the default; ECRCRYPT_KMS={LOCAL})"
            )
        return
    recorded = manifest.outside_kms or AWS
    if choice != recorded:
        named = _NAMES.get(recorded, f"the outside KMS {recorded!r}") if manifest.outside_kms else "an outside KMS"
        raise ValidationError(
            f"the registry in {root} was made for {named} ({root / MANIFEST} says so) and has no local KMS: "
            f"open it with --kms {recorded} (ECRCRYPT_KMS={recorded})"
        )


def aws_session(region: str | None = None, *, needed_by: str = "--kms aws") -> Any:
    """boto3's default session (its credential chain and endpoint configuration) in ``region``."""
    try:
        import boto3
    except ImportError:
        raise ValidationError(f"{needed_by} needs boto3: pip install 'ecrcrypt[aws]'") from None
    return boto3.session.Session(region_name=region)


def aws_kms(region: str) -> Boto3Kms:
    """AWS KMS in ``region`` as boto3's default session reaches it."""
    return Boto3Kms(client=aws_session(region).client("kms"))


def aws_account(region: str) -> str:
    """The account of boto3's credentials (STS GetCallerIdentity): a registry on AWS is that account's."""
    return str(aws_session(region).client("sts").get_caller_identity()["Account"])


def open_registry_with(
    directory: Path,
    *,
    kms: str,
    metadata: str | None = None,
    store: BlobStore | None = None,
    caller: str | None = None,
    blobs: BlobStoreChoice | None = None,
    init: bool = False,
) -> Registry:
    """Open the registry in ``directory`` on the KMS it was made for, once ``kms`` names that one.

    ``blobs``: the blob store chosen (the command line's ``--s3-bucket``, a server's options), opened
    once it is the one the registry records (``ecr.registry_blobs``; ``init``: ``ecrcrypt init`` chose it);
    ``store``: a store of the caller's, unchecked (the library's ``Registry.open(store=)``).
    """
    manifest = read_manifest(directory)
    check_kms_choice(directory, manifest, kms)
    factory: KmsFactory | None = None
    if kms != LOCAL:
        client = aws_kms(manifest.region)
        factory = lambda _principal: client  # noqa: E731
    opened_with: str | MetadataStore | None = metadata
    if blobs is not None:
        if store is not None:
            raise ValidationError("give store= (a store of your own) or blobs= (a choice to check), not both")
        store = blobs.open(lambda: aws_session(needed_by="--s3-bucket"))
        opened_with = _checked_blobs(directory, manifest, metadata, blobs, init=init)  # last: nothing may fail after it
    return Registry.open(directory, kms=factory, metadata=opened_with, store=store, caller=caller)


def _checked_blobs(
    directory: Path, manifest: Manifest, metadata: str | MetadataStore | None, blobs: BlobStoreChoice, *, init: bool
) -> str | MetadataStore | None:
    """Refuse ``blobs`` unless the registry records it (or records it now); what the registry then opens with.

    A record is written only into the registry's own metadata: the directory's database once the directory
    is verified, or the outside database whose store id the manifest names. Outside metadata is opened here
    once and handed on (the registry closes it): not opened twice, nor its service key unwrapped twice (with
    the local KMS, each unwrap is a Decrypt in the audit trail).
    """
    outside = outside_metadata(directory, metadata)
    if outside is None:
        opened = open_directory(directory, open_local_kms=False, metadata=metadata)
        try:
            check_blob_store(directory, opened.metadata, blobs, init=init)
        finally:
            opened.close()
        return metadata
    store = open_metadata(outside) if isinstance(outside, str) else outside
    try:
        if manifest.external_metadata and store.store_id == manifest.registry_store_id:
            check_blob_store(directory, store, blobs, init=init)
        # otherwise not this registry's metadata: Registry.open refuses it, saying why
    except BaseException:
        store.close()
        raise
    return store


def create_local_registry(
    directory: Path, *, region: str, metadata: str | None = None, blobs: BlobStoreChoice | None = None
) -> Registry:
    """Make a registry with its own local KMS in ``directory`` unless one is there (``Registry.create``),
    then open it on ``blobs``, recorded as ``init``'s choice."""
    create_directory(directory, account=DEFAULT_ACCOUNT, region=region, local_kms=True, metadata=metadata)
    check_caller_identity(read_manifest(directory), account=DEFAULT_ACCOUNT, region=region)
    return open_registry_with(directory, kms=LOCAL, metadata=metadata, blobs=blobs, init=True)


def create_aws_registry(
    directory: Path,
    *,
    region: str,
    metadata: str | None = None,
    wrapping_key: str | None = None,
    blobs: BlobStoreChoice | None = None,
) -> Registry:
    """Make a registry on AWS KMS in ``directory`` (missing or empty), then open it.

    With outside metadata (``metadata``, a URL) the service key is made there first, wrapped under
    ``wrapping_key`` (a key id, key ARN, alias name or alias ARN); idempotent, so every host of a fleet
    may run it at start on a directory of its own: the first makes the key, the others unwrap it.
    Without outside metadata the service key is a file in ``directory``, as with the local KMS.
    """
    outside = outside_metadata(directory, metadata)
    if outside is None and wrapping_key is not None:
        raise ValidationError(
            "--service-key-wrapping-key wraps the service key kept in outside metadata (--metadata-url); "
            f"without one the key is a file in {directory}: drop the option, or give --metadata-url"
        )
    if isinstance(outside, str) and wrapping_key is None:
        raise ValidationError(
            "a registry on AWS KMS with outside metadata keeps its AES256 service key there wrapped under a KMS key: "
            "name it with --service-key-wrapping-key <key id, key ARN or alias>"
        )
    kms = aws_kms(region)
    account = aws_account(region)
    if isinstance(outside, str) and wrapping_key is not None:
        store = create_metadata(outside, account=account, region=region)
        try:
            ServiceKey.create_wrapped(store, kms, key_id=wrapping_key)
        finally:
            store.close()
    create_directory(directory, account=account, region=region, local_kms=False, metadata=metadata, outside_kms=AWS)
    return open_registry_with(directory, kms=AWS, metadata=metadata, blobs=blobs, init=True)
