"""Three ``ecrcrypt serve`` processes on one PostgreSQL and one S3 bucket, driven over HTTP (issue 14).

Each server is a process of its own on a free 127.0.0.1 port, all with the same
``--metadata-url`` (PostgreSQL), ``--s3-bucket`` (on the moto server) and registry directory
(which then holds only the local KMS: the server has no option for an outside KMS, so the
fleet's KMS-on-moto race is ``tests/fleet/test_fleet.py``'s). Three clients push the same two
images into the same two repositories at once, each through its own server, with the OCI
Distribution API; meanwhile a chunked upload is started on one server, which is killed with
SIGKILL while a ``PATCH`` body is still arriving: another server reports the upload where the
shared state says it stands and, the dead request's lease naming a process of this host that no
longer runs, the client continues that same upload at once on the two servers left. Afterwards
every acknowledged push (a 201 for its manifest) pulls, byte for byte, from the two servers
left and from one started afresh, and after recovery the bucket holds exactly the blobs the
metadata records (layers and manifests): nothing of the killed request.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr.authorization import get_authorization_token
from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.store.s3 import S3BlobStore
from tests.server.support import OCI_MANIFEST, Server, request, running_server

pytestmark = pytest.mark.moto

REPOSITORIES = ("team/app", "team/tool")
MiB = 1 << 20


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _content(name: str, size: int) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _image(tag: str, layers: list[bytes]) -> tuple[bytes, list[bytes]]:
    """An OCI manifest over a config blob and ``layers``; the manifest and every blob it lists."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _d(config), "size": 6},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _d(x), "size": len(x)} for x in layers
            ],
        }
    ).encode()
    return manifest, [config, *layers]


SHARED = _content("shared-base", 300_000)
IMAGES = {
    "app": _image("app", [SHARED, _content("app", 120_000)]),
    "tool": _image("tool", [SHARED, _content("tool", 80_000)]),
}
BIG = _content("resumed", 14 * MiB + 77)  # the layer whose upload outlives its first server


def _push(server: Server, password: str, name: str, tag: str) -> str:
    manifest, blobs = IMAGES[tag]
    for blob in blobs:
        reply = request(server, "POST", f"/v2/{name}/blobs/uploads/?digest={_d(blob)}", body=blob, password=password)
        assert reply.status == 201, reply.body
    return _put_manifest(server, password, name, tag, manifest)


def _put_manifest(server: Server, password: str, name: str, tag: str, manifest: bytes) -> str:
    reply = request(
        server, "PUT", f"/v2/{name}/manifests/{tag}", body=manifest, password=password,
        headers={"Content-Type": OCI_MANIFEST},
    )  # fmt: skip
    assert reply.status == 201, reply.body
    return reply.headers["docker-content-digest"]


def _pull(server: Server, password: str, name: str, tag: str, digest: str) -> list[str]:
    """Pull ``name:tag`` and every blob it lists; the problems found (none: empty)."""
    got = request(server, "GET", f"/v2/{name}/manifests/{tag}", password=password, headers={"Accept": OCI_MANIFEST})
    if got.status != 200 or _d(got.body) != digest:
        return [f"{server.address} {name}:{tag}: {got.status}, {_d(got.body)} not {digest}"]
    doc: Any = json.loads(got.body)
    problems = []
    for ref in [doc["config"], *doc["layers"]]:
        blob = request(server, "GET", f"/v2/{name}/blobs/{ref['digest']}", password=password)
        if blob.status != 200 or _d(blob.body) != ref["digest"]:
            problems.append(f"{server.address} {name}: blob {ref['digest']} reads {blob.status}")
    return problems


def _kill_mid_patch(victim: Server, password: str, location: str, body: bytes) -> None:
    """Send a PATCH whose body stops halfway, and SIGKILL the server while it waits for the rest."""
    conn = http.client.HTTPConnection("127.0.0.1", victim.port, timeout=30)
    conn.putrequest("PATCH", location)
    conn.putheader("Authorization", "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode())
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:-MiB])  # more than one S3 part: the part's multipart upload has begun
    threading.Event().wait(1.0)  # the server is reading the body into a part of the upload
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=30)
    with pytest.raises((OSError, http.client.HTTPException)):
        conn.send(body[-MiB:])
        conn.getresponse()
    conn.close()


