"""Key policies in the local KMS: CreateKey(Policy), Get/Put/ListKeyPolicies, ListKeys, and their enforcement.

The rules are KMS's (Developer Guide, "Key policies in AWS KMS", "Default key
policy", "AWS managed keys"; API reference for PutKeyPolicy's lockout safety
check); parameter bounds are botocore's KMS model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from ecrcrypt import errors
from ecrcrypt.authz import aws_managed_key_document, default_key_policy_document
from ecrcrypt.kms import KeyManager
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient, ManualClock

ACCOUNT = "111122223333"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ECR_VIA = f"ecr.{REGION}.amazonaws.com"
CTX = {"aws:ecr:arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"}


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROOT_ALL: dict[str, object] = {
    "Sid": "root",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, region=REGION, clock=clock)


@pytest.fixture
def admin(kms: LocalKms) -> LocalKmsClient:
    return kms.client(ROOT)


def test_a_key_without_a_policy_has_the_default_key_policy(admin: LocalKmsClient) -> None:
    arn = admin.create_key().arn
    assert json.loads(admin.get_key_policy(key_id=arn)) == default_key_policy_document(ACCOUNT)
    assert admin.list_key_policies(key_id=arn).policy_names == ("default",)


def test_a_policy_given_at_creation_is_returned_as_written(admin: LocalKmsClient) -> None:
    text = policy(ROOT_ALL, {"Sid": "alice", "Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:Decrypt"})
    arn = admin.create_key(policy=text).arn
    assert admin.get_key_policy(key_id=arn) == text
    replaced = policy(ROOT_ALL)
    admin.put_key_policy(key_id=arn, policy=replaced)
    assert admin.get_key_policy(key_id=arn) == replaced


def test_a_malformed_policy_is_refused_at_write_time_and_audited(kms: LocalKms, admin: LocalKmsClient) -> None:
    with pytest.raises(errors.MalformedPolicyDocumentError) as refused:
        admin.create_key(policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Perhaps"}]}')
    assert refused.value.code == "MalformedPolicyDocumentException"
    arn = admin.create_key().arn
    with pytest.raises(errors.MalformedPolicyDocumentError):
        admin.put_key_policy(key_id=arn, policy="not json")
    failed = kms.audit.query(event_name="PutKeyPolicy", errors=True)
    assert [e.error_code for e in failed] == ["MalformedPolicyDocumentException"]
    assert json.loads(admin.get_key_policy(key_id=arn)) == default_key_policy_document(ACCOUNT)


def test_policy_size_and_name_bounds(admin: LocalKmsClient) -> None:
    arn = admin.create_key().arn
    padded = policy({**ROOT_ALL, "Sid": "x" * 33_000})
    with pytest.raises(errors.LimitExceededError):
        admin.put_key_policy(key_id=arn, policy=padded)
    with pytest.raises(errors.ValidationError):
        admin.put_key_policy(key_id=arn, policy="")
    with pytest.raises(errors.ValidationError):
        admin.get_key_policy(key_id=arn, policy_name="no-dashes")
    with pytest.raises(errors.NotFoundError):
        admin.get_key_policy(key_id=arn, policy_name="AWS_RAM")


def test_the_lockout_safety_check_refuses_a_policy_its_writer_could_not_change(admin: LocalKmsClient) -> None:
    alice_only = policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*"})
    with pytest.raises(errors.MalformedPolicyDocumentError, match="will not allow you to update the key policy"):
        admin.create_key(policy=alice_only)
    assert admin.list_keys().keys == ()  # the refused CreateKey left nothing behind
    arn = admin.create_key().arn
    with pytest.raises(errors.MalformedPolicyDocumentError, match="will not allow you to update"):
        admin.put_key_policy(key_id=arn, policy=alice_only)
    admin.put_key_policy(key_id=arn, policy=alice_only, bypass_policy_lockout_safety_check=True)
    # Now the root itself is locked out: no statement names it.
    with pytest.raises(errors.AccessDeniedError, match="no statement in the key policy allows it"):
        admin.describe_key(key_id=arn)


def test_a_key_policy_without_the_account_shuts_out_the_account(kms: LocalKms, admin: LocalKmsClient) -> None:
    text = policy(
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:PutKeyPolicy", "Resource": "*"}
    )
    arn = admin.create_key(policy=text).arn
    with pytest.raises(errors.AccessDeniedError) as denied:
        kms.client(ALICE).encrypt(key_id=arn, plaintext=b"x")
    message = str(denied.value)
    assert message.startswith(f"User: {ALICE} is not authorized to perform: kms:Encrypt on resource: {arn} because")
    assert f"the key policy does not enable IAM policies for account {ACCOUNT}" in message
    event = kms.audit.query(event_name="Encrypt", errors=True)[-1]
    record = event.to_cloudtrail()
    assert record["errorCode"] == "AccessDeniedException"
    assert record["errorMessage"] == message


def test_an_explicit_deny_in_the_key_policy_wins_over_its_allow(kms: LocalKms, admin: LocalKmsClient) -> None:
    deny_alice = {"Sid": "no-alice", "Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:Decrypt"}
    arn = admin.create_key(policy=policy(ROOT_ALL, {**deny_alice, "Resource": "*"})).arn
    alice = kms.client(ALICE)
    blob = alice.encrypt(key_id=arn, plaintext=b"x").ciphertext_blob
    with pytest.raises(errors.AccessDeniedError, match="explicit deny in statement 'no-alice' of key policy"):
        alice.decrypt(ciphertext_blob=blob)
    assert kms.client(ROOT).decrypt(ciphertext_blob=blob).plaintext == b"x"


def test_a_policy_write_takes_effect_at_the_next_call_on_the_hot_path(kms: LocalKms, admin: LocalKmsClient) -> None:
    arn = admin.create_key().arn
    alice = kms.client(ALICE)
    for _ in range(3):  # warm the hot path
        alice.generate_data_key(key_id=arn, encryption_context=CTX, key_spec="AES_256")
    deny = {"Sid": "stop", "Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:GenerateDataKey"}
    admin.put_key_policy(key_id=arn, policy=policy(ROOT_ALL, {**deny, "Resource": "*"}))
    with pytest.raises(errors.AccessDeniedError, match="explicit deny in statement 'stop'"):
        alice.generate_data_key(key_id=arn, encryption_context=CTX, key_spec="AES_256")


def test_a_policy_written_by_another_process_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "kms.sqlite3"
    with LocalKms(path, account=ACCOUNT, region=REGION) as one, LocalKms(path, account=ACCOUNT, region=REGION) as two:
        arn = one.client(ROOT).create_key().arn
        two.client(ALICE).generate_data_key(key_id=arn, encryption_context=CTX, key_spec="AES_256")
        deny = {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*"}
        one.client(ROOT).put_key_policy(key_id=arn, policy=policy(ROOT_ALL, deny))
        with pytest.raises(errors.AccessDeniedError, match="explicit deny"):
            two.client(ALICE).generate_data_key(key_id=arn, encryption_context=CTX, key_spec="AES_256")
    with LocalKms(path, account=ACCOUNT, region=REGION) as again:
        assert json.loads(again.client(ROOT).get_key_policy(key_id=arn))["Statement"][1]["Effect"] == "Deny"


def test_the_aws_managed_key_has_its_fixed_policy(kms: LocalKms, admin: LocalKmsClient) -> None:
    meta = admin.via_service(ECR_VIA).describe_key(key_id="alias/aws/ecr")
    assert meta.key_manager is KeyManager.AWS
    assert json.loads(admin.get_key_policy(key_id=meta.arn)) == aws_managed_key_document(ACCOUNT, REGION)
    with pytest.raises(errors.AccessDeniedError, match="kms:PutKeyPolicy"):
        admin.put_key_policy(key_id=meta.arn, policy=policy(ROOT_ALL))
    # Cryptographic use only through the service: kms:ViaService, kms:CallerAccount.
    with pytest.raises(errors.AccessDeniedError, match="kms:Encrypt"):
        kms.client(ALICE).encrypt(key_id=meta.arn, plaintext=b"x")
    assert kms.client(ALICE, via_service=ECR_VIA).encrypt(key_id=meta.arn, plaintext=b"x").key_id == meta.arn
    with pytest.raises(errors.AccessDeniedError):
        kms.client(ALICE, via_service=f"s3.{REGION}.amazonaws.com").encrypt(key_id=meta.arn, plaintext=b"x")


def test_list_keys_pages_and_refuses_a_bad_marker(admin: LocalKmsClient, kms: LocalKms) -> None:
    made = {admin.create_key().key_id for _ in range(5)}
    seen: list[str] = []
    marker = None
    while True:
        page = admin.list_keys(limit=2, marker=marker)
        assert len(page.keys) <= 2
        seen += [k.key_id for k in page.keys]
        assert all(k.key_arn.endswith(f":key/{k.key_id}") for k in page.keys)
        if not page.truncated:
            assert page.next_marker is None
            break
        marker = page.next_marker
    assert sorted(seen) == sorted(made)
    with pytest.raises(errors.InvalidMarkerError) as bad:
        admin.list_keys(marker="not-a-marker")
    assert bad.value.code == "InvalidMarkerException"
    for limit in (0, 1001):
        with pytest.raises(errors.ValidationError):
            admin.list_keys(limit=limit)
    with pytest.raises(errors.AccessDeniedError, match="kms:ListKeys"):
        kms.client("arn:aws:iam::444455556666:root").list_keys()
    with pytest.raises(errors.AccessDeniedError, match="explicit deny"):
        kms.client(ALICE, deny=["kms:List*"]).list_keys()


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("MalformedPolicyDocumentException", errors.MalformedPolicyDocumentError),
        ("InvalidMarkerException", errors.InvalidMarkerError),
        ("RepositoryPolicyNotFoundException", errors.RepositoryPolicyNotFoundError),
        ("NoSuchEntity", errors.NoSuchEntityError),
        ("EntityAlreadyExists", errors.EntityAlreadyExistsError),
        ("DeleteConflict", errors.DeleteConflictError),
    ],
)
def test_the_new_aws_codes_map_to_their_classes(code: str, cls: type[errors.EcrCryptError]) -> None:
    """What botocore raises (Boto3Kms translates by code) becomes the class the local backend raises."""
    translated = errors.error_for_code(code, "message")
    assert type(translated) is cls
    assert translated.code == code
