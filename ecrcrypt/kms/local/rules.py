"""KMS rules on one key record, kept apart from the service that enforces them (private).

The limits KMS puts on key requests (pending window, rotation period, on-demand
rotations, aliases, description), the AWS aliases that create managed keys, the
automatic rotation schedule and the key-state table of the cryptographic operations:
pure functions of a ``KeyRecord``, shared by the service and every group of
operations in :mod:`ecrcrypt.kms.local.service`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import attrs

from ecrcrypt.errors import DisabledError, EcrCryptError, KmsInvalidStateError
from ecrcrypt.kms import KeyState
from ecrcrypt.kms.local.store import KeyRecord

DAY = 86_400.0
# KMS: ScheduleKeyDeletion PendingWindowInDays "must be between 7 and 30, inclusive", default 30.
MIN_PENDING_WINDOW, MAX_PENDING_WINDOW, DEFAULT_PENDING_WINDOW = 7, 30, 30
# KMS: RotationPeriodInDays 90-2560, default 365.
MIN_ROTATION_PERIOD, MAX_ROTATION_PERIOD, DEFAULT_ROTATION_PERIOD = 90, 2560, 365
# KMS quotas [LIVE resource-limits]: 25 on-demand rotations per key, 50 aliases per key.
MAX_ON_DEMAND_ROTATIONS = 25
MAX_ALIASES_PER_KEY = 50
# KMS CreateKey Description: 0-8192 characters.
MAX_DESCRIPTION = 8192
# The predefined aliases of AWS managed keys that DescribeKey creates on first use
# (KMS: "AWS services use DescribeKey to create AWS managed keys from a predefined
# AWS alias with no key ID").
PREDEFINED_AWS_ALIASES = frozenset(
    f"alias/aws/{svc}"
    for svc in (
        "acm", "backup", "dynamodb", "ebs", "ecr", "elasticfilesystem", "es", "glue", "kinesis",
        "kinesisvideo", "lambda", "logs", "rds", "redshift", "s3", "secretsmanager", "sns", "sqs", "ssm", "xray",
    )
)  # fmt: skip


def utc(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def next_rotation(key: KeyRecord) -> float:
    """When the key's next automatic rotation is due (rotation enabled)."""
    if not key.rotation_enabled or key.rotation_period is None:
        return math.inf
    anchor = key.created if key.rotation_anchor is None else key.rotation_anchor
    return anchor + key.rotation_period * DAY


def evolve(rec: KeyRecord, **changes: Any) -> KeyRecord:
    return attrs.evolve(rec, **changes)


def _state_error(key: KeyRecord) -> EcrCryptError | None:
    """KMS key-state table for the cryptographic operations and CreateGrant."""
    if key.state is KeyState.ENABLED:
        return None
    if key.state is KeyState.DISABLED:
        return DisabledError(f"{key.arn} is disabled.")
    if key.state is KeyState.PENDING_DELETION:
        # KMS documents DisabledException or KMSInvalidStateException here; we pick
        # KMSInvalidStateException (kms-ecr-semantics.md §1.4, §7.6).
        return KmsInvalidStateError(f"{key.arn} is pending deletion.")
    return KmsInvalidStateError(f"{key.arn} is {key.state.value}.")


def require_usable(key: KeyRecord) -> None:
    err = _state_error(key)
    if err is not None:
        raise err


def require_not_pending(key: KeyRecord) -> None:
    if key.state is KeyState.PENDING_DELETION:
        raise KmsInvalidStateError(f"{key.arn} is pending deletion.")