def _bucket_keys(s3: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def test_three_servers_push_the_same_images_and_resume_an_upload_whose_server_was_killed(
    postgres_url: str, moto_endpoint: str, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    directory = tmp_path / "registry"
    with Registry.create(directory, metadata=postgres_url) as registry:
        for name in REPOSITORIES:
            registry.create_repository(name)
        password = get_authorization_token(registry).password
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",  # not secrets: moto accepts any
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    args = ("--metadata-url", postgres_url, "--s3-bucket", s3_bucket, "--s3-endpoint-url", moto_endpoint)
    acks: list[tuple[str, str, str]] = []
    failures: list[BaseException] = []
    with ExitStack() as stack:
        servers = [stack.enter_context(running_server(directory, *args, env=env)) for _ in range(3)]
        one, victim, three = servers

        def client(server: Server, order: list[tuple[str, str]]) -> None:
            try:
                for name, tag in order:
                    acks.append((name, tag, _push(server, password, name, tag)))
            except BaseException as exc:  # the assertion below shows it
                failures.append(exc)

        pairs = [(name, tag) for name in REPOSITORIES for tag in IMAGES]
        clients = [threading.Thread(target=client, args=(s, pairs[i:] + pairs[:i])) for i, s in enumerate(servers)]
        for thread in clients:
            thread.start()

        # Meanwhile: a chunked upload on the victim, killed mid-PATCH. Every server sees where it
        # stands (all of the first PATCH, none of the killed one), and the dead request's lease names
        # a process of this host that is gone: the client continues the same upload at once, no
        # waiting for the lease to run out (uploads.LEASE_SECONDS), spread over the two servers left.
        name, a = REPOSITORIES[0], MiB
        location = request(victim, "POST", f"/v2/{name}/blobs/uploads/", password=password).headers["location"]
        first = request(victim, "PATCH", location, body=BIG[:a], password=password)
        assert first.status == 202 and first.headers["range"] == f"0-{a - 1}"
        _kill_mid_patch(victim, password, location, BIG[a : a + 12 * MiB])
        status = request(three, "GET", location, password=password)
        assert status.status == 204 and status.headers["range"] == f"0-{a - 1}"
        resumed = request(three, "PATCH", location, body=BIG[a : 2 * a], password=password)
        assert resumed.status == 202 and resumed.headers["range"] == f"0-{2 * a - 1}", resumed.body
        done = request(one, "PUT", f"{location}?digest={_d(BIG)}", body=BIG[2 * a :], password=password)
        assert done.status == 201, done.body
        config = json.dumps({"architecture": "amd64", "os": "linux", "tag": "big"}).encode()
        assert request(one, "POST", f"/v2/{name}/blobs/uploads/?digest={_d(config)}", body=config,
                       password=password).status == 201  # fmt: skip
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _d(config),
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _d(BIG),
                            "size": len(BIG)}],
            }
        ).encode()  # fmt: skip
        acks.append((name, "big", _put_manifest(one, password, name, "big", manifest)))

        for thread in clients:
            thread.join(timeout=120)
        # The victim's client may have been cut off by the kill; the others finished everything.
        assert not any(t.is_alive() for t in clients)
        survivors_acked = {(n, t) for n, t, _ in acks}
        assert {(n, t) for n in REPOSITORIES for t in IMAGES} <= survivors_acked
        assert len(failures) <= 1, failures

        # Before any recovery: the killed request's part (more than one S3 part's worth had arrived)
        # is announced by a blob intent of the victim's, and only the victim's intents name blobs
        # the metadata does not record (a server's start, like the fresh one's below, runs recovery).
        with open_metadata(postgres_url) as metadata:
            snap = metadata.snapshot()
        announced = {b.blob_key for b in snap.blob_intents}
        assert {b.owner.split("|")[3] for b in snap.blob_intents} == {str(victim.process.pid)}
        assert any("/uploads/" in key for key in announced)
        assert _bucket_keys(s3_client, s3_bucket) - snap.blob_keys <= announced  # the victim's pushes only
        assert {u["Key"] for u in s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])} <= announced

        # Every acknowledged push pulls from every server left, and from one started afresh.
        fresh = stack.enter_context(running_server(directory, *args, env=env))
        for server in (one, three, fresh):
            problems = [p for n, t, digest in acks for p in _pull(server, password, n, t, digest)]
            assert problems == []

    # After recovery the bucket holds exactly the recorded blobs.
    with Registry.open(directory, store=S3BlobStore(s3_client, s3_bucket), metadata=postgres_url) as registry:
        report = registry.recover()
        assert report.clean, report
        snap = registry._core.metadata.snapshot()
        assert snap.blob_intents == () and snap.intents == ()
        assert _bucket_keys(s3_client, s3_bucket) == set(snap.blob_keys)
        assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
