"""Hypothesis strategies for policies, statements and requests over a small world.

The world is small on purpose (two accounts, a few keys, repositories, actions and
condition values) so that random statements and random requests often meet:
properties about allow/deny are only interesting when policies apply.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ecrcrypt.authz import ContextValue, Grant, Policy, PolicyKind

ACCOUNTS = ("111122223333", "444455556666")
KEY_ID = "12345678-1234-1234-1234-123456789012"
KEYS = tuple(f"arn:aws:kms:us-east-1:{a}:key/{KEY_ID}" for a in ACCOUNTS)
REPOSITORIES = tuple(f"arn:aws:ecr:us-east-1:{a}:repository/{n}" for a in ACCOUNTS for n in ("app", "web"))
ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey", "ecr:PutImage")
ACTION_PATTERNS = (*ACTIONS, "kms:*", "*", "kms:De*", "kms:?ncrypt", "KMS:decrypt", "ecr:*")
RESOURCE_PATTERNS = (
    *KEYS,
    *REPOSITORIES,
    "*",
    "arn:aws:kms:us-east-1:*:key/*",
    f"arn:aws:ecr:us-east-1:{ACCOUNTS[0]}:repository/*",
    "arn:aws:ecr:*:*:repository/?pp",
)
VIA = ("ecr.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com")


def principals() -> st.SearchStrategy[str]:
    account = st.sampled_from(ACCOUNTS)
    return st.one_of(
        account.map(lambda a: f"arn:aws:iam::{a}:root"),
        account.map(lambda a: f"arn:aws:iam::{a}:user/alice"),
        account.map(lambda a: f"arn:aws:iam::{a}:role/cicd"),
        account.map(lambda a: f"arn:aws:sts::{a}:assumed-role/cicd/build"),
        st.sampled_from(("ecr.amazonaws.com", "ecr.us-east-1.amazonaws.com")),
    )


def policy_principals() -> st.SearchStrategy[Any]:
    """A ``Principal`` element value."""
    single = st.one_of(
        st.just("*"),
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS).map(lambda a: f"arn:aws:iam::{a}:root"),
        st.sampled_from(ACCOUNTS).map(lambda a: f"arn:aws:iam::{a}:role/cicd"),
        st.sampled_from(ACCOUNTS).map(lambda a: f"arn:aws:iam::{a}:user/alice"),
    )
    return st.one_of(
        st.just("*"),
        st.builds(lambda v: {"AWS": v}, st.one_of(single, st.lists(single, min_size=1, max_size=3))),
        st.builds(lambda v: {"Service": v}, st.sampled_from(("ecr.amazonaws.com", "ecr.us-east-1.amazonaws.com"))),
    )


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    clause = st.one_of(
        st.builds(lambda v: {"StringEquals": {"kms:ViaService": v}}, st.sampled_from(VIA)),
        st.builds(lambda v: {"StringNotEqualsIfExists": {"kms:ViaService": v}}, st.sampled_from(VIA)),
        st.builds(lambda a: {"StringEquals": {"kms:CallerAccount": a}}, st.sampled_from(ACCOUNTS)),
        st.builds(lambda b: {"Bool": {"kms:GrantIsForAWSResource": b}}, st.booleans()),
        st.builds(lambda b: {"Null": {"kms:ViaService": b}}, st.booleans()),
        st.just({"ForAllValues:StringLike": {"kms:EncryptionContextKeys": "aws:*"}}),
        st.just({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "aws:ecr:arn"}}),
    )
    return st.lists(clause, max_size=2).map(lambda cs: {k: v for c in cs for k, v in c.items()})


def _one_or_many(values: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1, max_size=3))


@st.composite
def statements(draw: st.DrawFn, kind: PolicyKind, effect: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(("Allow", "Deny")))}
    if draw(st.booleans()):
        body["Sid"] = f"S{draw(st.integers(0, 10**6))}"
    if kind is not PolicyKind.IDENTITY:
        body["NotPrincipal" if draw(st.integers(0, 9)) == 0 else "Principal"] = draw(policy_principals())
    body["NotAction" if draw(st.integers(0, 7)) == 0 else "Action"] = draw(_one_or_many(ACTION_PATTERNS))
    body["NotResource" if draw(st.integers(0, 7)) == 0 else "Resource"] = draw(_one_or_many(RESOURCE_PATTERNS))
    condition = draw(conditions())
    if condition:
        body["Condition"] = condition
    return body


def documents(kind: PolicyKind, *, min_size: int = 1) -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(statements(kind), min_size=min_size, max_size=4).map(
        lambda listed: {"Version": "2012-10-17", "Statement": listed}
    )


def _unique_sids(document: dict[str, Any]) -> dict[str, Any]:
    listed = [dict(s, Sid=f"S{i}") if "Sid" in s else s for i, s in enumerate(document["Statement"])]
    return {**document, "Statement": listed}


def policies(kind: PolicyKind) -> st.SearchStrategy[Policy]:
    return documents(kind).map(lambda d: Policy.parse(_unique_sids(d), kind=kind))


def contexts() -> st.SearchStrategy[dict[str, ContextValue]]:
    entries: dict[str, st.SearchStrategy[Any]] = {
        "kms:ViaService": st.sampled_from(VIA),
        "kms:GrantIsForAWSResource": st.booleans(),
        "kms:EncryptionContextKeys": st.lists(st.sampled_from(("aws:ecr:arn", "aws:s3:arn", "app")), unique=True),
        "kms:EncryptionContext:aws:ecr:arn": st.sampled_from(REPOSITORIES),
    }
    return st.fixed_dictionaries({}, optional=entries)


def grants() -> st.SearchStrategy[Grant]:
    return st.builds(
        lambda grantee, ops, subset: Grant(
            grantee_principal=grantee, operations=ops, encryption_context_subset=subset, grant_id="g"
        ),
        st.sampled_from(("ecr.us-east-1.amazonaws.com", f"arn:aws:iam::{ACCOUNTS[1]}:role/cicd")),
        st.frozensets(st.sampled_from(("Decrypt", "GenerateDataKey", "DescribeKey", "CreateGrant")), min_size=1),
        st.one_of(st.none(), st.sampled_from(REPOSITORIES).map(lambda r: {"aws:ecr:arn": r})),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A request and the policies and grants it is evaluated against, as keyword arguments for ``simulate``."""
    principal = draw(principals())
    action = draw(st.sampled_from(ACTIONS))
    if action.startswith("kms:"):
        resource = draw(st.sampled_from(KEYS))
        resource_kind = PolicyKind.KEY
    else:
        resource = draw(st.sampled_from(REPOSITORIES))
        resource_kind = PolicyKind.RESOURCE
    is_service = not principal.startswith("arn:")
    return {
        "principal": principal,
        "action": action,
        "resource": resource,
        "context": draw(contexts()),
        # Every KMS key has a key policy; a repository may have none.
        "resource_policy": draw(
            policies(resource_kind) if resource_kind is PolicyKind.KEY else st.none() | policies(resource_kind)
        ),
        "identity_policies": [] if is_service else draw(st.lists(policies(PolicyKind.IDENTITY), max_size=2)),
        "grants": draw(st.lists(grants(), max_size=2)) if resource_kind is PolicyKind.KEY else [],
        "resource_kind": resource_kind,
    }
