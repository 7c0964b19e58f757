"""Principals, grants, repository (ECR) evaluation and the explicit-deny message."""

from __future__ import annotations

import pytest

from ecrcrypt.authz import (
    Grant,
    Policy,
    PolicyKind,
    PrincipalKind,
    Reason,
    Request,
    default_key_policy,
    request_context,
    simulate,
)
from ecrcrypt.authz import Principal as P
from ecrcrypt.errors import InvalidArnError, ValidationError

KEY = "arn:aws:kms:us-east-1:111122223333:key/12345678-1234-1234-1234-123456789012"
REPO = "arn:aws:ecr:us-east-1:111122223333:repository/app"


@pytest.mark.parametrize(
    ("text", "kind", "account", "policy_arn"),
    [
        ("arn:aws:iam::111122223333:root", PrincipalKind.ROOT, "111122223333", "arn:aws:iam::111122223333:root"),
        ("arn:aws:iam::111122223333:user/ops/alice", PrincipalKind.USER, "111122223333", None),
        ("arn:aws:iam::111122223333:role/cicd", PrincipalKind.ROLE, "111122223333", None),
        (
            "arn:aws:sts::111122223333:assumed-role/cicd/build-7",
            PrincipalKind.ASSUMED_ROLE,
            "111122223333",
            "arn:aws:iam::111122223333:role/cicd",
        ),
        ("ecr.amazonaws.com", PrincipalKind.SERVICE, None, None),
        ("ecr.us-east-1.amazonaws.com", PrincipalKind.SERVICE, None, None),
    ],
)
def test_principals_parse(text: str, kind: PrincipalKind, account: str | None, policy_arn: str | None) -> None:
    principal = P.parse(text)
    assert (principal.kind, principal.account, principal.arn) == (kind, account, text)
    assert principal.policy_arn == (policy_arn or text)


@pytest.mark.parametrize(
    "text", ["", "alice", "arn:aws:iam::12:root", "arn:aws:iam::111122223333:group/x", "ECR.amazonaws.com"]
)
def test_principals_refused(text: str) -> None:
    with pytest.raises(InvalidArnError):
        P.parse(text)


def test_request_derives_global_keys_from_the_caller_and_they_cannot_be_forged() -> None:
    request = Request(
        principal="arn:aws:sts::111122223333:assumed-role/cicd/build",
        action="kms:Decrypt",
        resource=KEY,
        context={"kms:CallerAccount": "444455556666", "KMS:ViaService": "ecr.us-east-1.amazonaws.com"},
    )
    assert request.context["kms:calleraccount"] == "111122223333"
    assert request.context["aws:principalarn"] == "arn:aws:iam::111122223333:role/cicd"
    assert request.context["aws:principalaccount"] == "111122223333"
    assert request.context["kms:viaservice"] == "ecr.us-east-1.amazonaws.com"
    with pytest.raises(ValidationError):
        Request(principal="ecr.amazonaws.com", action="kms:Decrypt", resource=KEY, context={"k:x": 1.5})


def test_request_context_helper_names_keys_as_policies_do() -> None:
    context = request_context(
        encryption_context={"aws:ecr:arn": REPO}, grant_operations=["Decrypt"], resource_tags={"team": "a"}
    )
    assert context["kms:EncryptionContext:aws:ecr:arn"] == REPO
    assert context["kms:EncryptionContextKeys"] == ["aws:ecr:arn"]
    assert context["ecr:ResourceTag/team"] == "a"


# --------------------------------------------------------------------------- grants

ECR_SERVICE = "ecr.us-east-1.amazonaws.com"
ECR_GRANT = Grant(
    grant_id="g1",
    grantee_principal=ECR_SERVICE,
    operations={"GenerateDataKey", "Decrypt", "DescribeKey"},
    encryption_context_subset={"aws:ecr:arn": REPO},
)


@pytest.mark.parametrize(
    ("action", "context", "allowed"),
    [
        ("kms:GenerateDataKey", {"aws:ecr:arn": REPO, "aws:s3:arn": "arn:aws:s3:::b/k"}, True),
        ("kms:Decrypt", {"AWS:ECR:ARN": REPO}, True),  # constraint keys compare case-insensitively
        ("kms:Decrypt", {"aws:ecr:arn": REPO.upper()}, False),  # values exactly
        ("kms:Decrypt", {}, False),  # a subset constraint needs a context
        ("kms:Decrypt", {"aws:ecr:arn": REPO + "x"}, False),
        ("kms:DescribeKey", {}, True),  # constraints do not bind DescribeKey
        ("kms:Encrypt", {"aws:ecr:arn": REPO}, False),  # not a granted operation
    ],
)
def test_a_grant_allows_its_operations_under_its_constraint(
    action: str, context: dict[str, str], allowed: bool
) -> None:
    decision = simulate(
        ECR_SERVICE,
        action,
        KEY,
        request_context(encryption_context=context),
        resource_policy=default_key_policy("111122223333"),
        grants=[ECR_GRANT],
    )
    assert decision.allowed is allowed
    if allowed:
        assert decision.reason is Reason.ALLOWED_BY_GRANT
        assert decision.grants == (ECR_GRANT,)


