"""The local KMS's alias operations (private).

Aliases are names in the account and Region that point at one key; they are
resolved by the service (:mod:`ecrcrypt.kms.local.lifecycle`), and managed here.
"""

from __future__ import annotations

from ecrcrypt.arns import AliasName
from ecrcrypt.errors import (
    AlreadyExistsError,
    InvalidAliasNameError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)
from ecrcrypt.kms import AliasListEntry, KeyIdentifier, ListAliasesResponse
from ecrcrypt.kms.local.access import authorize_account
from ecrcrypt.kms.local.client import ClientBase
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.params import check_limit, decode_marker, encode_marker
from ecrcrypt.kms.local.rules import MAX_ALIASES_PER_KEY, require_not_pending, utc
from ecrcrypt.kms.local.store import AliasRecord


class AliasOps(ClientBase):
    """CreateAlias, UpdateAlias, DeleteAlias and ListAliases."""

    # -- aliases ------------------------------------------------------------------------
    def _alias_name(self, alias_name: str) -> str:
        if isinstance(alias_name, AliasName):
            name = alias_name.value
        elif isinstance(alias_name, str):
            name = AliasName(alias_name).value
        else:
            # Never stringified: create_alias(alias_name=None) once made an alias named 'None'.
            raise ValidationError(f"AliasName must be a str, not {type(alias_name).__name__}")
        if name.startswith("alias/aws/"):
            # KMS CreateAlias: "The alias name cannot begin with alias/aws/".
            raise InvalidAliasNameError(f"{name}: the alias/aws/ prefix is reserved for AWS managed keys")
        return name

    def create_alias(self, *, alias_name: str, target_key_id: KeyIdentifier) -> None:
        call = Call("CreateAlias", {"aliasName": str(alias_name), "targetKeyId": str(target_key_id)}, read_only=False)
        kms = self._kms

        def run(call: Call) -> None:
            name = self._alias_name(alias_name)
            key = kms._resolve(target_key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "CreateAlias")
            require_not_pending(key)  # KMS: CreateAlias on PendingDeletion -> KMSInvalidStateException
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
        call = Call("UpdateAlias", {"aliasName": str(alias_name), "targetKeyId": str(target_key_id)}, read_only=False)
        kms = self._kms

        def run(call: Call) -> None:
            name = self._alias_name(alias_name)
            key = kms._resolve(target_key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "UpdateAlias")
            require_not_pending(key)
            with kms._store.write() as tx:
                existing = tx.alias(kms.account, kms.region, name)
                if existing is None:
                    raise NotFoundError(f"Alias '{kms._alias_arn(name)}' is not found.")
                old = tx.key(existing.key_id)
                if old is not None:
                    self._authorize(old, "UpdateAlias")
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
        call = Call("DeleteAlias", {"aliasName": str(alias_name)}, read_only=False)
        kms = self._kms

        def run(call: Call) -> None:
            name = self._alias_name(alias_name)
            with kms._store.write() as tx:
                existing = tx.alias(kms.account, kms.region, name)
                if existing is None:
                    raise NotFoundError(f"Alias '{kms._alias_arn(name)}' is not found.")
                key = tx.key(existing.key_id)
                if key is not None:
                    call.arns = (key.arn,)
                    # KMS: DeleteAlias succeeds in every key state, PendingDeletion included.
                    self._authorize(key, "DeleteAlias")
                tx.delete_alias(kms.account, kms.region, name)
                kms._record(self._caller, call, tx)
                kms._after_write(tx)

        self._run(call, run)

    def list_aliases(
        self, *, key_id: KeyIdentifier | None = None, limit: int | None = None, marker: str | None = None
    ) -> ListAliasesResponse:
        call = Call("ListAliases", {"keyId": None if key_id is None else str(key_id), "limit": limit}, read_only=True)
        kms = self._kms

        def run(call: Call) -> ListAliasesResponse:
            n = check_limit(limit)
            after = decode_marker("alias", marker)
            authorize_account(kms, self._caller, "ListAliases", kms.account)
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
                    creation_date=utc(r.created),
                    last_updated_date=utc(r.updated),
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
