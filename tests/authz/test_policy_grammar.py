"""Each refusal rule of the policy grammar: the exact exception, and a message that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecrcrypt.authz import (
    MalformedPolicyDocumentError,
    Policy,
    PolicyKind,
    PolicyLimit,
    PolicySizeLimitExceededError,
    policy_size,
)
from ecrcrypt.errors import LimitExceededError, ValidationError

ROOT = {"AWS": "arn:aws:iam::111122223333:root"}


def statement(**elements: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "kms:*", "Resource": "*", **elements}


def doc(*statements: Any, **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


REFUSALS: list[tuple[str, PolicyKind, Any, str]] = [
    (
        "unknown top-level element",
        PolicyKind.KEY,
        doc(statement(Principal=ROOT), Foo=1),
        "unknown top-level element 'Foo'",
    ),
    ("no statement", PolicyKind.IDENTITY, {"Version": "2012-10-17"}, "has no Statement"),
    ("empty statement list", PolicyKind.IDENTITY, doc(), "Statement is an empty list"),
    ("bad version", PolicyKind.IDENTITY, doc(statement(), Version="2020-01-01"), "Version '2020-01-01'"),
    ("key policy without version", PolicyKind.KEY, {"Statement": [statement(Principal=ROOT)]}, "must have a Version"),
    ("missing Effect", PolicyKind.IDENTITY, doc({"Action": "kms:*", "Resource": "*"}), "missing Effect"),
    ("bad Effect", PolicyKind.IDENTITY, doc(statement(Effect="allow")), "Effect must be Allow or Deny"),
    ("unknown statement element", PolicyKind.IDENTITY, doc(statement(Actions="kms:*")), "unknown element 'Actions'"),
    ("principal in identity", PolicyKind.IDENTITY, doc(statement(Principal=ROOT)), "must not specify a principal"),
    (
        "not-principal in identity",
        PolicyKind.IDENTITY,
        doc(statement(NotPrincipal=ROOT)),
        "must not specify a principal",
    ),
    ("no principal in key policy", PolicyKind.KEY, doc(statement()), "key policy statement must have a Principal"),
    (
        "no principal in repository policy",
        PolicyKind.RESOURCE,
        doc(statement()),
        "resource policy statement must have a Principal",
    ),
    (
        "Action and NotAction",
        PolicyKind.IDENTITY,
        doc(statement(NotAction="kms:Decrypt")),
        "Action or NotAction, not both",
    ),
    (
        "Resource and NotResource",
        PolicyKind.IDENTITY,
        doc(statement(NotResource="*")),
        "Resource or NotResource, not both",
    ),
    (
        "Principal and NotPrincipal",
        PolicyKind.KEY,
        doc(statement(Principal=ROOT, NotPrincipal=ROOT)),
        "Principal or NotPrincipal, not both",
    ),
    ("identity without Action", PolicyKind.IDENTITY, doc({"Effect": "Allow", "Resource": "*"}), "missing Action"),
    ("identity without Resource", PolicyKind.IDENTITY, doc({"Effect": "Allow", "Action": "kms:*"}), "missing Resource"),
    (
        "trust policy with Resource",
        PolicyKind.TRUST,
        doc(statement(Principal=ROOT, Action="sts:AssumeRole")),
        "must not have Resource",
    ),
    ("action without service", PolicyKind.IDENTITY, doc(statement(Action="Decrypt")), "must be prefaced by a service"),
    ("resource not an ARN", PolicyKind.IDENTITY, doc(statement(Resource="my-key")), 'must be in ARN format or "*"'),
    ("empty action list", PolicyKind.IDENTITY, doc(statement(Action=[])), "Action is an empty list"),
    ("non-string action", PolicyKind.IDENTITY, doc(statement(Action=[1])), "must be a non-empty string"),
    (
        "unknown principal type",
        PolicyKind.KEY,
        doc(statement(Principal={"User": "bob"})),
        "unknown principal type 'User'",
    ),
    (
        "wildcard in principal ARN",
        PolicyKind.KEY,
        doc(statement(Principal={"AWS": "arn:aws:iam::*:root"})),
        "invalid principal",
    ),
    (
        "service under AWS",
        PolicyKind.KEY,
        doc(statement(Principal={"AWS": "ecr.amazonaws.com"})),
        'write it under "Service"',
    ),
    (
        "bad service name",
        PolicyKind.KEY,
        doc(statement(Principal={"Service": "ecr"})),
        "invalid service principal 'ecr'",
    ),
    (
        "principal neither * nor object",
        PolicyKind.KEY,
        doc(statement(Principal="bob")),
        'Principal must be "*" or an object',
    ),
    (
        "unknown operator",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"StringEqualz": {"kms:ViaService": "x"}})),
        "unknown condition operator 'StringEqualz'",
    ),
    (
        "unsupported operator",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        "unknown condition operator 'IpAddress'",
    ),
    (
        "Null with IfExists",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"NullIfExists": {"kms:ViaService": "true"}})),
        "Null takes no IfExists",
    ),
    (
        "ForAllValues on an EC key",
        PolicyKind.KEY,
        doc(statement(Principal=ROOT, Condition={"ForAllValues:StringEquals": {"kms:EncryptionContext:app": "x"}})),
        "OverlyPermissiveCondition",
    ),
    (
        "condition key without prefix",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"StringEquals": {"ViaService": "x"}})),
        "is not a condition key",
    ),
    (
        "empty condition values",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"StringEquals": {"kms:ViaService": []}})),
        "lists no values",
    ),
    (
        "object as condition value",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"StringEquals": {"kms:ViaService": {"a": 1}}})),
        "must be a string, number or boolean",
    ),
    (
        "numeric condition on text",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "soon"}})),
        "'soon' is not a number",
    ),
    (
        "bool condition on text",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"Bool": {"kms:GrantIsForAWSResource": "yes"}})),
        "'yes' is not true or false",
    ),
    (
        "condition not an object",
        PolicyKind.IDENTITY,
        doc(statement(Condition=["StringEquals"])),
        "Condition must be an object",
    ),
    (
        "empty operator block",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"StringEquals": {}})),
        "must map at least one condition key",
    ),
    (
        "policy variable in resource",
        PolicyKind.IDENTITY,
        doc(statement(Resource="arn:aws:kms:us-east-1:111122223333:key/${aws:username}")),
        "policy variable",
    ),
    (
        "policy variable in condition",
        PolicyKind.IDENTITY,
        doc(statement(Condition={"StringEquals": {"aws:PrincipalArn": "${aws:username}"}})),
        "policy variables",
    ),
    (
        "duplicate Sid in IAM",
        PolicyKind.IDENTITY,
        doc(statement(Sid="A"), statement(Sid="A")),
        "must be unique in a policy: 'A'",
    ),
    ("statement not an object", PolicyKind.IDENTITY, doc("Allow"), "statement #1 must be an object"),
    ("Id not a string", PolicyKind.IDENTITY, doc(statement(), Id=7), "Id must be a string"),
    ("not JSON", PolicyKind.IDENTITY, "{not json", "not valid JSON"),
    ("JSON but not an object", PolicyKind.IDENTITY, "[1, 2]", "must be a JSON object"),
    ("empty document", PolicyKind.IDENTITY, "   ", "the policy document is empty"),
    (
        "repeated element",
        PolicyKind.IDENTITY,
        '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
        "repeats the element 'Version'",
    ),
    (
        "character outside U+0020-U+00FF",
        PolicyKind.IDENTITY,
        json.dumps(doc(statement(Sid="x")), ensure_ascii=False).replace('"x"', '"\u2603"'),
        "U+2603",
    ),
]


@pytest.mark.parametrize(("rule", "kind", "document", "says"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal(rule: str, kind: PolicyKind, document: Any, says: str) -> None:
    with pytest.raises(MalformedPolicyDocumentError) as caught:
        Policy.parse(document, kind=kind)
    assert type(caught.value) is MalformedPolicyDocumentError
    assert caught.value.code == "MalformedPolicyDocumentException"
    assert isinstance(caught.value, ValidationError)
    assert says in str(caught.value)


def test_messages_name_the_statement_by_sid_or_position() -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="statement 'Mine': missing Effect"):
        Policy.parse(doc({"Sid": "Mine", "Action": "kms:*", "Resource": "*"}), kind=PolicyKind.IDENTITY)
    with pytest.raises(MalformedPolicyDocumentError, match="statement #2: missing Effect"):
        Policy.parse(doc(statement(), {"Action": "kms:*", "Resource": "*"}), kind=PolicyKind.IDENTITY)


def test_what_aws_accepts_is_accepted() -> None:
    # A single statement object, the 2008 grammar (where ${...} is literal), NotPrincipal, Federated principals.
    Policy.parse({"Statement": statement(Resource="arn:aws:s3:::b/${x}")}, kind=PolicyKind.IDENTITY)
    Policy.parse(doc(statement(NotPrincipal=ROOT, Effect="Deny")), kind=PolicyKind.KEY)
    Policy.parse(doc(statement(Principal={"Federated": "cognito-identity.amazonaws.com"})), kind=PolicyKind.KEY)
    Policy.parse(doc(statement(Principal={"AWS": ["111122223333", "*"]})), kind=PolicyKind.KEY)
    # A key policy statement without Action or Resource is accepted by KMS and has no effect.
    inert = Policy.parse(doc({"Effect": "Allow", "Principal": "*"}), kind=PolicyKind.KEY)
    assert not inert.statements[0].covers_action("kms:Decrypt")
    assert not inert.statements[0].covers_resource("*")
    # A repository policy statement without Resource is about the repository itself.
    repo = Policy.parse(doc({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}), kind=PolicyKind.RESOURCE)
    assert repo.statements[0].covers_resource("arn:aws:ecr:us-east-1:111122223333:repository/x")


# --------------------------------------------------------------------------- sizes


def padded(size: int, limit: PolicyLimit, kind: PolicyKind) -> str:
    """A valid document of exactly ``size`` counted units, plus white space that IAM does not count."""
    base = doc(statement(Sid="", **({"Principal": ROOT} if kind is not PolicyKind.IDENTITY else {})))
    text = json.dumps(base, separators=(",", ":"))
    missing = size - policy_size(text, limit)
    assert missing >= 0
    text = text.replace('"Sid":""', '"Sid":"' + "a" * missing + '"')
    if not limit.counts_whitespace:
        text = text.replace(",", ",   \n\t")  # free for IAM
    assert policy_size(text, limit) == size
    return text


SIZES = [
    (PolicyLimit.KEY_POLICY, PolicyKind.KEY, 32_768),
    (PolicyLimit.USER_INLINE, PolicyKind.IDENTITY, 2_048),
    (PolicyLimit.ROLE_INLINE, PolicyKind.IDENTITY, 10_240),
    (PolicyLimit.MANAGED, PolicyKind.IDENTITY, 6_144),
    (PolicyLimit.TRUST, PolicyKind.TRUST, 2_048),
    (PolicyLimit.REPOSITORY, PolicyKind.RESOURCE, 10_240),
]


@pytest.mark.parametrize(("limit", "kind", "maximum"), SIZES, ids=[s[0].name for s in SIZES])
def test_size_limit_at_the_boundary(limit: PolicyLimit, kind: PolicyKind, maximum: int) -> None:
    assert limit.maximum == maximum
    if kind is PolicyKind.TRUST:
        return  # a trust statement needs an Action and no Resource; checked below
    Policy.parse(padded(maximum, limit, kind), kind=kind, limit=limit)
    with pytest.raises(PolicySizeLimitExceededError) as caught:
        Policy.parse(padded(maximum + 1, limit, kind), kind=kind, limit=limit)
    assert isinstance(caught.value, LimitExceededError)
    assert caught.value.code == "LimitExceededException"
    assert f"{maximum + 1}" in str(caught.value) and f"maximum is {maximum}" in str(caught.value)


def test_trust_policy_limit_at_the_boundary() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "", "Effect": "Allow", "Principal": ROOT, "Action": "sts:AssumeRole"}],
    }
    text = json.dumps(trust, separators=(",", ":"))
    for size in (2_048, 2_049):
        body = text.replace('"Sid":""', '"Sid":"' + "a" * (size - policy_size(text, PolicyLimit.TRUST)) + '"')
        if size == 2_048:
            Policy.parse(body, kind=PolicyKind.TRUST)
        else:
            with pytest.raises(PolicySizeLimitExceededError):
                Policy.parse(body, kind=PolicyKind.TRUST)


def test_key_policy_counts_bytes_and_white_space() -> None:
    assert policy_size('{"a": "\u00e9"}', PolicyLimit.KEY_POLICY) == 11  # 10 characters, é is two bytes
    assert policy_size('{"a": "\u00e9"}', PolicyLimit.MANAGED) == 9


@pytest.mark.parametrize("kind", list(PolicyKind))
def test_a_lone_surrogate_is_a_malformed_document_of_every_kind(kind: PolicyKind) -> None:
    # Found by fuzzing (fuzz/corpus/policy/crash-448df1a2...): a str from json.loads('"\\ud800"') made the
    # key policy's byte count raise UnicodeEncodeError instead of the documented error.
    document = '{"Version": "2012-10-17", "Statement": {"Sid": "\ud800", "Effect": "Allow"}}'
    with pytest.raises(MalformedPolicyDocumentError, match="U\\+D800"):
        Policy.parse(document, kind=kind)
    assert policy_size("\ud800", PolicyLimit.KEY_POLICY) == 3