def test_encryption_context_equals_is_exact() -> None:
    grant = Grant(grantee_principal=ECR_SERVICE, operations={"Decrypt"}, encryption_context_equals={"a": "1"})
    kp = default_key_policy("111122223333")
    assert simulate(
        ECR_SERVICE,
        "kms:Decrypt",
        KEY,
        request_context(encryption_context={"a": "1"}),
        resource_policy=kp,
        grants=[grant],
    ).allowed
    assert not simulate(
        ECR_SERVICE,
        "kms:Decrypt",
        KEY,
        request_context(encryption_context={"a": "1", "b": "2"}),
        resource_policy=kp,
        grants=[grant],
    ).allowed


def test_a_grant_to_a_role_serves_its_sessions_even_across_accounts() -> None:
    grant = Grant(grantee_principal="arn:aws:iam::444455556666:role/cicd", operations={"Decrypt"})
    decision = simulate(
        "arn:aws:sts::444455556666:assumed-role/cicd/build",
        "kms:Decrypt",
        KEY,
        resource_policy=default_key_policy("111122223333"),
        grants=[grant],
    )
    assert decision.reason is Reason.ALLOWED_BY_GRANT


def test_grant_values_are_validated() -> None:
    with pytest.raises(ValidationError, match="not a KMS grant operation"):
        Grant(grantee_principal=ECR_SERVICE, operations={"Fly"})
    with pytest.raises(ValidationError, match="not both"):
        Grant(
            grantee_principal=ECR_SERVICE,
            operations={"Decrypt"},
            encryption_context_equals={},
            encryption_context_subset={},
        )


def test_an_explicit_deny_beats_a_grant_and_names_its_statement() -> None:
    statement = {"Sid": "NoEcr", "Effect": "Deny", "Principal": {"Service": ECR_SERVICE}, "Action": "kms:*"}
    deny = Policy.parse(
        {"Version": "2012-10-17", "Statement": [{**statement, "Resource": "*"}]}, kind=PolicyKind.KEY, name="key policy"
    )
    decision = simulate(ECR_SERVICE, "kms:DescribeKey", KEY, resource_policy=deny, grants=[ECR_GRANT])
    assert decision.reason is Reason.EXPLICIT_DENY
    assert "explicit deny in statement 'NoEcr' of key policy" in decision.message


# --------------------------------------------------------------------------- ECR


def repo_policy(principal: object, action: str = "ecr:BatchGetImage", effect: str = "Allow") -> Policy:
    return Policy.parse(
        {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "Pull", "Effect": effect, "Principal": principal, "Action": action}],
        },
        kind=PolicyKind.RESOURCE,
        name="repository policy",
    )


PULL_ANY = Policy.parse(
    {
        "Version": "2012-10-17",
        "Statement": {"Sid": "PullAll", "Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"},
    },
    kind=PolicyKind.IDENTITY,
    name="identity policy 'pull'",
)


def test_ecr_within_one_account_either_policy_suffices() -> None:
    alice = "arn:aws:iam::111122223333:user/alice"
    assert (
        simulate(alice, "ecr:BatchGetImage", REPO, identity_policies=[PULL_ANY]).reason
        is Reason.ALLOWED_BY_IDENTITY_POLICY
    )
    by_repo = simulate(alice, "ecr:BatchGetImage", REPO, resource_policy=repo_policy({"AWS": alice}))
    assert by_repo.reason is Reason.ALLOWED_BY_RESOURCE_POLICY
    nothing = simulate(alice, "ecr:BatchGetImage", REPO, resource_policy=repo_policy({"AWS": "111122223333"}))
    assert not nothing.allowed
    assert "no identity policy allows it" in nothing.message


def test_ecr_across_accounts_needs_both() -> None:
    bob = "arn:aws:iam::444455556666:user/bob"
    both = simulate(
        bob,
        "ecr:BatchGetImage",
        REPO,
        resource_policy=repo_policy({"AWS": "444455556666"}),
        identity_policies=[PULL_ANY],
    )
    assert both.reason is Reason.ALLOWED_BY_BOTH
    no_identity = simulate(bob, "ecr:BatchGetImage", REPO, resource_policy=repo_policy({"AWS": bob}))
    assert no_identity.reason is Reason.CROSS_ACCOUNT_NO_IDENTITY_ALLOW
    assert "cross-account: the repository policy allows it" in no_identity.message
    no_repo = simulate(bob, "ecr:BatchGetImage", REPO, identity_policies=[PULL_ANY])
    assert no_repo.reason is Reason.CROSS_ACCOUNT_NO_RESOURCE_POLICY_ALLOW
    assert "cross-account: the caller's IAM policy allows it" in no_repo.message


def test_ecr_explicit_deny_in_an_identity_policy_wins() -> None:
    deny = Policy.parse(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ecr:*", "Resource": "*"}]},
        kind=PolicyKind.IDENTITY,
        name="identity policy 'no-ecr'",
    )
    decision = simulate(
        "arn:aws:iam::111122223333:user/alice", "ecr:BatchGetImage", REPO, identity_policies=[PULL_ANY, deny]
    )
    assert decision.reason is Reason.EXPLICIT_DENY
    assert "explicit deny in statement #1 of identity policy 'no-ecr'" in decision.message


def test_kms_request_without_its_key_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="pass the key's key policy"):
        simulate("arn:aws:iam::111122223333:root", "kms:Decrypt", KEY)


def test_service_principals_have_no_identity_policies() -> None:
    with pytest.raises(ValidationError, match="no identity policies"):
        simulate(ECR_SERVICE, "ecr:BatchGetImage", REPO, identity_policies=[PULL_ANY])
