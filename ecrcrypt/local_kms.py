"""LocalKms: an embedded KMS with AWS KMS semantics, persisted in SQLite.

``LocalKms`` is the service (one account, one Region, a store, a clock, quotas, a
root key); ``LocalKms.client(principal)`` is a :class:`ecrcrypt.kms.Kms` bound to one
caller identity. The rules it enforces -- key states, grants, quotas, who may do
what -- are documented in docs/kms-model.md with their AWS sources; each line that
enforces one quotes or cites it.

Speed: the cryptographic calls take no write lock. Decoded keys, aliases and grants
are cached per process and re-read only when another connection has committed a
state change (``PRAGMA data_version`` + the store's generation counter); unwrapped
key material is cached as ``AESGCM`` objects (material versions are immutable). After
a key's first successful GenerateDataKey or Decrypt, the next ones on it run on its
per-key state (:mod:`ecrcrypt._kms_hot`) -- whatever the encryption context, which ECR
changes on every call: one ``data_version`` check, the context serialized once, a grant
lookup unless the key policy allows the caller, one AES-GCM call and one audit INSERT.
This process's own grant changes update the key's grant index in place.
"""

from __future__ import annotations

import math
import os
import secrets
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt import _kms_blob as blob
from ecrcrypt import _kms_hot as hot
from ecrcrypt._kms_params import (
    GRANT_ID,
    GRANT_NAME,
    MAX_DATA_KEY_BYTES,
    MAX_GRANT_TOKENS,
    MAX_PLAINTEXT,
    as_context,
    check_limit,
    check_operations,
    check_principal,
    check_tokens,
    data_key_length,
    decode_marker,
    dumps,
    encode_marker,
    json_scalar,
    json_text,
    new_token,
    parse_ref,
    token_grant_id,
)
from ecrcrypt._kms_policy import (
    Caller,
    GrantIndex,
    access_denied,
    authorize,
    check_denied,
    child_grant_allowed,
    fold_pairs,
    policy_allows,
)
from ecrcrypt._kms_store import AliasRecord, GrantRecord, KeyRecord, KmsStore, Tx, resources_column
from ecrcrypt.arns import AccountId, AliasArn, AliasName, KeyArn, KeyId, Region
from ecrcrypt.audit import KMS_EVENT_SOURCE, AuditEvent, AuditTrail
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import (
    AlreadyExistsError,
    DisabledError,
    EcrCryptError,
    IncorrectKeyError,
    InvalidAliasNameError,
    InvalidCiphertextError,
    InvalidGrantIdError,
    InvalidGrantTokenError,
    KmsInternalError,
    KmsInvalidStateError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)
from ecrcrypt.kms import (
    SYMMETRIC_DEFAULT,
    AliasListEntry,
    CancelKeyDeletionResponse,
    CreateGrantResponse,
    DataKeySpec,
    DecryptResponse,
    EncryptResponse,
    GenerateDataKeyResponse,
    GenerateDataKeyWithoutPlaintextResponse,
    GetKeyRotationStatusResponse,
    GrantConstraints,
    GrantListEntry,
    GrantOperation,
    KeyIdentifier,
    KeyManager,
    KeyMetadata,
    KeyState,
    Kms,
    KmsQuotas,
    ListAliasesResponse,
    ListGrantsResponse,
    ReEncryptResponse,
    RotateKeyOnDemandResponse,
    ScheduleKeyDeletionResponse,
)

__all__ = ["LocalKms", "LocalKmsClient", "ManualClock"]

T = TypeVar("T")

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


