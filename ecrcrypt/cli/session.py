"""What every command shares: the global options, the registry they name, and printing.

A registry directory is made only by ``ecrcrypt init``: any other command on a
missing directory, or on one without a registry's files, fails with exit 253 instead
of silently creating an empty registry (with a fresh root key) where a typo pointed.

A registry is one account in one Region, as in ECR: ``init --region`` records it (the
registry's manifest), and ``--region`` on a later command must name it -- another Region's
keys and repositories would be another registry, in another directory.

``--metadata-url`` (env ``ECRCRYPT_METADATA_URL``) keeps the registry's metadata in an outside
database (``postgresql://…`` for a fleet, or ``sqlite:///…``); unset, it is the directory's own
``registry.sqlite3``. ``init`` makes it, every other command opens it and never makes one.
The URL may hold a password: it is never printed (``Settings``' repr leaves it out, and every
message names the database without it).

``--kms`` (env ``ECRCRYPT_KMS``) is the registry's KMS: ``local`` (the directory's own, the default)
or ``aws`` (AWS KMS through boto3's default session: ``ecr.registry_kms``). ``init`` records it in
the manifest, and every other command must name the same one (exit 253 otherwise, saying which).
With ``aws`` the calls to KMS are made as boto3's credentials, so ``--caller`` (a principal of the
local IAM model) is refused rather than ignored.

``--s3-bucket`` (env ``ECRCRYPT_S3_BUCKET``, with ``--s3-endpoint-url`` / ``ECRCRYPT_S3_ENDPOINT_URL``
for an S3-compatible endpoint) keeps the registry's blobs in that bucket instead of the directory's
``blobs/``, as ``serve`` does (``ecr.registry_blobs``). The registry's metadata records the store
(``init``, or the first open that names a bucket), and an open naming another one is refused
(exit 253, saying what to pass): a push on one fleet host must never land where the others cannot
read it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import click

from ecrcrypt.cli.errors import OPERATION, ConfigurationError
from ecrcrypt.cli.output import render
from ecrcrypt.ecr.directory import MANIFEST, read_manifest
from ecrcrypt.ecr.registry import DEFAULT_REGION, Registry
from ecrcrypt.ecr.registry_blobs import BlobStoreChoice
from ecrcrypt.ecr.registry_kms import (
    AWS,
    LOCAL,
    aws_session,
    check_kms_choice,
    create_aws_registry,
    create_local_registry,
    open_registry_with,
)
from ecrcrypt.errors import RegistryStateError, ValidationError

__all__ = ["Settings", "aws_region", "check_kms", "check_region", "emit", "open_registry", "require_registry"]


@attrs.frozen(kw_only=True)
class Settings:
    """The global options, as parsed (before or after the command)."""

    directory: Path
    region: str | None
    caller: str | None
    output: str
    query: str | None
    progress: bool
    metadata_url: str | None = attrs.field(default=None, repr=False)
    kms: str = LOCAL
    #: ``--s3-bucket`` / ``--s3-endpoint-url``: where the blobs are (default: the directory's ``blobs/``)
    blobs: BlobStoreChoice = attrs.field(factory=BlobStoreChoice)


def require_registry(directory: Path) -> None:
    """Raise :class:`ConfigurationError` unless ``directory`` looks like a registry (its manifest);
    ``Registry.open`` then checks every file and refuses a damaged one."""
    if not directory.is_dir():
        raise ConfigurationError(
            f"registry directory {str(directory)!r} does not exist; create it with: ecrcrypt --dir {directory} init"
        )
    if not (directory / MANIFEST).exists():
        raise ConfigurationError(
            f"{str(directory)!r} is not an ecrcrypt registry (no {MANIFEST}); "
            f"create one with: ecrcrypt --dir {directory} init"
        )


def check_kms(settings: Settings) -> None:
    """What ``--kms aws`` cannot be combined with: ``--caller`` names a principal of the local IAM model."""
    if settings.kms == AWS and settings.caller is not None:
        raise click.UsageError(
            "--caller acts as a principal of the local KMS's IAM model; with --kms aws every call is made as "
            "boto3's credentials: choose them with AWS_PROFILE or a role instead"
        )


def aws_region(settings: Settings) -> str:
    """The Region of AWS KMS calls that no registry decides yet: --region, else boto3's, else the default."""
    return settings.region or aws_session().region_name or DEFAULT_REGION


def _open(settings: Settings, *, create: bool, wrapping_key: str | None = None) -> Registry:
    directory = settings.directory
    metadata = settings.metadata_url
    check_kms(settings)
    if wrapping_key is not None and settings.kms != AWS:
        raise click.UsageError(
            "--service-key-wrapping-key is for --kms aws: the local KMS makes the key that wraps the service key"
        )
    try:
        exists = (directory / MANIFEST).exists()
        if exists:
            check_kms_choice(directory, read_manifest(directory), settings.kms)
        blobs = settings.blobs
        if create and not exists and settings.kms == AWS:
            return create_aws_registry(
                directory, region=aws_region(settings), metadata=metadata, wrapping_key=wrapping_key, blobs=blobs
            )
        if create and not (settings.region is None and exists) and settings.kms == LOCAL:
            return create_local_registry(
                directory, region=settings.region or DEFAULT_REGION, metadata=metadata, blobs=blobs
            )
        require_registry(directory)
        return open_registry_with(directory, kms=settings.kms, metadata=metadata, blobs=blobs, init=create)
    except (RegistryStateError, ValidationError) as exc:
        # A damaged registry, or init naming another Region than the registry's: the environment.
        raise ConfigurationError(f"{directory}: {exc}") from exc


def check_region(settings: Settings, region: str) -> None:
    """A ``--region`` must name the registry's own Region (``region``)."""
    if settings.region is not None and settings.region != region:
        raise ConfigurationError(
            f"the registry in {str(settings.directory)!r} is in {region}, not {settings.region}; "
            f"a registry in {settings.region} is another directory (ecrcrypt --dir <dir> init --region "
            f"{settings.region})"
        )


@contextmanager
def open_registry(settings: Settings, *, create: bool = False, wrapping_key: str | None = None) -> Iterator[Registry]:
    """The registry of ``--dir`` (created by ``init`` only, on ``--kms``), acting as ``--caller``; closed
    afterwards. ``wrapping_key``: ``init --service-key-wrapping-key``."""
    registry = _open(settings, create=create, wrapping_key=wrapping_key)
    try:
        check_region(settings, registry.region)
        yield registry.as_caller(settings.caller) if settings.caller else registry
    finally:
        registry.close()


def settings_of(ctx: click.Context) -> Settings:
    found = ctx.find_object(Settings)
    assert found is not None, "the root command stores the settings"
    return found


def emit(ctx: click.Context, response: Mapping[str, Any] | None) -> None:
    """Print the response of the command's operation as ``--output`` and ``--query`` say."""
    s = settings_of(ctx)
    title = str(ctx.meta.get(OPERATION, ctx.command_path))
    render(response, output=s.output, query=s.query, title=title, stream=sys.stdout)
