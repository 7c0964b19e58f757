"""Identifiers of the AWS world ecrcrypt models: accounts, regions, ARNs, names.

Each is a frozen value validated at construction with the service's own rule, and
each has ``parse(str)`` and ``str()`` that round-trip, so that a malformed
identifier is refused where it enters the program instead of deep in a KMS call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import attrs

from ecrcrypt._validate import length_between, matches
from ecrcrypt.errors import InvalidAliasNameError, InvalidArnError, ValidationError

__all__ = [
    "AccountId",
    "AliasArn",
    "AliasName",
    "KeyArn",
    "KeyId",
    "KeyReference",
    "Partition",
    "Region",
    "RepositoryArn",
    "RepositoryName",
    "S3BucketName",
    "S3ObjectArn",
    "parse_key_reference",
]

_PARTITION = re.compile(r"aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
_ACCOUNT = re.compile(r"[0-9]{12}")
# ECR CreateRepository: repositoryName pattern (botocore ecr service model).
_REPOSITORY_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
# KMS key ids: a UUID, or "mrk-" and 32 hex digits for a multi-Region key.
_KEY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}")
# KMS CreateAlias: AliasName pattern ^[a-zA-Z0-9:/_-]+$, 1-256, must start with alias/.
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9:/_-]+")
# S3 general purpose bucket naming rules.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")

T = TypeVar("T")


@attrs.frozen
class Partition:
    """An AWS partition (``aws``, ``aws-cn``, ``aws-us-gov`` …)."""

    value: str = attrs.field(validator=matches(_PARTITION, "not a known AWS partition"))

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Region:
    """An AWS Region code such as ``us-east-1`` or ``us-gov-west-1``."""

    value: str = attrs.field(validator=matches(_REGION, "expected a Region code like us-east-1"))

    @property
    def partition(self) -> Partition:
        if self.value.startswith("cn-"):
            return Partition("aws-cn")
        if self.value.startswith("us-gov-"):
            return Partition("aws-us-gov")
        return Partition("aws")

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class AccountId:
    """A 12-digit AWS account id (also ECR's registry id)."""

    value: str = attrs.field(validator=matches(_ACCOUNT, "an account id is exactly 12 digits"))

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class RepositoryName:
    """An ECR repository name: 2-256 characters of ECR's pattern (``/`` for namespaces)."""

    value: str = attrs.field(
        validator=[
            matches(
                _REPOSITORY_NAME,
                "lowercase letters and digits, separated by '.', '_', '__', runs of '-' or '/'",
            ),
            length_between(2, 256),
        ]
    )

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class KeyId:
    """A KMS key id: a UUID, or ``mrk-`` + 32 hex digits for a multi-Region key."""

    value: str = attrs.field(
        validator=matches(_KEY_ID, "a key id is a lowercase UUID or mrk- followed by 32 hex digits")
    )

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class AliasName:
    """A KMS alias name, ``alias/<name>``, 1-256 characters of ``[a-zA-Z0-9:/_-]``."""

    value: str = attrs.field(
        validator=[
            matches(
                _ALIAS_NAME,
                "an alias name starts with alias/ and uses only letters, digits, ':', '/', '_' and '-'",
                error=InvalidAliasNameError,
            ),
            length_between(7, 256, error=InvalidAliasNameError),
        ]
    )

    @property
    def is_aws_managed(self) -> bool:
        # KMS: "The alias name cannot begin with alias/aws/" -- reserved for AWS managed keys.
        return self.value.startswith("alias/aws/")

    def __str__(self) -> str:
        return self.value


def _split_arn(text: str, service: str) -> tuple[Partition, Region | None, AccountId | None, str]:
    if not isinstance(text, str):
        raise InvalidArnError(f"an ARN must be a str, not {type(text).__name__}")
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise InvalidArnError(f"{text!r} is not an ARN (arn:partition:service:region:account:resource)")
    _, partition, svc, region, account, resource = parts
    if svc != service:
        raise InvalidArnError(f"{text!r} is not an {service} ARN")
    try:
        return (
            Partition(partition),
            Region(region) if region else None,
            AccountId(account) if account else None,
            resource,
        )
    except ValidationError as exc:
        raise InvalidArnError(f"{text!r} is not a valid {service} ARN: {exc}") from None


def _typed(cls: type) -> Any:
    """An attrs validator: the field holds a ``cls`` (ARN parts are values, not strings)."""

    def check(instance: object, attribute: Any, value: object) -> None:
        if not isinstance(value, cls):
            raise ValidationError(
                f"{type(instance).__name__}.{attribute.name} must be a {cls.__name__}, not {type(value).__name__}"
            )

    return check


def _regional(text: str, service: str, prefix: str, kind: str) -> tuple[Partition, Region, AccountId, str]:
    """Split a regional ARN whose resource starts with ``prefix``; returns the rest of the resource."""
    partition, region, account, resource = _split_arn(text, service)
    if region is None or account is None or not resource.startswith(prefix):
        raise InvalidArnError(f"{text!r} is not {kind}")
    return partition, region, account, resource[len(prefix) :]


def _part(text: str, make: Callable[[str], T], value: str) -> T:
    try:
        return make(value)
    except ValidationError as exc:
        raise InvalidArnError(f"{text!r}: {exc}") from None


@attrs.frozen(kw_only=True)
class RepositoryArn:
    """``arn:<partition>:ecr:<region>:<account>:repository/<name>``."""

    region: Region = attrs.field(validator=_typed(Region))
    account: AccountId = attrs.field(validator=_typed(AccountId))
    name: RepositoryName = attrs.field(validator=_typed(RepositoryName))
    partition: Partition = attrs.field(validator=_typed(Partition))

    @partition.default
    def _partition_default(self) -> Partition:
        return self.region.partition

    @classmethod
    def parse(cls, text: str) -> RepositoryArn:
        partition, region, account, rest = _regional(text, "ecr", "repository/", "an ECR repository ARN")
        return cls(region=region, account=account, name=_part(text, RepositoryName, rest), partition=partition)

    @property
    def uri(self) -> str:
        """The repository URI a Docker client uses."""
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.name}"

    def __str__(self) -> str:
        return f"arn:{self.partition}:ecr:{self.region}:{self.account}:repository/{self.name}"