class ManualClock:
    """An injectable clock for tests: time moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValidationError("ManualClock needs a timezone-aware start")

    def __call__(self) -> datetime:
        return self._now

    def advance(self, *, days: float = 0, seconds: float = 0) -> None:
        self._now += timedelta(days=days, seconds=seconds)


def _utc(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def _load_root_key(path: Path | None, root_key: bytes | None, root_key_file: str | os.PathLike[str] | None) -> bytes:
    if root_key is not None:
        if root_key_file is not None:
            raise ValidationError("give root_key or root_key_file, not both")
        if not isinstance(root_key, bytes) or len(root_key) != 32:
            raise ValidationError("root_key must be 32 bytes (AES-256)")
        return root_key
    if path is None and root_key_file is None:
        return AESGCM.generate_key(bit_length=256)  # in-memory store: lives as long as the process
    file = Path(root_key_file) if root_key_file is not None else Path(f"{path}.rootkey")
    if not file.exists():
        # Written to a private temporary file, then linked into place: concurrent
        # first opens agree on one key, and no reader sees a half-written file.
        tmp = file.with_name(f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, AESGCM.generate_key(bit_length=256))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    data = file.read_bytes()
    if len(data) != 32:
        raise KmsInternalError(f"the root key file {file} does not hold a 32-byte key")
    return data


class LocalKms:
    """The local KMS service: one account and Region over one store.

    ``path=None`` keeps everything in memory (tests); otherwise ``path`` is the SQLite
    file and the root key comes from ``root_key`` (32 bytes) or from ``root_key_file``
    (default ``<path>.rootkey``, created with mode 0600 when missing). Several
    ``LocalKms`` objects, threads and processes may share one file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        account: str | AccountId = "111122223333",
        region: str | Region = "us-east-1",
        root_key: bytes | None = None,
        root_key_file: str | os.PathLike[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        quotas: KmsQuotas | None = None,
    ) -> None:
        self.account = str(account if isinstance(account, AccountId) else AccountId(account))
        region_value = region if isinstance(region, Region) else Region(region)
        self.region = str(region_value)
        self.partition = str(region_value.partition)
        self.quotas = quotas if quotas is not None else KmsQuotas()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._default_clock = clock is None
        self._store = KmsStore(path)
        self.path = self._store.path
        self._root = AESGCM(_load_root_key(self.path, root_key, root_key_file))
        self._check_root()
        self.audit = AuditTrail(self._store)
        self._dv = -1
        self._gen = -1
        self._epoch = 0
        self._keys: dict[str, KeyRecord | None] = {}
        self._aliases: dict[str, str | None] = {}
        self._grants: dict[str, GrantIndex] = {}
        self._aeads: dict[tuple[str, int], AESGCM] = {}
        self._resources_json: dict[tuple[str, ...], tuple[str, str]] = {}
        self._ctx_info: dict[bytes, tuple[str, frozenset[tuple[str, str]]]] = {}
        self._direct: dict[str, str] = {}
        # Hot path (see _kms_hot): per-key state by key reference and by key id, the
        # material versions by blob header; dropped with the cached rows.
        self._hot_refs: dict[str, hot.HotKey] = {}
        self._hot_ids: dict[str, hot.HotKey] = {}
        self._hot_blobs: dict[bytes, hot.HotMaterial] = {}
        # Grant tokens already parsed (a token's validity is its syntax: see token_grant_id).
        self._valid_tokens: set[str] = set()
        self._contexts = hot.RecentContexts()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"LocalKms(account={self.account!r}, region={self.region!r}, store={where!r})"

    def client(self, principal: str, *, deny: Iterable[str] = ()) -> LocalKmsClient:
        """A :class:`~ecrcrypt.kms.Kms` acting as ``principal`` (an account id, an IAM or
        STS ARN, or a service principal such as ``ecr.us-east-1.amazonaws.com``);
        ``deny`` lists IAM actions explicitly denied to it (``"kms:RetireGrant"``)."""
        return LocalKmsClient(self, Caller.parse(principal, deny))

    @property
    def root_principal(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:root"

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> LocalKms:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals shared by the clients -------------------------------------------------
    def _check_root(self) -> None:
        check = blob.wrap_material(self._root, key_id="root-check", version=0, material=b"\x00" * 32)
        stored = self._store.set_meta_once("root_check", check)
        blob.unwrap_material(self._root, key_id="root-check", version=0, wrapped=bytes(stored))

    def _now(self) -> float:
        return time.time() if self._default_clock else self._clock().timestamp()

    def _refresh(self) -> None:
        """Drop cached rows if another connection committed a state change."""
        store = self._store
        dv = store.data_version()
        if dv != self._dv:
            self._dv = dv
            gen = store.generation()
            if gen != self._gen:
                self._gen = gen
                self._forget()

    def _forget(self) -> None:
        self._epoch += 1  # a call that began before this must not warm the hot path
        self._keys.clear()
        self._aliases.clear()
        self._grants.clear()
        self._hot_refs.clear()
        self._hot_ids.clear()
        self._hot_blobs.clear()

    @contextmanager
    def _grant_write(self) -> Iterator[tuple[Tx, _GrantChanges]]:
        """A write transaction that adds or removes grants and nothing else.

        The key's cached ``GrantIndex`` is updated in place after the commit instead
        of being dropped -- unless another connection changed the store since this
        process last looked (the generation read inside the transaction is not the
        one we know), in which case everything cached is dropped as after any write.
        Keys and the hot path's per-key state do not depend on grants and stay.
        """
        with self._store.write() as tx:
            generation = int(tx.conn.execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()[0])
            in_sync = generation == self._gen
            if not in_sync:
                self._forget()
            changes = _GrantChanges()
            yield tx, changes
        # Committed, with the generation bumped once by this transaction (it held the write lock).
        self._gen = generation + 1
        if in_sync:
            for key_id, added, removed in changes.items:
                index = self._grants.get(key_id)
                if index is not None:
                    if added is not None:
                        index.add(added)
                    if removed is not None:
                        index.remove(removed)

    def _after_write(self, tx: Tx) -> None:
        self._gen = int(tx.conn.execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()[0])
        self._forget()

    def _hot_key(self, key: KeyRecord) -> hot.HotKey | None:
        """The hot-path state of ``key`` (a record read since the last ``_forget``), or
        ``None`` when the key is not Enabled: only the full path serves those."""
        if key.state is not KeyState.ENABLED:
            return None
        hk = self._hot_ids.get(key.key_id)
        if hk is None:
            resources, column = self._resources((key.arn,))
            hk = hot.HotKey(
                key_id=key.key_id,
                arn=key.arn,
                account=key.account,
                customer=key.manager is KeyManager.CUSTOMER,
                # The full path performs the next automatic rotation.
                expires=_next_rotation(key) if key.rotation_enabled else math.inf,
                header=blob.header(key.key_id, key.current_version),
                aead=self._aead(key, key.current_version),
                resources_tail=(
                    f',"resources":{resources},"eventType":"AwsApiCall","recipientAccountId":"{self.account}"'
                    ',"eventTime":"'
                ),
                column=column,
            )
            if len(self._hot_ids) >= hot.MAX_ENTRIES:
                self._hot_ids.clear()
            self._hot_ids[key.key_id] = hk
        return hk

    def _warm(self, key: KeyRecord, ref: object = None, header: bytes | None = None, version: int = 0) -> None:
        """After a successful full-path call on ``key``: file its hot state under the
        reference the caller used (a ``str``) and the blob header it opened."""
        hk = self._hot_key(key)
        if hk is None:
            return
        if type(ref) is str:
            if len(self._hot_refs) >= hot.MAX_ENTRIES:
                self._hot_refs.clear()
            self._hot_refs[ref] = hk
        blobs = self._hot_blobs
        if len(blobs) >= hot.MAX_ENTRIES:
            blobs.clear()
        if hk.header not in blobs:
            blobs[hk.header] = hot.HotMaterial(hk, hk.header, hk.aead)
        if header is not None and header not in blobs:
            blobs[header] = hot.HotMaterial(hk, header, self._aead(key, version))

    def _tokens_ok(self, tokens: object) -> bool:
        """Whether ``tokens`` is a list of well-formed grant tokens (else: the full path)."""
        if type(tokens) is not tuple and type(tokens) is not list:
            return False
        assert isinstance(tokens, tuple | list)
        if len(tokens) > MAX_GRANT_TOKENS:
            return False
        valid = self._valid_tokens
        for token in tokens:
            if token not in valid:
                try:
                    token_grant_id(token)
                except InvalidGrantTokenError:
                    return False
                if len(valid) >= hot.MAX_ENTRIES:
                    valid.clear()
                valid.add(token)
        return True

    def _key_arn(self, key_id: str) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key_id}"

    def _alias_arn(self, name: str) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:{name}"

    def _not_found(self, key_id: str) -> NotFoundError:
        return NotFoundError(f"Key '{self._key_arn(key_id)}' does not exist")

    def _load_key(self, key_id: str) -> KeyRecord | None:
        try:
            return self._keys[key_id]
        except KeyError:
            rec = self._store.autocommit().key(key_id)
            if rec is not None and (rec.account != self.account or rec.region != self.region):
                rec = None  # KMS: a key is usable only in its own Region
            self._keys[key_id] = rec
            return rec

    def _alias_target(self, name: str) -> str | None:
        try:
            return self._aliases[name]
        except KeyError:
            rec = self._store.autocommit().alias(self.account, self.region, name)
            target = None if rec is None else rec.key_id
            self._aliases[name] = target
            return target

    def _grants_of(self, key_id: str) -> GrantIndex:
        try:
            return self._grants[key_id]
        except KeyError:
            grants = GrantIndex(self._store.autocommit().grants_for_key(key_id))
            self._grants[key_id] = grants
            return grants

    def _aead(self, key: KeyRecord, version: int) -> AESGCM:
        cache_key = (key.key_id, version)
        aead = self._aeads.get(cache_key)
        if aead is None:
            wrapped = self._store.autocommit().material(key.key_id, version)
            if wrapped is None:
                raise InvalidCiphertextError("The ciphertext refers to key material that does not exist.")
            aead = AESGCM(blob.unwrap_material(self._root, key_id=key.key_id, version=version, wrapped=wrapped))
            self._aeads[cache_key] = aead
        return aead

    def _resolve(self, ref: KeyIdentifier, *, aliases: bool = True, create_aws: bool = False) -> KeyRecord:
        """The live key a KeyId names; NotFound for unknown, other-Region or deleted keys."""
        text = ref if isinstance(ref, str) else str(ref)
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
            if _next_rotation(key) <= now:
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
                and _next_rotation(current) <= now
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
                tx.update_key(_evolve(current, current_version=version, rotation_anchor=anchor + missed * period))
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
                    _evolve(rec, rotation_enabled=True, rotation_period=DEFAULT_ROTATION_PERIOD, rotation_anchor=now)
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
            deletion_date=_utc(key.deletion_date),
        )

    def _grant_entry(self, grant: GrantRecord) -> GrantListEntry:
        return GrantListEntry(
            key_id=self._key_arn(grant.key_id),
            grant_id=grant.grant_id,
            name=grant.name,
            creation_date=datetime.fromtimestamp(grant.created, UTC),
            grantee_principal=grant.grantee,
            retiring_principal=grant.retiring,
            issuing_account=f"arn:{self.partition}:iam::{grant.issuing_account}:root",
            operations=tuple(sorted(grant.operations, key=lambda op: op.value)),
            constraints=grant.constraints,
        )

    def _record(self, caller: Caller, call: _Call, tx: Tx | None = None, error: EcrCryptError | None = None) -> None:
        """Append the call's CloudTrail-shaped event (inside ``tx`` when given)."""
        head, column = self._event_head(caller, call, error)
        self._append_event(head, column, call.name, caller.principal, self._now(), tx)
        call.recorded = True

    def _event_head(self, caller: Caller, call: _Call, error: EcrCryptError | None = None) -> tuple[str, str]:
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


