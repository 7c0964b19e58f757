"""ECR's own authorization: ``ecr:`` actions, repository policies, open mode, and the article's stricter model.

ECR User Guide, "Private repository policies": within one account an allow in the
identity policy or the repository policy suffices, across accounts both are
needed, an explicit deny wins. P6 (the article's pushing principal) is used as
printed, its key ARN replaced by the test's key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from ecrcrypt import MemoryBlobStore, errors
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.permissions import EcrAuthorization
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.types import LayerPush, build_manifest
from ecrcrypt.kms.local.service import LocalKms, ManualClock
from tests.authz import documents

ACCOUNT = "123456789012"  # P6's account and Region
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev"
PARTNER = "arn:aws:iam::444455556666:role/partner"
REPO_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/my-app"
P6_KEY = "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012"
LAYER = b"layer bytes " * 50
MANIFEST = build_manifest([LayerPush(digest=Digest.of(LAYER), size=len(LAYER), stored_size=0, already_existed=False)])


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def local(clock: ManualClock) -> LocalKms:
    kms = LocalKms(account=ACCOUNT, region=REGION, clock=clock, strict_iam=True)
    kms.iam.create_user(user_name="dev")
    kms.iam.for_account("444455556666").create_role(
        role_name="partner",
        assume_role_policy_document=policy(
            {"Effect": "Allow", "Principal": {"AWS": "444455556666"}, "Action": "sts:AssumeRole"}
        ),
    )
    return kms


def registry_for(local: LocalKms, *, caller_needs_kms: bool = False) -> Registry:
    return Registry(
        kms=local.client,
        store=MemoryBlobStore(),
        account=ACCOUNT,
        region=REGION,
        audit=local.audit,
        authorization=EcrAuthorization(identities=local, caller_needs_kms=caller_needs_kms),
    )


@pytest.fixture
def registry(local: LocalKms) -> Registry:
    return registry_for(local)


def push(registry: Registry, caller: str) -> None:
    repo = registry.as_caller(caller).repository("my-app")
    repo.push_layer(LAYER, digest=Digest.of(LAYER))


def pull(registry: Registry, caller: str) -> bytes:
    return registry.as_caller(caller).repository("my-app").read_layer(Digest.of(LAYER))


def test_repository_policy_round_trip_and_errors(registry: Registry) -> None:
    registry.create_repository("my-app")
    with pytest.raises(errors.RepositoryPolicyNotFoundError) as none:
        registry.get_repository_policy("my-app")
    assert none.value.code == "RepositoryPolicyNotFoundException"
    text = policy({"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": DEV}, "Action": "ecr:BatchGetImage"})
    assert registry.set_repository_policy("my-app", text).policy_text == text
    assert registry.get_repository_policy("my-app").policy_text == text
    with pytest.raises(errors.InvalidParameterError, match="Invalid repository policy provided"):
        registry.set_repository_policy("my-app", '{"Version": "2012-10-17", "Statement": {"Effect": "Allow"}}')
    assert registry.delete_repository_policy("my-app").policy_text == text
    with pytest.raises(errors.RepositoryPolicyNotFoundError):
        registry.delete_repository_policy("my-app")
    with pytest.raises(errors.RepositoryNotFoundError):
        registry.set_repository_policy("nope", text)


def test_a_policy_that_locks_its_writer_out_needs_force(registry: Registry) -> None:
    registry.create_repository("my-app")
    deny_all = policy({"Effect": "Deny", "Principal": {"AWS": ROOT}, "Action": "ecr:*"})
    with pytest.raises(errors.InvalidParameterError, match="prevent you from setting another policy"):
        registry.set_repository_policy("my-app", deny_all)
    registry.set_repository_policy("my-app", deny_all, force=True)
    with pytest.raises(errors.AccessDeniedError, match="explicit deny in statement #1 of repository policy"):
        registry.get_repository_policy("my-app")


def test_within_one_account_the_repository_policy_alone_suffices(local: LocalKms, registry: Registry) -> None:
    registry.create_repository("my-app")
    push(registry, ROOT)
    with pytest.raises(errors.AccessDeniedError, match="ecr:GetDownloadUrlForLayer") as denied:
        pull(registry, DEV)
    assert "no identity policy allows it" in str(denied.value)
    pulls = {"Effect": "Allow", "Principal": {"AWS": DEV}, "Action": ["ecr:GetDownloadUrlForLayer"]}
    registry.set_repository_policy("my-app", policy(pulls))
    assert pull(registry, DEV) == LAYER
    with pytest.raises(errors.AccessDeniedError, match="ecr:InitiateLayerUpload"):
        push(registry, DEV)


def test_p6_ecr_statement_alone_lets_a_principal_push_and_pull(local: LocalKms, registry: Registry) -> None:
    registry.create_repository("my-app")
    local.iam.put_user_policy(user_name="dev", policy_name="p6", policy_document=documents.P6)
    push(registry, DEV)
    assert pull(registry, DEV) == LAYER
    dev = registry.as_caller(DEV).repository("my-app")
    image = dev.put_image(MANIFEST, tag="v1")
    assert dev.get_image(tag="v1").digest == image.digest


@pytest.mark.parametrize(
    "action",
    [
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:GetDownloadUrlForLayer",
        "ecr:PutImage",
        "ecr:BatchGetImage",
    ],
)
def test_p6_without_one_ecr_action_fails_that_operation_naming_it(
    local: LocalKms, registry: Registry, action: str
) -> None:
    registry.create_repository("my-app")
    root_repo = registry.repository("my-app")
    root_repo.push_layer(LAYER, digest=Digest.of(LAYER))
    root_repo.put_image(MANIFEST, tag="v0")
    local.iam.put_user_policy(
        user_name="dev", policy_name="p6", policy_document=documents.without_action(documents.P6, action)
    )
    dev = registry.as_caller(DEV).repository("my-app")
    operations: dict[str, Callable[[], object]] = {
        "push": lambda: dev.push_layer(b"other", digest=Digest.of(b"other")),
        "ecr:GetDownloadUrlForLayer": lambda: dev.read_layer(Digest.of(LAYER)),
        "ecr:PutImage": lambda: dev.put_image(MANIFEST, tag="v1"),
        "ecr:BatchGetImage": lambda: dev.get_image(tag="v0"),
    }
    failing = "push" if action.endswith(("LayerUpload", "UploadLayerPart")) else action
    for name, call in operations.items():
        if name == failing:
            with pytest.raises(errors.AccessDeniedError, match=f"perform: {action} "):
                call()
        else:
            call()


def test_an_explicit_deny_in_the_repository_policy_wins(local: LocalKms, registry: Registry) -> None:
    registry.create_repository("my-app")
    local.iam.put_user_policy(user_name="dev", policy_name="p6", policy_document=documents.P6)
    deny = {"Sid": "NoPush", "Effect": "Deny", "Principal": {"AWS": DEV}, "Action": "ecr:PutImage"}
    registry.set_repository_policy("my-app", policy(deny))
    push(registry, DEV)
    with pytest.raises(errors.AccessDeniedError, match="explicit deny in statement 'NoPush' of repository policy"):
        registry.as_caller(DEV).repository("my-app").put_image(MANIFEST)


def test_across_accounts_both_halves_are_needed_and_the_message_says_which(local: LocalKms, registry: Registry) -> None:
    registry.create_repository("my-app")
    push(registry, ROOT)
    partner_iam = local.iam.for_account("444455556666")
    pulls = {"Effect": "Allow", "Action": "ecr:GetDownloadUrlForLayer"}
    with pytest.raises(errors.AccessDeniedError, match="cross-account: neither"):
        pull(registry, PARTNER)
    registry.set_repository_policy("my-app", policy({**pulls, "Principal": {"AWS": PARTNER}}))
    with pytest.raises(
        errors.AccessDeniedError, match=r"cross-account: the repository policy allows it .* but the caller"
    ):
        pull(registry, PARTNER)
    partner_iam.put_role_policy(
        role_name="partner", policy_name="pull", policy_document=policy({**pulls, "Resource": REPO_ARN})
    )
    assert pull(registry, PARTNER) == LAYER
    registry.delete_repository_policy("my-app")
    with pytest.raises(errors.AccessDeniedError, match="cross-account: the caller's IAM policy allows it"):
        pull(registry, PARTNER)


def test_creating_and_deleting_repositories_are_ecr_actions(local: LocalKms, registry: Registry) -> None:
    dev = registry.as_caller(DEV)
    with pytest.raises(errors.AccessDeniedError, match="ecr:CreateRepository"):
        dev.create_repository("my-app")
    local.iam.put_user_policy(
        user_name="dev",
        policy_name="create",
        policy_document=policy({"Effect": "Allow", "Action": "ecr:CreateRepository", "Resource": "*"}),
    )
    dev.create_repository("my-app")
    with pytest.raises(errors.AccessDeniedError, match="ecr:DescribeRepositories"):
        dev.describe_repositories()
    with pytest.raises(errors.AccessDeniedError, match="ecr:DescribeRepositories"):
        dev.describe_repositories_page()
    with pytest.raises(errors.AccessDeniedError, match="ecr:DeleteRepository"):
        dev.delete_repository("my-app")
    assert [r.repository_name for r in registry.describe_repositories()] == ["my-app"]


def test_open_mode_skips_ecr_evaluation(tmp_path: Path) -> None:
    with Registry.create(tmp_path) as registry:
        registry.create_repository("my-app")
        registry.set_repository_policy(
            "my-app", policy({"Effect": "Deny", "Principal": {"AWS": DEV}, "Action": "ecr:*"})
        )
        with pytest.raises(errors.AccessDeniedError, match="explicit deny"):
            registry.as_caller(DEV).describe_repositories()
    with Registry.open(tmp_path, open_mode=True) as registry:
        assert [r.repository_name for r in registry.as_caller(DEV).describe_repositories()] == ["my-app"]


# --------------------------------------------------------------------------- the article's stricter model (P5, P6)


def p5_key(local: LocalKms) -> str:
    body = json.loads(documents.P2.replace("111122223333", ACCOUNT))
    body["Statement"].append(json.loads(documents.P5_STATEMENT))
    return local.client(ROOT).create_key(policy=json.dumps(body)).arn


def test_by_default_a_pusher_needs_no_kms_permission(local: LocalKms) -> None:
    registry = registry_for(local)
    key = p5_key(local)
    registry.create_repository(
        "my-app", encryption_configuration=EncryptionConfiguration(encryption_type="KMS", kms_key=key)
    )
    p6_ecr_only = documents.without_action(
        documents.without_action(documents.without_action(documents.P6, "kms:Decrypt"), "kms:GenerateDataKey"),
        "kms:DescribeKey",
    )
    local.iam.put_user_policy(user_name="dev", policy_name="p6", policy_document=p6_ecr_only)
    push(registry, DEV)
    assert pull(registry, DEV) == LAYER


@pytest.mark.parametrize("missing", [None, "kms:GenerateDataKey", "kms:Decrypt"])
def test_the_stricter_model_needs_the_callers_kms_permissions(local: LocalKms, missing: str | None) -> None:
    registry = registry_for(local, caller_needs_kms=True)
    key = p5_key(local)
    config = EncryptionConfiguration(encryption_type="KMS", kms_key=key)
    registry.create_repository("my-app", encryption_configuration=config)
    document = documents.P6.replace(P6_KEY, key)
    if missing is not None:
        document = documents.without_action(document, missing)
    local.iam.put_user_policy(user_name="dev", policy_name="p6", policy_document=document)
    if missing == "kms:GenerateDataKey":
        with pytest.raises(errors.AccessDeniedError, match="perform: kms:GenerateDataKey "):
            push(registry, DEV)
        return
    push(registry, DEV)
    if missing == "kms:Decrypt":
        with pytest.raises(errors.AccessDeniedError, match="perform: kms:Decrypt "):
            pull(registry, DEV)
        return
    assert pull(registry, DEV) == LAYER


def test_an_ecr_denial_is_audited_as_the_call_with_its_error(local: LocalKms, registry: Registry) -> None:
    registry.create_repository("my-app")
    push(registry, ROOT)
    with pytest.raises(errors.AccessDeniedError) as denied:
        pull(registry, DEV)
    events = local.audit.query(event_source="ecr.amazonaws.com", event_name="GetDownloadUrlForLayer", errors=True)
    record = events[-1].to_cloudtrail()
    assert record["userIdentity"]["arn"] == DEV
    assert record["errorCode"] == "AccessDeniedException"
    assert record["errorMessage"] == str(denied.value)


def test_repository_policy_calls_are_audited(local: LocalKms, registry: Registry) -> None:
    registry.create_repository("my-app")
    registry.set_repository_policy("my-app", policy({"Effect": "Allow", "Principal": {"AWS": DEV}, "Action": "ecr:*"}))
    with pytest.raises(errors.AccessDeniedError):
        registry.as_caller(PARTNER).get_repository_policy("my-app")
    names = [(e.event_name, e.error_code) for e in local.audit.query(event_source="ecr.amazonaws.com")]
    assert ("SetRepositoryPolicy", None) in names
    assert ("GetRepositoryPolicy", "AccessDeniedException") in names
