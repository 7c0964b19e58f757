"""The local KMS's key operations: creation, description, key states and rotation (private).

Every rule here is a transition of one key record (Enabled, Disabled,
PendingDeletion; rotation on or off, on-demand rotations counted), applied in one
write transaction by :meth:`KeyOps._change_key`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ecrcrypt.errors import KmsInvalidStateError, LimitExceededError, ValidationError
from ecrcrypt.kms import (
    SYMMETRIC_DEFAULT,
    CancelKeyDeletionResponse,
    GetKeyRotationStatusResponse,
    KeyIdentifier,
    KeyManager,
    KeyMetadata,
    KeyState,
    RotateKeyOnDemandResponse,
    ScheduleKeyDeletionResponse,
)
from ecrcrypt.kms.local import ciphertext as blob
from ecrcrypt.kms.local import policy_store
from ecrcrypt.kms.local.access import authorize_account, check_key_policy, check_lockout
from ecrcrypt.kms.local.client import ClientBase
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.params import check_tokens
from ecrcrypt.kms.local.rules import (
    DAY,
    DEFAULT_PENDING_WINDOW,
    DEFAULT_ROTATION_PERIOD,
    MAX_DESCRIPTION,
    MAX_ON_DEMAND_ROTATIONS,
    MAX_PENDING_WINDOW,
    MAX_ROTATION_PERIOD,
    MIN_PENDING_WINDOW,
    MIN_ROTATION_PERIOD,
    evolve,
    next_rotation,
    require_not_pending,
    require_usable,
    utc,
)
from ecrcrypt.kms.local.store import KeyRecord


class KeyOps(ClientBase):
    """CreateKey, DescribeKey, the key-state changes and rotation."""

    # -- keys ---------------------------------------------------------------------------
    def create_key(
        self,
        *,
        description: str = "",
        key_spec: str = SYMMETRIC_DEFAULT,
        policy: str | None = None,
        bypass_policy_lockout_safety_check: bool = False,
    ) -> KeyMetadata:
        params: dict[str, object] = {"description": description, "keySpec": key_spec}
        if policy is not None:
            params["policy"] = policy
        if bypass_policy_lockout_safety_check:
            params["bypassPolicyLockoutSafetyCheck"] = True
        call = Call("CreateKey", params, read_only=False)

        def run(call: Call) -> KeyMetadata:
            if key_spec != SYMMETRIC_DEFAULT:
                raise ValidationError(f"KeySpec {key_spec!r} is not supported by the local KMS (SYMMETRIC_DEFAULT)")
            if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
                raise ValidationError(f"Description must be a str of at most {MAX_DESCRIPTION} characters")
            kms = self._kms
            caller = self._caller
            authorize_account(kms, caller, "CreateKey", kms.account)
            compiled = None if policy is None else check_key_policy(policy)
            with kms._store.write() as tx:
                rec = kms._new_key(tx, description=description, manager=KeyManager.CUSTOMER, now=kms._now())
                if compiled is not None and policy is not None:
                    if not bypass_policy_lockout_safety_check:
                        check_lockout(kms, caller, rec.arn, compiled)
                    policy_store.put_key_policy(tx.conn, rec.key_id, policy)
                meta = kms._metadata(rec)
                call.arns = (rec.arn,)
                call.response = {"keyMetadata": {"keyId": rec.key_id, "arn": rec.arn, "keyState": "Enabled"}}
                kms._record(self._caller, call, tx)
                kms._after_write(tx)
            return meta

        return self._run(call, run)

    def describe_key(self, *, key_id: KeyIdentifier, grant_tokens: Sequence[str] = ()) -> KeyMetadata:
        call = Call("DescribeKey", {"keyId": str(key_id)}, read_only=True)

        def run(call: Call) -> KeyMetadata:
            check_tokens(grant_tokens)
            key = self._kms._resolve(key_id, create_aws=self._caller.account == self._kms.account)
            call.arns = (key.arn,)
            # The key policy first: the account's DescribeKey (ECR's, before each
            # CreateRepository) never loads the key's grants.
            self._authorize(key, "DescribeKey")
            # KMS: DescribeKey works in every key state.
            return self._kms._metadata(key)

        return self._run(call, run)

    def _change_key(
        self, name: str, key_id: KeyIdentifier, change: Callable[[KeyRecord], KeyRecord], call: Call | None = None
    ) -> KeyRecord:
        """Resolve (key id or ARN), authorize, then apply ``change`` in one write transaction."""
        call = call or Call(name, {"keyId": str(key_id)}, read_only=False)
        kms = self._kms

        def run(call: Call) -> KeyRecord:
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, name)
            with kms._store.write() as tx:
                current = tx.key(key.key_id)
                if current is None:
                    raise kms._not_found(key.key_id)
                new = change(current)
                tx.update_key(new)
                kms._record(self._caller, call, tx)
                kms._after_write(tx)
            return new

        return self._run(call, run)

    def enable_key(self, *, key_id: KeyIdentifier) -> None:
        def change(key: KeyRecord) -> KeyRecord:
            require_not_pending(key)  # KMS: EnableKey on PendingDeletion -> KMSInvalidStateException
            return evolve(key, state=KeyState.ENABLED)

        self._change_key("EnableKey", key_id, change)

    def disable_key(self, *, key_id: KeyIdentifier) -> None:
        def change(key: KeyRecord) -> KeyRecord:
            require_not_pending(key)
            return evolve(key, state=KeyState.DISABLED)

        self._change_key("DisableKey", key_id, change)

    def schedule_key_deletion(
        self, *, key_id: KeyIdentifier, pending_window_in_days: int = DEFAULT_PENDING_WINDOW
    ) -> ScheduleKeyDeletionResponse:
        days = pending_window_in_days
        call = Call("ScheduleKeyDeletion", {"keyId": str(key_id), "pendingWindowInDays": days}, read_only=False)
        if not isinstance(days, int) or isinstance(days, bool) or not MIN_PENDING_WINDOW <= days <= MAX_PENDING_WINDOW:
            self._reject(
                call,
                ValidationError(
                    f"PendingWindowInDays must be between {MIN_PENDING_WINDOW} and {MAX_PENDING_WINDOW}, inclusive"
                ),
            )
        kms = self._kms

        def change(key: KeyRecord) -> KeyRecord:
            # KMS: ScheduleKeyDeletion on a key already PendingDeletion -> KMSInvalidStateException.
            require_not_pending(key)
            deletion = kms._now() + days * DAY
            call.response = {
                "keyId": key.arn,
                "deletionDate": deletion,
                "keyState": "PendingDeletion",
                "pendingWindowInDays": days,
            }
            return evolve(key, state=KeyState.PENDING_DELETION, deletion_date=deletion)

        new = self._change_key("ScheduleKeyDeletion", key_id, change, call)
        assert new.deletion_date is not None
        return ScheduleKeyDeletionResponse(
            key_id=new.arn,
            deletion_date=datetime.fromtimestamp(new.deletion_date, UTC),
            key_state=new.state,
            pending_window_in_days=days,
        )

    def cancel_key_deletion(self, *, key_id: KeyIdentifier) -> CancelKeyDeletionResponse:
        def change(key: KeyRecord) -> KeyRecord:
            if key.state is not KeyState.PENDING_DELETION:
                raise KmsInvalidStateError(f"{key.arn} is not pending deletion.")
            # KMS: "When this operation succeeds, the key state of the KMS key is Disabled."
            return evolve(key, state=KeyState.DISABLED, deletion_date=None)

        new = self._change_key("CancelKeyDeletion", key_id, change)
        return CancelKeyDeletionResponse(key_id=new.arn)

    # -- rotation -----------------------------------------------------------------------
    def enable_key_rotation(self, *, key_id: KeyIdentifier, rotation_period_in_days: int | None = None) -> None:
        period = DEFAULT_ROTATION_PERIOD if rotation_period_in_days is None else rotation_period_in_days
        call = Call("EnableKeyRotation", {"keyId": str(key_id), "rotationPeriodInDays": period}, read_only=False)
        if not isinstance(period, int) or not MIN_ROTATION_PERIOD <= period <= MAX_ROTATION_PERIOD:
            self._reject(
                call,
                ValidationError(
                    f"RotationPeriodInDays must be between {MIN_ROTATION_PERIOD} and {MAX_ROTATION_PERIOD}"
                ),
            )

        kms = self._kms

        def change(key: KeyRecord) -> KeyRecord:
            require_usable(key)
            # KMS: the first rotation is one period "after you enable automatic key
            # rotation"; a new period on an enabled key keeps the date it counts from.
            anchor = key.rotation_anchor if key.rotation_enabled and key.rotation_anchor is not None else kms._now()
            return evolve(key, rotation_enabled=True, rotation_period=period, rotation_anchor=anchor)

        self._change_key("EnableKeyRotation", key_id, change, call)

    def disable_key_rotation(self, *, key_id: KeyIdentifier) -> None:
        def change(key: KeyRecord) -> KeyRecord:
            require_usable(key)
            # KMS: "If you enable automatic key rotation again, AWS KMS rotates the key
            # material based on the new rotation-enable date."
            return evolve(key, rotation_enabled=False, rotation_period=None, rotation_anchor=None)

        self._change_key("DisableKeyRotation", key_id, change)

    def get_key_rotation_status(self, *, key_id: KeyIdentifier) -> GetKeyRotationStatusResponse:
        call = Call("GetKeyRotationStatus", {"keyId": str(key_id)}, read_only=True)

        def run(call: Call) -> GetKeyRotationStatusResponse:
            key = self._kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "GetKeyRotationStatus")
            # KMS: while the key is pending deletion the rotation status reads false.
            enabled = key.rotation_enabled and key.state is not KeyState.PENDING_DELETION
            return GetKeyRotationStatusResponse(
                key_rotation_enabled=enabled,
                key_id=key.arn,
                rotation_period_in_days=key.rotation_period if enabled else None,
                next_rotation_date=utc(next_rotation(key)) if enabled else None,
            )

        return self._run(call, run)

    def rotate_key_on_demand(self, *, key_id: KeyIdentifier) -> RotateKeyOnDemandResponse:
        kms = self._kms

        def change(key: KeyRecord) -> KeyRecord:
            require_usable(key)
            if key.ondemand_rotations >= MAX_ON_DEMAND_ROTATIONS:
                # KMS quota: 25 on-demand rotations per key, not adjustable.
                raise LimitExceededError(
                    f"{key.arn} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations."
                )
            version = key.current_version + 1
            material = blob.new_material()
            wrapped = blob.wrap_material(kms._root, key_id=key.key_id, version=version, material=material)
            tx = kms._store.autocommit()  # inside the write transaction of _change_key
            tx.insert_material(key.key_id, version, wrapped, kms._now())
            # KMS: rotation keeps key id, ARN, aliases and grants; "AWS KMS saves all
            # previous versions of the cryptographic material in perpetuity".
            return evolve(key, current_version=version, ondemand_rotations=key.ondemand_rotations + 1)

        new = self._change_key("RotateKeyOnDemand", key_id, change)
        return RotateKeyOnDemandResponse(key_id=new.arn)
