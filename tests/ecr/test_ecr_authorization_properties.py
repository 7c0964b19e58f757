"""Property: the registry's ``ecr:`` enforcement is the engine's decision on the stored policies.

For random repository policies, identity policies, callers and operations, a call
succeeds exactly when ``ecrcrypt.simulate`` -- given the stored repository policy and
the caller's stored identity policies -- allows its action, and a refusal carries
the simulator's message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrcrypt import MemoryBlobStore, Policy, errors, simulate
from ecrcrypt.authz import PolicyKind
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.permissions import EcrAuthorization
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev"
PARTNER = "arn:aws:iam::444455556666:role/partner"
REPO_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"
LAYER = b"property layer"
ACTIONS = ("ecr:GetDownloadUrlForLayer", "ecr:ListImages", "ecr:GetRepositoryPolicy", "ecr:*", "ecr:Get*")
OPERATIONS = ("ecr:GetDownloadUrlForLayer", "ecr:ListImages", "ecr:GetRepositoryPolicy")


@st.composite
def statements(draw: st.DrawFn, *, principal: bool) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(("Allow", "Allow", "Deny"))),
        "Action": draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True)),
    }
    if principal:
        statement["Principal"] = {"AWS": draw(st.sampled_from((DEV, PARTNER, "444455556666", ACCOUNT, "*")))}
    else:
        statement["Resource"] = draw(st.sampled_from((REPO_ARN, "*", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/web")))
    return statement


def document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    repository_statements=st.lists(statements(principal=True), max_size=2),
    dev_statements=st.lists(statements(principal=False), max_size=2),
    partner_statements=st.lists(statements(principal=False), max_size=2),
    requests=st.lists(st.tuples(st.sampled_from((ROOT, DEV, PARTNER)), st.sampled_from(OPERATIONS)), max_size=4),
)
def test_registry_enforcement_is_the_engines_decision(
    repository_statements: list[dict[str, Any]],
    dev_statements: list[dict[str, Any]],
    partner_statements: list[dict[str, Any]],
    requests: list[tuple[str, str]],
) -> None:
    local = LocalKms(account=ACCOUNT, region=REGION, strict_iam=True)
    registry = Registry(
        kms=local.client,
        store=MemoryBlobStore(),
        account=ACCOUNT,
        region=REGION,
        authorization=EcrAuthorization(identities=local),
    )
    registry.create_repository("app")
    registry.repository("app").push_layer(LAYER, digest=Digest.of(LAYER))
    repository_policy = None
    if repository_statements:
        text = document(repository_statements)
        registry.set_repository_policy("app", text, force=True)
        repository_policy = Policy.parse(text, kind=PolicyKind.RESOURCE, name="repository policy")
    local.iam.create_user(user_name="dev")
    if dev_statements:
        local.iam.put_user_policy(user_name="dev", policy_name="p", policy_document=document(dev_statements))
    partner = local.iam.for_account("444455556666")
    partner.create_role(
        role_name="partner",
        assume_role_policy_document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Principal": {"AWS": PARTNER}, "Action": "sts:*"},
            }
        ),
    )
    if partner_statements:
        partner.put_role_policy(role_name="partner", policy_name="p", policy_document=document(partner_statements))

    for caller, action in requests:
        decision = simulate(
            caller,
            action,
            REPO_ARN,
            resource_policy=repository_policy,
            identity_policies=local.identity_policies(caller),
        )
        call = operation(registry.as_caller(caller), action)
        try:
            call()
            allowed = True
        except errors.RepositoryPolicyNotFoundError:
            allowed = True  # authorized, and there is no policy to return
        except errors.AccessDeniedError as exc:
            allowed = False
            assert str(exc) == decision.message
        assert allowed == decision.allowed, (caller, action, decision.message)


def operation(view: Registry, action: str) -> Callable[[], object]:
    """The registry call that is checked against ``action``."""
    calls: dict[str, Callable[[], object]] = {
        "ecr:GetDownloadUrlForLayer": lambda: view.repository("app").read_layer(Digest.of(LAYER)),
        "ecr:ListImages": lambda: view.repository("app").list_images(),
        "ecr:GetRepositoryPolicy": lambda: view.get_repository_policy("app"),
    }
    return calls[action]
