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
from ecrcrypt.ecr.directory import MANIFEST
from ecrcrypt.ecr.registry import DEFAULT_REGION, Registry
from ecrcrypt.errors import RegistryStateError, ValidationError

__all__ = ["Settings", "check_region", "emit", "open_registry", "require_registry"]


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


def _open(settings: Settings, *, create: bool) -> Registry:
    directory = settings.directory
    try:
        if create and not (settings.region is None and (directory / MANIFEST).exists()):
            return Registry.create(directory, region=settings.region or DEFAULT_REGION, metadata=settings.metadata_url)
        require_registry(directory)
        return Registry.open(directory, metadata=settings.metadata_url)
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
def open_registry(settings: Settings, *, create: bool = False) -> Iterator[Registry]:
    """The registry of ``--dir`` (created by ``init`` only), acting as ``--caller``; closed afterwards."""
    registry = _open(settings, create=create)
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
