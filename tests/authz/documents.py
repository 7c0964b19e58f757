"""The source documents' policies P1-P7, verbatim, as test fixtures.

P5, P6 and P7 are statement fragments in the documents; they are wrapped in a
``{"Version": "2012-10-17", "Statement": ...}`` envelope here and otherwise left
as written. P7's two halves already line up: the key lives in 999999999999 and
its policy names the role of 111111111111, whose identity policy names that key.
"""

from __future__ import annotations

import json

# ECR user guide: the IAM policy a user needs to delete a repository encrypted with the AWS managed key.
P1 = """{"Version": "2012-10-17", "Id": "ecr-kms-permissions", "Statement": [
  {"Sid": "Allow access to retire the grants associated with the key", "Effect": "Allow",
   "Action": ["kms:RetireGrant"],
   "Resource": "arn:aws:kms:us-west-2:111122223333:key/b8d9ae76-080c-4043-92EXAMPLE"}]}"""

# ECR user guide: key policy giving the owning account's root full access (and enabling IAM policies).
P2 = """{"Version": "2012-10-17", "Id": "ecr-key-policy", "Statement": [
  {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}"""

# ECR user guide: IAM policy to create (and delete) a repository with a customer managed key.
P3 = """{"Version": "2012-10-17", "Id": "ecr-kms-permissions", "Statement": [
  {"Sid": "Allow access to create and retire the grants associated with the key as well as describe the key",
   "Effect": "Allow", "Action": ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
   "Resource": "arn:aws:kms:us-west-2:111122223333:key/b8d9ae76-080c-4043-92EXAMPLE"}]}"""

# ECR user guide: IAM policy letting a console user list keys and aliases.
P4 = """{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
  "Action": ["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey"], "Resource": "*"}}"""

# Article: key-policy statement for the ECR service principal.
P5_STATEMENT = """{"Sid": "Allow ECR to use the key", "Effect": "Allow", "Principal": {"Service": "ecr.amazonaws.com"},
 "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": "*"}"""

# Article: identity policy statements for a principal that pushes images.
P6_STATEMENTS = """[{"Effect": "Allow", "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:PutImage",
   "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
  "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/my-app"},
 {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
  "Resource": "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012"}]"""

# Article: the cross-account pair -- key-policy statement in the key's account ...
P7_KEY_STATEMENT = """{"Sid": "Allow cross-account CI/CD to use key", "Effect": "Allow",
 "Principal": {"AWS": "arn:aws:iam::111111111111:role/cicd-role"},
 "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": "*"}"""

# ... and the role's identity policy in the other account.
P7_IDENTITY_STATEMENT = """{"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
 "Resource": "arn:aws:kms:us-east-1:999999999999:key/12345678-1234-1234-1234-123456789012"}"""


def envelope(statements: str) -> str:
    """Wrap a statement (or list of statements) as written in the documents into a whole policy."""
    return '{"Version": "2012-10-17", "Statement": ' + statements + "}"


P5 = envelope(P5_STATEMENT)
P6 = envelope(P6_STATEMENTS)
P7_KEY = envelope(P7_KEY_STATEMENT)
P7_IDENTITY = envelope(P7_IDENTITY_STATEMENT)

ALL = {"P1": P1, "P2": P2, "P3": P3, "P4": P4, "P5": P5, "P6": P6, "P7_KEY": P7_KEY, "P7_IDENTITY": P7_IDENTITY}


def without_action(document: str, action: str, *, principal: bool = False) -> str:
    """``document`` with ``action`` removed from every statement that lists it (the statement kept if others remain).

    A document left with no statement gets one that allows nothing relevant
    (with a principal of an unrelated account when ``principal``, for resource policies).
    """
    body = json.loads(document)
    listed = body["Statement"] if isinstance(body["Statement"], list) else [body["Statement"]]
    kept = []
    for statement in listed:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        remaining = [a for a in actions if a != action]
        if remaining:
            kept.append({**statement, "Action": remaining})
    filler: dict[str, object] = {"Effect": "Allow", "Action": "none:Nothing", "Resource": "*"}
    if principal:
        filler["Principal"] = {"AWS": "arn:aws:iam::000000000000:root"}
    body["Statement"] = kept or [filler]
    return json.dumps(body)
