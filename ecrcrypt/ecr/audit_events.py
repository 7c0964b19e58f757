"""ECR-shaped CloudTrail events appended to the KMS audit trail (private).

ECR logs its API calls to CloudTrail with ``eventSource`` ``ecr.amazonaws.com``
(ECR user guide, "Logging Amazon ECR actions with AWS CloudTrail"); ecrcrypt
records the data-plane calls a push and a pull make -- ``CompleteLayerUpload``,
``PutImage``, ``BatchGetImage``, ``GetDownloadUrlForLayer`` -- and the repository
calls, with the caller as ``userIdentity`` and the repository ARN as resource, so
"who pulled image X of repository Y, and when" is one query:
``trail.query(event_source="ecr.amazonaws.com", event_name="BatchGetImage",
resource=<repository ARN>)``. The KMS calls made on the repository's behalf are
recorded by the local KMS itself, with the encryption context naming the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ecrcrypt.kms.local.audit import AuditEvent, AuditTrail

__all__ = ["ECR_EVENT_SOURCE", "record_ecr_event", "user_identity"]

ECR_EVENT_SOURCE = "ecr.amazonaws.com"
_READ_ONLY = frozenset({"BatchGetImage", "GetDownloadUrlForLayer", "DescribeRepositories"})


def user_identity(caller: str, account: str) -> dict[str, Any]:
    """CloudTrail ``userIdentity`` for an IAM ARN or a service principal."""
    if not caller.startswith("arn:"):
        return {"type": "AWSService", "invokedBy": caller}
    resource = caller.split(":", 5)[-1]
    kind = "Root" if resource == "root" else "AssumedRole" if resource.startswith("assumed-role/") else "IAMUser"
    return {"type": kind, "arn": caller, "accountId": caller.split(":")[4] or account}


def record_ecr_event(
    audit: AuditTrail,
    *,
    caller: str,
    event_name: str,
    region: str,
    account: str,
    request_parameters: Mapping[str, Any],
    resource_arn: str,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:

    resource: dict[str, str] = {"accountId": account, "type": "AWS::ECR::Repository", "ARN": resource_arn}
    audit.record(
        AuditEvent(
            event_name=event_name,
            event_source=ECR_EVENT_SOURCE,
            aws_region=region,
            user_identity=user_identity(caller, account),
            request_parameters=dict(request_parameters),
            resources=cast(Any, (resource,)),  # AuditEvent converts with tuple()
            read_only=event_name in _READ_ONLY,
            recipient_account_id=account,
            error_code=error_code,
            error_message=error_message,
        )
    )