# KMS GenerateDataKey KeySpec: AES_256 (32 bytes) or AES_128 (16 bytes).
_SPEC_BYTES = {spec.value: spec.number_of_bytes for spec in DataKeySpec}

# Calls that list or name aliases or grants without resolving a key first: they
# sweep keys whose deletion waiting period has elapsed before they look.
_SWEEPING = frozenset({"ListAliases", "ListRetirableGrants"})


class _GrantChanges:
    """The grants a ``_grant_write`` transaction added or removed, per key."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[str, GrantRecord | None, str | None]] = []

    def added(self, grant: GrantRecord) -> None:
        self.items.append((grant.key_id, grant, None))

    def removed(self, grant: GrantRecord) -> None:
        self.items.append((grant.key_id, None, grant.grant_id))


class _Call:
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


def _next_rotation(key: KeyRecord) -> float:
    """When the key's next automatic rotation is due (rotation enabled)."""
    if not key.rotation_enabled or key.rotation_period is None:
        return math.inf
    anchor = key.created if key.rotation_anchor is None else key.rotation_anchor
    return anchor + key.rotation_period * DAY


def _evolve(rec: KeyRecord, **changes: Any) -> KeyRecord:
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


def _require_usable(key: KeyRecord) -> None:
    err = _state_error(key)
    if err is not None:
        raise err


def _require_not_pending(key: KeyRecord) -> None:
    if key.state is KeyState.PENDING_DELETION:
        raise KmsInvalidStateError(f"{key.arn} is pending deletion.")


