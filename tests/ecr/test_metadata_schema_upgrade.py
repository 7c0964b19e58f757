"""A registry database made before the schema moved into ``ecr.metadata_schema`` opens with every record.

``tests/data/metadata/registry-schema4.sqlite3`` was made by ecrcrypt at schema version 4 (the
image API and uploads, when ``ecr/metadata.py`` still held the steps): today's code must read it
without altering or losing anything of it (step 4 rendered for SQLite is the same text), and
the later steps must only add to it (step 5: indexes).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from ecrcrypt.ecr import records
from ecrcrypt.ecr.metadata import RegistryMetadata
from ecrcrypt.ecr.metadata_schema import SCHEMA_VERSION, steps

MADE_BY_SCHEMA_4 = Path(__file__).parents[1] / "data" / "metadata" / "registry-schema4.sqlite3"


def _schema(path: Path) -> tuple[int, list[tuple[str, str]]]:
    with sqlite3.connect(path) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables = db.execute("SELECT name, COALESCE(sql, '') FROM sqlite_master ORDER BY name").fetchall()
    return version, [(str(n), str(s)) for n, s in tables]


def test_a_schema_4_database_migrates_by_adding_only_and_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    shutil.copyfile(MADE_BY_SCHEMA_4, path)
    before = _schema(path)
    assert before[0] == 4
    with RegistryMetadata.open(path) as metadata:
        assert metadata.schema_version == SCHEMA_VERSION
        record = metadata.get_repository("app")
        assert record is not None and metadata.get_repository_policy("app") is not None
        ((tag, digest),) = records.list_tags(metadata, record)
        assert tag == "v1" and metadata.get_object("app", "manifest", digest) is not None
        manifest = records.get_manifest(metadata, record, digest)
        assert manifest is not None and manifest.media_type == "application/vnd.oci.image.manifest.v1+json"
        assert records.get_tag_mutability(metadata, record) == "IMMUTABLE"
        (upload,) = records.stale_uploads(metadata, before=float("inf"), at=float("inf"))
        assert upload.received == 8 and upload.repository == "app"
        assert len(metadata.snapshot().blob_keys) == 4  # config, layer, manifest and the upload's part
    version, after = _schema(path)
    assert version == SCHEMA_VERSION
    added = sorted(set(after) - set(before[1]))
    assert set(before[1]) <= set(after)  # every table and index of version 4, with its very statement
    assert [name for name, _ in added] == sorted(_index_names(steps("sqlite")[4:]))


def _index_names(later: tuple[tuple[str, ...], ...]) -> list[str]:
    return [s.split("EXISTS ", 1)[1].split()[0] for step in later for s in step]


def test_the_sqlite_rendering_of_every_step_is_what_that_database_was_made_with() -> None:
    """Each table the old code made is created by today's steps with the same statement."""
    _, tables = _schema(MADE_BY_SCHEMA_4)
    made = {name: sql for name, sql in tables if sql}
    rendered = [s for step in steps("sqlite")[:4] for s in step]
    assert len(rendered) == len(made)
    for statement in rendered:
        name = statement.split("EXISTS ", 1)[1].split()[0]
        assert made[name] == statement.replace("IF NOT EXISTS ", "")
