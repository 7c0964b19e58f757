"""Who makes a request: the account root, an IAM user or role, a role session, or an AWS service.

Policies name principals by ARN, but an assumed-role session is matched by the
role it came from (IAM: a resource policy naming a role applies to its
sessions), so each principal carries both its own ARN and the ARN policies match
it by (``policy_arn``).
"""

from __future__ import annotations

import enum
import re

import attrs

from ecrcrypt.errors import InvalidArnError

__all__ = ["Principal", "PrincipalKind"]

# IAM names: letters, digits and +=,.@_- ; user and role ARNs may carry a path (/a/b/name).
_IAM_NAME = r"[\w+=,.@-]+"
_PARTITION = r"aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc"
_IAM_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):iam::(?P<account>[0-9]{{12}}):"
    rf"(?:(?P<root>root)|(?P<type>user|role)/(?P<path>(?:{_IAM_NAME}/)*)(?P<name>{_IAM_NAME}))"
)
_STS_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):sts::(?P<account>[0-9]{{12}}):"
    rf"assumed-role/(?P<role>{_IAM_NAME})/(?P<session>[\w+=,.@-]{{2,64}})"
)
# Service principals: ecr.amazonaws.com, ecr.us-east-1.amazonaws.com, and the China partition's .com.cn form.
_SERVICE = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")


class PrincipalKind(enum.Enum):
    ROOT = "root"
    USER = "user"
    ROLE = "role"
    ASSUMED_ROLE = "assumed-role"
    SERVICE = "service"


@attrs.frozen(kw_only=True)
class Principal:
    """A parsed principal; build one with :meth:`parse`."""

    kind: PrincipalKind
    arn: str
    account: str | None
    policy_arn: str
    """The ARN a policy's ``Principal`` is compared with: the role's ARN for a session."""
    partition: str = "aws"

    @classmethod
    def parse(cls, text: str) -> Principal:
        """Parse an IAM/STS ARN or a service principal name, as a request's caller."""
        if not isinstance(text, str):
            raise InvalidArnError(f"a principal must be a str, not {type(text).__name__}")
        if match := _IAM_ARN.fullmatch(text):
            partition, account = match["partition"], match["account"]
            if match["root"]:
                return cls(kind=PrincipalKind.ROOT, arn=text, account=account, policy_arn=text, partition=partition)
            kind = PrincipalKind.USER if match["type"] == "user" else PrincipalKind.ROLE
            return cls(kind=kind, arn=text, account=account, policy_arn=text, partition=partition)
        if match := _STS_ARN.fullmatch(text):
            partition, account = match["partition"], match["account"]
            # The role's path is not in the session ARN; policies name roles without a path
            # far more often than with one, and IAM matches sessions by the role's unique id.
            role_arn = f"arn:{partition}:iam::{account}:role/{match['role']}"
            return cls(
                kind=PrincipalKind.ASSUMED_ROLE, arn=text, account=account, policy_arn=role_arn, partition=partition
            )
        if _SERVICE.fullmatch(text):
            partition = "aws-cn" if text.endswith(".cn") else "aws"
            return cls(kind=PrincipalKind.SERVICE, arn=text, account=None, policy_arn=text, partition=partition)
        raise InvalidArnError(
            f"{text!r} is not a principal: expected arn:aws:iam::<account>:root, :user/<name>, :role/<name>, "
            "arn:aws:sts::<account>:assumed-role/<role>/<session>, or a service principal such as ecr.amazonaws.com"
        )

    @classmethod
    def root(cls, account: str) -> Principal:
        return cls.parse(f"arn:aws:iam::{account}:root")

    @property
    def is_service(self) -> bool:
        return self.kind is PrincipalKind.SERVICE

    @property
    def root_arn(self) -> str | None:
        """The ARN of the account this principal belongs to (``None`` for a service)."""
        if self.account is None:
            return None
        return f"arn:{self.partition}:iam::{self.account}:root"

    def __str__(self) -> str:
        return self.arn
