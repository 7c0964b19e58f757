"""``ecrcrypt audit lookup-events``: the registry's audit trail, shaped as CloudTrail's LookupEvents.

The local KMS and the registry record CloudTrail-shaped events; this command answers
the question the ECR guide asks CloudTrail ("who decrypted what, through which
repository") with ``aws cloudtrail lookup-events``' flags and output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from ecrcrypt.cli.errors import command
from ecrcrypt.cli.params import structure_list
from ecrcrypt.cli.session import emit, open_registry, settings_of
from ecrcrypt.ecr.registry_kms import AWS
from ecrcrypt.errors import InvalidParameterError
from ecrcrypt.kms.local.audit import AuditEvent

__all__ = ["audit"]

# CloudTrail LookupAttributeKey values ecrcrypt's trail can answer.
_KEYS = ("EventId", "EventName", "EventSource", "ReadOnly", "Username", "ResourceName")


@click.group()
def audit() -> None:
    """The audit trail (CloudTrail-shaped) of the registry and its KMS."""


def _username(event: AuditEvent) -> str | None:
    principal = event.principal
    if principal is None:
        return None
    # CloudTrail's Username is the IAM name (``user/developer`` -> ``developer``, the root -> ``root``).
    return (
        principal.rsplit("/", 1)[-1]
        if principal.startswith("arn:") and "/" in principal
        else principal.rsplit(":", 1)[-1]
    )


def _resource_names(event: AuditEvent) -> set[str]:
    names = set(event.resource_arns)
    params = event.request_parameters or {}
    if isinstance(params.get("repositoryName"), str):
        names.add(params["repositoryName"])
    names.update(v for v in event.encryption_context.values())
    return names


def _matches(event: AuditEvent, key: str, value: str) -> bool:
    if key == "EventId":
        return event.event_id == value
    if key == "EventName":
        return event.event_name == value
    if key == "EventSource":
        return event.event_source == value
    if key == "ReadOnly":
        return str(event.read_only).lower() == value.lower()
    if key == "Username":
        return _username(event) == value or event.principal == value
    return value in _resource_names(event)


def _lookup_entry(event: AuditEvent) -> dict[str, Any]:
    return {
        "EventId": event.event_id,
        "EventName": event.event_name,
        # CloudTrail's LookupEvents gives ReadOnly as the string "true" / "false".
        "ReadOnly": str(event.read_only).lower(),
        "EventTime": event.event_time,
        "EventSource": event.event_source,
        "Username": _username(event),
        "Resources": [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")} for r in event.resources],
        "CloudTrailEvent": json.dumps(event.to_cloudtrail(), separators=(",", ":")),
    }


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{name} takes an ISO 8601 time, e.g. 2026-01-01T00:00:00Z") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@command(audit, "lookup-events", "LookupEvents")
@click.option(
    "--lookup-attributes",
    multiple=True,
    help="AttributeKey=EventName|EventSource|EventId|ReadOnly|Username|ResourceName,AttributeValue=<value>",
)
@click.option("--start-time", default=None, help="ISO 8601; events at or after")
@click.option("--end-time", default=None, help="ISO 8601; events before")
@click.option("--max-results", type=click.IntRange(1, 50), default=None)
def lookup_events(
    ctx: click.Context,
    lookup_attributes: tuple[str, ...],
    start_time: str | None,
    end_time: str | None,
    max_results: int | None,
) -> None:
    """LookupEvents: newest first, every given attribute matching."""
    attributes = structure_list(lookup_attributes, "--lookup-attributes")
    wanted: list[tuple[str, str]] = []
    for a in attributes:
        if (
            not isinstance(a, dict)
            or a.get("AttributeKey") not in _KEYS
            or not isinstance(a.get("AttributeValue"), str)
        ):
            raise click.BadParameter(
                "--lookup-attributes takes AttributeKey=<" + "|".join(_KEYS) + ">,AttributeValue=<value>"
            )
        wanted.append((a["AttributeKey"], a["AttributeValue"]))
    since, until = _time(start_time, "--start-time"), _time(end_time, "--end-time")
    with open_registry(settings_of(ctx)) as registry:
        trail = registry.audit
        if trail is None:
            if settings_of(ctx).kms == AWS:
                raise InvalidParameterError(
                    "a registry on AWS KMS keeps no audit trail of its own: its KMS events are in AWS CloudTrail "
                    "(aws cloudtrail lookup-events)"
                )
            raise InvalidParameterError("this registry keeps no audit trail")
        events = trail.query(since=since, until=until)
    found = [e for e in reversed(events) if all(_matches(e, k, v) for k, v in wanted)]
    if max_results is not None:
        found = found[:max_results]
    emit(ctx, {"Events": [_lookup_entry(e) for e in found]})
