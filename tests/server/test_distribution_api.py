"""The OCI Distribution API as the spec words it, against two `ecrcrypt serve` processes sharing one
registry directory (uploads started on one finish on the other)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrcrypt.ecr.authorization import get_authorization_token
from ecrcrypt.ecr.directory import open_directory
from ecrcrypt.ecr.registry import Registry
from tests.server.support import Server, cli, request, running_server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("api") / "registry"
    cli(directory, "init")
    cli(directory, "ecr", "create-repository", "--repository-name", "team/app")
    cli(directory, "ecr", "create-repository", "--repository-name", "team/other")
    key = json.loads(cli(directory, "kms", "create-key"))["KeyMetadata"]["Arn"]
    cli(
        directory,
        "ecr",
        "create-repository",
        "--repository-name",
        "team/dsse",
        "--encryption-configuration",
        f"encryptionType=KMS_DSSE,kmsKey={key}",
    )
    return directory


@pytest.fixture(scope="module")
def password(registry_dir: Path) -> str:
    return cli(registry_dir, "ecr", "get-login-password").strip()


@pytest.fixture(scope="module")
def servers(registry_dir: Path, password: str) -> Iterator[tuple[Server, Server]]:
    with running_server(registry_dir) as one, running_server(registry_dir, "--create-on-push") as two:
        yield one, two


def _push_blob(server: Server, password: str, name: str, data: bytes) -> str:
    reply = request(server, "POST", f"/v2/{name}/blobs/uploads/?digest={_d(data)}", body=data, password=password)
    assert reply.status == 201, reply.body
    return _d(data)


@pytest.mark.parametrize("name", ["team/app", "team/dsse"])
def test_a_chunked_upload_started_on_one_process_finishes_on_the_other(
    servers: tuple[Server, Server], password: str, name: str
) -> None:
    one, two = servers
    data = os.urandom(3 * 1024 * 1024 + 333)
    started = request(one, "POST", f"/v2/{name}/blobs/uploads/", password=password)
    assert started.status == 202
    location = started.headers["location"]
    a, b = 1_000_000, 2_500_000
    first = request(one, "PATCH", location, body=data[:a], password=password,
                    headers={"Content-Range": f"0-{a - 1}", "Content-Type": "application/octet-stream"})  # fmt: skip
    assert first.status == 202 and first.headers["range"] == f"0-{a - 1}"
    second = request(two, "PATCH", location, body=data[a:b], password=password)  # no Content-Range: appended
    assert second.status == 202 and second.headers["range"] == f"0-{b - 1}"
    status = request(one, "GET", location, password=password)
    assert status.status == 204 and status.headers["range"] == f"0-{b - 1}"
    out_of_order = request(one, "PATCH", location, body=b"x", password=password, headers={"Content-Range": "5-5"})
    assert out_of_order.status == 416
    blob_url = f"/v2/{name}/blobs/{_d(data)}"
    assert request(one, "HEAD", blob_url, password=password).status == 404  # not readable before it is verified
    done = request(two, "PUT", f"{location}?digest={_d(data)}", body=data[b:], password=password)
    assert done.status == 201 and done.headers["docker-content-digest"] == _d(data)
    assert request(one, "GET", blob_url, password=password).body == data
    head = request(two, "HEAD", blob_url, password=password)
    assert head.status == 200 and head.headers["content-length"] == str(len(data))
    ranged = request(one, "GET", blob_url, password=password, headers={"Range": "bytes=1048570-1048600"})
    assert ranged.status == 206 and ranged.body == data[1048570:1048601]
    assert ranged.headers["content-range"] == f"bytes 1048570-1048600/{len(data)}"
    assert request(one, "GET", blob_url, password=password, headers={"Range": "bytes=-10"}).body == data[-10:]
    assert request(one, "GET", blob_url, password=password, headers={"Range": f"bytes={len(data)}-"}).status == 416


def test_a_wrong_digest_is_refused_and_stores_nothing(servers: tuple[Server, Server], password: str) -> None:
    one, two = servers
    location = request(one, "POST", "/v2/team/app/blobs/uploads/", password=password).headers["location"]
    request(one, "PATCH", location, body=b"some bytes", password=password)
    reply = request(two, "PUT", f"{location}?digest={_d(b'other bytes')}", password=password)
    assert reply.status == 400 and json.loads(reply.body)["errors"][0]["code"] == "DIGEST_INVALID"
    assert request(one, "HEAD", f"/v2/team/app/blobs/{_d(b'other bytes')}", password=password).status == 404
    assert request(one, "GET", location, password=password).status == 404  # the upload is over
    monolithic = request(one, "POST", f"/v2/team/app/blobs/uploads/?digest={_d(b'x')}", body=b"y", password=password)
    assert monolithic.status == 400


def test_manifests_tags_and_content_negotiation(servers: tuple[Server, Server], password: str) -> None:
    one, two = servers
    layer = _push_blob(one, password, "team/app", os.urandom(1000))
    config = _push_blob(two, password, "team/app", b'{"os":"linux"}')
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 14},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 1000}],
        },
        indent=4,
    ).encode()
    for tag in ("b", "a", "c"):
        put = request(one, "PUT", f"/v2/team/app/manifests/{tag}", body=manifest, password=password,
                      headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
        assert put.status == 201 and put.headers["docker-content-digest"] == _d(manifest)
    got = request(two, "GET", "/v2/team/app/manifests/a", password=password, headers={"Accept": OCI_MANIFEST})
    assert got.body == manifest and got.headers["content-type"] == OCI_MANIFEST
    by_digest = request(two, "HEAD", f"/v2/team/app/manifests/{_d(manifest)}", password=password)
    assert by_digest.status == 200 and by_digest.headers["content-length"] == str(len(manifest))
    refused = request(one, "GET", "/v2/team/app/manifests/a", password=password, headers={"Accept": OCI_INDEX})
    assert refused.status == 404 and json.loads(refused.body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    dangling = manifest.replace(layer.encode(), _d(b"missing").encode())
    bad = request(one, "PUT", "/v2/team/app/manifests/d", body=dangling, password=password)
    assert bad.status == 400 and json.loads(bad.body)["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"

    referrer = json.loads(manifest)
    referrer["subject"] = {"mediaType": OCI_MANIFEST, "digest": _d(manifest), "size": len(manifest)}
    referrer_bytes = json.dumps(referrer).encode()
    put = request(two, "PUT", f"/v2/team/app/manifests/{_d(referrer_bytes)}", body=referrer_bytes, password=password)
    assert put.status == 201 and put.headers["oci-subject"] == _d(manifest)
    listed = request(one, "GET", f"/v2/team/app/referrers/{_d(manifest)}", password=password)
    assert listed.headers["content-type"] == OCI_INDEX
    assert [m["digest"] for m in json.loads(listed.body)["manifests"]] == [_d(referrer_bytes)]
    request(one, "DELETE", f"/v2/team/app/manifests/{_d(referrer_bytes)}", password=password)

    page = request(one, "GET", "/v2/team/app/tags/list?n=2", password=password)
    assert json.loads(page.body) == {"name": "team/app", "tags": ["a", "b"]}
    assert page.headers["link"] == '</v2/team/app/tags/list?n=2&last=b>; rel="next"'
    rest = request(one, "GET", "/v2/team/app/tags/list?n=2&last=b", password=password)
    assert json.loads(rest.body)["tags"] == ["c"] and "link" not in rest.headers

    assert request(two, "DELETE", "/v2/team/app/manifests/c", password=password).status == 202  # untag
    assert json.loads(request(one, "GET", "/v2/team/app/tags/list", password=password).body)["tags"] == ["a", "b"]
    assert request(two, "DELETE", f"/v2/team/app/manifests/{_d(manifest)}", password=password).status == 202
    assert request(one, "GET", "/v2/team/app/manifests/a", password=password).status == 404


def test_mount_catalog_and_create_on_push(servers: tuple[Server, Server], password: str, registry_dir: Path) -> None:
    one, two = servers
    blob = _push_blob(one, password, "team/app", os.urandom(5000))
    mounted = request(one, "POST", f"/v2/team/other/blobs/uploads/?mount={blob}&from=team/app", password=password)
    assert mounted.status == 201 and mounted.headers["location"] == f"/v2/team/other/blobs/{blob}"
    not_there = request(one, "POST", f"/v2/team/other/blobs/uploads/?mount={_d(b'no')}&from=team/app",
                        password=password)  # fmt: skip
    assert not_there.status == 202  # the client uploads instead
    missing = request(one, "POST", "/v2/team/new/blobs/uploads/", password=password)
    assert missing.status == 404 and json.loads(missing.body)["errors"][0]["code"] == "NAME_UNKNOWN"
    assert request(two, "POST", "/v2/team/new/blobs/uploads/", password=password).status == 202  # --create-on-push
    catalog = request(one, "GET", "/v2/_catalog?n=2", password=password)
    assert json.loads(catalog.body) == {"repositories": ["team/app", "team/dsse"]}
    assert catalog.headers["link"] == '</v2/_catalog?n=2&last=team/dsse>; rel="next"'
    assert request(one, "GET", "/v2/_catalog?n=2&last=team/dsse", password=password).json() == {
        "repositories": ["team/new", "team/other"]
    }
    assert request(one, "GET", f"/v2/team/app/blobs/{_d(b'nothing')}", password=password).json() == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": f"blob {_d(b'nothing')} is not in repository team/app",
                    "detail": None}]}  # fmt: skip


def test_requests_run_as_the_token_principal_and_are_authorized_as_it(
    servers: tuple[Server, Server], registry_dir: Path
) -> None:
    account = "111122223333"  # the registry's (`ecrcrypt init`'s default)
    opened = open_directory(registry_dir)  # the registry's own local KMS, where its IAM lives
    try:
        assert opened.local_kms is not None
        for user, actions in (("bob", ["ecr:*"]), ("eve", ["ecr:GetAuthorizationToken"])):
            opened.local_kms.iam.create_user(user_name=user)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
            opened.local_kms.iam.put_user_policy(user_name=user, policy_name="ecr", policy_document=json.dumps(policy))
    finally:
        opened.close()
    bob, eve = f"arn:aws:iam::{account}:user/bob", f"arn:aws:iam::{account}:user/eve"
    mallory = "arn:aws:iam::123456789012:user/mallory"  # another account, no repository policy for it
    tokens = {}
    for who in (bob, eve, mallory):
        with Registry.open(registry_dir, caller=who) as reg:
            tokens[who] = get_authorization_token(reg).password
    one, _ = servers
    assert request(one, "GET", "/v2/team/app/tags/list", password=tokens[bob]).status == 200
    _push_blob(one, tokens[bob], "team/app", b"bob's blob")
    events = json.loads(
        cli(
            registry_dir,
            "audit",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CompleteLayerUpload",
        )
    )["Events"]
    trail = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert [e["userIdentity"]["arn"] for e in trail if bob in json.dumps(e)] == [bob]
    denied = request(one, "GET", "/v2/team/app/tags/list", password=tokens[eve])
    assert denied.status == 403 and json.loads(denied.body)["errors"][0]["code"] == "DENIED"
    assert "ecr:ListImages" in json.loads(denied.body)["errors"][0]["message"]
    refused = request(
        one, "POST", f"/v2/team/app/blobs/uploads/?digest={_d(b'eve')}", body=b"eve", password=tokens[eve]
    )
    assert refused.status == 403


def test_tags_over_128_characters_are_ecrs_not_the_oci_routes(
    servers: tuple[Server, Server], password: str, registry_dir: Path
) -> None:
    # The distribution spec's tag grammar allows at most 128 characters; ECR's API (botocore ImageTag) 300.
    one, two = servers
    layer = _push_blob(one, password, "team/other", os.urandom(300))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": layer, "size": 300},
            "layers": [],
        }
    ).encode()
    at_bound, over, longest = "t" * 128, "t" * 129, "t" * 300
    put = request(one, "PUT", f"/v2/team/other/manifests/{at_bound}", body=manifest, password=password,
                  headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    assert put.status == 201, put.body
    refused = request(two, "PUT", f"/v2/team/other/manifests/{over}", body=manifest, password=password,
                      headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    assert refused.status == 400 and json.loads(refused.body)["errors"][0]["code"] == "TAG_INVALID"
    # A tag the ECR API accepted is found through the OCI route: reads look up what the registry holds.
    cli(registry_dir, "ecr", "put-image", "--repository-name", "team/other", "--image-manifest",
        manifest.decode(), "--image-tag", longest)  # fmt: skip
    got = request(two, "GET", f"/v2/team/other/manifests/{longest}", password=password,
                  headers={"Accept": OCI_MANIFEST})  # fmt: skip
    assert got.status == 200 and got.body == manifest
    tags = json.loads(request(one, "GET", "/v2/team/other/tags/list", password=password).body)["tags"]
    assert over not in tags and {at_bound, longest} <= set(tags)
    assert request(one, "DELETE", f"/v2/team/other/manifests/{_d(manifest)}", password=password).status == 202
