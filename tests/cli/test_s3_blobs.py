"""``ecrcrypt --s3-bucket``: the command line keeps the registry's blobs in S3 (a moto server), as ``serve`` does.

Every run is the installed console script in a child process. The bucket's content is read back
with the test's own boto3 client, and the directory's ``blobs/`` with the file system: a push lands
in the store the registry records and nowhere else, and a refused command leaves both as they were.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.metadata import RegistryMetadata
from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.registry_blobs import BLOB_STORE
from ecrcrypt.store.s3 import S3BlobStore
from tests.cli.support import Result, run

pytestmark = pytest.mark.moto

LAYER = b"a layer kept in S3\n" * 5000
DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
OTHER_BUCKET = "ecrcrypt-other-bucket"


@pytest.fixture
def aws() -> dict[str, str]:
    """Dummy credentials (moto takes any); the endpoint is given by each test, as an option or a variable."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _keys(s3_client: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in (directory / "blobs").rglob("*") if p.is_file())


def _recorded(directory: Path) -> str | None:
    with RegistryMetadata.open(directory / "registry.sqlite3") as metadata:
        return metadata.recorded(BLOB_STORE)


def _references(directory: Path) -> tuple[object, ...]:
    """What the registry's metadata references: blob keys, blob and repository intents."""
    with RegistryMetadata.open(directory / "registry.sqlite3") as metadata:
        snap = metadata.snapshot()
    return snap.blob_keys, snap.blob_intents, snap.intents


def _push(env: dict[str, str], directory: Path, *options: str) -> Result:
    return run(*options, "ecr", "push-layer", "--repository-name", "team/app", "-", "--no-progress",
               registry=directory, env=env, stdin=LAYER)  # fmt: skip


def _pull(env: dict[str, str], directory: Path, *options: str) -> Result:
    return run(*options, "ecr", "pull-layer", "--repository-name", "team/app", "--layer-digest", DIGEST, "-",
               "--no-progress", registry=directory, env=env)  # fmt: skip