@attrs.frozen(kw_only=True)
class KeyArn:
    """``arn:<partition>:kms:<region>:<account>:key/<key id>``."""

    region: Region = attrs.field(validator=_typed(Region))
    account: AccountId = attrs.field(validator=_typed(AccountId))
    key_id: KeyId = attrs.field(validator=_typed(KeyId))
    partition: Partition = attrs.field(validator=_typed(Partition))

    @partition.default
    def _partition_default(self) -> Partition:
        return self.region.partition

    @classmethod
    def parse(cls, text: str) -> KeyArn:
        partition, region, account, rest = _regional(text, "kms", "key/", "a KMS key ARN")
        return cls(region=region, account=account, key_id=_part(text, KeyId, rest), partition=partition)

    def __str__(self) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{self.key_id}"


@attrs.frozen(kw_only=True)
class AliasArn:
    """``arn:<partition>:kms:<region>:<account>:alias/<name>``."""

    region: Region = attrs.field(validator=_typed(Region))
    account: AccountId = attrs.field(validator=_typed(AccountId))
    alias: AliasName = attrs.field(validator=_typed(AliasName))
    partition: Partition = attrs.field(validator=_typed(Partition))

    @partition.default
    def _partition_default(self) -> Partition:
        return self.region.partition

    @classmethod
    def parse(cls, text: str) -> AliasArn:
        partition, region, account, rest = _regional(text, "kms", "alias/", "a KMS alias ARN")
        return cls(region=region, account=account, alias=_part(text, AliasName, "alias/" + rest), partition=partition)

    def __str__(self) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:{self.alias}"


KeyReference: TypeAlias = KeyId | KeyArn | AliasName | AliasArn
"""The four ways KMS lets a caller name a key."""


def parse_key_reference(text: str) -> KeyReference:
    """Parse a key id, key ARN, alias name or alias ARN, as KMS's ``KeyId`` parameter does."""
    if not isinstance(text, str):
        raise ValidationError(f"a key reference must be a str, not {type(text).__name__}")
    if text.startswith("arn:"):
        resource = text.split(":", 5)[-1]
        if resource.startswith("alias/"):
            return AliasArn.parse(text)
        return KeyArn.parse(text)
    if text.startswith("alias/"):
        return AliasName(text)
    try:
        return KeyId(text)
    except ValidationError:
        raise ValidationError(f"{text!r} is not a key id, key ARN, alias name (alias/...) or alias ARN") from None


def _check_bucket(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or _BUCKET.fullmatch(value) is None:
        raise ValidationError(
            f"S3BucketName {value!r} is invalid: 3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in value or _IPV4.fullmatch(value) or value.startswith("xn--") or value.endswith("-s3alias"):
        raise ValidationError(
            f"S3BucketName {value!r} is invalid: no '..', no IP address form, no xn-- prefix and no -s3alias suffix"
        )


@attrs.frozen
class S3BucketName:
    """An S3 general purpose bucket name."""

    value: str = attrs.field(validator=_check_bucket)

    def __str__(self) -> str:
        return self.value


def _check_object_key(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"S3ObjectArn.key must be a str, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError("S3ObjectArn.key must be valid Unicode (no lone surrogates)") from None
    if not 1 <= size <= 1024:
        raise ValidationError(f"S3ObjectArn.key must be 1 to 1024 UTF-8 bytes, got {size}")


@attrs.frozen(kw_only=True)
class S3ObjectArn:
    """``arn:<partition>:s3:::<bucket>/<key>``."""

    bucket: S3BucketName = attrs.field(validator=_typed(S3BucketName))
    key: str = attrs.field(validator=_check_object_key)
    partition: Partition = attrs.field(factory=lambda: Partition("aws"), validator=_typed(Partition))

    @classmethod
    def parse(cls, text: str) -> S3ObjectArn:
        partition, region, account, resource = _split_arn(text, "s3")
        if region is not None or account is not None or "/" not in resource:
            raise InvalidArnError(f"{text!r} is not an S3 object ARN (arn:aws:s3:::bucket/key)")
        bucket, key = resource.split("/", 1)
        try:
            return cls(bucket=S3BucketName(bucket), key=key, partition=partition)
        except ValidationError as exc:
            raise InvalidArnError(f"{text!r}: {exc}") from None

    def __str__(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}/{self.key}"
