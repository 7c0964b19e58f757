"""Resolving key references to live keys, and the key lifecycle the service runs (private).

A key id, key ARN, alias name or alias ARN becomes a key record here, and on the
way the deadlines nobody calls for are applied: a key past its deletion date is
purged, a key past its rotation date is rotated, and an AWS managed key is created
the first time its predefined alias is described. The last layer of the service
below the public :class:`~ecrcrypt.kms.local.service.LocalKms`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from ecrcrypt.arns import AliasArn, AliasName, KeyArn, KeyId
from ecrcrypt.errors import NotFoundError, ValidationError
from ecrcrypt.kms import GrantListEntry, KeyIdentifier, KeyManager, KeyMetadata, KeyState
from ecrcrypt.kms.local import ciphertext as blob
from ecrcrypt.kms.local.audit import KMS_EVENT_SOURCE, AuditEvent
from ecrcrypt.kms.local.params import parse_ref
from ecrcrypt.kms.local.rules import DAY, DEFAULT_ROTATION_PERIOD, PREDEFINED_AWS_ALIASES, evolve, next_rotation, utc
from ecrcrypt.kms.local.store import AliasRecord, GrantRecord, KeyRecord, Tx
from ecrcrypt.kms.local.warm import KmsWarm


class KmsKeys(KmsWarm):
    """Key references resolved to live keys, the deadlines applied on the way (deletion,
    automatic rotation), new keys, and key records shaped as responses."""

    def _key_arn(self, key_id: str) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key_id}"

    def _alias_arn(self, name: str) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:{name}"

    def _not_found(self, key_id: str) -> NotFoundError:
        return NotFoundError(f"Key '{self._key_arn(key_id)}' does not exist")

    def _resolve(self, ref: KeyIdentifier, *, aliases: bool = True, create_aws: bool = False) -> KeyRecord:
        """The live key a KeyId names; NotFound for unknown, other-Region or deleted keys."""
        if isinstance(ref, str):
            text = ref
        elif isinstance(ref, KeyId | KeyArn | AliasName | AliasArn):
            text = str(ref)
        else:
            # Anything but a str or an arns reference (None, a number) is refused, never stringified into a name.
            raise ValidationError(
                f"KeyId must be a str (key id, key ARN, alias name or alias ARN), not {type(ref).__name__}"
            )
        key_id = self._direct.get(text)
        if key_id is not None:
            return self._check_key(key_id)
        parsed = parse_ref(text)
        if isinstance(parsed, KeyId):
            key_id = parsed.value
            if len(self._direct) < 4096:
                self._direct[text] = key_id
        elif isinstance(parsed, KeyArn):
            if str(parsed.region) != self.region or str(parsed.account) != self.account:
                raise NotFoundError(f"Key '{text}' does not exist")
            key_id = parsed.key_id.value
            if len(self._direct) < 4096:
                self._direct[text] = key_id  # a key id or ARN always names the same key
        else:
            if not aliases:
                # KMS: this operation takes "the key ID or key ARN" only.
                raise NotFoundError(f"Invalid keyId '{text}'")
            if isinstance(parsed, AliasArn):
                if str(parsed.region) != self.region or str(parsed.account) != self.account:
                    raise NotFoundError(f"Alias '{text}' is not found.")
                name = parsed.alias.value
            else:
                name = parsed.value
            target = self._alias_target(name)
            if target is None:
                if create_aws and name in PREDEFINED_AWS_ALIASES:
                    target = self._create_aws_managed(name)
                else:
                    raise NotFoundError(f"Alias '{self._alias_arn(name)}' is not found.")
            key_id = target
        return self._check_key(key_id)

    def _check_key(self, key_id: str) -> KeyRecord:
        key = self._load_key(key_id)
        if key is None:
            raise self._not_found(key_id)
        if key.state is KeyState.PENDING_DELETION and key.deletion_date is not None:
            now = self._now()
            if key.deletion_date <= now:
                # KMS: at the end of the waiting period the key, its material and its
                # aliases are deleted; "all data encrypted under the KMS key is unrecoverable".
                with self._store.write() as tx:
                    current = tx.key(key.key_id)
                    if current is not None and current.deletion_date == key.deletion_date:
                        tx.purge_key(current, now)
                    self._after_write(tx)
                self._aeads = {k: v for k, v in self._aeads.items() if k[0] != key.key_id}
                raise self._not_found(key_id)
        elif key.state is KeyState.ENABLED and key.rotation_enabled:
            now = self._now()
            if next_rotation(key) <= now:
                key = self._rotate_automatically(key, now)
        return key

    def _rotate_automatically(self, key: KeyRecord, now: float) -> KeyRecord:
        """Rotate a key whose rotation date has passed (at the first call that sees it).

        KMS: "AWS KMS rotates the KMS key automatically on the next rotation date
        defined by your rotation period"; "A Disabled or PendingDeletion key is not
        rotated" (only Enabled keys get here), and a key re-enabled after its date
        "rotates immediately". Dates missed while nobody called collapse into one
        rotation -- no ciphertext could have used the skipped materials -- and the
        schedule stays anchored at enable date + n periods.
        """
        with self._store.write() as tx:
            current = tx.key(key.key_id)
            if (
                current is not None
                and current.state is KeyState.ENABLED
                and current.rotation_enabled
                and next_rotation(current) <= now
            ):
                assert current.rotation_period is not None
                period = current.rotation_period * DAY
                anchor = current.created if current.rotation_anchor is None else current.rotation_anchor
                missed = int((now - anchor) // period)
                version = current.current_version + 1
                material = blob.new_material()
                wrapped = blob.wrap_material(self._root, key_id=current.key_id, version=version, material=material)
                tx.insert_material(current.key_id, version, wrapped, now)
                # KMS: rotation keeps key id, ARN, aliases and grants, and "saves all
                # previous versions of the cryptographic material in perpetuity".
                tx.update_key(evolve(current, current_version=version, rotation_anchor=anchor + missed * period))
                self._record_rotation(tx, current, now)
            self._after_write(tx)
        return self._check_key(key.key_id)

    def _record_rotation(self, tx: Tx, key: KeyRecord, now: float) -> None:
        # KMS CloudTrail: automatic rotation is an AwsServiceEvent "RotateKey" with
        # serviceEventDetails.rotationType AUTOMATIC, invoked by KMS itself.
        self.audit.append(
            AuditEvent(
                event_name="RotateKey",
                event_time=datetime.fromtimestamp(now, UTC),
                aws_region=self.region,
                user_identity={"accountId": self.account, "invokedBy": KMS_EVENT_SOURCE},
                resources=({"accountId": self.account, "type": "AWS::KMS::Key", "ARN": key.arn},),
                event_id=self.audit.new_event_id(),
                event_type="AwsServiceEvent",
                recipient_account_id=self.account,
                service_event_details={"keyId": key.arn, "rotationType": "AUTOMATIC"},
            ),
            tx,
        )

    def _sweep(self) -> None:
        """Delete every key of this account and Region whose waiting period has elapsed."""
        now = self._now()
        rows = self._store.conn.execute(
            "SELECT key_id FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= ? "
            "AND account = ? AND region = ?",
            (now, self.account, self.region),
        ).fetchall()
        if not rows:
            return
        with self._store.write() as tx:
            for (key_id,) in rows:
                current = tx.key(key_id)
                if current is not None and current.deletion_date is not None and current.deletion_date <= now:
                    tx.purge_key(current, now)
            self._after_write(tx)
        gone = {key_id for (key_id,) in rows}
        self._aeads = {k: v for k, v in self._aeads.items() if k[0] not in gone}

    def _create_aws_managed(self, alias: str) -> str:
        with self._store.write() as tx:
            existing = tx.alias(self.account, self.region, alias)
            if existing is not None:
                key_id = existing.key_id
            else:
                now = self._now()
                rec = self._new_key(
                    tx,
                    description=f"Default key that protects my {alias[10:]} data when no other key is defined",
                    manager=KeyManager.AWS,
                    now=now,
                )
                # KMS: AWS managed keys rotate every year and this cannot be changed.
                tx.update_key(
                    evolve(rec, rotation_enabled=True, rotation_period=DEFAULT_ROTATION_PERIOD, rotation_anchor=now)
                )
                tx.put_alias(
                    AliasRecord(
                        account=self.account,
                        region=self.region,
                        name=alias,
                        key_id=rec.key_id,
                        created=now,
                        updated=now,
                    )
                )
                key_id = rec.key_id
            self._after_write(tx)
        return key_id

    def _new_key(self, tx: Tx, *, description: str, manager: KeyManager, now: float) -> KeyRecord:
        key_id = str(uuid.uuid4())
        rec = KeyRecord(
            key_id=key_id,
            account=self.account,
            region=self.region,
            arn=self._key_arn(key_id),
            description=description,
            state=KeyState.ENABLED,
            manager=manager,
            created=now,
            deletion_date=None,
            rotation_enabled=False,
            rotation_period=None,
            ondemand_rotations=0,
            current_version=0,
        )
        tx.insert_key(rec)
        material = blob.new_material()
        tx.insert_material(key_id, 0, blob.wrap_material(self._root, key_id=key_id, version=0, material=material), now)
        return rec

    def _metadata(self, key: KeyRecord) -> KeyMetadata:
        return KeyMetadata(
            aws_account_id=key.account,
            key_id=key.key_id,
            arn=key.arn,
            creation_date=datetime.fromtimestamp(key.created, UTC),
            enabled=key.state is KeyState.ENABLED,
            description=key.description,
            key_state=key.state,
            key_manager=key.manager,
            deletion_date=utc(key.deletion_date),
        )

    def _grant_entry(self, grant: GrantRecord) -> GrantListEntry:
        return GrantListEntry(
            key_id=self._key_arn(grant.key_id),
            grant_id=grant.grant_id,
            name=grant.name,
            creation_date=datetime.fromtimestamp(grant.created, UTC),
            grantee_principal=None if grant.grantee_is_service else grant.grantee,
            retiring_principal=None if grant.retiring_is_service else grant.retiring,
            grantee_service_principal=grant.grantee if grant.grantee_is_service else None,
            retiring_service_principal=grant.retiring if grant.retiring_is_service else None,
            issuing_account=f"arn:{self.partition}:iam::{grant.issuing_account}:root",
            operations=tuple(sorted(grant.operations, key=lambda op: op.value)),
            constraints=grant.constraints,
        )
