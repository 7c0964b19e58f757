"""Condition operators, table-driven: a match, a miss, and a missing key for each, plus the qualifiers.

AWS semantics (IAM User Guide, condition operators and multivalued keys): a missing
key makes a positive operator false and a negated one true; ``...IfExists`` is
true on a missing key; ``ForAllValues`` is true on a missing or empty key,
``ForAnyValue`` false; ``Null: true`` means "absent".
"""

from __future__ import annotations

from typing import Any

import pytest

from ecrcrypt.authz import ContextValue, parse_condition

MISSING = object()

# operator, key, policy value(s), request value (or MISSING), expected
TABLE: list[tuple[str, str, Any, Any, bool]] = [
    # String
    ("StringEquals", "kms:ViaService", "ecr.us-east-1.amazonaws.com", "ecr.us-east-1.amazonaws.com", True),
    ("StringEquals", "kms:ViaService", "ecr.us-east-1.amazonaws.com", "ECR.us-east-1.amazonaws.com", False),
    ("StringEquals", "kms:ViaService", ["s3.x", "ecr.x"], "ecr.x", True),
    ("StringEquals", "kms:ViaService", "ecr.x", MISSING, False),
    ("StringNotEquals", "kms:ViaService", "ecr.x", "s3.x", True),
    ("StringNotEquals", "kms:ViaService", ["s3.x", "ecr.x"], "ecr.x", False),
    ("StringNotEquals", "kms:ViaService", "ecr.x", MISSING, True),
    ("StringEqualsIgnoreCase", "kms:ViaService", "ECR.X", "ecr.x", True),
    ("StringEqualsIgnoreCase", "kms:ViaService", "ecr.x", "s3.x", False),
    ("StringEqualsIgnoreCase", "kms:ViaService", "ecr.x", MISSING, False),
    ("StringNotEqualsIgnoreCase", "kms:ViaService", "ECR.X", "ecr.x", False),
    ("StringNotEqualsIgnoreCase", "kms:ViaService", "ecr.x", "s3.x", True),
    ("StringNotEqualsIgnoreCase", "kms:ViaService", "ecr.x", MISSING, True),
    ("StringLike", "kms:ViaService", "ecr.*.amazonaws.com", "ecr.us-east-1.amazonaws.com", True),
    ("StringLike", "kms:ViaService", "ecr.?.com", "ecr.ab.com", False),
    ("StringLike", "kms:ViaService", "ecr.*", MISSING, False),
    ("StringNotLike", "kms:ViaService", "s3.*", "ecr.x", True),
    ("StringNotLike", "kms:ViaService", "ecr.*", "ecr.x", False),
    ("StringNotLike", "kms:ViaService", "ecr.*", MISSING, True),
    # ARN: each of the six components separately
    (
        "ArnEquals",
        "aws:PrincipalArn",
        "arn:aws:iam::111122223333:role/cicd",
        "arn:aws:iam::111122223333:role/cicd",
        True,
    ),
    ("ArnEquals", "aws:PrincipalArn", "arn:aws:iam::111122223333:role/*", "arn:aws:iam::111122223333:role/a/b", True),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/cicd", "arn:aws:iam::999999999999:role/cicd", True),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/cicd", "arn:aws:iam::9:9:role/cicd", False),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::1*", "arn:aws:iam::111122223333:root", False),
    ("ArnLike", "aws:PrincipalArn", "arn:*:iam::*:*", "arn:aws:iam::111122223333:user/x", True),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/cicd", MISSING, False),
    ("ArnNotEquals", "aws:PrincipalArn", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/x", True),
    ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:user/*", "arn:aws:iam::111122223333:user/x", False),
    ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:user/*", MISSING, True),
    # Numeric
    ("NumericEquals", "kms:Number", "10", 10, True),
    ("NumericEquals", "kms:Number", 10, "10.0", True),
    ("NumericEquals", "kms:Number", "10", "ten", False),
    ("NumericEquals", "kms:Number", "10", MISSING, False),
    ("NumericNotEquals", "kms:Number", "10", 11, True),
    ("NumericNotEquals", "kms:Number", "10", MISSING, True),
    ("NumericLessThan", "kms:Number", "10", 9, True),
    ("NumericLessThan", "kms:Number", "10", 10, False),
    ("NumericLessThanEquals", "kms:Number", "10", 10, True),
    ("NumericLessThanEquals", "kms:Number", "10", 11, False),
    ("NumericGreaterThan", "kms:Number", "10", 11, True),
    ("NumericGreaterThan", "kms:Number", "10", 10, False),
    ("NumericGreaterThanEquals", "kms:Number", "10", 10, True),
    ("NumericGreaterThanEquals", "kms:Number", "10", MISSING, False),
    # Bool
    ("Bool", "kms:GrantIsForAWSResource", "true", True, True),
    ("Bool", "kms:GrantIsForAWSResource", True, "true", True),
    ("Bool", "kms:GrantIsForAWSResource", "true", False, False),
    ("Bool", "kms:GrantIsForAWSResource", "false", False, True),
    ("Bool", "kms:GrantIsForAWSResource", "true", MISSING, False),
    # IfExists: true when missing, the operator otherwise
    ("StringEqualsIfExists", "kms:ViaService", "ecr.x", MISSING, True),
    ("StringEqualsIfExists", "kms:ViaService", "ecr.x", "s3.x", False),
    ("StringEqualsIfExists", "kms:ViaService", "ecr.x", "ecr.x", True),
    ("StringNotLikeIfExists", "kms:ViaService", "ecr.*", MISSING, True),
    ("StringNotLikeIfExists", "kms:ViaService", "ecr.*", "ecr.x", False),
    ("ArnLikeIfExists", "aws:PrincipalArn", "arn:aws:iam::*:root", MISSING, True),
    ("NumericLessThanIfExists", "kms:Number", "5", MISSING, True),
    ("NumericLessThanIfExists", "kms:Number", "5", 6, False),
    ("BoolIfExists", "kms:GrantIsForAWSResource", "true", MISSING, True),
    ("BoolIfExists", "kms:GrantIsForAWSResource", "true", False, False),
    # Null
    ("Null", "kms:ViaService", "true", MISSING, True),
    ("Null", "kms:ViaService", "true", "ecr.x", False),
    ("Null", "kms:ViaService", "false", "ecr.x", True),
    ("Null", "kms:ViaService", "false", MISSING, False),
    ("Null", "kms:EncryptionContextKeys", "true", [], True),
    # ForAnyValue / ForAllValues on a multivalued key
    ("ForAnyValue:StringEquals", "kms:GrantOperations", ["Decrypt"], ["Decrypt", "Encrypt"], True),
    ("ForAnyValue:StringEquals", "kms:GrantOperations", ["Sign"], ["Decrypt", "Encrypt"], False),
    ("ForAnyValue:StringEquals", "kms:GrantOperations", ["Decrypt"], MISSING, False),
    ("ForAnyValue:StringEquals", "kms:GrantOperations", ["Decrypt"], [], False),
    ("ForAllValues:StringEquals", "kms:GrantOperations", ["Decrypt", "Encrypt"], ["Decrypt"], True),
    ("ForAllValues:StringEquals", "kms:GrantOperations", ["Decrypt"], ["Decrypt", "Encrypt"], False),
    ("ForAllValues:StringEquals", "kms:GrantOperations", ["Decrypt"], MISSING, True),
    ("ForAllValues:StringEquals", "kms:GrantOperations", ["Decrypt"], [], True),
    (
        "ForAllValues:StringLike",
        "kms:EncryptionContextKeys",
        ["aws:ecr:*", "aws:s3:*"],
        ["aws:ecr:arn", "aws:s3:arn"],
        True,
    ),
    ("ForAllValues:StringLike", "kms:EncryptionContextKeys", ["aws:ecr:*"], ["aws:ecr:arn", "aws:s3:arn"], False),
    ("ForAnyValue:StringNotEquals", "kms:GrantOperations", ["Decrypt"], ["Decrypt", "Encrypt"], True),
    ("ForAnyValue:StringNotEquals", "kms:GrantOperations", ["Decrypt"], ["Decrypt"], False),
    ("ForAllValues:StringNotEquals", "kms:GrantOperations", ["Sign"], ["Decrypt", "Encrypt"], True),
    ("ForAllValues:StringNotEquals", "kms:GrantOperations", ["Decrypt"], ["Decrypt", "Encrypt"], False),
    ("ForAnyValue:StringEqualsIfExists", "kms:GrantOperations", ["Decrypt"], MISSING, True),
    ("ForAnyValue:StringEquals", "kms:GrantOperations", ["Decrypt"], "Decrypt", True),
    # A plain operator on a list: any value matches; a negated one: no value matches
    ("StringEquals", "kms:GrantOperations", "Decrypt", ["Encrypt", "Decrypt"], True),
    ("StringNotEquals", "kms:GrantOperations", "Decrypt", ["Encrypt", "Decrypt"], False),
    ("StringNotEquals", "kms:GrantOperations", "Sign", ["Encrypt", "Decrypt"], True),
]


@pytest.mark.parametrize(
    ("operator", "key", "policy_value", "request_value", "expected"),
    TABLE,
    ids=[f"{row[0]}-{'missing' if row[3] is MISSING else row[3]!r}-{row[4]}" for row in TABLE],
)
def test_operator(operator: str, key: str, policy_value: Any, request_value: Any, expected: bool) -> None:
    condition = parse_condition({operator: {key: policy_value}})
    context: dict[str, ContextValue] = {} if request_value is MISSING else {key.lower(): request_value}
    assert condition.evaluate(context) is expected


def test_every_operator_is_in_the_table() -> None:
    bases = {row[0].split(":")[-1].removesuffix("IfExists") for row in TABLE}
    assert bases == {
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
        "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "NumericEquals", "NumericNotEquals",
        "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "Bool", "Null",
    }  # fmt: skip


def test_condition_key_names_are_case_insensitive() -> None:
    condition = parse_condition({"StringEquals": {"KMS:VIASERVICE": "ecr.x"}})
    assert condition.evaluate({"kms:viaservice": "ecr.x"})


def test_operators_and_keys_are_anded_values_ored() -> None:
    condition = parse_condition(
        {
            "StringEquals": {"kms:ViaService": ["ecr.x", "s3.x"], "kms:CallerAccount": "111122223333"},
            "Bool": {"kms:GrantIsForAWSResource": "true"},
        }
    )
    good: dict[str, ContextValue] = {
        "kms:viaservice": "s3.x",
        "kms:calleraccount": "111122223333",
        "kms:grantisforawsresource": True,
    }
    assert condition.evaluate(good)
    assert not condition.evaluate({**good, "kms:calleraccount": "444455556666"})
    assert not condition.evaluate({**good, "kms:grantisforawsresource": False})


def test_encryption_context_keys_allow_for_any_value() -> None:
    # Only ForAllValues is refused on kms:EncryptionContext:<key>; ForAnyValue is accepted.
    condition = parse_condition({"ForAnyValue:StringEquals": {"kms:EncryptionContext:aws:ecr:arn": "x"}})
    assert condition.evaluate({"kms:encryptioncontext:aws:ecr:arn": "x"})