class LocalKmsClient(Kms):
    """The KMS API of a :class:`LocalKms`, acting as one caller. See :class:`ecrcrypt.kms.Kms`."""

    def __init__(self, kms: LocalKms, caller: Caller) -> None:
        self._kms = kms
        self._caller = caller
        # Audit JSON of hot-path requests around their context: (name, reference,
        # key spec, size) -> (text before the context, text after it up to "resources").
        self._heads: dict[Hashable, tuple[str, str]] = {}
        # KMS's default key policy gives the key's account every operation on a
        # customer managed key; an explicit deny takes the full path.
        self._policy_account = None if caller.denies else caller.account

    def __repr__(self) -> str:
        return f"LocalKmsClient(principal={self._caller.principal!r}, kms={self._kms!r})"

    @property
    def principal(self) -> str:
        return self._caller.principal

    def _run(self, call: _Call, fn: Callable[[_Call], T], *, refreshed: bool = False) -> T:
        """Run ``fn`` under the store lock and audit it (``refreshed``: the caller, holding
        the lock, has just run ``_refresh``)."""
        kms = self._kms
        with kms._store.lock:
            try:
                if not refreshed:
                    kms._refresh()
                if not call.read_only or call.name in _SWEEPING:
                    kms._sweep()
                result = fn(call)
            except EcrCryptError as exc:
                if kms._store.conn.in_transaction:  # pragma: no cover - write() rolls back first
                    kms._store.conn.execute("ROLLBACK")
                kms._record(self._caller, call, error=exc)
                raise
            if not call.recorded:
                kms._record(self._caller, call)
            return result

    def _reject(self, call: _Call, error: EcrCryptError) -> NoReturn:
        """Audit and raise a request refused before it reaches the service logic."""
        with self._kms._store.lock:
            self._kms._record(self._caller, call, error=error)
        raise error

    # -- keys ---------------------------------------------------------------------------
    def create_key(self, *, description: str = "", key_spec: str = SYMMETRIC_DEFAULT) -> KeyMetadata:
        call = _Call("CreateKey", {"description": description, "keySpec": key_spec}, read_only=False)

        def run(call: _Call) -> KeyMetadata:
            if key_spec != SYMMETRIC_DEFAULT:
                raise ValidationError(f"KeySpec {key_spec!r} is not supported by the local KMS (SYMMETRIC_DEFAULT)")
            if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
                raise ValidationError(f"Description must be a str of at most {MAX_DESCRIPTION} characters")
            caller = self._caller
            check_denied(caller, "CreateKey", "*")
            if caller.account != self._kms.account:
                raise access_denied(caller, "CreateKey", "*")
            kms = self._kms
            with kms._store.write() as tx:
                rec = kms._new_key(tx, description=description, manager=KeyManager.CUSTOMER, now=kms._now())
                meta = kms._metadata(rec)
                call.arns = (rec.arn,)
                call.response = {"keyMetadata": {"keyId": rec.key_id, "arn": rec.arn, "keyState": "Enabled"}}
                kms._record(self._caller, call, tx)
                kms._after_write(tx)
            return meta

        return self._run(call, run)

    def describe_key(self, *, key_id: KeyIdentifier, grant_tokens: Sequence[str] = ()) -> KeyMetadata:
        call = _Call("DescribeKey", {"keyId": str(key_id)}, read_only=True)

        def run(call: _Call) -> KeyMetadata:
            check_tokens(grant_tokens)
            key = self._kms._resolve(key_id, create_aws=self._caller.account == self._kms.account)
            call.arns = (key.arn,)
            # The key policy first: the account's DescribeKey (ECR's, before each
            # CreateRepository) never loads the key's grants.
            authorize(self._caller, key, "DescribeKey", grants=lambda: self._kms._grants_of(key.key_id))
            # KMS: DescribeKey works in every key state.
            return self._kms._metadata(key)

        return self._run(call, run)

    def _change_key(
        self, name: str, key_id: KeyIdentifier, change: Callable[[KeyRecord], KeyRecord], call: _Call | None = None
    ) -> KeyRecord:
        """Resolve (key id or ARN), authorize, then apply ``change`` in one write transaction."""
        call = call or _Call(name, {"keyId": str(key_id)}, read_only=False)
        kms = self._kms

        def run(call: _Call) -> KeyRecord:
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            authorize(self._caller, key, name, grants=lambda: kms._grants_of(key.key_id))
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
            _require_not_pending(key)  # KMS: EnableKey on PendingDeletion -> KMSInvalidStateException
            return _evolve(key, state=KeyState.ENABLED)

        self._change_key("EnableKey", key_id, change)

    def disable_key(self, *, key_id: KeyIdentifier) -> None:
        def change(key: KeyRecord) -> KeyRecord:
            _require_not_pending(key)
            return _evolve(key, state=KeyState.DISABLED)

        self._change_key("DisableKey", key_id, change)

    def schedule_key_deletion(
        self, *, key_id: KeyIdentifier, pending_window_in_days: int = DEFAULT_PENDING_WINDOW
    ) -> ScheduleKeyDeletionResponse:
        days = pending_window_in_days
        call = _Call("ScheduleKeyDeletion", {"keyId": str(key_id), "pendingWindowInDays": days}, read_only=False)
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
            _require_not_pending(key)
            deletion = kms._now() + days * DAY
            call.response = {
                "keyId": key.arn,
                "deletionDate": deletion,
                "keyState": "PendingDeletion",
                "pendingWindowInDays": days,
            }
            return _evolve(key, state=KeyState.PENDING_DELETION, deletion_date=deletion)

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
            return _evolve(key, state=KeyState.DISABLED, deletion_date=None)

        new = self._change_key("CancelKeyDeletion", key_id, change)
        return CancelKeyDeletionResponse(key_id=new.arn)

    # -- rotation -----------------------------------------------------------------------
    def enable_key_rotation(self, *, key_id: KeyIdentifier, rotation_period_in_days: int | None = None) -> None:
        period = DEFAULT_ROTATION_PERIOD if rotation_period_in_days is None else rotation_period_in_days
        call = _Call("EnableKeyRotation", {"keyId": str(key_id), "rotationPeriodInDays": period}, read_only=False)
        if not isinstance(period, int) or not MIN_ROTATION_PERIOD <= period <= MAX_ROTATION_PERIOD:
            self._reject(
                call,
                ValidationError(
                    f"RotationPeriodInDays must be between {MIN_ROTATION_PERIOD} and {MAX_ROTATION_PERIOD}"
                ),
            )

        kms = self._kms

        def change(key: KeyRecord) -> KeyRecord:
            _require_usable(key)
            # KMS: the first rotation is one period "after you enable automatic key
            # rotation"; a new period on an enabled key keeps the date it counts from.
            anchor = key.rotation_anchor if key.rotation_enabled and key.rotation_anchor is not None else kms._now()
            return _evolve(key, rotation_enabled=True, rotation_period=period, rotation_anchor=anchor)

        self._change_key("EnableKeyRotation", key_id, change, call)

    def disable_key_rotation(self, *, key_id: KeyIdentifier) -> None:
        def change(key: KeyRecord) -> KeyRecord:
            _require_usable(key)
            # KMS: "If you enable automatic key rotation again, AWS KMS rotates the key
            # material based on the new rotation-enable date."
            return _evolve(key, rotation_enabled=False, rotation_period=None, rotation_anchor=None)

        self._change_key("DisableKeyRotation", key_id, change)

    def get_key_rotation_status(self, *, key_id: KeyIdentifier) -> GetKeyRotationStatusResponse:
        call = _Call("GetKeyRotationStatus", {"keyId": str(key_id)}, read_only=True)

        def run(call: _Call) -> GetKeyRotationStatusResponse:
            key = self._kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            authorize(self._caller, key, "GetKeyRotationStatus")
            # KMS: while the key is pending deletion the rotation status reads false.
            enabled = key.rotation_enabled and key.state is not KeyState.PENDING_DELETION
            return GetKeyRotationStatusResponse(
                key_rotation_enabled=enabled,
                key_id=key.arn,
                rotation_period_in_days=key.rotation_period if enabled else None,
                next_rotation_date=_utc(_next_rotation(key)) if enabled else None,
            )

        return self._run(call, run)

    def rotate_key_on_demand(self, *, key_id: KeyIdentifier) -> RotateKeyOnDemandResponse:
        kms = self._kms

        def change(key: KeyRecord) -> KeyRecord:
            _require_usable(key)
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
            return _evolve(key, current_version=version, ondemand_rotations=key.ondemand_rotations + 1)

        new = self._change_key("RotateKeyOnDemand", key_id, change)
        return RotateKeyOnDemandResponse(key_id=new.arn)

    # -- aliases ------------------------------------------------------------------------
    def _alias_name(self, alias_name: str) -> str:
        name = AliasName(alias_name).value if isinstance(alias_name, str) else str(alias_name)
        if name.startswith("alias/aws/"):
            # KMS CreateAlias: "The alias name cannot begin with alias/aws/".
            raise InvalidAliasNameError(f"{name}: the alias/aws/ prefix is reserved for AWS managed keys")
        return name

    def create_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        call = _Call("CreateAlias", {"aliasName": str(alias_name), "targetKeyId": str(target_key_id)}, read_only=False)
        kms = self._kms

        def run(call: _Call) -> None:
            name = self._alias_name(alias_name)
            key = kms._resolve(target_key_id, aliases=False)
            call.arns = (key.arn,)
            authorize(self._caller, key, "CreateAlias")
            _require_not_pending(key)  # KMS: CreateAlias on PendingDeletion -> KMSInvalidStateException
            with kms._store.write() as tx:
                if tx.alias(kms.account, kms.region, name) is not None:
                    raise AlreadyExistsError(f"An alias with the name {kms._alias_arn(name)} already exists")
                if tx.count_aliases(key.key_id) >= MAX_ALIASES_PER_KEY:
                    raise LimitExceededError(f"{key.arn} already has {MAX_ALIASES_PER_KEY} aliases.")
                now = kms._now()
                tx.put_alias(
                    AliasRecord(
                        account=kms.account, region=kms.region, name=name, key_id=key.key_id, created=now, updated=now
                    )
                )
                kms._record(self._caller, call, tx)
                kms._after_write(tx)

        self._run(call, run)

    def update_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        call = _Call("UpdateAlias", {"aliasName": str(alias_name), "targetKeyId": str(target_key_id)}, read_only=False)
        kms = self._kms

        def run(call: _Call) -> None:
            name = self._alias_name(alias_name)
            key = kms._resolve(target_key_id, aliases=False)
            call.arns = (key.arn,)
            authorize(self._caller, key, "UpdateAlias")
            _require_not_pending(key)
            with kms._store.write() as tx:
                existing = tx.alias(kms.account, kms.region, name)
                if existing is None:
                    raise NotFoundError(f"Alias '{kms._alias_arn(name)}' is not found.")
                old = tx.key(existing.key_id)
                if old is not None:
                    authorize(self._caller, old, "UpdateAlias")
                tx.put_alias(
                    AliasRecord(
                        account=kms.account,
                        region=kms.region,
                        name=name,
                        key_id=key.key_id,
                        created=existing.created,
                        updated=kms._now(),
                    )
                )
                kms._record(self._caller, call, tx)
                kms._after_write(tx)

        self._run(call, run)

    def delete_alias(self, *, alias_name: str) -> None:
        call = _Call("DeleteAlias", {"aliasName": str(alias_name)}, read_only=False)
        kms = self._kms

        def run(call: _Call) -> None:
            name = self._alias_name(alias_name)
            with kms._store.write() as tx:
                existing = tx.alias(kms.account, kms.region, name)
                if existing is None:
                    raise NotFoundError(f"Alias '{kms._alias_arn(name)}' is not found.")
                key = tx.key(existing.key_id)
                if key is not None:
                    call.arns = (key.arn,)
                    # KMS: DeleteAlias succeeds in every key state, PendingDeletion included.
                    authorize(self._caller, key, "DeleteAlias")
                tx.delete_alias(kms.account, kms.region, name)
                kms._record(self._caller, call, tx)
                kms._after_write(tx)

        self._run(call, run)

    def list_aliases(
        self, *, key_id: KeyIdentifier | None = None, limit: int | None = None, marker: str | None = None
    ) -> ListAliasesResponse:
        call = _Call("ListAliases", {"keyId": None if key_id is None else str(key_id), "limit": limit}, read_only=True)
        kms = self._kms

        def run(call: _Call) -> ListAliasesResponse:
            n = check_limit(limit)
            after = decode_marker("alias", marker)
            check_denied(self._caller, "ListAliases", "*")
            if self._caller.account != kms.account:
                raise access_denied(self._caller, "ListAliases", "*")
            target = None
            if key_id is not None:
                key = kms._resolve(key_id, aliases=False)
                call.arns = (key.arn,)
                target = key.key_id
            records = kms._store.autocommit().aliases(kms.account, kms.region, target)
            entries = [
                AliasListEntry(
                    alias_name=r.name,
                    alias_arn=kms._alias_arn(r.name),
                    target_key_id=r.key_id,
                    creation_date=_utc(r.created),
                    last_updated_date=_utc(r.updated),
                )
                for r in records
                if after is None or r.name > after
            ]
            page = entries[:n]
            truncated = len(entries) > n
            return ListAliasesResponse(
                aliases=tuple(page),
                next_marker=encode_marker("alias", page[-1].alias_name) if truncated else None,
                truncated=truncated,
            )

        return self._run(call, run)

    # -- cryptography -------------------------------------------------------------------
    def _use(self, key_id: KeyIdentifier, op: GrantOperation, ctx: EncryptionContext, call: _Call) -> KeyRecord:
        kms = self._kms
        key = kms._resolve(key_id)
        call.arns = (key.arn,)
        caller = self._caller
        if caller.denies or not policy_allows(caller, key, op.value):
            pairs = kms._context_info(ctx)[1]
            authorize(caller, key, op.value, grants=kms._grants_of(key.key_id), context=ctx, pairs=pairs)
        _require_usable(key)
        return key

    def _head(self, key: Hashable, name: str, before: str, after: str) -> tuple[str, str]:
        """The audit JSON around a hot-path request's context, built once per request shape."""
        heads = self._heads
        found = heads.get(key)
        if found is None:
            kms = self._kms
            found = (
                "".join(
                    (
                        '{"eventVersion":"1.08","userIdentity":',
                        self._caller.identity_json,
                        ',"eventSource":"kms.amazonaws.com","eventName":"',
                        name,
                        '","awsRegion":"',
                        kms.region,
                        '","requestParameters":',
                        before,
                    )
                ),
                after + ',"responseElements":null,"readOnly":true',
            )
            if len(heads) >= hot.MAX_ENTRIES:
                heads.clear()
            heads[key] = found
        return found

    def _hot_allowed(self, hk: hot.HotKey, op: GrantOperation, parts: hot.ContextParts) -> bool:
        """The full path's authorization, for a caller without explicit denies."""
        if self._policy_account is not None and self._policy_account == hk.account and hk.customer:
            return True  # the default key policy of a customer managed key
        if self._caller.denies:
            return False
        grants = self._kms._grants_of(hk.key_id)
        return grants.find(self._caller.principal, op, None, parts.folded()) is not None

    def _generate(
        self,
        name: str,
        op: GrantOperation,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None,
        number_of_bytes: int | None,
        key_spec: DataKeySpec | str | None,
        grant_tokens: Sequence[str],
    ) -> tuple[bytes, bytes, str]:
        kms = self._kms
        with kms._store.lock:
            kms._refresh()
            if type(key_id) is str:
                hk = kms._hot_refs.get(key_id)
                if hk is not None:
                    out = self._generate_hot(
                        hk, name, op, key_id, encryption_context, number_of_bytes, key_spec, grant_tokens
                    )
                    if out is not None:
                        return out
            return self._generate_slow(name, op, key_id, encryption_context, number_of_bytes, key_spec, grant_tokens)

    def _generate_hot(
        self,
        hk: hot.HotKey,
        name: str,
        op: GrantOperation,
        key_id: str,
        encryption_context: object,
        number_of_bytes: object,
        key_spec: object,
        grant_tokens: object,
    ) -> tuple[bytes, bytes, str] | None:
        """GenerateDataKey on a hot key: the request's own work only; ``None`` sends the
        call through the full path (which validates, raises and audits)."""
        kms = self._kms
        if key_spec is None:
            if type(number_of_bytes) is not int or not 1 <= number_of_bytes <= MAX_DATA_KEY_BYTES:
                return None
            n = number_of_bytes
        elif number_of_bytes is None and type(key_spec) is str:
            n = _SPEC_BYTES.get(key_spec, 0)
            if not n:
                return None
        else:
            return None
        if grant_tokens and not kms._tokens_ok(grant_tokens):
            return None
        parts = kms._contexts.parts(encryption_context)
        if parts is None:
            return None
        t = kms._now()
        if t >= hk.expires or not self._hot_allowed(hk, op, parts):
            return None
        plaintext = os.urandom(n)
        nonce = os.urandom(blob.NONCE_SIZE)
        sealed = hk.header + nonce + hk.aead.encrypt(nonce, plaintext, hk.aad_prefix + parts.serialized)
        shape = (name, key_id, key_spec, number_of_bytes)
        head = self._heads.get(shape)
        if head is None:
            extra = f',"keySpec":{json_text(key_spec)}' if key_spec is not None else f',"numberOfBytes":{n}'
            head = self._head(shape, name, f'{{"keyId":{json_text(key_id)},"encryptionContext":', extra + "}")
        kms._hot_event(head[0] + parts.json + head[1] + hk.resources_tail, hk.column, name, self._caller.principal, t)
        return plaintext, sealed, hk.arn

    def _generate_slow(
        self,
        name: str,
        op: GrantOperation,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None,
        number_of_bytes: int | None,
        key_spec: DataKeySpec | str | None,
        grant_tokens: Sequence[str],
    ) -> tuple[bytes, bytes, str]:
        ctx = as_context(encryption_context)
        kms = self._kms
        params = "".join(
            (
                '{"keyId":',
                json_text(key_id if isinstance(key_id, str) else str(key_id)),
                ',"encryptionContext":',
                kms._context_info(ctx)[0],
                "" if key_spec is None else f',"keySpec":{json_text(str(key_spec))}',
                "" if number_of_bytes is None else f',"numberOfBytes":{json_scalar(number_of_bytes)}',
                "}",
            )
        )
        call = _Call(name, params, read_only=True)

        def run(call: _Call) -> tuple[bytes, bytes, str]:
            epoch = kms._epoch
            n = data_key_length(number_of_bytes, key_spec)
            if grant_tokens:
                check_tokens(grant_tokens)
            key = self._use(key_id, op, ctx, call)
            plaintext = os.urandom(n)
            version = key.current_version
            aead = kms._aead(key, version)
            header = blob.header(key.key_id, version)
            aad = blob.aad(header, key.arn, ctx.serialize())
            nonce = os.urandom(blob.NONCE_SIZE)
            sealed = header + nonce + aead.encrypt(nonce, plaintext, aad)
            if epoch == kms._epoch:  # nothing was dropped during the call: the record is current
                kms._warm(key, key_id)
            return plaintext, sealed, key.arn

        return self._run(call, run, refreshed=True)

    def generate_data_key(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyResponse:
        plaintext, sealed, arn = self._generate(
            "GenerateDataKey",
            GrantOperation.GENERATE_DATA_KEY,
            key_id,
            encryption_context,
            number_of_bytes,
            key_spec,
            grant_tokens,
        )
        return GenerateDataKeyResponse(ciphertext_blob=sealed, plaintext=plaintext, key_id=arn)

    def generate_data_key_without_plaintext(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyWithoutPlaintextResponse:
        _, sealed, arn = self._generate(
            "GenerateDataKeyWithoutPlaintext",
            GrantOperation.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
            key_id,
            encryption_context,
            number_of_bytes,
            key_spec,
            grant_tokens,
        )
        return GenerateDataKeyWithoutPlaintextResponse(ciphertext_blob=sealed, key_id=arn)

    def encrypt(
        self,
        *,
        key_id: KeyIdentifier,
        plaintext: bytes,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> EncryptResponse:
        ctx = as_context(encryption_context)
        call = _Call(
            "Encrypt",
            {"keyId": str(key_id), "encryptionContext": ctx.to_dict(), "encryptionAlgorithm": SYMMETRIC_DEFAULT},
            read_only=True,
        )
        kms = self._kms

        def run(call: _Call) -> EncryptResponse:
            if not isinstance(plaintext, bytes) or not 1 <= len(plaintext) <= MAX_PLAINTEXT:
                raise ValidationError(f"Plaintext must be 1 to {MAX_PLAINTEXT} bytes")
            check_tokens(grant_tokens)
            key = self._use(key_id, GrantOperation.ENCRYPT, ctx, call)
            version = key.current_version
            sealed = blob.seal(
                kms._aead(key, version),
                key_id=key.key_id,
                version=version,
                key_arn=key.arn,
                plaintext=plaintext,
                context=ctx.serialize(),
            )
            return EncryptResponse(ciphertext_blob=sealed, key_id=key.arn)

        return self._run(call, run)

    def _open(
        self,
        ciphertext_blob: bytes,
        ctx: EncryptionContext,
        key_id: KeyIdentifier | None,
        op: GrantOperation,
        call: _Call,
    ) -> tuple[KeyRecord, bytes]:
        kms = self._kms
        parsed = blob.parse(ciphertext_blob)
        if key_id is not None:
            named = kms._resolve(key_id)
            if named.key_id != parsed.key_id:
                call.arns = (named.arn,)
                # KMS: "The KeyId in a Decrypt request and the SourceKeyId in a ReEncrypt
                # request must identify the same KMS key that was used to encrypt".
                raise IncorrectKeyError(
                    "The key ID in the request does not identify a KMS key that can perform this operation."
                )
        key = kms._load_key(parsed.key_id)
        if key is None:
            tx = kms._store.autocommit()
            if tx.is_deleted(parsed.key_id) is not None or tx.key(parsed.key_id) is not None:
                # A deleted key, or a key of another Region sharing the store.
                raise kms._not_found(parsed.key_id)
            raise InvalidCiphertextError("The ciphertext is invalid, or the encryption context does not match.")
        key = kms._resolve(key.key_id)  # applies the deletion deadline
        call.arns = (key.arn,)
        caller = self._caller
        if caller.denies or not policy_allows(caller, key, op.value):
            pairs = kms._context_info(ctx)[1]
            authorize(caller, key, op.value, grants=kms._grants_of(key.key_id), context=ctx, pairs=pairs)
        if op is GrantOperation.RE_ENCRYPT_FROM and key.state is KeyState.PENDING_DELETION:
            pass  # KMS key-state table, footnote 10: ReEncrypt from a key pending deletion succeeds
        else:
            _require_usable(key)
        if parsed.version > key.current_version:
            raise InvalidCiphertextError("The ciphertext is invalid, or the encryption context does not match.")
        plaintext = blob.open_blob(kms._aead(key, parsed.version), parsed, key_arn=key.arn, context=ctx.serialize())
        return key, plaintext

    def decrypt(
        self,
        *,
        ciphertext_blob: bytes,
        encryption_context: Mapping[str, str] | None = None,
        key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> DecryptResponse:
        kms = self._kms
        with kms._store.lock:
            kms._refresh()
            if type(ciphertext_blob) is bytes and blob.MIN_BLOB <= len(ciphertext_blob) <= blob.MAX_BLOB:
                material = kms._hot_blobs.get(ciphertext_blob[: blob.HEADER_SIZE])
                if material is not None:
                    out = self._decrypt_hot(material, ciphertext_blob, encryption_context, key_id, grant_tokens)
                    if out is not None:
                        return out
            return self._decrypt_slow(ciphertext_blob, encryption_context, key_id, grant_tokens)

    def _decrypt_hot(
        self,
        material: hot.HotMaterial,
        ciphertext_blob: bytes,
        encryption_context: object,
        key_id: object,
        grant_tokens: object,
    ) -> DecryptResponse | None:
        """Decrypt with a hot key's material: ``None`` sends the call through the full path."""
        kms = self._kms
        hk = material.key
        if key_id is not None:
            if type(key_id) is not str:
                return None
            named = kms._hot_refs.get(key_id)
            if named is None or named.key_id != hk.key_id:
                return None  # unknown here, or another key: IncorrectKeyException on the full path
        if grant_tokens and not kms._tokens_ok(grant_tokens):
            return None
        parts = kms._contexts.parts(encryption_context)
        if parts is None:
            return None
        t = kms._now()
        if t >= hk.expires or not self._hot_allowed(hk, GrantOperation.DECRYPT, parts):
            return None
        start = blob.HEADER_SIZE + blob.NONCE_SIZE
        try:
            plaintext = material.aead.decrypt(
                ciphertext_blob[blob.HEADER_SIZE : start],
                ciphertext_blob[start:],
                material.aad_prefix + parts.serialized,
            )
        except InvalidTag:
            return None  # the full path raises InvalidCiphertextError and audits it
        shape = ("Decrypt", key_id)
        head = self._heads.get(shape)
        if head is None:
            after = "}" if key_id is None else f',"keyId":{json_text(str(key_id))}}}'
            head = self._head(
                shape, "Decrypt", '{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":', after
            )
        kms._hot_event(
            head[0] + parts.json + head[1] + hk.resources_tail, hk.column, "Decrypt", self._caller.principal, t
        )
        return DecryptResponse(key_id=hk.arn, plaintext=plaintext)

    def _decrypt_slow(
        self,
        ciphertext_blob: bytes,
        encryption_context: Mapping[str, str] | None,
        key_id: KeyIdentifier | None,
        grant_tokens: Sequence[str],
    ) -> DecryptResponse:
        ctx = as_context(encryption_context)
        kms = self._kms
        params = "".join(
            (
                '{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":',
                kms._context_info(ctx)[0],
                "" if key_id is None else f',"keyId":{json_text(str(key_id))}',
                "}",
            )
        )
        call = _Call("Decrypt", params, read_only=True)

        def run(call: _Call) -> DecryptResponse:
            epoch = kms._epoch
            if grant_tokens:
                check_tokens(grant_tokens)
            key, plaintext = self._open(ciphertext_blob, ctx, key_id, GrantOperation.DECRYPT, call)
            if epoch == kms._epoch:  # nothing was dropped during the call: the record is current
                parsed = blob.parse(ciphertext_blob)
                kms._warm(key, key_id, parsed.header, parsed.version)
            return DecryptResponse(key_id=key.arn, plaintext=plaintext)

        return self._run(call, run, refreshed=True)

    def re_encrypt(
        self,
        *,
        ciphertext_blob: bytes,
        destination_key_id: KeyIdentifier,
        source_encryption_context: Mapping[str, str] | None = None,
        destination_encryption_context: Mapping[str, str] | None = None,
        source_key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> ReEncryptResponse:
        src_ctx = as_context(source_encryption_context)
        dst_ctx = as_context(destination_encryption_context)
        call = _Call(
            "ReEncrypt",
            {
                "sourceKeyId": None if source_key_id is None else str(source_key_id),
                "destinationKeyId": str(destination_key_id),
                "sourceEncryptionContext": src_ctx.to_dict(),
                "destinationEncryptionContext": dst_ctx.to_dict(),
            },
            read_only=True,
        )
        kms = self._kms

        def run(call: _Call) -> ReEncryptResponse:
            check_tokens(grant_tokens)
            source, plaintext = self._open(
                ciphertext_blob, src_ctx, source_key_id, GrantOperation.RE_ENCRYPT_FROM, call
            )
            source_arns = call.arns
            dest = self._use(destination_key_id, GrantOperation.RE_ENCRYPT_TO, dst_ctx, call)
            call.arns = (*source_arns, *(a for a in call.arns if a not in source_arns))
            version = dest.current_version
            sealed = blob.seal(
                kms._aead(dest, version),
                key_id=dest.key_id,
                version=version,
                key_arn=dest.arn,
                plaintext=plaintext,
                context=dst_ctx.serialize(),
            )
            return ReEncryptResponse(ciphertext_blob=sealed, source_key_id=source.arn, key_id=dest.arn)

        return self._run(call, run)

    # -- grants -------------------------------------------------------------------------
    def create_grant(
        self,
        *,
        key_id: KeyIdentifier,
        grantee_principal: str,
        operations: Sequence[GrantOperation | str],
        retiring_principal: str | None = None,
        constraints: GrantConstraints | None = None,
        grant_tokens: Sequence[str] = (),
        name: str | None = None,
    ) -> CreateGrantResponse:
        params: dict[str, Any] = {
            "keyId": str(key_id),
            "granteePrincipal": grantee_principal,
            "operations": [str(op) for op in operations] if not isinstance(operations, str) else operations,
        }
        if retiring_principal is not None:
            params["retiringPrincipal"] = retiring_principal
        if constraints is not None and isinstance(constraints, GrantConstraints):
            api = constraints.to_api()
            params["constraints"] = {k[0].lower() + k[1:]: v for k, v in api.items()}
        if name is not None:
            params["name"] = name
        call = _Call("CreateGrant", params, read_only=False)
        kms = self._kms
        caller = self._caller

        def run(call: _Call) -> CreateGrantResponse:
            grantee = check_principal(grantee_principal, "GranteePrincipal")
            retiring = None if retiring_principal is None else check_principal(retiring_principal, "RetiringPrincipal")
            ops = check_operations(operations)
            if constraints is not None and not isinstance(constraints, GrantConstraints):
                raise ValidationError("Constraints must be a GrantConstraints")
            if name is not None and (not isinstance(name, str) or GRANT_NAME.fullmatch(name) is None):
                raise ValidationError("Name must match ^[a-zA-Z0-9:/_-]+$ and be 1 to 256 characters")
            check_tokens(grant_tokens)
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            check_denied(caller, "CreateGrant", key.arn)
            if not policy_allows(caller, key, "CreateGrant"):
                parents = [
                    g
                    for g in kms._grants_of(key.key_id).of(caller.principal)
                    if GrantOperation.CREATE_GRANT in g.operations
                ]
                if not any(child_grant_allowed(p, ops, constraints) for p in parents):
                    raise access_denied(caller, "CreateGrant", key.arn)
            _require_usable(key)  # KMS: CreateGrant fails on a Disabled / PendingDeletion key
            with kms._grant_write() as (tx, changes):
                current = tx.key(key.key_id)
                if current is None:
                    raise kms._not_found(key.key_id)
                _require_usable(current)
                if name is not None:
                    # KMS: a retry with identical parameters, Name included, returns the
                    # original GrantId and creates no new grant (each call: a new token).
                    for g in tx.grants_named(key.key_id, name):
                        if (
                            g.name == name
                            and g.grantee == grantee
                            and g.retiring == retiring
                            and g.operations == ops
                            and g.constraints == constraints
                        ):
                            call.response = {"grantId": g.grant_id, "keyId": key.arn}
                            kms._record(caller, call, tx)
                            return CreateGrantResponse(grant_id=g.grant_id, grant_token=new_token(g.grant_id))
                if current.manager is KeyManager.CUSTOMER:
                    # The quotas apply to customer managed keys only (KMS: "This quota does
                    # not apply to AWS managed keys"). See docs/kms-model.md for the 500.
                    per_grantee = kms.quotas.grants_per_grantee_per_key
                    if per_grantee is not None and tx.count_grants(key.key_id, grantee) >= per_grantee:
                        raise LimitExceededError(
                            f"The grant quota of {per_grantee} grants for grantee principal {grantee} "
                            f"on {key.arn} has been reached."
                        )
                    per_key = kms.quotas.grants_per_key
                    if per_key is not None and tx.count_grants(key.key_id) >= per_key:
                        raise LimitExceededError(f"The grant quota of {per_key} grants on {key.arn} has been reached.")
                grant_id = secrets.token_hex(32)
                tx.insert_grant(
                    grant_id=grant_id,
                    key_id=key.key_id,
                    name=name,
                    grantee=grantee,
                    retiring=retiring,
                    issuing_account=kms.account,
                    operations=ops,
                    constraints=constraints,
                    created=kms._now(),
                )
                added = tx.grant(grant_id)  # the row as every reader decodes it
                assert added is not None
                changes.added(added)
                call.response = {"grantId": grant_id, "keyId": key.arn}
                kms._record(caller, call, tx)
            return CreateGrantResponse(grant_id=grant_id, grant_token=new_token(grant_id))

        return self._run(call, run)

    def list_grants(
        self,
        *,
        key_id: KeyIdentifier,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> ListGrantsResponse:
        call = _Call(
            "ListGrants",
            {"keyId": str(key_id), "grantId": grant_id, "granteePrincipal": grantee_principal, "limit": limit},
            read_only=True,
        )
        kms = self._kms

        def run(call: _Call) -> ListGrantsResponse:
            n = check_limit(limit)
            after = decode_marker("grant", marker)
            after_seq = int(after) if after is not None and after.isdigit() else -1
            if after is not None and after_seq < 0:
                raise ValidationError(f"The marker {marker!r} is not valid")
            # KMS: ListGrants succeeds in every key state.
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            authorize(self._caller, key, "ListGrants")
            matches = [
                g
                for g in kms._grants_of(key.key_id).all
                if g.seq > after_seq
                and (grant_id is None or g.grant_id == grant_id)
                and (grantee_principal is None or g.grantee == grantee_principal)
            ]
            page = matches[:n]
            truncated = len(matches) > n
            return ListGrantsResponse(
                grants=tuple(kms._grant_entry(g) for g in page),
                next_marker=encode_marker("grant", str(page[-1].seq)) if truncated else None,
                truncated=truncated,
            )

        return self._run(call, run)

    def list_retirable_grants(
        self, *, retiring_principal: str, limit: int | None = None, marker: str | None = None
    ) -> ListGrantsResponse:
        call = _Call("ListRetirableGrants", {"retiringPrincipal": retiring_principal, "limit": limit}, read_only=True)
        kms = self._kms
        caller = self._caller

        def run(call: _Call) -> ListGrantsResponse:
            principal = check_principal(retiring_principal, "RetiringPrincipal")
            n = check_limit(limit)
            after = decode_marker("grant", marker)
            after_seq = int(after) if after is not None and after.isdigit() else -1
            if after is not None and after_seq < 0:
                raise ValidationError(f"The marker {marker!r} is not valid")
            check_denied(caller, "ListRetirableGrants", "*")
            # KMS: authorized by an IAM policy in the caller's account; we allow the
            # account's principals and the retiring principal itself.
            if caller.account != kms.account and caller.principal != principal:
                raise access_denied(caller, "ListRetirableGrants", "*")
            found: list[GrantRecord] = []
            seq = after_seq
            tx = kms._store.autocommit()
            while len(found) <= n:
                batch = tx.grants_retirable_by(principal, seq, n + 1)
                if not batch:
                    break
                seq = batch[-1].seq
                found += [g for g in batch if kms._load_key(g.key_id) is not None]
            page = found[:n]
            truncated = len(found) > n
            return ListGrantsResponse(
                grants=tuple(kms._grant_entry(g) for g in page),
                next_marker=encode_marker("grant", str(page[-1].seq)) if truncated else None,
                truncated=truncated,
            )

        return self._run(call, run)

    def retire_grant(
        self, *, grant_token: str | None = None, key_id: KeyIdentifier | None = None, grant_id: str | None = None
    ) -> None:
        # KMS CloudTrail: RetireGrant has requestParameters null, additionalEventData.grantId.
        call = _Call("RetireGrant", None, read_only=False)
        kms = self._kms

        def run(call: _Call) -> None:
            if grant_token is not None:
                if key_id is not None or grant_id is not None:
                    raise ValidationError("Identify the grant by GrantToken, or by KeyId and GrantId, not both")
                gid = token_grant_id(grant_token)
                with kms._grant_write() as (tx, changes):
                    grant = tx.grant(gid)
                    if grant is None:
                        raise InvalidGrantTokenError("The grant token is invalid.")
                    self._retire(tx, grant, call, changes)
                return
            if key_id is None or grant_id is None:
                raise ValidationError("RetireGrant needs a GrantToken, or a KeyId and a GrantId")
            if not isinstance(grant_id, str) or GRANT_ID.fullmatch(grant_id) is None:
                raise InvalidGrantIdError(f"Invalid grant ID {grant_id!r}")
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            call.extra = {"grantId": grant_id}
            with kms._grant_write() as (tx, changes):
                grant = tx.grant(grant_id)
                if grant is None or grant.key_id != key.key_id:
                    raise NotFoundError(f"Grant ID {grant_id} not found for {key.arn}")
                self._retire(tx, grant, call, changes)

        self._run(call, run)

    def _retire(self, tx: Tx, grant: GrantRecord, call: _Call, changes: _GrantChanges) -> None:
        kms = self._kms
        caller = self._caller
        key = tx.key(grant.key_id)
        arn = kms._key_arn(grant.key_id)
        call.arns = (arn,)
        call.extra = {"grantId": grant.grant_id}
        # KMS RetireGrant: an IAM deny on kms:RetireGrant blocks every path below.
        check_denied(caller, "RetireGrant", arn)
        allowed = (
            caller.principal == grant.retiring
            or (caller.principal == grant.grantee and GrantOperation.RETIRE_GRANT in grant.operations)
            or (key is not None and caller.account == key.account)  # "the AWS account in which the grant is created"
        )
        if not allowed:
            raise access_denied(caller, "RetireGrant", arn)
        tx.delete_grant(grant.grant_id)
        changes.removed(grant)
        kms._record(caller, call, tx)

    def revoke_grant(self, *, key_id: KeyIdentifier, grant_id: str) -> None:
        call = _Call("RevokeGrant", {"keyId": str(key_id), "grantId": grant_id}, read_only=False)
        kms = self._kms

        def run(call: _Call) -> None:
            if not isinstance(grant_id, str) or GRANT_ID.fullmatch(grant_id) is None:
                raise InvalidGrantIdError(f"Invalid grant ID {grant_id!r}")
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            authorize(self._caller, key, "RevokeGrant")
            with kms._grant_write() as (tx, changes):
                grant = tx.grant(grant_id)
                if grant is None or grant.key_id != key.key_id:
                    raise NotFoundError(f"Grant ID {grant_id} not found for {key.arn}")
                # ECR: "When you revoke a grant ... the change occurs immediately" (we
                # model no eventual-consistency delay).
                tx.delete_grant(grant_id)
                changes.removed(grant)
                kms._record(self._caller, call, tx)

        self._run(call, run)
