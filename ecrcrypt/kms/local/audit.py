"""A CloudTrail-shaped, append-only audit trail kept in the KMS store.

Every call to the local KMS appends one event (success or failure) shaped like
CloudTrail's record of the same call -- ``eventTime``, ``eventSource``,
``eventName``, ``userIdentity``, ``requestParameters`` (with the encryption
context), ``responseElements`` (never a plaintext or key), ``errorCode`` /
``errorMessage``, ``resources``, ``eventID`` -- so that "who decrypted objects of
repository X, and when" is a query: ``trail.query(event_name="Decrypt",
context={"aws:ecr:arn": repo_arn})``.

The event type is generic: other layers (ECR) append their own events with their
own ``eventSource`` (``ecr.amazonaws.com``) to the same trail through
:meth:`AuditTrail.record`. The table rejects UPDATE and DELETE (triggers), so the
trail is append-only even to code holding the connection.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import count
from typing import Any

import attrs

from ecrcrypt.errors import ValidationError
from ecrcrypt.kms.local.store import KmsStore, Tx, resources_column

__all__ = ["KMS_EVENT_SOURCE", "AuditEvent", "AuditTrail"]

KMS_EVENT_SOURCE = "kms.amazonaws.com"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # CloudTrail's eventTime format


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else dict(value)


def _identity(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _resources(value: Iterable[Mapping[str, str]]) -> tuple[Mapping[str, str], ...]:
    return tuple(dict(r) for r in value)


@attrs.frozen(kw_only=True)
class AuditEvent:
    """One CloudTrail-shaped record. ``principal`` is what queries match on.

    Construct with the fields you know; :meth:`to_cloudtrail` gives the JSON shape.
    """

    event_name: str
    event_source: str = KMS_EVENT_SOURCE
    event_time: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    aws_region: str | None = None
    user_identity: Mapping[str, Any] = attrs.field(factory=dict, converter=_identity)
    request_parameters: Mapping[str, Any] | None = attrs.field(default=None, converter=_frozen_mapping)
    response_elements: Mapping[str, Any] | None = attrs.field(default=None, converter=_frozen_mapping)
    additional_event_data: Mapping[str, Any] | None = attrs.field(default=None, converter=_frozen_mapping)
    error_code: str | None = None
    error_message: str | None = None
    resources: tuple[Mapping[str, str], ...] = attrs.field(default=(), converter=_resources)
    read_only: bool = False
    event_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    event_type: str = "AwsApiCall"
    recipient_account_id: str | None = None
    # AwsServiceEvent records (KMS's automatic "RotateKey") carry serviceEventDetails.
    service_event_details: Mapping[str, Any] | None = attrs.field(default=None, converter=_frozen_mapping)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.event_name, str) or not self.event_name:
            raise ValidationError("AuditEvent.event_name must be a non-empty str")
        if self.event_time.tzinfo is None:
            raise ValidationError("AuditEvent.event_time must be timezone-aware")

    @property
    def principal(self) -> str | None:
        """The caller: its ARN, or the service principal for service callers."""
        ident = self.user_identity
        value = ident.get("arn") or ident.get("invokedBy") or ident.get("principalId")
        return None if value is None else str(value)

    @property
    def resource_arns(self) -> tuple[str, ...]:
        return tuple(str(r["ARN"]) for r in self.resources if "ARN" in r)

    @property
    def encryption_context(self) -> Mapping[str, str]:
        params = self.request_parameters or {}
        ctx = params.get("encryptionContext") or params.get("destinationEncryptionContext") or {}
        return dict(ctx)

    def to_cloudtrail(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "eventVersion": "1.08",
            "userIdentity": dict(self.user_identity),
            "eventTime": self.event_time.astimezone(UTC).strftime(_TIME_FORMAT),
            "eventSource": self.event_source,
            "eventName": self.event_name,
            "awsRegion": self.aws_region,
            "requestParameters": self.request_parameters,
            "responseElements": self.response_elements,
            "readOnly": self.read_only,
            "resources": [dict(r) for r in self.resources],
            "eventType": self.event_type,
            "eventID": self.event_id,
        }
        if self.additional_event_data is not None:
            record["additionalEventData"] = self.additional_event_data
        if self.recipient_account_id is not None:
            record["recipientAccountId"] = self.recipient_account_id
        if self.service_event_details is not None:
            record["serviceEventDetails"] = self.service_event_details
        if self.error_code is not None:
            record["errorCode"] = self.error_code
            record["errorMessage"] = self.error_message
        return record

    @classmethod
    def from_cloudtrail(cls, record: Mapping[str, Any], *, event_time: datetime | None = None) -> AuditEvent:
        """Parse a record written by :meth:`to_cloudtrail` (``event_time`` overrides the
        second-precision ``eventTime``)."""
        when = event_time or datetime.strptime(record["eventTime"], _TIME_FORMAT).replace(tzinfo=UTC)
        return cls(
            event_name=record["eventName"],
            event_source=record["eventSource"],
            event_time=when,
            aws_region=record.get("awsRegion"),
            user_identity=record.get("userIdentity") or {},
            request_parameters=record.get("requestParameters"),
            response_elements=record.get("responseElements"),
            additional_event_data=record.get("additionalEventData"),
            error_code=record.get("errorCode"),
            error_message=record.get("errorMessage"),
            resources=tuple(record.get("resources") or ()),
            read_only=bool(record.get("readOnly", False)),
            event_id=record["eventID"],
            event_type=record.get("eventType", "AwsApiCall"),
            recipient_account_id=record.get("recipientAccountId"),
            service_event_details=record.get("serviceEventDetails"),
        )


class _EventIds:
    """Unique event ids without a uuid4 per event: random per process, then a counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter: Iterator[int] = count()

    def next(self) -> str:
        pid = os.getpid()
        if pid != self._pid:  # a forked child must not repeat its parent's ids
            self._pid = pid
            self._prefix = str(uuid.uuid4())[:24]
            self._counter = count()
        return f"{self._prefix}{next(self._counter):012x}"


