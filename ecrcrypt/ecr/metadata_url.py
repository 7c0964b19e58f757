"""Choosing the metadata backend by URL: ``sqlite:///…`` or ``postgresql://…``.

SQLite URLs follow SQLAlchemy's spelling: ``sqlite:///registry.sqlite3`` is a path relative
to the working directory, ``sqlite:////var/lib/ecr/registry.sqlite3`` an absolute one, and
``sqlite://`` (or ``sqlite:///:memory:``) an in-memory database. ``postgresql://`` and
``postgres://`` URLs are passed to libpq as they are (user, password, host, port, database,
``?sslmode=…``). ``open_metadata`` opens what ``create_metadata`` made and never makes a
database in place of a missing one (``RegistryStateError``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from ecrcrypt.arns import AccountId, Region
from ecrcrypt.ecr.metadata import STORE_ID, RegistryMetadata
from ecrcrypt.ecr.metadata_postgres import PostgresMetadata
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.errors import ValidationError

__all__ = ["create_metadata", "open_metadata", "sqlite_path"]

_SQLITE = "sqlite://"
_POSTGRES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names (``None``: in memory)."""
    rest = url[len(_SQLITE) :]
    if rest in ("", "/:memory:"):
        return None
    if not rest.startswith("/") or rest == "/":
        raise ValidationError(
            f"a SQLite metadata URL is sqlite:///<relative path> or sqlite:////<absolute path>: {url!r}"
        )
    return Path(rest[1:])


def _check(url: object) -> str:
    if not isinstance(url, str) or not (url.startswith(_SQLITE) or url.startswith(_POSTGRES)):
        shown = url if isinstance(url, str) and "@" not in url else type(url).__name__
        raise ValidationError(f"a metadata URL starts with sqlite:// or postgresql:// (got {shown!r})")
    return url


def open_metadata(url: str, *, pool_size: int = 4) -> MetadataStore:
    """The existing registry metadata at ``url`` (``pool_size``: PostgreSQL connections held)."""
    url = _check(url)
    if url.startswith(_SQLITE):
        path = sqlite_path(url)
        return RegistryMetadata() if path is None else RegistryMetadata.open(path)
    return PostgresMetadata.open(url, pool_size=pool_size)


def create_metadata(url: str, *, account: AccountId | str, region: Region | str, pool_size: int = 4) -> MetadataStore:
    """The registry metadata at ``url`` for ``account`` in ``region``, made if missing (idempotent)."""
    url = _check(url)
    if url.startswith(_SQLITE):
        path = sqlite_path(url)
        if path is None:
            memory = RegistryMetadata()  # claimed as RegistryMetadata.create claims a file
            memory.record_once(STORE_ID, uuid.uuid4().hex)
            acct = account if isinstance(account, AccountId) else AccountId(account)
            memory.check_identity(
                account=str(acct), region=str(region if isinstance(region, Region) else Region(region)), record=True
            )
            return memory
        return RegistryMetadata.create(path, account=account, region=region)
    return PostgresMetadata.create(url, account=account, region=region, pool_size=pool_size)
