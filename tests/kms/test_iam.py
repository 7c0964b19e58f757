"""The local IAM model (users, roles, inline and managed policies, AssumeRole) and how KMS reads it.

IAM's rules: entity names and error codes of the IAM API reference; size limits of
"IAM and AWS STS quotas"; evaluation per "Policy evaluation logic" (an identity
policy counts for a KMS key only when the key policy enables IAM policies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from ecrcrypt import errors
from ecrcrypt.kms.local.service import LocalKms, ManualClock

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str = "*") -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(principal: str) -> str:
    """A role trust policy (no Resource: the role itself is the resource)."""
    return policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principal}})


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, region=REGION, clock=clock)


@pytest.fixture
def key(kms: LocalKms) -> str:
    return kms.client(ROOT).create_key().arn


def test_users_and_their_errors(kms: LocalKms) -> None:
    iam = kms.iam
    user = iam.create_user(user_name="alice")
    assert user.arn == ALICE
    assert iam.get_user(user_name="alice") == user
    with pytest.raises(errors.EntityAlreadyExistsError) as exists:
        iam.create_user(user_name="alice")
    assert exists.value.code == "EntityAlreadyExists"
    with pytest.raises(errors.NoSuchEntityError) as missing:
        iam.put_user_policy(user_name="bob", policy_name="p", policy_document=policy(allow("kms:*")))
    assert missing.value.code == "NoSuchEntity"
    with pytest.raises(errors.ValidationError):
        iam.create_user(user_name="no spaces")
    assert iam.create_user(user_name="carol", path="/team/").arn == f"arn:aws:iam::{ACCOUNT}:user/team/carol"


def test_policy_documents_are_checked_when_written(kms: LocalKms) -> None:
    iam = kms.iam
    iam.create_user(user_name="alice")
    with pytest.raises(errors.MalformedPolicyDocumentError):
        iam.put_user_policy(user_name="alice", policy_name="p", policy_document='{"Statement": []}')
    # IAM: an inline user policy holds at most 2,048 characters, white space not counted.
    long = policy({**allow("kms:Encrypt"), "Sid": "s" * 2100})
    with pytest.raises(errors.PolicySizeLimitExceededError):
        iam.put_user_policy(user_name="alice", policy_name="p", policy_document=long)
    iam.create_role(role_name="r", assume_role_policy_document=trust(ROOT))
    iam.put_role_policy(role_name="r", policy_name="p", policy_document=long)  # roles: 10,240
    assert iam.list_role_policies(role_name="r") == ["p"]
    assert iam.get_role_policy(role_name="r", policy_name="p") == long


def test_a_registered_user_has_exactly_its_policies(kms: LocalKms, key: str) -> None:
    kms.iam.create_user(user_name="alice")
    alice = kms.client(ALICE)
    with pytest.raises(errors.AccessDeniedError) as denied:
        alice.encrypt(key_id=key, plaintext=b"x")
    assert "enables IAM policies for account 111122223333, but no identity policy allows it" in str(denied.value)
    kms.iam.put_user_policy(user_name="alice", policy_name="enc", policy_document=policy(allow("kms:Encrypt", key)))
    assert kms.iam.list_user_policies(user_name="alice") == ["enc"]
    alice.encrypt(key_id=key, plaintext=b"x")
    with pytest.raises(errors.AccessDeniedError, match="kms:Decrypt"):
        alice.decrypt(ciphertext_blob=alice.encrypt(key_id=key, plaintext=b"x").ciphertext_blob)
    kms.iam.delete_user_policy(user_name="alice", policy_name="enc")
    with pytest.raises(errors.AccessDeniedError):
        alice.encrypt(key_id=key, plaintext=b"x")


def test_managed_policies_attach_and_detach(kms: LocalKms, key: str) -> None:
    iam = kms.iam
    iam.create_user(user_name="alice")
    managed = iam.create_policy(policy_name="KmsUse", policy_document=policy(allow(["kms:Encrypt", "kms:Decrypt"])))
    assert managed.arn == f"arn:aws:iam::{ACCOUNT}:policy/KmsUse"
    assert iam.get_policy(policy_arn=managed.arn) == managed
    with pytest.raises(errors.EntityAlreadyExistsError):
        iam.create_policy(policy_name="KmsUse", policy_document=managed.document)
    iam.attach_user_policy(user_name="alice", policy_arn=managed.arn)
    assert iam.list_attached_user_policies(user_name="alice") == [managed.arn]
    kms.client(ALICE).encrypt(key_id=key, plaintext=b"x")
    with pytest.raises(errors.DeleteConflictError):
        iam.delete_policy(policy_arn=managed.arn)
    with pytest.raises(errors.DeleteConflictError):
        iam.delete_user(user_name="alice")
    iam.detach_user_policy(user_name="alice", policy_arn=managed.arn)
    with pytest.raises(errors.AccessDeniedError, match="no identity policy allows it"):
        kms.client(ALICE).encrypt(key_id=key, plaintext=b"x")
    iam.delete_policy(policy_arn=managed.arn)
    with pytest.raises(errors.NoSuchEntityError):
        iam.get_policy(policy_arn=managed.arn)
    iam.delete_user(user_name="alice")
    with pytest.raises(errors.NoSuchEntityError):
        iam.get_user(user_name="alice")


def test_an_identity_deny_wins_over_the_key_policy(kms: LocalKms, key: str) -> None:
    kms.iam.create_user(user_name="alice")
    document = policy(allow("kms:*"), {"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"})
    kms.iam.put_user_policy(user_name="alice", policy_name="p", policy_document=document)
    alice = kms.client(ALICE)
    blob = alice.encrypt(key_id=key, plaintext=b"x").ciphertext_blob
    with pytest.raises(errors.AccessDeniedError, match="explicit deny in statement 'NoDecrypt' of inline policy 'p'"):
        alice.decrypt(ciphertext_blob=blob)


def test_roles_are_assumed_by_their_trust_policy_and_sessions_have_the_role_policies(kms: LocalKms, key: str) -> None:
    deployer = f"arn:aws:iam::{OTHER}:user/deployer"
    role = kms.iam.create_role(role_name="builder", assume_role_policy_document=trust(deployer))
    kms.iam.put_role_policy(role_name="builder", policy_name="use", policy_document=policy(allow("kms:Encrypt", key)))
    # Cross-account: the trust policy names the deployer, and the deployer's own policies must allow it.
    other = kms.iam.for_account(OTHER)
    other.create_user(user_name="deployer")
    with pytest.raises(errors.AccessDeniedError, match="sts:AssumeRole") as refused:
        kms.iam.assume_role(caller=deployer, role_arn=role.arn, role_session_name="ci")
    assert refused.value.code == "AccessDenied"
    other.put_user_policy(
        user_name="deployer", policy_name="a", policy_document=policy(allow("sts:AssumeRole", role.arn))
    )
    session = kms.iam.assume_role(caller=deployer, role_arn=role.arn, role_session_name="ci")
    assert session == f"arn:aws:sts::{ACCOUNT}:assumed-role/builder/ci"
    kms.client(session).encrypt(key_id=key, plaintext=b"x")
    with pytest.raises(errors.AccessDeniedError):
        kms.client(session).describe_key(key_id=key)
    with pytest.raises(errors.AccessDeniedError):
        kms.iam.assume_role(caller=f"arn:aws:iam::{OTHER}:user/stranger", role_arn=role.arn, role_session_name="xx")


def test_strict_iam_gives_unregistered_principals_no_permissions(clock: ManualClock) -> None:
    strict = LocalKms(account=ACCOUNT, region=REGION, clock=clock, strict_iam=True)
    key = strict.client(ROOT).create_key().arn
    with pytest.raises(errors.AccessDeniedError, match="no identity policy allows it") as denied:
        strict.client(ALICE).encrypt(key_id=key, plaintext=b"x")
    # The message names the likely mistake: a caller nobody created.
    assert f"({ALICE} is not a user or role of the IAM store" in str(denied.value)
    strict.iam.create_user(user_name="alice")
    with pytest.raises(errors.AccessDeniedError) as still:
        strict.client(ALICE).encrypt(key_id=key, plaintext=b"x")
    assert "is not a user or role" not in str(still.value)
    # Lenient (the default): an ARN nobody registered acts as an administrator of its account.
    lenient = LocalKms(account=ACCOUNT, region=REGION, clock=clock)
    key = lenient.client(ROOT).create_key().arn
    lenient.client(ALICE).encrypt(key_id=key, plaintext=b"x")
    decision = lenient.simulate(ALICE, "kms:Encrypt", key)
    assert decision.allowed
    assert "implicit administrator policy" in decision.explanation


def test_as_caller_checks_each_iam_action_against_the_callers_identity_policies(kms: LocalKms) -> None:
    other = "444455556666"
    # An account id stands for its root, which needs no policy in its own account.
    iam_b = kms.iam.as_caller(other)
    assert iam_b.account == other and iam_b.create_user(user_name="ops").arn == f"arn:aws:iam::{other}:user/ops"
    ops = kms.iam.as_caller(f"arn:aws:iam::{other}:user/ops")
    with pytest.raises(
        errors.AccessDeniedError, match=r"iam:ListUsers on resource: arn:aws:iam::444455556666:user/\*"
    ) as refused:
        ops.list_users()
    # IAM's own code, not KMS's: a client matching on it sees what the real service sends.
    assert refused.value.code == "AccessDenied" and isinstance(refused.value, errors.IamAccessDeniedError)
    iam_b.put_user_policy(user_name="ops", policy_name="read", policy_document=policy(allow(["iam:List*", "iam:Get*"])))
    assert [u.user_name for u in ops.list_users()] == ["ops"]
    assert ops.get_user(user_name="ops").to_api()["UserId"].startswith("AIDA")
    with pytest.raises(errors.AccessDeniedError, match="iam:PutUserPolicy"):
        ops.put_user_policy(user_name="ops", policy_name="all", policy_document=policy(allow("*")))
    # A role session has its role's policies; a service principal has no IAM account.
    iam_b.create_role(role_name="admin", assume_role_policy_document=trust(f"arn:aws:iam::{other}:root"))
    iam_b.put_role_policy(role_name="admin", policy_name="iam", policy_document=policy(allow("iam:*")))
    assert [r.role_name for r in iam_b.list_roles()] == ["admin"] and iam_b.list_roles(path_prefix="/x/") == []
    assert iam_b.get_role(role_name="admin").to_api()["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == (
        "sts:AssumeRole"
    )
    assert iam_b.list_policies(scope="AWS") == [] and iam_b.list_policies(only_attached=True) == []
    session = kms.iam.assume_role(
        caller=f"arn:aws:iam::{other}:root", role_arn=f"arn:aws:iam::{other}:role/admin", role_session_name="s1"
    )
    kms.iam.as_caller(session).delete_user_policy(user_name="ops", policy_name="read")
    assert iam_b.list_user_policies(user_name="ops") == []
    with pytest.raises(errors.ValidationError, match="has no AWS account"):
        kms.iam.as_caller("ecr.amazonaws.com")
    # A call on an entity is checked against its ARN with its path.
    iam_b.create_user(user_name="dev", path="/team/")
    team = policy(allow("iam:PutUserPolicy", f"arn:aws:iam::{other}:user/team/*"))
    iam_b.put_user_policy(user_name="ops", policy_name="team", policy_document=team)
    ops.put_user_policy(user_name="dev", policy_name="p", policy_document=policy(allow("ecr:ListImages")))
    with pytest.raises(errors.AccessDeniedError, match=f"on resource: arn:aws:iam::{other}:user/ops"):
        ops.put_user_policy(user_name="ops", policy_name="p", policy_document=policy(allow("ecr:ListImages")))
