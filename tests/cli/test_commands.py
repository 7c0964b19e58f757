"""Every command group end to end, through the console script: KMS, ECR, layers, images, audit."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from ecrcrypt.cli.kms import kms
from ecrcrypt.kms import Kms
from tests.cli.support import ok, run


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    ok("--dir", str(tmp_path / "reg"), "init")
    return tmp_path / "reg"


def test_key_lifecycle_and_aliases(reg: Path) -> None:
    key = ok("kms", "create-key", registry=reg)["KeyMetadata"]
    assert ok("kms", "create-alias", "--alias-name", "alias/app", "--target-key-id", key["KeyId"], registry=reg) is None
    aliases = ok("kms", "list-aliases", "--key-id", key["KeyId"], registry=reg)
    assert [a["AliasName"] for a in aliases["Aliases"]] == ["alias/app"]
    assert aliases["Aliases"][0]["TargetKeyId"] == key["KeyId"]
    assert ok("kms", "describe-key", "--key-id", "alias/app", "--query", "KeyMetadata.Arn", registry=reg) == key["Arn"]

    ok("kms", "disable-key", "--key-id", key["KeyId"], registry=reg)
    assert ok(
        "kms", "describe-key", "--key-id", key["KeyId"], "--query", "KeyMetadata.[KeyState,Enabled]", registry=reg
    ) == ["Disabled", False]
    ok("kms", "enable-key", "--key-id", key["KeyId"], registry=reg)

    ok("kms", "enable-key-rotation", "--key-id", key["KeyId"], "--rotation-period-in-days", "90", registry=reg)
    status = ok("kms", "get-key-rotation-status", "--key-id", key["KeyId"], registry=reg)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90

    scheduled = ok(
        "kms", "schedule-key-deletion", "--key-id", key["KeyId"], "--pending-window-in-days", "7", registry=reg
    )
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
    assert "DeletionDate" in ok("kms", "describe-key", "--key-id", key["KeyId"], registry=reg)["KeyMetadata"]
    assert ok("kms", "cancel-key-deletion", "--key-id", key["KeyId"], registry=reg) == {"KeyId": key["Arn"]}
    assert (
        ok("kms", "describe-key", "--key-id", key["KeyId"], "--query", "KeyMetadata.KeyState", registry=reg)
        == "Disabled"
    )


def test_crypto_with_blobs_in_base64_and_fileb(reg: Path, tmp_path: Path) -> None:
    key = ok("kms", "create-key", "--query", "KeyMetadata.KeyId", registry=reg)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00\x01 not text \xff")
    enc = ok(
        "kms",
        "encrypt",
        "--key-id",
        key,
        "--plaintext",
        f"fileb://{secret}",
        "--encryption-context",
        "purpose=test,team=a",
        registry=reg,
    )
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = tmp_path / "blob"
    blob.write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    dec = ok(
        "kms",
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{blob}",
        "--encryption-context",
        '{"team": "a", "purpose": "test"}',
        registry=reg,
    )
    assert base64.b64decode(dec["Plaintext"]) == secret.read_bytes()
    # The base64 form of the same blob, and a wrong context: InvalidCiphertextException.
    wrong = run(
        "kms", "decrypt", "--ciphertext-blob", enc["CiphertextBlob"], "--encryption-context", "team=b", registry=reg
    )
    assert wrong.status == 254 and "(InvalidCiphertextException) when calling the Decrypt operation" in wrong.stderr

    data_key = ok("kms", "generate-data-key", "--key-id", key, "--key-spec", "AES_256", registry=reg)
    assert set(data_key) == {"CiphertextBlob", "Plaintext", "KeyId"}
    assert len(base64.b64decode(data_key["Plaintext"])) == 32
    text = run(
        "kms",
        "decrypt",
        "--ciphertext-blob",
        data_key["CiphertextBlob"],
        "--output",
        "text",
        "--query",
        "Plaintext",
        registry=reg,
    )
    assert text.status == 0 and text.stdout.strip() == data_key["Plaintext"]


def test_grants_create_list_retire_revoke(reg: Path) -> None:
    key = ok("kms", "create-key", "--query", "KeyMetadata.Arn", registry=reg)
    app = "arn:aws:iam::111122223333:role/app"
    grant = ("kms", "create-grant", "--key-id", key, "--grantee-principal", app, "--operations")
    made = ok(*grant, "Decrypt", "GenerateDataKey", "--retiring-principal", app,
              "--constraints", "EncryptionContextSubset={team=a}", "--name", "g1", registry=reg)  # fmt: skip
    assert set(made) == {"GrantId", "GrantToken"}
    listed = ok("kms", "list-grants", "--key-id", key, "--grant-id", made["GrantId"], registry=reg)["Grants"]
    assert sorted(listed[0]["Operations"]) == ["Decrypt", "GenerateDataKey"]
    assert listed[0]["Constraints"] == {"EncryptionContextSubset": {"team": "a"}}
    assert listed[0]["Name"] == "g1"
    retirable = ok(
        "kms", "list-retirable-grants", "--retiring-principal", app, "--query", "Grants[].GrantId", registry=reg
    )
    assert retirable == [made["GrantId"]]
    # Retire by token, as the grantee would; then revoke another grant as the key's account.
    ok("kms", "retire-grant", "--grant-token", made["GrantToken"], registry=reg)
    second = ok(*grant, '["Encrypt"]', "--query", "GrantId", registry=reg)
    assert ok("kms", "revoke-grant", "--key-id", key, "--grant-id", second, registry=reg) is None
    assert ok("kms", "list-grants", "--key-id", key, registry=reg)["Grants"] == []
    page = ok("kms", "list-grants", "--key-id", key, "--limit", "1", registry=reg)
    assert page == {"Grants": [], "Truncated": False}


def test_list_keys_pages_as_the_aws_cli(reg: Path) -> None:
    made = sorted(ok("kms", "create-key", "--query", "KeyMetadata.KeyId", registry=reg) for _ in range(5))
    ids = "Keys[].KeyId"
    # Default: every page (here 2 keys per call), the merged list alone.
    assert ok("kms", "list-keys", "--page-size", "2", registry=reg) == {
        "Keys": ok("kms", "list-keys", registry=reg)["Keys"]
    }
    assert ok("kms", "list-keys", "--page-size", "2", "--query", ids, registry=reg) == made
    # --max-items stops inside a page and hands out a token to go on with.
    first = ok("kms", "list-keys", "--page-size", "2", "--max-items", "3", registry=reg)
    assert [k["KeyId"] for k in first["Keys"]] == made[:3] and "NextToken" in first
    rest = ok("kms", "list-keys", "--page-size", "2", "--starting-token", first["NextToken"], registry=reg)
    assert [k["KeyId"] for k in rest["Keys"]] == made[3:] and "NextToken" not in rest
    # --no-paginate, or the API's own --limit / --marker: one call, the page as the API returns it.
    page = ok("kms", "list-keys", "--limit", "2", registry=reg)
    assert page["Truncated"] is True and len(page["Keys"]) == 2
    following = ok("kms", "list-keys", "--marker", page["NextMarker"], "--limit", "100", registry=reg)
    assert following["Truncated"] is False and "NextMarker" not in following
    assert [k["KeyId"] for k in page["Keys"] + following["Keys"]] == made
    assert ok("kms", "list-keys", "--no-paginate", "--page-size", "1", "--query", "length(Keys)", registry=reg) == 1
    bad = run("kms", "list-keys", "--starting-token", "garbage", registry=reg)
    assert bad.status == 252 and "Bad --starting-token" in bad.stderr


def test_layers_images_and_deletion(reg: Path, tmp_path: Path) -> None:
    key = ok("kms", "create-key", "--query", "KeyMetadata.KeyId", registry=reg)
    ok("kms", "create-alias", "--alias-name", "alias/images", "--target-key-id", key, registry=reg)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"encryptionType": "KMS", "kmsKey": "alias/images"}))
    repo = ok(
        "ecr",
        "create-repository",
        "--repository-name",
        "team/app",
        "--encryption-configuration",
        f"file://{config}",
        registry=reg,
    )["repository"]
    assert repo["encryptionConfiguration"]["kmsKey"].endswith(key)  # the alias is resolved to the key ARN

    payload = bytes(range(256)) * 5000
    layer = tmp_path / "layer.tar"
    layer.write_bytes(payload)
    pushed = ok("ecr", "push-layer", "--repository-name", "team/app", str(layer), registry=reg)
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert pushed == {
        "layerDigest": digest,
        "size": len(payload),
        "storedSize": pushed["storedSize"],
        "alreadyExisted": False,
    }
    from_stdin = ok("ecr", "push-layer", "--repository-name", "team/app", "-", registry=reg, stdin=payload)
    assert from_stdin["alreadyExisted"] is True

    out = tmp_path / "out.tar"
    assert (
        run(
            "ecr", "pull-layer", "--repository-name", "team/app", "--layer-digest", digest, str(out), registry=reg
        ).status
        == 0
    )
    assert out.read_bytes() == payload
    to_stdout = run("ecr", "pull-layer", "--repository-name", "team/app", "--layer-digest", digest, "-", registry=reg)
    assert to_stdout.status == 0 and to_stdout.raw == payload

    manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": digest, "size": len(payload)}]})
    image = ok(
        "ecr",
        "put-image",
        "--repository-name",
        "team/app",
        "--image-manifest",
        manifest,
        "--image-tag",
        "v1",
        registry=reg,
    )["image"]
    assert image["imageId"]["imageTag"] == "v1" and image["imageManifest"] == manifest
    got = ok(
        "ecr",
        "batch-get-image",
        "--repository-name",
        "team/app",
        "--image-ids",
        "imageTag=v1",
        "imageTag=v9",
        registry=reg,
    )
    assert [i["imageId"] for i in got["images"]] == [image["imageId"]]
    assert got["failures"][0]["imageId"] == {"imageTag": "v9"} and got["failures"][0]["failureCode"] == "ImageNotFound"
    assert ok("ecr", "list-images", "--repository-name", "team/app", registry=reg) == {"imageIds": [image["imageId"]]}
    detail = ok("ecr", "describe-images", "--repository-name", "team/app", registry=reg)["imageDetails"][0]
    assert detail["imageTags"] == ["v1"] and detail["imageSizeInBytes"] == len(payload)

    missing_layer = run(
        "ecr",
        "put-image",
        "--repository-name",
        "team/app",
        "--image-manifest",
        json.dumps({"schemaVersion": 2, "layers": [{"digest": "sha256:" + "0" * 64}]}),
        registry=reg,
    )
    assert missing_layer.status == 254 and "(LayersNotFoundException)" in missing_layer.stderr
    assert "sha256:" + "0" * 64 in missing_layer.stderr  # names what failed

    not_empty = run("ecr", "delete-repository", "--repository-name", "team/app", registry=reg)
    assert not_empty.status == 254 and "(RepositoryNotEmptyException)" in not_empty.stderr
    ok("ecr", "delete-repository", "--repository-name", "team/app", "--force", registry=reg)
    assert ok("kms", "list-grants", "--key-id", key, registry=reg)["Grants"] == []
    assert ok("ecr", "describe-repositories", registry=reg) == {"repositories": []}


def test_migrate_repository_and_the_audit_trail(reg: Path, tmp_path: Path) -> None:
    ok("ecr", "create-repository", "--repository-name", "old", registry=reg)
    layer = tmp_path / "l"
    layer.write_bytes(b"layer bytes" * 1000)
    digest = ok("ecr", "push-layer", "--repository-name", "old", str(layer), "--query", "layerDigest", registry=reg)
    ok(
        "ecr",
        "put-image",
        "--repository-name",
        "old",
        "--image-manifest",
        json.dumps({"schemaVersion": 2, "layers": [{"digest": digest, "size": 11000}]}),
        "--image-tag",
        "v1",
        registry=reg,
    )
    moved = ok(
        "ecr",
        "migrate-repository",
        "--source-repository-name",
        "old",
        "--target-repository-name",
        "new",
        "--target-encryption-configuration",
        "encryptionType=KMS",
        "--delete-source",
        registry=reg,
    )
    assert moved["migration"]["layersCopied"] == 1 and moved["migration"]["sourceDeleted"] is True
    assert moved["repository"]["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert ok("ecr", "describe-repositories", "--query", "repositories[].repositoryName", registry=reg) == ["new"]

    developer = "arn:aws:iam::111122223333:user/developer"
    ok(
        "ecr",
        "batch-get-image",
        "--repository-name",
        "new",
        "--image-ids",
        "imageTag=v1",
        "--caller",
        developer,
        registry=reg,
    )
    events = ok(
        "audit",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=BatchGetImage",
        registry=reg,
    )["Events"]
    # Newest first: the developer's, then the migration's reads of source and target as the account root.
    assert [e["Username"] for e in events] == ["developer", "root", "root"]
    assert set(events[0]) == {
        "EventId",
        "EventName",
        "ReadOnly",
        "EventTime",
        "EventSource",
        "Username",
        "Resources",
        "CloudTrailEvent",
    }
    assert json.loads(events[0]["CloudTrailEvent"])["userIdentity"]["arn"] == developer
    by_user = ok(
        "audit",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=Username,AttributeValue=developer",
        "--query",
        "Events[].EventName",
        registry=reg,
    )
    assert "BatchGetImage" in by_user and "CreateRepository" not in by_user
    # The aws CLI's spelling, `cloudtrail lookup-events`, is the same command.
    developer_events = ("--lookup-attributes", "AttributeKey=Username,AttributeValue=developer")
    as_cloudtrail = ok("cloudtrail", "lookup-events", *developer_events, "--query", "Events[].EventName", registry=reg)
    assert as_cloudtrail == by_user


def test_demo_is_a_command(tmp_path: Path) -> None:
    result = run("demo", "--dir", str(tmp_path / "demo"), "--big-layer-mib", "1", "--plain")
    assert result.status == 0, result.stderr
    assert "grants left on both keys: 0" in result.stdout
    # Its registry is an ordinary one: the other commands open it.
    repos = ok("ecr", "describe-repositories", "--query", "repositories[].repositoryName", registry=tmp_path / "demo")
    assert isinstance(repos, list)


def test_no_command_prints_help_and_exits_252() -> None:
    result = run()
    assert result.status == 252 and "Commands:" in result.stdout and "kms" in result.stdout


def test_every_kms_operation_has_its_command() -> None:
    # The aws CLI's command for each operation of the Kms protocol (create_key -> create-key, ...).
    operations = {name for name in vars(Kms) if not name.startswith("_") and callable(getattr(Kms, name))}
    expected = {name.replace("_", "-") for name in operations}
    assert expected <= set(kms.commands), sorted(expected - set(kms.commands))


def test_more_key_commands(reg: Path) -> None:
    a = ok("kms", "create-key", "--query", "KeyMetadata.Arn", registry=reg)
    b = ok("kms", "create-key", "--query", "KeyMetadata.Arn", registry=reg)
    ok("kms", "create-alias", "--alias-name", "alias/x", "--target-key-id", a, registry=reg)
    assert ok("kms", "update-alias", "--alias-name", "alias/x", "--target-key-id", b, registry=reg) is None
    assert ok("kms", "describe-key", "--key-id", "alias/x", "--query", "KeyMetadata.Arn", registry=reg) == b
    ok("kms", "delete-alias", "--alias-name", "alias/x", registry=reg)
    assert run("kms", "describe-key", "--key-id", "alias/x", registry=reg).status == 254

    only_ciphertext = ok("kms", "generate-data-key-without-plaintext", "--key-id", a, "--number-of-bytes", "32",
                         "--encryption-context", "k=v", registry=reg)  # fmt: skip
    assert set(only_ciphertext) == {"CiphertextBlob", "KeyId"}
    blob = only_ciphertext["CiphertextBlob"]
    contexts = ("--source-encryption-context", "k=v", "--destination-encryption-context", "k=w")
    moved = ok("kms", "re-encrypt", "--ciphertext-blob", blob, "--destination-key-id", b, *contexts, registry=reg)
    assert (moved["SourceKeyId"], moved["KeyId"]) == (a, b)
    opened = ok("kms", "decrypt", "--ciphertext-blob", moved["CiphertextBlob"], "--encryption-context", "k=w",
                "--query", "KeyId", registry=reg)  # fmt: skip
    assert opened == b

    assert ok("kms", "rotate-key-on-demand", "--key-id", a, registry=reg) == {"KeyId": a}
    ok("kms", "enable-key-rotation", "--key-id", a, registry=reg)
    ok("kms", "disable-key-rotation", "--key-id", a, registry=reg)
    assert ok("kms", "get-key-rotation-status", "--key-id", a, "--query", "KeyRotationEnabled", registry=reg) is False


def test_key_policies(reg: Path, tmp_path: Path) -> None:
    root = "arn:aws:iam::111122223333:root"

    def key_policy(action: str) -> dict[str, object]:
        statement = {"Effect": "Allow", "Principal": {"AWS": root}, "Action": action, "Resource": "*"}
        return {"Version": "2012-10-17", "Statement": [statement]}

    policy = key_policy("kms:*")
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    key = ok("kms", "create-key", "--policy", f"file://{path}", "--query", "KeyMetadata.KeyId", registry=reg)
    text = run("kms", "get-key-policy", "--key-id", key, "--query", "Policy", "--output", "text", registry=reg)
    assert text.status == 0 and json.loads(text.stdout) == policy
    assert ok("kms", "list-key-policies", "--key-id", key, registry=reg) == {"PolicyNames": ["default"]}

    # A policy that leaves the caller out: KMS's lockout check refuses it unless bypassed.
    locked = key_policy("kms:Decrypt")
    refused = run("kms", "put-key-policy", "--key-id", key, "--policy", json.dumps(locked), registry=reg)
    assert refused.status == 254 and "when calling the PutKeyPolicy operation" in refused.stderr


def test_describe_repositories_pages_as_the_aws_cli(reg: Path) -> None:
    names = [f"app-{i}" for i in range(5)]
    for name in names:
        ok("ecr", "create-repository", "--repository-name", name, registry=reg)
    listed = "repositories[].repositoryName"
    assert ok("ecr", "describe-repositories", "--page-size", "2", "--query", listed, registry=reg) == names
    first = ok("ecr", "describe-repositories", "--page-size", "2", "--max-items", "3", registry=reg)
    assert [r["repositoryName"] for r in first["repositories"]] == names[:3]
    rest = ok("ecr", "describe-repositories", "--starting-token", first["NextToken"], "--query", listed, registry=reg)
    assert rest == names[3:]
    page = ok("ecr", "describe-repositories", "--max-results", "2", registry=reg)  # the API's own: one call
    assert [r["repositoryName"] for r in page["repositories"]] == names[:2] and "nextToken" in page
    following = ok("ecr", "describe-repositories", "--next-token", page["nextToken"], "--query", listed, registry=reg)
    assert following == names[2:]
    assert ok("ecr", "describe-repositories", "--repository-names", "app-1", "app-3", "--query", listed,
              registry=reg) == ["app-1", "app-3"]  # fmt: skip
