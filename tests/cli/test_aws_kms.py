"""``ecrcrypt --kms aws``: the command line on AWS KMS (a moto server), through the console script.

boto3 finds the moto server the way it finds any endpoint, by ``AWS_ENDPOINT_URL_KMS`` (and
``AWS_ENDPOINT_URL_STS`` for the account ``init`` asks GetCallerIdentity for): nothing in ecrcrypt
names it. The grants are read back from moto with a boto3 client of the test's own, not only
through ``ecrcrypt kms list-grants``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr import directory as directory_module
from ecrcrypt.ecr.directory import MANIFEST, Manifest
from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.service_key import WRAPPED
from ecrcrypt.errors import RegistryStateError, ValidationError
from ecrcrypt.kms.aws import Boto3Kms
from tests.cli.support import Result, run
from tests.moto_server import ACCOUNT

pytestmark = pytest.mark.moto


@pytest.fixture
def aws(moto_reset: str) -> dict[str, str]:
    """The environment of an AWS process pointed at the moto server (dummy credentials: moto takes any)."""
    return {
        "AWS_ENDPOINT_URL_KMS": moto_reset,
        "AWS_ENDPOINT_URL_STS": moto_reset,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _on(env: dict[str, str], directory: Path, *args: str, stdin: bytes | None = None) -> Result:
    return run(*args, registry=directory, env=env, stdin=stdin)


def _grants(kms_client: Any, key: str) -> list[dict[str, Any]]:
    return list(kms_client.list_grants(KeyId=key)["Grants"])


def test_init_push_pull_and_the_grants_on_aws_kms(aws: dict[str, str], kms_client: Any, tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    key = _on(aws, directory, "--kms", "aws", "kms", "create-key", "--description", "team").json()["KeyMetadata"]
    assert key["Arn"].startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/")  # made on moto, no registry needed
    made = _on(aws, directory, "init", "--kms", "aws").json()["registry"]
    assert (made["registryId"], made["kms"], made["created"]) == (ACCOUNT, "aws", True)  # the credentials' account
    assert not (directory / "kms.sqlite3").exists() and not (directory / "kms.sqlite3.rootkey").exists()
    assert json.loads((directory / MANIFEST).read_text())["kms"] == "aws"

    env = {**aws, "ECRCRYPT_KMS": "aws"}  # the environment variable chooses the same
    config = f"encryptionType=KMS,kmsKey={key['KeyId']}"
    repo = _on(env, directory, "ecr", "create-repository", "--repository-name", "team/app",
               "--encryption-configuration", config).json()["repository"]  # fmt: skip
    assert repo["encryptionConfiguration"]["kmsKey"] == key["Arn"]
    layer = b"a layer on AWS KMS\n" * 1000
    pushed = _on(env, directory, "ecr", "push-layer", "--repository-name", "team/app", "-", "--no-progress",
                 stdin=layer).json()  # fmt: skip
    assert pushed["layerDigest"] == "sha256:" + hashlib.sha256(layer).hexdigest()
    pulled = _on(env, directory, "ecr", "pull-layer", "--repository-name", "team/app", "--layer-digest",
                 pushed["layerDigest"], "-", "--no-progress")  # fmt: skip
    assert pulled.status == 0 and pulled.raw == layer

    # ECR's two grants are on the moto key: what ecrcrypt lists is what moto holds.
    listed = _on(env, directory, "kms", "list-grants", "--key-id", key["Arn"]).json()["Grants"]
    held = _grants(kms_client, key["Arn"])
    assert len(held) == 2 and sorted(g["GrantId"] for g in listed) == sorted(g["GrantId"] for g in held)
    assert {g["GranteePrincipal"] for g in held} >= {"ecr.us-east-1.amazonaws.com"}
    deleted = _on(env, directory, "ecr", "delete-repository", "--repository-name", "team/app", "--force")
    assert deleted.status == 0, deleted.stderr
    assert _grants(kms_client, key["Arn"]) == []

    # The commands that only the local KMS answers say so instead of using one.
    iam = _on(env, directory, "iam", "list-users")
    assert iam.status == 253 and "aws iam" in iam.stderr
    audit = _on(env, directory, "audit", "lookup-events")
    assert audit.status == 254 and "CloudTrail" in audit.stderr
    caller = _on(env, directory, "--caller", f"arn:aws:iam::{ACCOUNT}:user/x", "ecr", "describe-repositories")
    assert caller.status == 252 and "boto3's credentials" in caller.stderr


def test_the_wrong_kms_is_refused_with_what_to_pass(aws: dict[str, str], tmp_path: Path) -> None:
    on_aws, local = tmp_path / "on-aws", tmp_path / "local"
    assert _on(aws, on_aws, "--kms", "aws", "init").status == 0
    assert _on(aws, local, "init").status == 0
    attempts = {
        (on_aws, "local"): (("ecr", "describe-repositories"), ("init", "--region", "us-east-1")),
        (local, "aws"): (("kms", "list-keys"), ("init",), ("serve", "--port", "1")),  # serve: before any worker
    }
    for (directory, wrong), commands in attempts.items():
        before = (directory / MANIFEST).read_bytes()
        for args in commands:
            refused = _on(aws, directory, "--kms", wrong, *args)
            assert refused.status == 253, refused.stderr
            assert f"open it with --kms {'aws' if wrong == 'local' else 'local'}" in refused.stderr
        assert (directory / MANIFEST).read_bytes() == before  # nothing rewritten, nothing created
    assert not (on_aws / "kms.sqlite3").exists()
    # A local registry's manifest is as before this option existed (older ecrcrypt reads it unchanged).
    assert "kms" not in json.loads((local / MANIFEST).read_text())


def test_a_manifest_without_the_kms_field_opens_with_kms_aws(
    aws: dict[str, str], kms_client: Any, tmp_path: Path
) -> None:
    """A registry made by the library with an outside KMS (as every version before ``--kms`` did) names none."""
    directory = tmp_path / "registry"
    kms = Boto3Kms(client=kms_client)
    Registry.create(directory, account=ACCOUNT, kms=lambda _principal: kms).close()
    assert "kms" not in json.loads((directory / MANIFEST).read_text())
    refused = _on(aws, directory, "ecr", "describe-repositories")
    assert refused.status == 253 and "made for an outside KMS" in refused.stderr and "--kms aws" in refused.stderr
    assert _on(aws, directory, "--kms", "aws", "ecr", "describe-repositories").json() == {"repositories": []}


def test_outside_metadata_needs_the_wrapping_key_and_every_host_shares_it(
    aws: dict[str, str], kms_client: Any, postgres_url: str, tmp_path: Path
) -> None:
    host_a, host_b = tmp_path / "a", tmp_path / "b"
    env = {**aws, "ECRCRYPT_KMS": "aws", "ECRCRYPT_METADATA_URL": postgres_url}
    missing = _on(env, host_a, "init")
    assert missing.status == 253 and "--service-key-wrapping-key" in missing.stderr
    assert not host_a.exists()
    local = run("init", "--service-key-wrapping-key", "alias/x", registry=host_a)
    assert local.status == 252 and "is for --kms aws" in local.stderr
    no_url = _on(aws, host_a, "--kms", "aws", "init", "--service-key-wrapping-key", "alias/x")
    assert no_url.status == 253 and "--metadata-url" in no_url.stderr
    unknown = _on(env, host_a, "init", "--service-key-wrapping-key", "alias/none")
    assert unknown.status == 254 and "alias/none is not found" in unknown.stderr

    wrapping = kms_client.create_key(Description="wraps the service key")["KeyMetadata"]["Arn"]
    kms_client.create_alias(AliasName="alias/ecrcrypt-service-key", TargetKeyId=wrapping)
    for host in (host_a, host_b):  # each host of the fleet, a directory of its own, the same database
        made = _on(env, host, "init", "--service-key-wrapping-key", "alias/ecrcrypt-service-key").json()["registry"]
        assert made["created"] and made["registryId"] == ACCOUNT
        assert sorted(p.name for p in host.iterdir()) == ["blobs", "manifest.json"]  # no key material, no KMS
    with open_metadata(postgres_url) as metadata:
        assert metadata.recorded(WRAPPED) is not None
        assert metadata.recorded("service_key.kms_key") == wrapping

    aes = _on(env, host_a, "ecr", "create-repository", "--repository-name", "team/base").json()["repository"]
    assert aes["encryptionConfiguration"] == {"encryptionType": "AES256"}
    layer = b"service-key layer"
    _on(env, host_a, "ecr", "push-layer", "--repository-name", "team/base", "-", stdin=layer).json()
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    pulled = _on(env, host_a, "ecr", "pull-layer", "--repository-name", "team/base", "--layer-digest", digest, "-")
    assert pulled.status == 0 and pulled.raw == layer
    # Host b opened the same metadata and unwrapped the same service key (its fingerprint is checked at every
    # open); the blobs are each host's own here (tests/server/test_aws_kms_servers.py shares them in S3).
    seen = _on(env, host_b, "ecr", "describe-repositories", "--query", "repositories[].repositoryName").json()
    assert seen == ["team/base"]


def test_the_manifest_records_the_outside_kms_and_refuses_a_contradiction(tmp_path: Path) -> None:
    fields: dict[str, Any] = {"account": ACCOUNT, "region": "us-east-1", "registry_store_id": "s"}
    manifest = Manifest(**fields, service_key_fingerprint="f", kms_store_id=None, root_key_fingerprint=None,
                        outside_kms="aws")  # fmt: skip
    path = tmp_path / MANIFEST
    assert Manifest.parse(manifest.to_bytes(), path) == manifest
    with pytest.raises(ValidationError):
        Manifest(**fields, service_key_fingerprint="f", kms_store_id="k", root_key_fingerprint="r", outside_kms="aws")
    local = Manifest(**fields, service_key_fingerprint="f", kms_store_id="k", root_key_fingerprint="r").body()
    local["kms"] = "aws"
    local["checksum"] = directory_module._checksum(local)  # it matches: only the contradiction is left to find
    with pytest.raises(RegistryStateError, match="kms field contradicts"):
        Manifest.parse(json.dumps(local).encode(), path)


def test_no_aws_credentials_is_the_environment_s_error(tmp_path: Path) -> None:
    nowhere = str(tmp_path / "none")  # no credentials file, no config file, no instance metadata to ask
    env = {"AWS_SHARED_CREDENTIALS_FILE": nowhere, "AWS_CONFIG_FILE": nowhere, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    refused = run("--kms", "aws", "kms", "list-keys", registry=tmp_path / "registry", env=env)
    assert refused.status == 253 and "Unable to locate credentials" in refused.stderr
