"""The documents' permission rules, end to end: Registry + LocalKms + IAM, with P1-P4 and P7 verbatim.

Each policy is used as the documents print it; only the key ARN in a ``Resource``
is replaced by the ARN of the key the test created (the documents' example key ids
are not real key ids), and the accounts line up as the documents have them. The
IAM store is strict: a user has exactly the policies the test gives it.

ECR user guide, "Encryption at rest" (required IAM permissions), and KMS
Developer Guide, "Allowing users in other accounts to use a KMS key".
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ecrcrypt import MemoryBlobStore, errors
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.kms import GrantConstraints, GrantOperation
from ecrcrypt.kms.local.service import LocalKms, ManualClock
from tests.authz import documents

ACCOUNT = "111122223333"
REGION = "us-west-2"  # P1 and P3 name a key in us-west-2
DOCUMENT_KEY = "arn:aws:kms:us-west-2:111122223333:key/b8d9ae76-080c-4043-92EXAMPLE"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev"
VIA_ECR = f"ecr.{REGION}.amazonaws.com"


def with_key(document: str, key_arn: str) -> str:
    return document.replace(DOCUMENT_KEY, key_arn)


def kms_config(key: str | None = None) -> EncryptionConfiguration:
    return EncryptionConfiguration(encryption_type="KMS", kms_key=key)


@pytest.fixture
def local(clock: ManualClock) -> LocalKms:
    kms = LocalKms(account=ACCOUNT, region=REGION, clock=clock, strict_iam=True)
    kms.iam.create_user(user_name="dev")
    return kms


@pytest.fixture
def registry(local: LocalKms) -> Registry:
    return Registry(
        kms=local.client, store=MemoryBlobStore(), account=ACCOUNT, region=REGION, audit=local.audit, caller=DEV
    )


def customer_key(local: LocalKms, policy: str | None = None) -> str:
    return local.client(ROOT).create_key(description="repository key", policy=policy).arn


def only_the_missing_action_fails(calls: dict[str, Callable[[], object]], action: str) -> None:
    """Each call succeeds but the one whose action was removed, which fails naming it."""
    for name, call in calls.items():
        if name == action:
            with pytest.raises(errors.AccessDeniedError, match=f"perform: {action} "):
                call()
        else:
            call()


def give(local: LocalKms, name: str, document: str) -> None:
    local.iam.put_user_policy(user_name="dev", policy_name=name, policy_document=document)


def grants_on(local: LocalKms, key: str) -> int:
    return len(local.client(ROOT).list_grants(key_id=key).grants)


# --------------------------------------------------------------------------- customer managed key (P2 + P3)


def test_p2_key_policy_and_p3_let_a_user_create_use_and_delete_a_kms_repository(
    local: LocalKms, registry: Registry
) -> None:
    key = customer_key(local, documents.P2.replace("111122223333", ACCOUNT))
    give(local, "ecr-kms", with_key(documents.P3, key))
    repo = registry.create_repository("app", encryption_configuration=kms_config(key))
    assert str(repo.encryption_configuration.kms_key) == key
    assert grants_on(local, key) == 2
    data = b"layer" * 100
    registry.repository("app").push_layer(data, digest=Digest.of(data))
    assert registry.repository("app").read_layer(Digest.of(data)) == data
    registry.delete_repository("app", force=True)
    assert grants_on(local, key) == 0
    # ECR made the calls on the caller's behalf: CloudTrail names ECR in invokedBy.
    event = local.audit.query(event_name="CreateGrant", principal=DEV)[-1]
    assert event.to_cloudtrail()["userIdentity"]["invokedBy"] == VIA_ECR


@pytest.mark.parametrize("action", ["kms:CreateGrant", "kms:DescribeKey"])
def test_creating_without_one_p3_action_fails_naming_it_and_leaves_nothing(
    local: LocalKms, registry: Registry, action: str
) -> None:
    key = customer_key(local, documents.P2)
    give(local, "ecr-kms", with_key(documents.without_action(documents.P3, action), key))
    with pytest.raises(errors.EcrKmsError) as failed:
        registry.create_repository("app", encryption_configuration=kms_config(key))
    message = str(failed.value)
    assert f"is not authorized to perform: {action}" in message
    assert "no identity policy allows it" in message
    assert registry.describe_repositories() == []
    assert grants_on(local, key) == 0
    denial = local.audit.query(event_name=action.split(":")[1], errors=True)[-1].to_cloudtrail()
    assert denial["errorCode"] == "AccessDeniedException"
    assert action in denial["errorMessage"]


def test_p3_alone_suffices_and_leftover_grants_are_still_retired(local: LocalKms, registry: Registry) -> None:
    # The crash-consistent creation retires grants an earlier repository of the same name left
    # (ecr.lifecycle). ECR finds them as itself (ListRetirableGrants: it is their retiring principal),
    # so the creator needs only P3's actions, as the user guide says -- no kms:ListGrants.
    key = customer_key(local, documents.P2)
    give(local, "ecr-kms", with_key(documents.P3, key))
    ecr = f"ecr.{REGION}.amazonaws.com"
    arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"
    orphan = (
        local.client(ROOT)
        .create_grant(
            key_id=key,
            grantee_principal=ecr,
            retiring_principal=ecr,
            operations=[GrantOperation.DECRYPT],
            constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": arn}),
        )
        .grant_id
    )
    registry.create_repository("app", encryption_configuration=kms_config(key))
    live = {g.grant_id for g in local.client(ROOT).list_grants(key_id=key).grants}
    assert orphan not in live
    assert len(live) == 2
    assert not local.audit.query(event_name="ListGrants", errors=True)


def test_deleting_without_retire_grant_deletes_the_repository_with_ecrs_message(
    local: LocalKms, registry: Registry
) -> None:
    key = customer_key(local, documents.P2)
    give(local, "ecr-kms", with_key(documents.without_action(documents.P3, "kms:RetireGrant"), key))
    registry.create_repository("app", encryption_configuration=kms_config(key))
    with pytest.raises(errors.GrantsNotRetiredError) as failed:
        registry.delete_repository("app")
    assert str(failed.value) == (
        f"The repository [app] has been deleted successfully but the grants created by the kmsKey [{key}] "
        "failed to be retired"
    )
    assert "kms:RetireGrant" in str(failed.value.__cause__)
    assert "kms:RetireGrant is an IAM permission" in str(failed.value.__cause__)
    assert registry.describe_repositories() == []
    assert grants_on(local, key) == 2


def test_describe_and_create_grant_may_come_from_the_key_policy_retire_only_from_iam(
    local: LocalKms, registry: Registry
) -> None:
    body = json.loads(documents.P2)
    body["Statement"].append(
        {
            "Sid": "dev uses the key for ECR",
            "Effect": "Allow",
            "Principal": {"AWS": DEV},
            "Action": ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"],
            "Resource": "*",
        }
    )
    key = customer_key(local, json.dumps(body))
    registry.create_repository("app", encryption_configuration=kms_config(key))
    # kms:RetireGrant in a key policy has no effect: the deleter needs it in IAM (P1's form).
    with pytest.raises(errors.GrantsNotRetiredError):
        registry.delete_repository("app")
    registry.create_repository("web", encryption_configuration=kms_config(key))
    give(local, "retire", with_key(documents.P1, key))
    registry.delete_repository("web")
    assert grants_on(local, key) == 2  # only app's, left by the first deletion


def test_kms_via_service_confines_a_key_to_ecr(local: LocalKms, registry: Registry) -> None:
    body = json.loads(documents.P2)
    body["Statement"].append(
        {
            "Sid": "Only through ECR",
            "Effect": "Allow",
            "Principal": {"AWS": DEV},
            "Action": ["kms:CreateGrant", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": VIA_ECR}},
        }
    )
    key = customer_key(local, json.dumps(body))
    give(local, "retire", with_key(documents.P1, key))
    with pytest.raises(errors.AccessDeniedError, match="kms:DescribeKey"):
        local.client(DEV).describe_key(key_id=key)
    registry.create_repository("app", encryption_configuration=kms_config(key))
    registry.delete_repository("app")


def test_grant_is_for_aws_resource_lets_only_ecr_create_grants(local: LocalKms, registry: Registry) -> None:
    key = customer_key(local, documents.P2)
    give(local, "retire", with_key(documents.P1, key))
    grants = {
        "Effect": "Allow",
        "Action": "kms:CreateGrant",
        "Resource": key,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }
    describe = {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": key}
    give(local, "grants-for-aws", json.dumps({"Version": "2012-10-17", "Statement": [grants, describe]}))
    with pytest.raises(errors.AccessDeniedError, match="kms:CreateGrant"):
        local.client(DEV).create_grant(key_id=key, grantee_principal=ROOT, operations=["Decrypt"])
    registry.create_repository("app", encryption_configuration=kms_config(key))
    assert grants_on(local, key) == 2


def test_p2_without_kms_star_leaves_the_account_without_the_key(local: LocalKms) -> None:
    crippled = documents.without_action(documents.P2, "kms:*", principal=True)
    root = local.client(ROOT)
    with pytest.raises(errors.MalformedPolicyDocumentError, match="will not allow you to update the key policy"):
        root.create_key(policy=crippled)
    key = root.create_key(policy=crippled, bypass_policy_lockout_safety_check=True).arn
    with pytest.raises(errors.AccessDeniedError, match=r"perform: kms:DescribeKey .*no statement in the key policy"):
        root.describe_key(key_id=key)


@pytest.mark.parametrize("action", [None, "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"])
def test_p5_lets_the_ecr_service_principal_use_the_key_without_a_grant(local: LocalKms, action: str | None) -> None:
    body = json.loads(documents.P2)
    statement = json.loads(documents.P5_STATEMENT)
    if action is not None:
        statement["Action"] = [a for a in statement["Action"] if a != action]
    body["Statement"].append(statement)
    key = customer_key(local, json.dumps(body))
    ecr = local.client("ecr.amazonaws.com")
    context = {"aws:ecr:arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"}
    calls: dict[str, Callable[[], object]] = {
        "kms:DescribeKey": lambda: ecr.describe_key(key_id=key),
        "kms:GenerateDataKey": lambda: ecr.generate_data_key(
            key_id=key, encryption_context=context, key_spec="AES_256"
        ),
        "kms:Decrypt": lambda: ecr.decrypt(
            ciphertext_blob=local.client(ROOT)
            .encrypt(key_id=key, plaintext=b"k", encryption_context=context)
            .ciphertext_blob,
            encryption_context=context,
        ),
    }
    if action is None:
        for call in calls.values():
            call()
        with pytest.raises(errors.AccessDeniedError, match="kms:Encrypt"):
            ecr.encrypt(key_id=key, plaintext=b"x")
    else:
        only_the_missing_action_fails(calls, action)


# --------------------------------------------------------------------------- AWS managed key (P1)


def test_with_the_aws_managed_key_anyone_who_may_create_a_repository_may_enable_kms(
    local: LocalKms, registry: Registry
) -> None:
    repo = registry.create_repository("app", encryption_configuration=kms_config())
    assert repo.encryption_configuration.kms_key is not None
    managed = str(repo.encryption_configuration.kms_key)
    # The deleter still needs kms:RetireGrant: without it, ECR's failed-retirement message, repository gone.
    with pytest.raises(errors.GrantsNotRetiredError) as failed:
        registry.delete_repository("app")
    assert "kms:RetireGrant" in str(failed.value.__cause__)
    assert registry.describe_repositories() == []
    registry.create_repository("web", encryption_configuration=kms_config())
    give(local, "ecr-kms-permissions", with_key(documents.P1, managed))
    registry.delete_repository("web")
    assert grants_on(local, managed) == 2  # app's two grants, never retired


# --------------------------------------------------------------------------- console listing (P4)


def test_p4_lets_a_console_user_list_keys_and_aliases_and_describe(local: LocalKms) -> None:
    key = customer_key(local)
    local.client(ROOT).create_alias(alias_name="alias/app", target_key_id=key)
    give(local, "console", documents.P4)
    dev = local.client(DEV)
    assert [k.key_arn for k in dev.list_keys().keys] == [key]
    assert [a.alias_name for a in dev.list_aliases().aliases] == ["alias/app"]
    assert dev.describe_key(key_id="alias/app").arn == key
    with pytest.raises(errors.AccessDeniedError, match="kms:CreateKey"):
        dev.create_key()


@pytest.mark.parametrize("action", ["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey"])
def test_p4_without_one_action_fails_that_operation_naming_it(local: LocalKms, action: str) -> None:
    key = customer_key(local)
    give(local, "console", documents.without_action(documents.P4, action))
    dev = local.client(DEV)
    calls: dict[str, Callable[[], object]] = {
        "kms:ListKeys": dev.list_keys,
        "kms:ListAliases": dev.list_aliases,
        "kms:DescribeKey": lambda: dev.describe_key(key_id=key),
    }
    only_the_missing_action_fails(calls, action)


# --------------------------------------------------------------------------- cross-account (P7)

KEY_ACCOUNT = "999999999999"
CICD = "arn:aws:iam::111111111111:role/cicd-role"
P7_DOCUMENT_KEY = "arn:aws:kms:us-east-1:999999999999:key/12345678-1234-1234-1234-123456789012"
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:999999999999:repository/my-app"}


@pytest.fixture
def key_account(clock: ManualClock) -> LocalKms:
    kms = LocalKms(account=KEY_ACCOUNT, region="us-east-1", clock=clock, strict_iam=True)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "sts:AssumeRole"},
        }
    )
    kms.iam.for_account("111111111111").create_role(role_name="cicd-role", assume_role_policy_document=trust)
    return kms


def p7_key(kms: LocalKms, *, key_half: bool) -> str:
    body = json.loads(documents.P2.replace("111122223333", KEY_ACCOUNT))
    if key_half:
        body["Statement"].append(json.loads(documents.P7_KEY_STATEMENT))
    return kms.client(f"arn:aws:iam::{KEY_ACCOUNT}:root").create_key(policy=json.dumps(body)).arn


def p7_identity(kms: LocalKms, key: str) -> None:
    kms.iam.for_account("111111111111").put_role_policy(
        role_name="cicd-role",
        policy_name="use-key",
        policy_document=documents.P7_IDENTITY.replace(P7_DOCUMENT_KEY, key),
    )


def test_p7_both_halves_let_the_other_account_use_the_key(key_account: LocalKms) -> None:
    key = p7_key(key_account, key_half=True)
    p7_identity(key_account, key)
    cicd = key_account.client(CICD)
    assert cicd.describe_key(key_id=key).arn == key
    dk = cicd.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    assert cicd.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CTX).plaintext == dk.plaintext
    with pytest.raises(errors.AccessDeniedError, match="kms:Encrypt"):
        cicd.encrypt(key_id=key, plaintext=b"x")


def test_p7_without_the_identity_half_fails_saying_so(key_account: LocalKms) -> None:
    key = p7_key(key_account, key_half=True)
    with pytest.raises(errors.AccessDeniedError) as denied:
        key_account.client(CICD).generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    assert "cross-account: the key policy allows it" in str(denied.value)
    assert "but the caller's IAM policy does not" in str(denied.value)


def test_p7_without_the_key_half_fails_saying_so(key_account: LocalKms) -> None:
    key = p7_key(key_account, key_half=False)
    p7_identity(key_account, key)
    with pytest.raises(errors.AccessDeniedError) as denied:
        key_account.client(CICD).generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256")
    message = str(denied.value)
    assert "cross-account: the caller's IAM policy allows it" in message
    assert f"the key policy of account {KEY_ACCOUNT} does not allow {CICD}" in message


@pytest.mark.parametrize("half", ["key", "identity"])
@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"])
def test_p7_without_one_action_on_either_half_fails_that_operation(
    key_account: LocalKms, action: str, half: str
) -> None:
    root = key_account.client(f"arn:aws:iam::{KEY_ACCOUNT}:root")
    body = json.loads(documents.P2.replace("111122223333", KEY_ACCOUNT))
    key_statement = documents.P7_KEY if half == "identity" else documents.without_action(documents.P7_KEY, action)
    added = json.loads(key_statement)["Statement"]
    body["Statement"] += added if isinstance(added, list) else [added]
    key = root.create_key(policy=json.dumps(body)).arn
    identity = documents.P7_IDENTITY if half == "key" else documents.without_action(documents.P7_IDENTITY, action)
    key_account.iam.for_account("111111111111").put_role_policy(
        role_name="cicd-role", policy_name="use-key", policy_document=identity.replace(P7_DOCUMENT_KEY, key)
    )
    cicd = key_account.client(CICD)
    blob = root.encrypt(key_id=key, plaintext=b"x", encryption_context=CTX).ciphertext_blob
    calls: dict[str, Callable[[], object]] = {
        "kms:Decrypt": lambda: cicd.decrypt(ciphertext_blob=blob, encryption_context=CTX),
        "kms:GenerateDataKey": lambda: cicd.generate_data_key(key_id=key, encryption_context=CTX, key_spec="AES_256"),
        "kms:DescribeKey": lambda: cicd.describe_key(key_id=key),
    }
    only_the_missing_action_fails(calls, action)