class AuditTrail:
    """The append-only event log in a KMS store (``LocalKms.audit``)."""

    def __init__(self, store: KmsStore) -> None:
        self._store = store
        self._ids = _EventIds()
        self._second = -1
        self._stamp = ""

    def new_event_id(self) -> str:
        return self._ids.next()

    def event_time_text(self, t: float) -> str:
        sec = int(t)
        if sec != self._second:  # strftime once per second, not once per event
            self._second = sec
            self._stamp = time.strftime(_TIME_FORMAT, time.gmtime(sec))
        return self._stamp

    def record(self, event: AuditEvent) -> None:
        """Append one event (its own transaction)."""
        with self._store.surfaced():
            self.append(event, self._store.autocommit())

    def append(self, event: AuditEvent, tx: Tx) -> None:
        """Append one event through ``tx`` (the KMS: inside the write it records)."""
        tx.append_audit(
            event_time=event.event_time.timestamp(),
            source=event.event_source,
            name=event.event_name,
            principal=event.principal,
            resources=resources_column(event.resource_arns),
            body=json.dumps(event.to_cloudtrail(), separators=(",", ":")),
        )

    def query(
        self,
        *,
        key_arn: str | None = None,
        resource: str | None = None,
        event_name: str | None = None,
        event_source: str | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        context: Mapping[str, str] | None = None,
        errors: bool | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events in append order matching every given filter.

        ``key_arn`` / ``resource``: an ARN among the event's resources; ``since`` /
        ``until``: ``since <= eventTime < until``; ``context``: every pair present in
        the request's encryption context (case-sensitive, as KMS compares it);
        ``errors``: only failed (True) or only successful (False) calls.
        """
        sql = ["SELECT event_time, body FROM audit WHERE 1=1"]
        args: list[Any] = []
        for arn in (key_arn, resource):
            if arn is not None:
                sql.append("AND instr(resources, ?) > 0")
                args.append(f" {arn} ")
        if event_name is not None:
            sql.append("AND event_name = ?")
            args.append(event_name)
        if event_source is not None:
            sql.append("AND event_source = ?")
            args.append(event_source)
        if principal is not None:
            sql.append("AND principal = ?")
            args.append(principal)
        if since is not None:
            sql.append("AND event_time >= ?")
            args.append(since.timestamp())
        if until is not None:
            sql.append("AND event_time < ?")
            args.append(until.timestamp())
        sql.append("ORDER BY seq")
        with self._store.surfaced():
            rows = self._store.conn.execute(" ".join(sql), args).fetchall()
        out: list[AuditEvent] = []
        for t, body in rows:
            event = AuditEvent.from_cloudtrail(json.loads(body), event_time=datetime.fromtimestamp(t, UTC))
            if context is not None:
                ctx = event.encryption_context
                if any(ctx.get(k) != v for k, v in context.items()):
                    continue
            if errors is not None and (event.error_code is not None) != errors:
                continue
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
        return out

    def __len__(self) -> int:
        with self._store.surfaced():
            return int(self._store.conn.execute("SELECT count(*) FROM audit").fetchone()[0])
