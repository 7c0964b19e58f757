"""The key policies KMS writes when nobody supplies one.

* A customer managed key created without a policy gets the default key policy:
  one statement giving the account (``arn:aws:iam::<acct>:root``) ``kms:*``, which
  also enables IAM policies for the key (KMS Developer Guide, "Default key
  policy", https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
* An AWS managed key (``alias/aws/ecr``) has a fixed policy of the shape every
  AWS managed key has: the account's principals may use the key only through the
  owning service (``kms:ViaService`` = ``<service>.<region>.amazonaws.com`` and
  ``kms:CallerAccount`` = the account), and the account may read the key's
  metadata directly (KMS Developer Guide, "AWS managed keys",
  https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key).
  The statement wording follows the published AWS managed key policies; the
  ``Id`` (``auto-ecr-1``) is modelled on theirs (``auto-<service>-<n>``).
"""

from __future__ import annotations

from typing import Any

from ecrcrypt.arns import AccountId, Region
from ecrcrypt.authz.policy import Policy, PolicyKind

__all__ = [
    "aws_managed_key_document",
    "aws_managed_key_policy",
    "default_key_policy",
    "default_key_policy_document",
]

# What an AWS managed key lets the account's principals do through the service.
_VIA_SERVICE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:CreateGrant",
    "kms:DescribeKey",
)
_METADATA_ACTIONS = ("kms:Describe*", "kms:Get*", "kms:List*")


def default_key_policy_document(account: str) -> dict[str, Any]:
    """The default key policy of a customer managed key in ``account``, as JSON-ready data."""
    root = f"arn:aws:iam::{AccountId(account)}:root"
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def default_key_policy(account: str) -> Policy:
    """:func:`default_key_policy_document`, parsed."""
    return Policy.parse(default_key_policy_document(account), kind=PolicyKind.KEY, name="key policy")


def aws_managed_key_document(
    account: str, region: str, *, service: str = "ecr", title: str = "Amazon ECR"
) -> dict[str, Any]:
    """The fixed policy of the AWS managed key of ``service`` (``alias/aws/ecr``) in ``account``."""
    account_id = str(AccountId(account))
    via = f"{service}.{Region(region)}.amazonaws.com"
    return {
        "Version": "2012-10-17",
        "Id": f"auto-{service}-1",
        "Statement": [
            {
                "Sid": f"Allow access through {title} for all principals in the account that are authorized to use "
                f"{title}",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": list(_VIA_SERVICE_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": via}},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": list(_METADATA_ACTIONS),
                "Resource": "*",
            },
        ],
    }


def aws_managed_key_policy(account: str, region: str) -> Policy:
    """The fixed key policy of ``alias/aws/ecr`` in ``account`` and ``region``, parsed."""
    return Policy.parse(aws_managed_key_document(account, region), kind=PolicyKind.KEY, name="key policy")