def test_push_and_pull_go_through_the_bucket_the_registry_records(
    aws: dict[str, str], moto_reset: str, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    directory = tmp_path / "registry"
    s3 = ("--s3-bucket", s3_bucket, "--s3-endpoint-url", moto_reset)
    made = run(*s3, "init", registry=directory, env=aws).json()["registry"]
    assert made["blobs"] == f"s3://{s3_bucket}" and _recorded(directory) == f"s3://{s3_bucket}"
    assert (
        run("ecr", "create-repository", "--repository-name", "team/app", *s3, registry=directory, env=aws).status == 0
    )
    # The options may stand after the command, as every global option may.
    pushed = run("ecr", "push-layer", "--repository-name", "team/app", "-", "--no-progress", *s3,
                 registry=directory, env=aws, stdin=LAYER).json()  # fmt: skip
    assert pushed["layerDigest"] == DIGEST
    keys = _keys(s3_client, s3_bucket)
    assert len(keys) == 1 and _files(directory) == []  # in the bucket, not on this host's disk
    stored = s3_client.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read()
    assert stored[:3] == b"\x02\x04\x78" and LAYER[:64] not in stored  # an ESDK message, not the plaintext
    pulled = _pull(aws, directory, *s3)
    assert pulled.status == 0 and pulled.raw == LAYER

    # The environment variables say the same as the options.
    env = {**aws, "ECRCRYPT_S3_BUCKET": s3_bucket, "ECRCRYPT_S3_ENDPOINT_URL": moto_reset}
    by_env = _pull(env, directory)
    assert by_env.status == 0 and by_env.raw == LAYER
    described = run("ecr", "describe-images", "--repository-name", "team/app", registry=directory, env=env)
    assert described.status == 0, described.stderr
    # ... and boto3's own endpoint setting stands for --s3-endpoint-url (the URL is not part of the record).
    boto3_env = {**aws, "ECRCRYPT_S3_BUCKET": s3_bucket, "AWS_ENDPOINT_URL_S3": moto_reset}
    assert _pull(boto3_env, directory).raw == LAYER


def test_another_store_is_refused_and_nothing_is_written(
    aws: dict[str, str], moto_reset: str, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    s3_client.create_bucket(Bucket=OTHER_BUCKET)
    on_s3, on_disk = tmp_path / "on-s3", tmp_path / "on-disk"
    endpoint = ("--s3-endpoint-url", moto_reset)
    assert run("--s3-bucket", s3_bucket, *endpoint, "init", registry=on_s3, env=aws).status == 0
    assert run("init", registry=on_disk, env=aws).json()["registry"]["blobs"] == "directory"
    assert _recorded(on_disk) == "directory"
    for directory, chosen in ((on_s3, ("--s3-bucket", s3_bucket, *endpoint)), (on_disk, ())):
        assert run(*chosen, "ecr", "create-repository", "--repository-name", "team/app", registry=directory,
                   env=aws).status == 0  # fmt: skip
        assert _push(aws, directory, *chosen).status == 0
    before = {b: _keys(s3_client, b) for b in (s3_bucket, OTHER_BUCKET)}
    files = {d: _files(d) for d in (on_s3, on_disk)}
    references = {d: _references(d) for d in (on_s3, on_disk)}
    assert (
        len(before[s3_bucket]) == 1 and before[OTHER_BUCKET] == [] and files[on_s3] == [] and len(files[on_disk]) == 1
    )

    attempts: dict[str, tuple[Path, tuple[str, ...], str]] = {
        "no bucket on an S3 registry": (on_s3, (), f"open it with --s3-bucket {s3_bucket} (ECRCRYPT_S3_BUCKET="),
        "another bucket": (on_s3, ("--s3-bucket", OTHER_BUCKET, *endpoint), f"--s3-bucket {s3_bucket}"),
        "a bucket on a directory registry": (
            on_disk, ("--s3-bucket", s3_bucket, *endpoint), "open it without --s3-bucket (unset ECRCRYPT_S3_BUCKET)"
        ),
    }  # fmt: skip
    for what, (directory, options, advice) in attempts.items():
        recorded = _recorded(directory)
        for attempt in (_push(aws, directory, *options), _pull(aws, directory, *options)):
            assert attempt.status == 253, (what, attempt.stderr)
            assert attempt.raw == b"", what
            assert f"records {BLOB_STORE}={recorded}" in attempt.stderr and advice in attempt.stderr, what
        served = run(*options, "serve", "--port", "1", registry=directory, env=aws)  # refused before any worker
        assert served.status == 253 and advice in served.stderr, what
        assert _recorded(directory) == recorded, what  # the record stays
    assert {b: _keys(s3_client, b) for b in before} == before
    assert {d: _files(d) for d in files} == files
    assert {d: _references(d) for d in references} == references


def test_an_invalid_bucket_or_a_lone_endpoint_is_a_usage_error(aws: dict[str, str], tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    bad = run("--s3-bucket", "Not_A_Bucket", "init", registry=directory, env=aws)
    assert bad.status == 252 and "bucket" in bad.stderr.lower()
    lone = run("init", registry=directory, env={**aws, "ECRCRYPT_S3_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert lone.status == 252 and "--s3-endpoint-url is the endpoint of --s3-bucket" in lone.stderr
    assert not directory.exists()


def test_a_registry_without_the_record_keeps_working_and_the_first_bucket_is_recorded(
    aws: dict[str, str], moto_reset: str, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    """Registries made before the record (here: by the library, which records nothing) open as they did."""
    legacy, used = tmp_path / "legacy", tmp_path / "used"
    for directory in (legacy, used):
        Registry.create(directory).close()
    s3 = ("--s3-bucket", s3_bucket, "--s3-endpoint-url", moto_reset)
    # A command that names no store records nothing: an operator's command without the option must not pin an
    # old fleet to one host's folder.
    assert run("ecr", "create-repository", "--repository-name", "team/app", registry=legacy, env=aws).status == 0
    assert _recorded(legacy) is None
    assert _push(aws, legacy, *s3).status == 0  # the first open naming a bucket records it
    assert _recorded(legacy) == f"s3://{s3_bucket}" and _files(legacy) == []
    assert _pull(aws, legacy).status == 253
    in_bucket = _keys(s3_client, s3_bucket)

    # Blobs in the directory's blobs/ are the registry's: no bucket may be recorded over them.
    assert run("ecr", "create-repository", "--repository-name", "team/app", registry=used, env=aws).status == 0
    assert _push(aws, used).status == 0 and _recorded(used) is None
    files = _files(used)
    refused = _push(aws, used, *s3)
    assert refused.status == 253, refused.stderr
    assert f"records no blob store and its {used / 'blobs'} holds blobs" in refused.stderr
    assert "aws s3 sync" in refused.stderr
    assert _recorded(used) is None and _files(used) == files and _keys(s3_client, s3_bucket) == in_bucket
    # init is an explicit choice: with the blobs here, it records them.
    assert run("init", registry=used, env=aws).status == 0 and _recorded(used) == "directory"
    assert _pull(aws, used).raw == LAYER


def test_init_leaves_the_choice_open_when_the_objects_are_elsewhere(
    aws: dict[str, str], moto_reset: str, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    """An old registry served from S3 (objects recorded, its blobs/ empty): a plain init records no directory
    store over them, and the first open naming the bucket records it."""
    directory = tmp_path / "registry"
    with Registry.create(directory, store=S3BlobStore(s3_client, s3_bucket)) as registry:
        registry.create_repository("team/app")
        registry.repository("team/app").push_layer(LAYER, digest=Digest.parse(DIGEST))
    assert run("init", registry=directory, env=aws).status == 0
    assert _recorded(directory) is None
    env = {**aws, "ECRCRYPT_S3_BUCKET": s3_bucket, "ECRCRYPT_S3_ENDPOINT_URL": moto_reset}
    assert _pull(env, directory).raw == LAYER
    assert _recorded(directory) == f"s3://{s3_bucket}"


def test_fleet_hosts_on_one_database_share_the_recorded_bucket(
    aws: dict[str, str], moto_reset: str, kms_client: Any, s3_client: Any, s3_bucket: str, postgres_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The record is in the shared metadata: a host with a directory of its own follows the first host's init."""
    host_a, host_b = tmp_path / "a", tmp_path / "b"
    wrapping = kms_client.create_key(Description="wraps the service key")["KeyMetadata"]["Arn"]
    env = {**aws, "AWS_ENDPOINT_URL": moto_reset, "ECRCRYPT_KMS": "aws", "ECRCRYPT_METADATA_URL": postgres_url}
    on_s3 = {**env, "ECRCRYPT_S3_BUCKET": s3_bucket}
    init = ("init", "--service-key-wrapping-key", wrapping)
    assert run(*init, registry=host_a, env=on_s3).json()["registry"]["blobs"] == f"s3://{s3_bucket}"
    with open_metadata(postgres_url) as metadata:
        assert metadata.recorded(BLOB_STORE) == f"s3://{s3_bucket}"
    refused = run(*init, registry=host_b, env=env)  # host b forgot the bucket
    assert refused.status == 253 and f"open it with --s3-bucket {s3_bucket}" in refused.stderr
    assert postgres_url.rsplit("/", 1)[0] in refused.stderr  # the message names the database the record is in
    assert run(*init, registry=host_b, env=on_s3).status == 0  # the same init, with the bucket: host b joins

    assert run("ecr", "create-repository", "--repository-name", "team/app", registry=host_a, env=on_s3).status == 0
    assert _push(on_s3, host_b).status == 0
    assert _pull(on_s3, host_a).raw == LAYER  # pushed on one host, pulled on the other
    assert _files(host_a) == _files(host_b) == [] and len(_keys(s3_client, s3_bucket)) == 1
