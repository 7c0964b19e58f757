"""The audit record of each local KMS call, in CloudTrail's shape (private).

Every call -- allowed or refused -- appends one event; GenerateDataKey and Decrypt
append one each time, so the event JSON is assembled from cached, pre-encoded pieces
(``resources``, the context's JSON) rather than one ``json.dumps`` per call.
"""

from __future__ import annotations

import logging
from typing import Any

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.kms.local.access import Caller, fold_pairs
from ecrcrypt.kms.local.audit import KMS_EVENT_SOURCE
from ecrcrypt.kms.local.params import dumps
from ecrcrypt.kms.local.state import KmsCore
from ecrcrypt.kms.local.store import Tx, resources_column

# One line per call, from what the audit record holds: operation, caller, keys, error code (never
# parameters, which may hold plaintext or ciphertext blobs). Changes at INFO, reads at DEBUG.
_log = logging.getLogger("ecrcrypt.kms")


class Call:
    """What the audit record of one call needs, filled in as the call proceeds."""

    __slots__ = ("arns", "extra", "name", "params", "read_only", "recorded", "response")

    def __init__(self, name: str, params: dict[str, Any] | str | None, *, read_only: bool) -> None:
        self.name = name
        self.params = params
        self.read_only = read_only
        self.response: dict[str, Any] | None = None
        self.extra: dict[str, Any] | None = None
        self.arns: tuple[str, ...] = ()
        self.recorded = False


class KmsEvents(KmsCore):
    """Audit records of the calls: CloudTrail-shaped JSON built from cached pieces."""

    def _record(self, caller: Caller, call: Call, tx: Tx | None = None, error: EcrCryptError | None = None) -> None:
        """Append the call's CloudTrail-shaped event (inside ``tx`` when given)."""
        head, column = self._event_head(caller, call, error)
        self._append_event(head, column, call.name, caller.principal, self._now(), tx)
        call.recorded = True
        level = logging.DEBUG if call.read_only and error is None else logging.INFO
        if _log.isEnabledFor(level):
            outcome = "ok" if error is None else error.code
            _log.log(level, "%s by %s on %s: %s", call.name, caller.principal, list(call.arns), outcome)

    def _event_head(self, caller: Caller, call: Call, error: EcrCryptError | None = None) -> tuple[str, str]:
        """The event's JSON up to its two per-event fields (``eventTime``, ``eventID``,
        written last), and its ``resources`` column.

        Built from pre-encoded pieces rather than one ``json.dumps`` of a dict: this
        runs on every GenerateDataKey and Decrypt, and the hot path caches the result.
        """
        params = call.params
        resources, column = self._resources(call.arns)
        parts = [
            '{"eventVersion":"1.08","userIdentity":',
            caller.identity_json,
            ',"eventSource":"kms.amazonaws.com","eventName":"',
            call.name,
            '","awsRegion":"',
            self.region,
            '","requestParameters":',
            params if isinstance(params, str) else dumps(params),
            ',"responseElements":',
            "null" if call.response is None else dumps(call.response),
            ',"readOnly":',
            "true" if call.read_only else "false",
            ',"resources":',
            resources,
            ',"eventType":"AwsApiCall","recipientAccountId":"',
            self.account,
            '"',
        ]
        if call.extra is not None:
            parts += (',"additionalEventData":', dumps(call.extra))
        if error is not None:
            parts += (',"errorCode":', dumps(error.code), ',"errorMessage":', dumps(error.message))
        parts.append(',"eventTime":"')
        return "".join(parts), column

    def _resources(self, arns: tuple[str, ...]) -> tuple[str, str]:
        """The audit event's ``resources`` JSON and column for ``arns``, cached."""
        cached = self._resources_json.get(arns)
        if cached is None:
            cached = (
                dumps([{"accountId": self.account, "type": "AWS::KMS::Key", "ARN": a} for a in arns]),
                resources_column(arns),
            )
            if len(self._resources_json) > 4096:
                self._resources_json.clear()
            self._resources_json[arns] = cached
        return cached

    def _append_event(self, head: str, column: str, name: str, principal: str, t: float, tx: Tx | None = None) -> None:
        trail = self.audit
        (tx or self._store.autocommit()).append_audit(
            event_time=t,
            source=KMS_EVENT_SOURCE,
            name=name,
            principal=principal,
            resources=column,
            body=f'{head}{trail.event_time_text(t)}","eventID":"{trail.new_event_id()}"}}',
        )

    def _hot_event(self, head: str, column: str, name: str, principal: str, t: float) -> None:
        """Append a hot-path call's event: ``head`` is its JSON up to the eventTime value."""
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("%s by %s on %s: ok", name, principal, column)
        trail = self.audit
        self._store.append_audit(
            t,
            KMS_EVENT_SOURCE,
            name,
            principal,
            column,
            f'{head}{trail.event_time_text(t)}","eventID":"{trail.new_event_id()}"}}',
        )

    def _context_info(self, ctx: EncryptionContext) -> tuple[str, frozenset[tuple[str, str]]]:
        """The context's audit JSON and its pairs folded for grant checks, cached by its bytes."""
        key = ctx.serialize()
        info = self._ctx_info.get(key)
        if info is None:
            items = dict(ctx.items())
            info = (dumps(items), fold_pairs(items))
            if len(self._ctx_info) > 4096:
                self._ctx_info.clear()
            self._ctx_info[key] = info
        return info
