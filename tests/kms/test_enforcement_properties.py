"""Property: ``LocalKms.simulate`` and enforcement always agree, on random policies, grants and requests.

Enforcement decides with the stored, compiled policies and looks a grant up in the
key's index only when the policies do not decide; on a warm key the hot path
decides from a cached per-client verdict. The simulator hands the same policies and
*every* grant to the engine. Each request is made twice (the second call may take
the hot path), and both outcomes must be the simulator's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrcrypt import errors
from ecrcrypt.kms import GrantConstraints, Kms
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"  # never registered
PUSHER = f"arn:aws:iam::{OTHER}:role/pusher"
ECR = f"ecr.{REGION}.amazonaws.com"
CALLERS = (ROOT, ALICE, BOB, PUSHER, ECR)
OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey", "ListGrants", "GetKeyPolicy")
CONTEXTS: tuple[dict[str, str], ...] = ({}, {"tenant": "a"}, {"tenant": "b"})
CONDITIONS: tuple[dict[str, Any] | None, ...] = (
    None,
    {"StringEquals": {"kms:ViaService": ECR}},
    {"StringEquals": {"kms:EncryptionContext:tenant": "a"}},
    {"Null": {"kms:EncryptionContextKeys": "true"}},
    {"StringEquals": {"kms:CallerAccount": OTHER}},
)
ACTIONS = st.sampled_from(("kms:*", "kms:De*", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:Get*"))


@st.composite
def statements(draw: st.DrawFn, *, principal: bool) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(("Allow", "Allow", "Deny"))),
        "Action": draw(st.lists(ACTIONS, min_size=1, max_size=3, unique=True)),
        "Resource": "*",
    }
    if principal:
        statement["Principal"] = draw(
            st.sampled_from(({"AWS": ALICE}, {"AWS": PUSHER}, {"AWS": OTHER}, {"AWS": "*"}, {"Service": ECR}))
        )
    condition = draw(st.sampled_from(CONDITIONS))
    if condition is not None:
        statement["Condition"] = condition
    return statement


def document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key_statements=st.lists(statements(principal=True), max_size=3),
    alice_statements=st.lists(statements(principal=False), max_size=3),
    pusher_statements=st.lists(statements(principal=False), max_size=2),
    root_keeps_iam=st.booleans(),
    grants=st.lists(
        st.tuples(
            st.sampled_from(CALLERS[1:]),
            st.lists(
                st.sampled_from(("Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey")), min_size=1, unique=True
            ),
            st.booleans(),
        ),
        max_size=2,
    ),
    requests=st.lists(
        st.tuples(
            st.sampled_from(CALLERS),
            st.sampled_from(OPERATIONS),
            st.sampled_from(range(len(CONTEXTS))),
            st.sampled_from((None, ECR)),
        ),
        min_size=1,
        max_size=4,
    ),
    strict=st.booleans(),
)
def test_simulate_and_enforcement_agree(
    key_statements: list[dict[str, Any]],
    alice_statements: list[dict[str, Any]],
    pusher_statements: list[dict[str, Any]],
    root_keeps_iam: bool,
    grants: list[tuple[str, list[str], bool]],
    requests: list[tuple[str, str, int, str | None]],
    strict: bool,
) -> None:
    kms = LocalKms(account=ACCOUNT, region=REGION, strict_iam=strict)
    root = kms.client(ROOT)
    key = root.create_key().arn
    blobs = [root.encrypt(key_id=key, plaintext=b"x", encryption_context=c).ciphertext_blob for c in CONTEXTS]
    for grantee, operations, constrained in grants:
        constraints = GrantConstraints(encryption_context_subset={"tenant": "a"}) if constrained else None
        root.create_grant(key_id=key, grantee_principal=grantee, operations=operations, constraints=constraints)
    base = (
        [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}] if root_keeps_iam else []
    )
    if base or key_statements:
        root.put_key_policy(key_id=key, policy=document(base + key_statements), bypass_policy_lockout_safety_check=True)
    kms.iam.create_user(user_name="alice")
    if alice_statements:
        kms.iam.put_user_policy(user_name="alice", policy_name="p", policy_document=document(alice_statements))
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sts:AssumeRole"},
        }
    )
    other = kms.iam.for_account(OTHER)
    other.create_role(role_name="pusher", assume_role_policy_document=trust)
    if pusher_statements:
        other.put_role_policy(role_name="pusher", policy_name="p", policy_document=document(pusher_statements))

    for caller, operation, which, via in requests:
        context = CONTEXTS[which]
        decision = kms.simulate(caller, f"kms:{operation}", key, context, via_service=via)
        call = request(kms.client(caller, via_service=via), operation, key, context, blobs[which])
        for attempt in range(2):
            try:
                call()
                allowed = True
            except errors.AccessDeniedError as exc:
                allowed = False
                if not decision.allowed:
                    assert str(exc) == decision.message
            assert allowed == decision.allowed, (attempt, caller, operation, context, via, decision.message)


def request(client: Kms, operation: str, key: str, context: dict[str, str], blob: bytes) -> Callable[[], object]:
    """The real call for ``operation`` (on a blob made under ``context`` for Decrypt)."""
    calls: dict[str, Callable[[], object]] = {
        "Encrypt": lambda: client.encrypt(key_id=key, plaintext=b"y", encryption_context=context),
        "Decrypt": lambda: client.decrypt(ciphertext_blob=blob, encryption_context=context),
        "GenerateDataKey": lambda: client.generate_data_key(key_id=key, encryption_context=context, key_spec="AES_256"),
        "DescribeKey": lambda: client.describe_key(key_id=key),
        "ListGrants": lambda: client.list_grants(key_id=key),
        "GetKeyPolicy": lambda: client.get_key_policy(key_id=key),
    }
    return calls[operation]
