"""``MetadataStore``: what a registry needs of its metadata, whichever database holds it.

Two implementations keep the same records with the same transactions: ``RegistryMetadata``
(SQLite, the embedded default: one file, one host) and ``PostgresMetadata`` (PostgreSQL:
every host of a fleet shares it). ``open_metadata`` / ``create_metadata`` choose one by URL
(``ecr.metadata_url``). The contract of each method is the docstring of its implementation
in ``ecr.metadata.MetadataOperations``, written once for both backends; the conformance
suite (tests/ecr/test_metadata_conformance.py) runs the same tests against both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

from ecrcrypt.ecr.metadata import (
    BlobIntent,
    ImageLookup,
    ObjectLookup,
    ObjectRecord,
    RepositoryIntent,
    RepositoryRecord,
    Snapshot,
)

__all__ = ["MetadataStore"]


@runtime_checkable
class MetadataStore(Protocol):
    """The registry's records: identity, repositories, objects, tags, policies, intents."""

    @property
    def location(self) -> str:
        """Where the database is, for messages: a path, ``:memory:`` or a URL without its password."""

    @property
    def persistent(self) -> bool:
        """Whether the records outlive this object; only a non-persistent store may be given a new service key."""

    @property
    def path(self) -> Path | None:
        """The database file, when the database is one."""

    @property
    def schema_version(self) -> int: ...

    @property
    def store_id(self) -> str | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    # the registry's own records
    def recorded(self, key: str) -> str | None: ...

    def record_once(self, key: str, value: str) -> str: ...

    def record_once_many(self, values: Mapping[str, str]) -> dict[str, str | None]: ...

    def check_identity(self, *, account: str, region: str, record: bool = False) -> None: ...

    # repositories and their policies
    def get_repository(self, name: str) -> RepositoryRecord | None: ...

    def list_repositories(self) -> list[RepositoryRecord]: ...

    def get_repository_policy(self, name: str) -> str | None: ...

    def set_repository_policy(self, name: str, document: str) -> bool: ...

    def delete_repository_policy(self, name: str) -> bool: ...

    # objects and tags
    def put_object(
        self, repository: RepositoryRecord, record: ObjectRecord, *, replacing: str | None = None
    ) -> ObjectRecord | None: ...

    def get_object(self, repository: str, kind: str, digest: str) -> ObjectRecord | None: ...

    def get_objects(
        self, repository: str, digests: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], ObjectRecord]: ...

    def find_object(self, repository: RepositoryRecord, kind: str, digest: str) -> ObjectLookup: ...

    def find_image(
        self, repository: RepositoryRecord, *, tag: str | None = None, digest: str | None = None
    ) -> ImageLookup: ...

    def list_objects(self, repository: str, kind: str) -> list[ObjectRecord]: ...

    def count_objects(self, repository: str) -> int: ...

    def put_tag(self, repository: RepositoryRecord, tag: str, digest: str) -> bool: ...

    def get_tag(self, repository: str, tag: str) -> str | None: ...

    def tags_of(self, repository: str, digest: str) -> list[str]: ...

    # intents (crash consistency)
    def begin_create(self, intent: RepositoryIntent) -> RepositoryIntent | RepositoryRecord | None: ...

    def finish_create(self, record: RepositoryRecord, owner: str) -> bool: ...

    def begin_delete(self, record: RepositoryRecord, intent: RepositoryIntent) -> bool: ...

    def list_intents(self) -> list[RepositoryIntent]: ...

    def claim_intent(self, uid: str, owner: str, new_owner: str) -> bool: ...

    def end_intent(self, uid: str, owner: str) -> bool: ...

    def begin_blob(self, intent: BlobIntent) -> None: ...

    def end_blob(self, blob_key: str) -> None: ...

    def claim_dead_blob(self, blob_key: str, owner: str | None) -> bool: ...

    def snapshot(self) -> Snapshot: ...
