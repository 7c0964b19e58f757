"""Policy strategies: every drawn document is one the policy grammar, KMS, IAM and ECR accept."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrcrypt import strategies as es
from ecrcrypt.authz.policy import Policy, PolicyKind
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.kms.local.service import LocalKmsClient
from ecrcrypt.testing import World

SHARED = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
_USERS = itertools.count()
KINDS = {"key": PolicyKind.KEY, "identity": PolicyKind.IDENTITY, "repository": PolicyKind.RESOURCE}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_drawn_documents_parse_as_their_kind(kind: str) -> None:
    @settings(max_examples=50, database=None)
    @given(es.policy_documents(kind, account="111122223333"))
    def check(text: str) -> None:
        policy = Policy.parse(text, kind=KINDS[kind])
        assert policy.text == text and policy.statements
        body = json.loads(text)
        for statement in body["Statement"]:
            assert ("Principal" in statement) == (kind != "identity")
            assert ("Resource" in statement) == (kind != "repository")
        if kind == "key":  # the account keeps kms:* whatever else was drawn
            first = body["Statement"][0]
            assert (first["Effect"], first["Action"], first["Principal"]) == (
                "Allow",
                "kms:*",
                {"AWS": "arn:aws:iam::111122223333:root"},
            )

    check()


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        es.policy_documents("trust")


@SHARED
@given(data=st.data())
def test_live_keys_carry_the_drawn_policy(ecrcrypt_kms: LocalKmsClient, data: st.DataObject) -> None:
    meta = data.draw(es.live_keys_with_policies(ecrcrypt_kms))
    text = ecrcrypt_kms.get_key_policy(key_id=meta.key_id)
    assert Policy.parse(text, kind=PolicyKind.KEY).statements[0].sid == "EnableIAMUserPermissions"
    # The root's kms:* statement keeps the key manageable by the account whatever was drawn after it.
    ecrcrypt_kms.put_key_policy(key_id=meta.key_id, policy=text)


@SHARED
@given(data=st.data())
def test_drawn_identity_and_repository_policies_are_accepted_by_iam_and_ecr(
    ecrcrypt_world: World, data: st.DataObject
) -> None:
    registry: Registry = ecrcrypt_world.registry
    account = str(registry.account)
    iam = ecrcrypt_world.service.iam
    name = f"user{next(_USERS)}"
    iam.create_user(user_name=name)
    iam.put_user_policy(
        user_name=name, policy_name="drawn", policy_document=data.draw(es.policy_documents("identity", account=account))
    )
    repo = data.draw(es.repositories(registry=registry))
    text = data.draw(es.policy_documents("repository", account=account))
    assert registry.set_repository_policy(repo.name, text).policy_text == text
