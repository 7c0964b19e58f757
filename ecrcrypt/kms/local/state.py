"""The state of a local KMS service and its per-process caches (private).

Everything else in the service reads keys, aliases, grants and unwrapped material
through these caches, so their invalidation lives here, in one place: rows are
dropped when another connection commits a state change (``PRAGMA data_version`` +
the store's generation) or after this process's own writes, and grant-only writes
update the key's ``GrantIndex`` in place (:meth:`KmsCore._grant_write`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt._keyfile import key_fingerprint
from ecrcrypt.arns import AccountId, Region
from ecrcrypt.authz import Policy
from ecrcrypt.errors import InvalidCiphertextError, KmsInternalError
from ecrcrypt.kms import KmsQuotas
from ecrcrypt.kms.local import ciphertext as blob
from ecrcrypt.kms.local import hot_path as hot
from ecrcrypt.kms.local import policy_store
from ecrcrypt.kms.local.access import Caller, GrantIndex
from ecrcrypt.kms.local.audit import AuditTrail
from ecrcrypt.kms.local.root_key import check_not_orphaned, load_root_key, root_key_path
from ecrcrypt.kms.local.store import GrantRecord, KeyRecord, KmsStore, Tx


class GrantChanges:
    """The grants a ``_grant_write`` transaction added or removed, per key."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[str, GrantRecord | None, str | None]] = []

    def added(self, grant: GrantRecord) -> None:
        self.items.append((grant.key_id, grant, None))

    def removed(self, grant: GrantRecord) -> None:
        self.items.append((grant.key_id, None, grant.grant_id))


class KmsCore:
    """The state every part of a :class:`~ecrcrypt.kms.local.service.LocalKms` shares: its store, root key,
    clock and quotas, and the per-process caches of rows with their invalidation."""

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
        strict_iam: bool = False,
        create: bool = True,
    ) -> None:
        self.account = str(account if isinstance(account, AccountId) else AccountId(account))
        region_value = region if isinstance(region, Region) else Region(region)
        self.region = str(region_value)
        self.partition = str(region_value.partition)
        self.quotas = quotas if quotas is not None else KmsQuotas()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._default_clock = clock is None
        db = None if path is None or str(path) == ":memory:" else Path(path)
        self._root_key_file = None if root_key is not None else root_key_path(db, root_key_file)
        check_not_orphaned(db, self._root_key_file)
        self._store = KmsStore(path, create=create)
        self.path = self._store.path
        try:
            key = load_root_key(
                self.path,
                root_key,
                root_key_file,
                store_initialized=self._store.initialized,
            )
            self._root = AESGCM(key)
            self.root_key_fingerprint = key_fingerprint(key, "root-key")
            self._check_root()
        except BaseException:
            self._store.close()
            raise
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
        # Hot path (see kms.local.hot_path): per-key state by key reference and by key id, the
        # material versions by blob header; dropped with the cached rows.
        self._hot_refs: dict[str, hot.HotKey] = {}
        self._hot_ids: dict[str, hot.HotKey] = {}
        self._hot_blobs: dict[bytes, hot.HotMaterial] = {}
        # Grant tokens already parsed (a token's validity is its syntax: see token_grant_id).
        self._valid_tokens: set[str] = set()
        self._contexts = hot.RecentContexts()
        # Compiled policies (kms.local.access): key policies by key id, identity policies by
        # principal ARN; dropped with the cached rows, so a policy write is seen at the next call.
        self.strict_iam = strict_iam
        self._key_policies: dict[str, Policy] = {}
        self._identities: dict[str, tuple[Policy, ...]] = {}
        self._parsed_callers: dict[str, Caller] = {}  # LocalKms.identity_policies (ECR's checks)
        policy_store.ensure_schema(self._store)

    # -- internals shared by the clients -------------------------------------------------
    def _check_root(self) -> None:
        check = blob.wrap_material(self._root, key_id="root-check", version=0, material=b"\x00" * 32)
        stored = self._store.set_meta_once("root_check", check)
        try:
            blob.unwrap_material(self._root, key_id="root-check", version=0, wrapped=bytes(stored))
        except KmsInternalError:
            where = "the root key given" if self._root_key_file is None else f"the root key file {self._root_key_file}"
            raise KmsInternalError(
                f"{where} does not open the KMS store {self.path}: one of the two was replaced or damaged; "
                "restore the pair from backup"
            ) from None

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
        self._key_policies.clear()
        self._identities.clear()

    @contextmanager
    def _grant_write(self) -> Iterator[tuple[Tx, GrantChanges]]:
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
            changes = GrantChanges()
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

    def _key_policy(self, key: KeyRecord) -> Policy:
        """The compiled key policy of ``key`` (parsed once per write of it)."""
        found = self._key_policies.get(key.key_id)
        if found is None:
            document = policy_store.key_policy_document(self._store.conn, key)
            found = self._key_policies[key.key_id] = policy_store.compile_key_policy(document)
        return found

    def _identity_policies(self, caller: Caller) -> tuple[Policy, ...]:
        """The caller's compiled identity policies (its ``deny`` policy included)."""
        found = self._identities.get(caller.principal)
        if found is None:
            found = policy_store.identity_policies(self._store.conn, caller.parsed, strict=self.strict_iam)
            self._identities[caller.principal] = found
        if caller.deny_policy is not None:
            return (*found, caller.deny_policy)
        return found

    def _unregistered(self, caller: Caller) -> bool:
        """A user, role or role session of an account that the IAM store does not know (strict IAM only:
        otherwise such a caller has the implicit administrator policy)."""
        return self.strict_iam and policy_store.is_unregistered(self._store.conn, caller.parsed)

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
