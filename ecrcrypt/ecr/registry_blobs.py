"""Where a registry directory's blobs are: its own ``blobs/`` folder, or an S3 bucket every host shares.

The command line (``ecrcrypt --s3-bucket``, ``$ECRCRYPT_S3_BUCKET``) and every server worker
(``ServerOptions.s3_bucket``) choose the same way, so it is decided here, once.

On a fleet each host has a directory of its own but all of them open one metadata database: a
blob written into one host's ``blobs/`` would be recorded for every host, and no other host could
read it. So the blob store is a fact of the *registry*, recorded where every host reads it -- the
metadata's ``registry`` table (key :data:`BLOB_STORE`: ``directory`` or ``s3://<bucket>``) -- and an
open that chooses another store is refused with ``RegistryStateError`` before anything is opened or
written, naming what is recorded and the option to pass. The endpoint URL is not recorded: it may
differ per host (a VPC endpoint, a proxy) while naming the same bucket.

A registry without the record (made before it existed, or by the library) keeps opening as it
did. Only an explicit choice is recorded, never the default of a command that names no store:
an operator's ``ecr describe-repositories`` without ``--s3-bucket`` on an old fleet must not pin
the fleet to one host's folder. The record is written

* by ``init`` (``init=True``), with the store it names -- ``directory`` only when nothing says the
  blobs are elsewhere: the metadata records no object, or this directory's ``blobs/`` holds them;
* by the first open that names a bucket, unless this directory's ``blobs/`` holds blobs: those
  are the registry's (an unrecorded registry with local blobs is a directory-blob registry), and
  opening it on a bucket would leave every one of them behind, so it is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ecrcrypt.arns import S3BucketName
from ecrcrypt.ecr.directory import BLOBS
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.errors import RegistryStateError, ValidationError
from ecrcrypt.store.filesystem import FilesystemBlobStore
from ecrcrypt.store.protocol import BlobStore
from ecrcrypt.store.s3 import S3BlobStore

__all__ = ["BLOB_STORE", "DIRECTORY", "BlobStoreChoice", "check_blob_store", "check_given_store"]

#: The metadata record of the registry's blob store.
BLOB_STORE = "blobs.store"
#: Its value for blobs in each registry directory's ``blobs/``.
DIRECTORY = "directory"
_S3 = "s3://"


def _bucket(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None:
        S3BucketName(value)  # S3's naming rules, ValidationError naming the rule broken


@attrs.frozen(kw_only=True)
class BlobStoreChoice:
    """The blob store an open asks for: ``s3_bucket`` (``None``: the directory's ``blobs/``), reached at
    ``s3_endpoint_url`` when given (an S3-compatible endpoint; otherwise boto3's configuration)."""

    s3_bucket: str | None = attrs.field(default=None, validator=_bucket)
    s3_endpoint_url: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.s3_endpoint_url is not None and self.s3_bucket is None:
            raise ValidationError(
                "--s3-endpoint-url is the endpoint of --s3-bucket: give the bucket too (ECRCRYPT_S3_BUCKET)"
            )

    @property
    def identity(self) -> str:
        """What the metadata records for this store."""
        return DIRECTORY if self.s3_bucket is None else f"{_S3}{self.s3_bucket}"

    def open(self, session: Callable[[], Any]) -> BlobStore | None:
        """The S3 store (a client of boto3 ``session()``), or ``None`` for the directory's own ``blobs/``."""
        if self.s3_bucket is None:
            return None
        return S3BlobStore(session().client("s3", endpoint_url=self.s3_endpoint_url), self.s3_bucket)


def _described(identity: str) -> str:
    if identity == DIRECTORY:
        return "in the registry directory's blobs/ folder (each host's own)"
    if identity.startswith(_S3):
        return f"in S3 bucket {identity[len(_S3) :]}"
    return f"in {identity!r}"


def _option(identity: str) -> str:
    if identity == DIRECTORY:
        return "open it without --s3-bucket (unset ECRCRYPT_S3_BUCKET)"
    if identity.startswith(_S3):
        bucket = identity[len(_S3) :]
        return f"open it with --s3-bucket {bucket} (ECRCRYPT_S3_BUCKET={bucket})"
    return "open it with the ecrcrypt that recorded it"


def _local_blob(root: Path) -> Path | None:
    """A file in this directory's ``blobs/``, if it holds any (the first found: a large folder is not walked)."""
    folder = root / BLOBS
    if not folder.is_dir():
        return None
    return next((p for p in folder.rglob("*") if p.is_file()), None)


def _holds_objects(metadata: MetadataStore) -> bool:
    return any(metadata.count_objects(r.name) for r in metadata.list_repositories())


def check_blob_store(root: Path, metadata: MetadataStore, choice: BlobStoreChoice, *, init: bool = False) -> None:
    """Refuse ``choice`` unless it is the blob store the registry (``root``'s, on ``metadata``) records;
    record it first when the registry records none and the choice is explicit (module docstring)."""
    recorded = metadata.recorded(BLOB_STORE)
    if recorded is None:
        recorded = _record(root, metadata, choice, init=init)
        if recorded is None:
            return
    if recorded != choice.identity:
        raise _refused(root, metadata, recorded, choice.identity, _option(recorded))


def _refused(root: Path, metadata: MetadataStore, recorded: str, given: str, advice: str) -> RegistryStateError:
    return RegistryStateError(
        f"the registry in {root} keeps its blobs {_described(recorded)} (its metadata at {metadata.location} "
        f"records {BLOB_STORE}={recorded}), not {_described(given)}: {advice}. "
        "Blobs written anywhere else could not be read by the registry's other hosts and commands",
        path=None if metadata.path is None else str(metadata.path),
    )


def _record(root: Path, metadata: MetadataStore, choice: BlobStoreChoice, *, init: bool) -> str | None:
    """What the registry records after an open with ``choice`` on a registry that recorded nothing."""
    if choice.s3_bucket is None and not init:
        return None  # the default of a command that names no store: nothing to record, nothing to refuse
    local = _local_blob(root)
    if choice.s3_bucket is not None and local is not None:
        raise RegistryStateError(
            f"the registry in {root} records no blob store and its {root / BLOBS} holds blobs ({local}): they are "
            f"the registry's, and S3 bucket {choice.s3_bucket} does not have them. Open it without --s3-bucket; to "
            f"move its blobs to S3, copy {root / BLOBS} into the bucket under the same keys (aws s3 sync), remove "
            "the copied files, then open it with --s3-bucket",
            path=str(root / BLOBS),
        )
    if choice.s3_bucket is None and local is None and _holds_objects(metadata):
        return None  # init naming no store while the registry's objects are elsewhere (in a bucket): left open
    return metadata.record_once(BLOB_STORE, choice.identity)  # a concurrent first open may have won


def check_given_store(root: Path, metadata: MetadataStore, store: BlobStore | None) -> None:
    """The library's open (``Registry.open(directory, store=...)``): refuse a store that is plainly not
    the one the registry records -- another bucket, a bucket for a registry whose blobs are in its
    directories, the directory's ``blobs/`` (``store=None``) for a registry in S3 -- since blobs
    written there could not be read by the registry's other hosts and commands.

    Never records anything (only the explicit choice of a command or a server does: ``check_blob_store``),
    and a store it cannot identify -- in memory, a filesystem store elsewhere, a store of the caller's
    own -- is the caller's to answer for.
    """
    recorded = metadata.recorded(BLOB_STORE)
    if recorded is None:
        return
    if store is None:
        given = DIRECTORY
    elif isinstance(store, S3BlobStore):
        given = f"{_S3}{store.bucket}"
    elif isinstance(store, FilesystemBlobStore) and store.root == (root / BLOBS).absolute():
        given = DIRECTORY
    else:
        return
    if given != recorded:
        raise _refused(root, metadata, recorded, given, _store_to_give(recorded))


def _store_to_give(identity: str) -> str:
    """``_option``'s advice for the library's ``store=`` argument."""
    if identity == DIRECTORY:
        return "give no store (its blobs/ folder)"
    if identity.startswith(_S3):
        return f"give store=S3BlobStore(client, {identity[len(_S3) :]!r})"
    return "open it with the ecrcrypt that recorded it"
