"""``ecrcrypt iam ...`` and ``ecrcrypt ecr *-repository-policy`` through the console script.

The worked scenario is the documents' cross-account rule (the ECR user guide's repository
policies, the KMS guide's "Allowing users in other accounts to use a KMS key", the
article's P7): account A (the registry's) owns the key and the repository, a user of
account B is allowed by A's key policy and repository policy, and can use neither until
B's own identity policy allows it too -- the denial names the missing half.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import ok, run

A = "111122223333"
B = "444455556666"
B_ROOT = f"arn:aws:iam::{B}:root"
BOB = f"arn:aws:iam::{B}:user/bob"
REPOSITORY_ARN = f"arn:aws:ecr:us-west-2:{A}:repository/app"
UNIQUE_ID = re.compile(r"[A-Z0-9]{21}")


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    ok("--dir", str(tmp_path / "reg"), "init", "--region", "us-west-2")
    return tmp_path / "reg"


def test_cross_account_push_pull_needs_both_halves(reg: Path, tmp_path: Path) -> None:
    # Account B's root creates its user; the user is B's, invisible from A.
    user = ok("--caller", B_ROOT, "iam", "create-user", "--user-name", "bob", registry=reg)["User"]
    assert user["Arn"] == BOB and user["UserId"].startswith("AIDA")
    assert ok("iam", "list-users", registry=reg) == {"Users": []}

    # Account A: a key whose policy keeps A's root (P2) and allows bob, the repository and its policy.
    key_policy = tmp_path / "key-policy.json"
    key_policy.write_text(
        doc(
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow bob to use the key",
                "Effect": "Allow",
                "Principal": {"AWS": BOB},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
            },
        )
    )
    key = ok("kms", "create-key", "--policy", f"file://{key_policy}", registry=reg)["KeyMetadata"]["Arn"]
    ok(
        "ecr",
        "create-repository",
        "--repository-name",
        "app",
        "--encryption-configuration",
        f"encryptionType=KMS,kmsKey={key}",
        registry=reg,
    )
    repo_policy = doc(
        {
            "Sid": "bob pushes and pulls",
            "Effect": "Allow",
            "Principal": {"AWS": BOB},
            "Action": [
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
            ],
        }
    )
    ok("ecr", "set-repository-policy", "--repository-name", "app", "--policy-text", repo_policy, registry=reg)

    layer = tmp_path / "layer"
    layer.write_bytes(b"layer bytes\n" * 100)
    digest = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()

    # B's identity policy missing: both halves' messages name the missing one.
    push = run(
        "--caller", BOB, "--no-progress", "ecr", "push-layer", "--repository-name", "app", str(layer), registry=reg
    )
    assert push.status == 254
    assert f"User: {BOB} is not authorized to perform: ecr:InitiateLayerUpload on resource: {REPOSITORY_ARN}" in (
        push.stderr
    )
    assert "cross-account: the repository policy allows it (statement 'bob pushes and pulls' of repository " in (
        push.stderr
    )
    assert "but the caller's IAM policy does not" in push.stderr
    data_key = run("--caller", BOB, "kms", "generate-data-key", "--key-id", key, "--key-spec", "AES_256", registry=reg)
    assert data_key.status == 254
    assert "An error occurred (AccessDeniedException) when calling the GenerateDataKey operation" in data_key.stderr
    assert "cross-account: the key policy allows it (statement 'Allow bob to use the key' of key policy) but the " in (
        data_key.stderr
    )

    # B's root gives bob its half: the ECR actions on A's repository and the KMS actions on A's key.
    identity = doc(
        {"Effect": "Allow", "Action": "ecr:*", "Resource": REPOSITORY_ARN},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key},
    )
    assert (
        ok(
            "--caller",
            B_ROOT,
            "iam",
            "put-user-policy",
            "--user-name",
            "bob",
            "--policy-name",
            "use-a",
            "--policy-document",
            identity,
            registry=reg,
        )
        is None
    )
    pushed = ok(
        "--caller", BOB, "--no-progress", "ecr", "push-layer", "--repository-name", "app", str(layer), registry=reg
    )
    assert pushed["layerDigest"] == digest
    pulled = run(
        "--caller",
        BOB,
        "--no-progress",
        "ecr",
        "pull-layer",
        "--repository-name",
        "app",
        "--layer-digest",
        digest,
        "-",
        registry=reg,
    )
    assert pulled.status == 0, pulled.stderr
    assert pulled.raw == layer.read_bytes()
    assert (
        ok(
            "--caller",
            BOB,
            "kms",
            "generate-data-key",
            "--key-id",
            key,
            "--key-spec",
            "AES_256",
            "--query",
            "KeyId",
            registry=reg,
        )
        == key
    )

    # Taking the key policy's half away again denies the KMS call, naming that half.
    no_bob = tmp_path / "no-bob.json"
    no_bob.write_text(doc(json.loads(key_policy.read_text())["Statement"][0]))
    ok("kms", "put-key-policy", "--key-id", key, "--policy", f"file://{no_bob}", registry=reg)
    refused = run("--caller", BOB, "kms", "generate-data-key", "--key-id", key, "--key-spec", "AES_256", registry=reg)
    assert refused.status == 254
    assert "cross-account: the caller's IAM policy allows it" in refused.stderr
    assert f"but the key policy of account {A} does not allow {BOB} or its account" in refused.stderr


def test_users_roles_and_policies_round_trip(reg: Path, tmp_path: Path) -> None:
    user = ok("iam", "create-user", "--user-name", "dev", "--path", "/team/", registry=reg)["User"]
    assert set(user) == {"Path", "UserName", "UserId", "Arn", "CreateDate"}
    assert user["Arn"] == f"arn:aws:iam::{A}:user/team/dev" and UNIQUE_ID.fullmatch(user["UserId"])
    assert ok("iam", "get-user", "--user-name", "dev", registry=reg) == {"User": user}
    assert ok("iam", "list-users", "--path-prefix", "/team/", registry=reg) == {"Users": [user]}
    exists = run("iam", "create-user", "--user-name", "dev", registry=reg)
    assert exists.status == 254 and "(EntityAlreadyExists) when calling the CreateUser operation" in exists.stderr

    inline = doc({"Effect": "Allow", "Action": "ecr:DescribeImages", "Resource": "*"})
    ok(
        "iam",
        "put-user-policy",
        "--user-name",
        "dev",
        "--policy-name",
        "read",
        "--policy-document",
        inline,
        registry=reg,
    )
    got = ok("iam", "get-user-policy", "--user-name", "dev", "--policy-name", "read", registry=reg)
    assert got == {"UserName": "dev", "PolicyName": "read", "PolicyDocument": json.loads(inline)}
    assert ok("iam", "list-user-policies", "--user-name", "dev", registry=reg) == {"PolicyNames": ["read"]}
    malformed = run(
        "iam", "put-user-policy", "--user-name", "dev", "--policy-name", "bad", "--policy-document", "{}", registry=reg
    )
    assert malformed.status == 254 and "MalformedPolicyDocument" in malformed.stderr

    trust = tmp_path / "trust.json"
    trust.write_text(doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": B_ROOT}}))
    role = ok(
        "iam", "create-role", "--role-name", "ci", "--assume-role-policy-document", f"file://{trust}", registry=reg
    )["Role"]
    assert role["RoleId"].startswith("AROA") and role["AssumeRolePolicyDocument"] == json.loads(trust.read_text())
    assert ok("iam", "get-role", "--role-name", "ci", registry=reg) == {"Role": role}
    ok("iam", "put-role-policy", "--role-name", "ci", "--policy-name", "r", "--policy-document", inline, registry=reg)

    managed = ok("iam", "create-policy", "--policy-name", "Pull", "--policy-document", inline, registry=reg)["Policy"]
    arn = f"arn:aws:iam::{A}:policy/Pull"
    assert managed["Arn"] == arn and managed["AttachmentCount"] == 0 and managed["PolicyId"].startswith("ANPA")
    ok("iam", "attach-user-policy", "--user-name", "dev", "--policy-arn", arn, registry=reg)
    ok("iam", "attach-role-policy", "--role-name", "ci", "--policy-arn", arn, registry=reg)
    attached = {"AttachedPolicies": [{"PolicyName": "Pull", "PolicyArn": arn}]}
    assert ok("iam", "list-attached-user-policies", "--user-name", "dev", registry=reg) == attached
    assert ok("iam", "get-policy", "--policy-arn", arn, "--query", "Policy.AttachmentCount", registry=reg) == 2
    assert ok("iam", "list-policies", "--only-attached", "--query", "Policies[].Arn", registry=reg) == [arn]
    conflict = run("iam", "delete-policy", "--policy-arn", arn, registry=reg)
    assert conflict.status == 254 and "(DeleteConflict)" in conflict.stderr

    # Everything goes, in the order IAM requires.
    busy = run("iam", "delete-user", "--user-name", "dev", registry=reg)
    assert busy.status == 254 and "must remove policies first" in busy.stderr
    for args in (
        ("detach-user-policy", "--user-name", "dev", "--policy-arn", arn),
        ("detach-role-policy", "--role-name", "ci", "--policy-arn", arn),
        ("delete-policy", "--policy-arn", arn),
        ("delete-user-policy", "--user-name", "dev", "--policy-name", "read"),
        ("delete-role-policy", "--role-name", "ci", "--policy-name", "r"),
        ("delete-user", "--user-name", "dev"),
        ("delete-role", "--role-name", "ci"),
    ):
        assert ok("iam", *args, registry=reg) is None
    missing = run("iam", "get-user", "--user-name", "dev", registry=reg)
    assert missing.status == 254
    assert "An error occurred (NoSuchEntity) when calling the GetUser operation: The user with name dev" in (
        missing.stderr
    )
    usage = run("iam", "create-role", "--role-name", "x", registry=reg)
    assert usage.status == 252 and "--assume-role-policy-document" in usage.stderr


def test_caller_is_honoured(reg: Path) -> None:
    ok("iam", "create-user", "--user-name", "ops", registry=reg)
    ops = f"arn:aws:iam::{A}:user/ops"
    # A registered user has exactly its policies: none yet, so no IAM call of its own.
    denied = run("--caller", ops, "iam", "create-user", "--user-name", "mallory", registry=reg)
    assert denied.status == 254
    assert f"User: {ops} is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::{A}:user/mallory" in (
        denied.stderr
    )
    assert "because no identity policy allows it" in denied.stderr
    self_grant = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    escalate = run(
        "--caller",
        ops,
        "iam",
        "put-user-policy",
        "--user-name",
        "ops",
        "--policy-name",
        "all",
        "--policy-document",
        self_grant,
        registry=reg,
    )
    assert escalate.status == 254 and "iam:PutUserPolicy" in escalate.stderr
    # With iam:CreateUser and iam:ListUsers from the root, exactly those work.
    grant = doc({"Effect": "Allow", "Action": ["iam:CreateUser", "iam:ListUsers"], "Resource": "*"})
    ok(
        "iam",
        "put-user-policy",
        "--user-name",
        "ops",
        "--policy-name",
        "admin",
        "--policy-document",
        grant,
        registry=reg,
    )
    ok("--caller", ops, "iam", "create-user", "--user-name", "ci", registry=reg)
    assert ok("--caller", ops, "iam", "list-users", "--query", "Users[].UserName", registry=reg) == ["ci", "ops"]
    assert run("--caller", ops, "iam", "delete-user", "--user-name", "ci", registry=reg).status == 254
    # Another account's root works in its own account only; a service principal has no IAM.
    assert ok("--caller", B_ROOT, "iam", "list-users", registry=reg) == {"Users": []}
    service = run("--caller", "ecr.amazonaws.com", "iam", "list-users", registry=reg)
    assert service.status == 254 and "has no AWS account" in service.stderr


def test_repository_policy_round_trip(reg: Path, tmp_path: Path) -> None:
    ok("ecr", "create-repository", "--repository-name", "app", registry=reg)
    policy = tmp_path / "policy.json"
    policy.write_text(doc({"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "ecr:BatchGetImage"}))
    expected = {"registryId": A, "repositoryName": "app", "policyText": policy.read_text()}
    set_ = ok(
        "ecr", "set-repository-policy", "--repository-name", "app", "--policy-text", f"file://{policy}", registry=reg
    )
    assert set_ == expected
    assert ok("ecr", "get-repository-policy", "--repository-name", "app", registry=reg) == expected
    assert ok("ecr", "delete-repository-policy", "--repository-name", "app", registry=reg) == expected
    gone = run("ecr", "get-repository-policy", "--repository-name", "app", registry=reg)
    assert gone.status == 254 and "(RepositoryPolicyNotFoundException)" in gone.stderr
    bad = run("ecr", "set-repository-policy", "--repository-name", "app", "--policy-text", "{}", registry=reg)
    assert bad.status == 254 and "(InvalidParameterException)" in bad.stderr
    assert run("ecr", "set-repository-policy", "--repository-name", "app", registry=reg).status == 252

    # A user allowed only by the repository policy it sets would lock itself out: refused unless --force.
    dev = f"arn:aws:iam::{A}:user/dev"
    ok("iam", "create-user", "--user-name", "dev", registry=reg)
    own = doc({"Sid": "dev", "Effect": "Allow", "Principal": {"AWS": dev}, "Action": "ecr:SetRepositoryPolicy"})
    ok("ecr", "set-repository-policy", "--repository-name", "app", "--policy-text", own, registry=reg)
    lockout = doc({"Sid": "none", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "ecr:BatchGetImage"})
    refused = run(
        "--caller",
        dev,
        "ecr",
        "set-repository-policy",
        "--repository-name",
        "app",
        "--policy-text",
        lockout,
        registry=reg,
    )
    assert refused.status == 254 and "would prevent you from setting another policy" in refused.stderr
    forced = ok(
        "--caller",
        dev,
        "ecr",
        "set-repository-policy",
        "--repository-name",
        "app",
        "--policy-text",
        lockout,
        "--force",
        registry=reg,
    )
    assert forced["policyText"] == lockout
    # Now dev may not read it: GetRepositoryPolicy is checked against the caller too.
    read = run("--caller", dev, "ecr", "get-repository-policy", "--repository-name", "app", registry=reg)
    assert read.status == 254 and "ecr:GetRepositoryPolicy" in read.stderr
