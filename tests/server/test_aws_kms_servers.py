"""Two ``ecrcrypt serve --kms aws`` hosts on one PostgreSQL, one S3 bucket and AWS KMS (moto): issue 14's fleet.

Each host has a directory of its own, made by its own ``ecrcrypt --kms aws init`` on the shared
metadata: the first makes the AES256 service key wrapped under the named KMS key, the second
unwraps it. Neither directory holds a KMS or any key material. The servers reach moto through
boto3's own endpoint configuration (``AWS_ENDPOINT_URL``) and credential chain, as any AWS process
does: nothing of either travels in ``ServerOptions``. An image pushed through one server pulls
byte for byte through the other (a KMS repository and an AES256 one), and the KMS repository's
grants on the moto key are exactly ECR's two.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.server.options import ServerOptions
from tests.server.support import OCI_MANIFEST, Server, cli, request, running_server

pytestmark = pytest.mark.moto


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push(server: Server, password: str, name: str, blobs: list[bytes]) -> bytes:
    for blob in blobs:
        reply = request(server, "POST", f"/v2/{name}/blobs/uploads/?digest={_d(blob)}", body=blob, password=password)
        assert reply.status == 201, reply.body
    config, *layers = blobs
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _d(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _d(x), "size": len(x)}
                       for x in layers],
        }
    ).encode()  # fmt: skip
    put = request(server, "PUT", f"/v2/{name}/manifests/v1", body=manifest, password=password,
                  headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    assert put.status == 201, put.body
    return manifest


def _pulled(server: Server, password: str, name: str) -> list[bytes]:
    got = request(server, "GET", f"/v2/{name}/manifests/v1", password=password, headers={"Accept": OCI_MANIFEST})
    assert got.status == 200, got.body
    doc: Any = json.loads(got.body)
    blobs = [got.body]
    for ref in [doc["config"], *doc["layers"]]:
        blob = request(server, "GET", f"/v2/{name}/blobs/{ref['digest']}", password=password)
        assert blob.status == 200 and _d(blob.body) == ref["digest"]
        blobs.append(blob.body)
    return blobs


def test_two_servers_on_aws_kms_share_one_registry(
    postgres_url: str, moto_endpoint: str, kms_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ECRCRYPT_", "AWS_"))},
        "AWS_ENDPOINT_URL": moto_endpoint,  # boto3's own setting: KMS, STS and S3 all on moto
        "AWS_ACCESS_KEY_ID": "testing",  # not secrets: moto accepts any
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ECRCRYPT_KMS": "aws",
        "ECRCRYPT_METADATA_URL": postgres_url,
        "ECRCRYPT_S3_BUCKET": s3_bucket,  # init records it in the shared metadata; every command names it
    }
    wrapping = kms_client.create_key(Description="wraps the service key")["KeyMetadata"]["Arn"]
    repo_key = kms_client.create_key(Description="team/app")["KeyMetadata"]["Arn"]
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    for host in hosts:
        made = json.loads(cli(host, "init", "--service-key-wrapping-key", wrapping, env=env))["registry"]
        assert made["kms"] == "aws" and made["registryId"] == "123456789012"
        assert sorted(p.name for p in host.iterdir()) == ["blobs", "manifest.json"]
    cli(hosts[0], "ecr", "create-repository", "--repository-name", "team/app",
        "--encryption-configuration", f"encryptionType=KMS,kmsKey={repo_key}", env=env)  # fmt: skip
    cli(hosts[1], "ecr", "create-repository", "--repository-name", "team/base", env=env)  # AES256
    password = cli(hosts[0], "ecr", "get-login-password", env=env).strip()

    options = ("--s3-bucket", s3_bucket)  # serve's own spelling of the global option: the same bucket
    image = {
        "team/app": [b'{"os":"linux","app":1}', os.urandom(200_000), b"app layer"],
        "team/base": [b'{"os":"linux","base":1}', os.urandom(50_000)],
    }
    with ExitStack() as stack:
        one, two = (stack.enter_context(running_server(host, *options, env=env)) for host in hosts)
        for name, blobs in image.items():
            manifest = _push(one, password, name, blobs)
            assert _pulled(two, password, name) == [manifest, *blobs]
        # and the other way round: a tag pushed through the second server reads through the first
        manifest = _push(two, password, "team/app", [b'{"os":"linux","app":2}', b"second"])
        assert _pulled(one, password, "team/app")[0] == manifest

    grants = kms_client.list_grants(KeyId=repo_key)["Grants"]
    assert len(grants) == 2  # ECR's grant and the storage grant, made once by the first host
    assert {g["GranteePrincipal"] for g in grants} == {"ecr.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"}
    assert not any((host / "kms.sqlite3").exists() for host in hosts)


def test_the_options_carry_the_kms_choice_and_no_credential() -> None:
    options = ServerOptions(directory="/srv/registry", kms="aws", metadata_url="postgresql://u:pw@db/r")
    text = options.to_json()
    assert ServerOptions.from_json(text) == options
    assert "AWS_" not in text and "secret" not in text.lower()
    assert ServerOptions.from_json(json.dumps({"directory": "/srv/registry"})).kms == "local"  # an older server's
    with pytest.raises(ValueError, match="kms"):
        ServerOptions(directory="/srv/registry", kms="gcp")
