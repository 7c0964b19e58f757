"""The source documents' policies P1-P7 grant exactly what the documents say, and no more.

Each test also removes one action at a time and checks that the matching request
is then denied with a message naming that action.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest

from ecrcrypt.authz import (
    ContextValue,
    Decision,
    Policy,
    PolicyAccessDeniedError,
    PolicyKind,
    Reason,
    aws_managed_key_policy,
    default_key_policy,
    enforce,
    request_context,
    simulate,
)
from tests.authz import documents

ACCOUNT = "111122223333"
KEY = "arn:aws:kms:us-west-2:111122223333:key/b8d9ae76-080c-4043-92EXAMPLE"
OTHER_KEY = "arn:aws:kms:us-west-2:111122223333:key/0000ae76-080c-4043-92EXAMPLE"
MARY = "arn:aws:iam::111122223333:user/Mary_Major"
ECR_VIA = request_context(via_service="ecr.us-west-2.amazonaws.com", grant_is_for_aws_resource=True)


def key_policy(text: str) -> Policy:
    return Policy.parse(text, kind=PolicyKind.KEY, name="key policy")


def identity(text: str, name: str = "identity policy") -> Policy:
    return Policy.parse(text, kind=PolicyKind.IDENTITY, name=name)


def assert_denied_naming(decision: Decision, action: str) -> None:
    assert not decision.allowed
    assert action in decision.message


def check(
    principal: str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
    *,
    resource_policy: Policy | None = None,
    identity_policies: Sequence[Policy] = (),
) -> Decision:
    """simulate, and enforce the same request: enforcement raises exactly when, and with what, the simulator denies."""
    decision = simulate(
        principal, action, resource, context, resource_policy=resource_policy, identity_policies=identity_policies
    )
    if decision.allowed:
        enforced = enforce(
            principal, action, resource, context, resource_policy=resource_policy, identity_policies=identity_policies
        )
        assert enforced == decision
    else:
        with pytest.raises(PolicyAccessDeniedError) as caught:
            enforce(
                principal,
                action,
                resource,
                context,
                resource_policy=resource_policy,
                identity_policies=identity_policies,
            )
        assert caught.value.code == "AccessDeniedException"
        assert str(caught.value) == decision.message
        assert caught.value.decision == decision
    return decision


# --------------------------------------------------------------------------- P1


class TestP1RetireGrantForTheAwsManagedKey:
    managed = aws_managed_key_policy(ACCOUNT, "us-west-2")

    def test_the_deleter_may_retire_the_repository_grants(self) -> None:
        decision = check(
            MARY,
            "kms:RetireGrant",
            KEY,
            ECR_VIA,
            resource_policy=self.managed,
            identity_policies=[identity(documents.P1)],
        )
        assert decision.allowed
        assert decision.reason is Reason.ALLOWED_BY_IDENTITY_POLICY

    @pytest.mark.parametrize("action", ["kms:Decrypt", "kms:GenerateDataKey", "kms:RevokeGrant", "kms:PutKeyPolicy"])
    def test_grants_nothing_else_directly(self, action: str) -> None:
        decision = check(MARY, action, KEY, resource_policy=self.managed, identity_policies=[identity(documents.P1)])
        assert not decision.allowed

    def test_only_on_its_key(self) -> None:
        decision = check(
            MARY, "kms:RetireGrant", OTHER_KEY, resource_policy=self.managed, identity_policies=[identity(documents.P1)]
        )
        assert not decision.allowed

    def test_without_retire_grant_the_deleter_is_refused_naming_it(self) -> None:
        stripped = identity(documents.without_action(documents.P1, "kms:RetireGrant"))
        decision = check(
            MARY, "kms:RetireGrant", KEY, ECR_VIA, resource_policy=self.managed, identity_policies=[stripped]
        )
        assert_denied_naming(decision, "kms:RetireGrant")
        assert "kms:RetireGrant is an IAM permission" in decision.message

    def test_the_managed_key_lets_any_principal_of_the_account_create_grants_through_ecr(self) -> None:
        # "any principal that has permission to create a repository can also enable AWS KMS encryption"
        decision = check(MARY, "kms:CreateGrant", KEY, ECR_VIA, resource_policy=self.managed)
        assert decision.allowed
        assert decision.reason is Reason.ALLOWED_BY_RESOURCE_POLICY
        direct = check(MARY, "kms:CreateGrant", KEY, resource_policy=self.managed)
        assert not direct.allowed
        other_account = check(
            "arn:aws:iam::444455556666:user/Eve", "kms:CreateGrant", KEY, ECR_VIA, resource_policy=self.managed
        )
        assert not other_account.allowed


# --------------------------------------------------------------------------- P2


class TestP2RootKeyPolicy:
    policy = key_policy(documents.P2)

    @pytest.mark.parametrize(
        "action", ["kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"]
    )
    def test_the_root_user_may_do_everything(self, action: str) -> None:
        decision = check(f"arn:aws:iam::{ACCOUNT}:root", action, KEY, resource_policy=self.policy)
        assert decision.allowed
        assert decision.reason is Reason.ALLOWED_BY_RESOURCE_POLICY
        assert [d.statement.sid for d in decision.statements] == ["Enable IAM User Permissions"]

    def test_it_enables_iam_policies_for_the_account(self) -> None:
        allow_all = identity(
            '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}'
        )
        assert check(MARY, "kms:Decrypt", KEY, resource_policy=self.policy, identity_policies=[allow_all]).allowed
        decision = check(MARY, "kms:Decrypt", KEY, resource_policy=self.policy)
        assert decision.reason is Reason.NO_IDENTITY_ALLOW
        assert "enables IAM policies for account 111122223333, but no identity policy allows it" in decision.message

    def test_another_account_gets_nothing(self) -> None:
        decision = check("arn:aws:iam::444455556666:root", "kms:Decrypt", KEY, resource_policy=self.policy)
        assert not decision.allowed

    def test_without_kms_star_even_root_is_refused_naming_the_action(self) -> None:
        stripped = key_policy(documents.without_action(documents.P2, "kms:*", principal=True))
        decision = check(f"arn:aws:iam::{ACCOUNT}:root", "kms:Decrypt", KEY, resource_policy=stripped)
        assert_denied_naming(decision, "kms:Decrypt")
        assert "no statement in the key policy allows it" in decision.message


# --------------------------------------------------------------------------- P3

P3_ACTIONS = ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"]


class TestP3CustomerManagedKeyCreator:
    policy = key_policy(documents.P2)

    @pytest.mark.parametrize("action", P3_ACTIONS)
    def test_grants_its_three_actions(self, action: str) -> None:
        decision = check(
            MARY, action, KEY, ECR_VIA, resource_policy=self.policy, identity_policies=[identity(documents.P3)]
        )
        assert decision.allowed

    @pytest.mark.parametrize("action", ["kms:Decrypt", "kms:Encrypt", "kms:RevokeGrant", "kms:ListGrants"])
    def test_and_no_other(self, action: str) -> None:
        decision = check(
            MARY, action, KEY, ECR_VIA, resource_policy=self.policy, identity_policies=[identity(documents.P3)]
        )
        assert not decision.allowed

    @pytest.mark.parametrize("action", P3_ACTIONS)
    def test_removing_an_action_refuses_it_by_name(self, action: str) -> None:
        stripped = identity(documents.without_action(documents.P3, action))
        decision = check(MARY, action, KEY, ECR_VIA, resource_policy=self.policy, identity_policies=[stripped])
        assert_denied_naming(decision, action)
        for other in set(P3_ACTIONS) - {action}:
            assert check(MARY, other, KEY, ECR_VIA, resource_policy=self.policy, identity_policies=[stripped]).allowed

    def test_create_grant_and_describe_key_may_come_from_the_key_policy_instead(self) -> None:
        body = json.loads(documents.P2)
        body["Statement"] = [
            {
                "Sid": "Allow Mary to use the key with ECR",
                "Effect": "Allow",
                "Principal": {"AWS": MARY},
                "Action": ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"],
                "Resource": "*",
            }
        ]
        naming_mary = key_policy(json.dumps(body))
        retire_only = identity(
            documents.without_action(documents.without_action(documents.P3, "kms:CreateGrant"), "kms:DescribeKey")
        )
        for action in ("kms:CreateGrant", "kms:DescribeKey"):
            assert check(MARY, action, KEY, ECR_VIA, resource_policy=naming_mary).allowed
        # RetireGrant must be in the IAM policy: the key policy statement does not grant it.
        assert not check(MARY, "kms:RetireGrant", KEY, resource_policy=naming_mary).allowed
        assert check(MARY, "kms:RetireGrant", KEY, resource_policy=naming_mary, identity_policies=[retire_only]).allowed

    def test_a_key_policy_that_does_not_enable_iam_makes_p3_ineffective(self) -> None:
        admin_only = key_policy(
            '{"Version": "2012-10-17", "Statement": [{"Sid": "Admins", "Effect": "Allow", '
            '"Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"}, "Action": "kms:*", "Resource": "*"}]}'
        )
        decision = check(
            MARY,
            "kms:CreateGrant",
            KEY,
            ECR_VIA,
            resource_policy=admin_only,
            identity_policies=[identity(documents.P3)],
        )
        assert decision.reason is Reason.IAM_NOT_ENABLED
        assert "the key policy does not enable IAM policies for account 111122223333" in decision.message


# --------------------------------------------------------------------------- P4

P4_ACTIONS = ["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey"]


class TestP4ConsoleKeyPicker:
    @pytest.mark.parametrize("action", ["kms:ListKeys", "kms:ListAliases"])
    def test_lists_keys_and_aliases(self, action: str) -> None:
        assert check(MARY, action, "*", identity_policies=[identity(documents.P4)]).allowed

    def test_describes_any_key_whose_policy_enables_iam(self) -> None:
        decision = check(
            MARY,
            "kms:DescribeKey",
            KEY,
            resource_policy=key_policy(documents.P2),
            identity_policies=[identity(documents.P4)],
        )
        assert decision.allowed

    @pytest.mark.parametrize("action", ["kms:CreateKey", "kms:ListGrants", "kms:Decrypt"])
    def test_nothing_else(self, action: str) -> None:
        resource = KEY if action != "kms:CreateKey" else "*"
        policy = key_policy(documents.P2) if resource == KEY else None
        assert not check(
            MARY, action, resource, resource_policy=policy, identity_policies=[identity(documents.P4)]
        ).allowed

    @pytest.mark.parametrize("action", P4_ACTIONS)
    def test_removing_an_action_refuses_it_by_name(self, action: str) -> None:
        stripped = identity(documents.without_action(documents.P4, action))
        resource = KEY if action == "kms:DescribeKey" else "*"
        policy = key_policy(documents.P2) if resource == KEY else None
        decision = check(MARY, action, resource, resource_policy=policy, identity_policies=[stripped])
        assert_denied_naming(decision, action)
        assert "no identity policy allows it" in decision.message


# --------------------------------------------------------------------------- P5

P5_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
ECR_KEY = "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012"


class TestP5EcrServicePrincipal:
    policy = key_policy(documents.P5)

    @pytest.mark.parametrize("action", P5_ACTIONS)
    def test_the_ecr_service_principal_may(self, action: str) -> None:
        decision = check("ecr.amazonaws.com", action, ECR_KEY, resource_policy=self.policy)
        assert decision.allowed
        assert [d.statement.sid for d in decision.statements] == ["Allow ECR to use the key"]

    @pytest.mark.parametrize("action", ["kms:Encrypt", "kms:CreateGrant", "kms:ReEncryptFrom"])
    def test_nothing_else(self, action: str) -> None:
        assert not check("ecr.amazonaws.com", action, ECR_KEY, resource_policy=self.policy).allowed

    def test_only_that_service_name(self) -> None:
        # Service principals match by exact name: the regional name ECR uses in grants is another principal.
        assert not check("ecr.us-east-1.amazonaws.com", "kms:Decrypt", ECR_KEY, resource_policy=self.policy).allowed
        assert not check("s3.amazonaws.com", "kms:Decrypt", ECR_KEY, resource_policy=self.policy).allowed
        assert not check("arn:aws:iam::123456789012:root", "kms:Decrypt", ECR_KEY, resource_policy=self.policy).allowed

    @pytest.mark.parametrize("action", P5_ACTIONS)
    def test_removing_an_action_refuses_it_by_name(self, action: str) -> None:
        stripped = key_policy(documents.without_action(documents.P5, action, principal=True))
        decision = check("ecr.amazonaws.com", action, ECR_KEY, resource_policy=stripped)
        assert_denied_naming(decision, action)


# --------------------------------------------------------------------------- P6

P6_ECR_ACTIONS = [
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
]
REPO = "arn:aws:ecr:us-east-1:123456789012:repository/my-app"
PUSHER = "arn:aws:iam::123456789012:role/pusher"


class TestP6Pusher:
    key = default_key_policy("123456789012")

    @pytest.mark.parametrize("action", P6_ECR_ACTIONS)
    def test_pushes_and_pulls_my_app(self, action: str) -> None:
        assert check(PUSHER, action, REPO, identity_policies=[identity(documents.P6)]).allowed

    @pytest.mark.parametrize("action", P5_ACTIONS)
    def test_uses_the_key(self, action: str) -> None:
        ctx = request_context(via_service="ecr.us-east-1.amazonaws.com", encryption_context={"aws:ecr:arn": REPO})
        assert check(
            PUSHER, action, ECR_KEY, ctx, resource_policy=self.key, identity_policies=[identity(documents.P6)]
        ).allowed

    def test_not_another_repository_nor_other_actions(self) -> None:
        other = "arn:aws:ecr:us-east-1:123456789012:repository/other"
        assert not check(PUSHER, "ecr:PutImage", other, identity_policies=[identity(documents.P6)]).allowed
        assert not check(PUSHER, "ecr:DeleteRepository", REPO, identity_policies=[identity(documents.P6)]).allowed
        assert not check(
            PUSHER, "kms:Encrypt", ECR_KEY, resource_policy=self.key, identity_policies=[identity(documents.P6)]
        ).allowed

    @pytest.mark.parametrize("action", P6_ECR_ACTIONS + P5_ACTIONS)
    def test_removing_an_action_refuses_it_by_name(self, action: str) -> None:
        stripped = identity(documents.without_action(documents.P6, action))
        if action.startswith("kms:"):
            decision = check(PUSHER, action, ECR_KEY, resource_policy=self.key, identity_policies=[stripped])
        else:
            decision = check(PUSHER, action, REPO, identity_policies=[stripped])
        assert_denied_naming(decision, action)


# --------------------------------------------------------------------------- P7

KEY_ACCOUNT = "999999999999"
CROSS_KEY = "arn:aws:kms:us-east-1:999999999999:key/12345678-1234-1234-1234-123456789012"
CICD_ROLE = "arn:aws:iam::111111111111:role/cicd-role"
CICD_SESSION = "arn:aws:sts::111111111111:assumed-role/cicd-role/build-42"


def p7_key_policy(key_statement: str = documents.P7_KEY_STATEMENT) -> Policy:
    root = json.loads(documents.P2)["Statement"][0]
    root["Principal"] = {"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:root"}
    return key_policy(json.dumps({"Version": "2012-10-17", "Statement": [root, json.loads(key_statement)]}))


class TestP7CrossAccount:
    @pytest.mark.parametrize("caller", [CICD_ROLE, CICD_SESSION])
    @pytest.mark.parametrize("action", P5_ACTIONS)
    def test_both_halves_allow(self, caller: str, action: str) -> None:
        decision = check(
            caller,
            action,
            CROSS_KEY,
            resource_policy=p7_key_policy(),
            identity_policies=[identity(documents.P7_IDENTITY)],
        )
        assert decision.allowed
        assert decision.reason is Reason.ALLOWED_BY_BOTH
        assert {d.statement.sid for d in decision.statements} == {"Allow cross-account CI/CD to use key", None}

    def test_key_policy_alone_is_not_enough(self) -> None:
        decision = check(CICD_SESSION, "kms:Decrypt", CROSS_KEY, resource_policy=p7_key_policy())
        assert decision.reason is Reason.CROSS_ACCOUNT_NO_IDENTITY_ALLOW
        assert "cross-account: the key policy allows it" in decision.message
        assert "but the caller's IAM policy does not" in decision.message

    def test_identity_policy_alone_is_not_enough(self) -> None:
        root_only = key_policy(documents.P2.replace(ACCOUNT, KEY_ACCOUNT))
        decision = check(
            CICD_SESSION,
            "kms:Decrypt",
            CROSS_KEY,
            resource_policy=root_only,
            identity_policies=[identity(documents.P7_IDENTITY)],
        )
        assert decision.reason is Reason.CROSS_ACCOUNT_NO_RESOURCE_POLICY_ALLOW
        assert "cross-account: the caller's IAM policy allows it" in decision.message
        assert "but the key policy of account 999999999999 does not" in decision.message

    def test_another_role_of_that_account_is_refused(self) -> None:
        other = "arn:aws:iam::111111111111:role/intern"
        assert not check(
            other,
            "kms:Decrypt",
            CROSS_KEY,
            resource_policy=p7_key_policy(),
            identity_policies=[identity(documents.P7_IDENTITY)],
        ).allowed

    def test_the_key_account_root_statement_does_not_cover_the_other_account(self) -> None:
        assert not check(
            CICD_ROLE,
            "kms:Encrypt",
            CROSS_KEY,
            resource_policy=p7_key_policy(),
            identity_policies=[identity(documents.P7_IDENTITY)],
        ).allowed

    @pytest.mark.parametrize("action", P5_ACTIONS)
    def test_removing_an_action_from_either_half_refuses_it_by_name(self, action: str) -> None:
        key_stripped = p7_key_policy(
            json.dumps(json.loads(documents.without_action(documents.P7_KEY, action, principal=True))["Statement"][0])
        )
        decision = check(
            CICD_SESSION,
            action,
            CROSS_KEY,
            resource_policy=key_stripped,
            identity_policies=[identity(documents.P7_IDENTITY)],
        )
        assert_denied_naming(decision, action)
        assert decision.reason is Reason.CROSS_ACCOUNT_NO_RESOURCE_POLICY_ALLOW
        id_stripped = identity(documents.without_action(documents.P7_IDENTITY, action))
        decision = check(
            CICD_SESSION, action, CROSS_KEY, resource_policy=p7_key_policy(), identity_policies=[id_stripped]
        )
        assert_denied_naming(decision, action)
        assert decision.reason is Reason.CROSS_ACCOUNT_NO_IDENTITY_ALLOW


def test_every_document_parses_as_its_kind() -> None:
    kinds = {
        "P1": PolicyKind.IDENTITY,
        "P2": PolicyKind.KEY,
        "P3": PolicyKind.IDENTITY,
        "P4": PolicyKind.IDENTITY,
        "P5": PolicyKind.KEY,
        "P6": PolicyKind.IDENTITY,
        "P7_KEY": PolicyKind.KEY,
        "P7_IDENTITY": PolicyKind.IDENTITY,
    }
    for name, text in documents.ALL.items():
        assert Policy.parse(text, kind=kinds[name]).text == text
