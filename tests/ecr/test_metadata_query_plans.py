"""Every lookup the registry's operations run reads through an index, never a scan of a whole table.

A scan makes an operation's cost grow with the table (every tag of a repository read to find one
image's tags), and on PostgreSQL a scan under SERIALIZABLE takes a predicate lock on the relation,
so the transaction conflicts with every concurrent write to it. SQLite's query planner answers for
the shared statements (the same text runs on both backends): each statement a workload of pushes,
tags, pulls, image calls, uploads, tokens and deletions runs is captured and explained, and a
``SCAN`` of a table is a failure unless the statement reads the whole table (or every row of one
repository) by design -- listings, garbage collection's inventory, recovery's sweep -- named below.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.authorization import authenticate, get_authorization_token
from ecrcrypt.ecr.images import OCI_MANIFEST, ImageApi, ImageIdentifier
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.uploads import LayerUploads, collect_abandoned_uploads

ACCOUNT = "111122223333"

# Statements that read every row of their table (or of one repository) because that is their answer.
_WHOLE_BY_DESIGN = (
    re.compile(
        r"^SELECT .* FROM repositories( r)?( LEFT JOIN uid_bound_repositories b ON b\.uid = r\.uid)?( ORDER BY .*)?$"
    ),
    re.compile(r"^SELECT [^()]* FROM (repository_intents|blob_intents|objects|upload_blobs|repository_policies)$"),
    re.compile(r"^SELECT [^()]* FROM layer_uploads WHERE updated_at < \S+ AND lease_until <= \S+$"),
)


def _workload(registry: Registry) -> None:
    repo = registry.repository("app")
    blobs = [os.urandom(n) for n in (300, 2000)]
    pushed = [repo.push_layer(b, digest=Digest.of(b)) for b in blobs]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(pushed[0].digest),
                "size": 300,
            },
            "layers": [{"mediaType": "x", "digest": str(pushed[1].digest), "size": 2000}],
        }
    ).encode()
    api = ImageApi(repo)
    api.put_image(manifest, media_type=OCI_MANIFEST, tag="v1")
    digest = str(Digest.of(manifest))
    api.put_image(manifest, media_type=OCI_MANIFEST, tag="v2")
    image = repo.get_image(tag="v1")
    repo.get_image(digest=digest)
    for d in image.layer_digests:
        repo.read_layer(d)
    api.batch_get_image([ImageIdentifier(tag="v2")])
    api.manifest_info(ImageIdentifier(digest=digest))
    api.describe_images()
    api.batch_check_layer_availability([pushed[1].digest])
    uploads = LayerUploads(repo)
    data = os.urandom(3000)
    status = uploads.initiate_layer_upload()
    uploads.upload_layer_part(status.upload_id, data, part_first_byte=0, part_last_byte=len(data) - 1)
    uploads.complete_layer_upload(status.upload_id, [Digest.of(data)])
    abandoned = uploads.initiate_layer_upload()
    uploads.upload_layer_part(abandoned.upload_id, data[:100], part_first_byte=0, part_last_byte=99)
    collect_abandoned_uploads(registry._core.metadata, registry.store, ttl=-1)
    token = get_authorization_token(registry)
    assert authenticate(registry, "AWS", token.password) is not None
    api.batch_delete_image([ImageIdentifier(tag="v2")])
    registry.collect_garbage(grace=0)
    registry.delete_repository("app", force=True)


def test_no_statement_of_the_workload_scans_a_table(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    with Registry.create(directory, account=ACCOUNT) as registry:
        registry.create_repository("app")
        db: sqlite3.Connection = registry._core.metadata._db  # type: ignore[attr-defined]
        seen: list[str] = []
        db.set_trace_callback(seen.append)
        try:
            _workload(registry)
        finally:
            db.set_trace_callback(None)
        statements = sorted({s for s in seen if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))})
        assert len(statements) > 20  # the workload ran what it says (a vacuous pass would see none)
        scans = {}
        for statement in statements:
            if "sqlite_master" in statement or "PRAGMA" in statement.upper():
                continue
            plan = [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + statement)]
            scanned = [step for step in plan if step.startswith("SCAN ") and " USING " not in step]
            if scanned and not any(p.search(" ".join(statement.split())) for p in _WHOLE_BY_DESIGN):
                scans[statement] = scanned
    assert scans == {}
