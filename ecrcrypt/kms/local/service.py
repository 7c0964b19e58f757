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
per-key state (:mod:`ecrcrypt.kms.local.hot_path`) -- whatever the encryption context, which ECR
changes on every call: one ``data_version`` check, the context serialized once, a grant
lookup unless the key policy allows the caller, one AES-GCM call and one audit INSERT.
This process's own grant changes update the key's grant index in place.

Layout: this module is the public face. The service is a stack of private layers,
each importing only the ones below it: ``kms.local.state`` (store, root key, caches),
``kms.local.events`` (audit records), ``kms.local.warm`` (filing keys into the hot path),
``kms.local.lifecycle`` (resolving references, deletion and rotation deadlines); the rules on
one key record are in ``kms.local.rules``. The client's operations are grouped by concept
on ``kms.local.client.ClientBase``: ``kms.local.ops_keys`` (keys, states, rotation),
``kms.local.ops_aliases``, ``kms.local.ops_crypto`` (hot and full paths) and
``kms.local.ops_grants``.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ecrcrypt.authz import Decision, Policy
from ecrcrypt.errors import ValidationError
from ecrcrypt.kms import KeyIdentifier, Kms
from ecrcrypt.kms.local.access import Caller, decide, engine_grant, request_context
from ecrcrypt.kms.local.iam import LocalIam
from ecrcrypt.kms.local.lifecycle import KmsKeys
from ecrcrypt.kms.local.ops_aliases import AliasOps
from ecrcrypt.kms.local.ops_crypto import CryptoOps
from ecrcrypt.kms.local.ops_grants import GrantOps
from ecrcrypt.kms.local.ops_keys import KeyOps
from ecrcrypt.kms.local.ops_policies import PolicyOps

__all__ = ["LocalKms", "LocalKmsClient", "ManualClock"]


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


class LocalKms(KmsKeys):
    """The local KMS service: one account and Region over one store.

    ``path=None`` keeps everything in memory (tests); otherwise ``path`` is the SQLite
    file and the root key comes from ``root_key`` (32 bytes) or from ``root_key_file``
    (default ``<path>.rootkey``, created with mode 0600 for a new store). Several
    ``LocalKms`` objects, threads and processes may share one file.

    A new store is created when neither the file nor its root key file exists (and
    ``create`` is true, the default); ``create=False`` only opens. A damaged file, a
    store whose root key file is missing, and a root key file whose store is missing
    or empty are refused with ``KmsInternalError`` naming the file, never replaced. A
    SQLite failure in any later call is a ``KmsInternalError`` too.
    """

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"LocalKms(account={self.account!r}, region={self.region!r}, store={where!r})"

    def client(
        self,
        principal: str,
        *,
        deny: Iterable[str] = (),
        via_service: str | None = None,
        source_arn: str | None = None,
    ) -> LocalKmsClient:
        """A :class:`~ecrcrypt.kms.Kms` acting as ``principal`` (an account id, an IAM or
        STS ARN, or a service principal such as ``ecr.us-east-1.amazonaws.com``);
        ``deny`` lists IAM actions explicitly denied to it (``"kms:RetireGrant"``), as an
        identity policy of Deny statements would; ``via_service`` makes every call one that
        service makes on the caller's behalf (``kms:ViaService``); ``source_arn`` makes every
        call one made on behalf of that resource (``aws:SourceArn``, what a grant's ``SourceArn``
        constraint asks for), as a service principal's calls are."""
        return LocalKmsClient(self, Caller.parse(principal, deny, via_service=via_service, source_arn=source_arn))

    @property
    def iam(self) -> LocalIam:
        """The IAM of this KMS's account in the same store (users, roles, their policies)."""
        return LocalIam(self._store, self.account, on_write=self._after_write, strict=self.strict_iam)

    def identity_policies(self, principal: str) -> tuple[Policy, ...]:
        """The compiled identity policies of ``principal`` (what ECR's ``ecr:`` checks read)."""
        with self._store.lock:
            self._refresh()
            caller = self._parsed_callers.get(principal)
            if caller is None:
                if len(self._parsed_callers) >= 4096:
                    self._parsed_callers.clear()
                caller = self._parsed_callers[principal] = Caller.parse(principal)
            return self._identity_policies(caller)

    def simulate(
        self,
        principal: str,
        action: str,
        key_id: KeyIdentifier | None = None,
        encryption_context: Mapping[str, str] | None = None,
        *,
        via_service: str | None = None,
        source_arn: str | None = None,
    ) -> Decision:
        """What enforcement would decide, with the statements and grants that decided and why.

        ``via_service`` and ``source_arn`` are as for :meth:`client`.

        The stored key policy, the principal's stored identity policies and *every* grant
        on the key (converted to the engine's values) go to :func:`ecrcrypt.authz.evaluate`:
        the enforcement path asks the same engine but looks a grant up in the key's index
        only when the policies do not decide, so the two agree (a property test checks).
        """
        with self._store.lock:
            self._refresh()
            caller = Caller.parse(principal, via_service=via_service, source_arn=source_arn)
            operation = action.split(":", 1)[1] if action.lower().startswith("kms:") else action
            if key_id is None:
                return decide(self, caller, None, operation)
            key = self._resolve(key_id, aliases=False)
            grants = [engine_grant(g) for g in self._grants_of(key.key_id).all]
            context = request_context(caller, operation, encryption_context)
            return decide(self, caller, key, operation, context, grants)

    @property
    def store_id(self) -> str:
        """The random id the store was given at creation: what a registry's manifest records of it."""
        return self._store.store_id

    @property
    def root_principal(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:root"

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> LocalKms:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalKmsClient(KeyOps, AliasOps, CryptoOps, GrantOps, PolicyOps, Kms):
    """The KMS API of a :class:`LocalKms`, acting as one caller. See :class:`ecrcrypt.kms.Kms`."""

    def via_service(self, service: str) -> LocalKmsClient:
        """This caller's client for the calls ``service`` makes on its behalf (``kms:ViaService``).

        ECR calls DescribeKey and CreateGrant at CreateRepository and RetireGrant at
        DeleteRepository with the caller's credentials; KMS evaluates them as the caller's
        requests with ``kms:ViaService = ecr.<region>.amazonaws.com`` (and
        ``kms:GrantIsForAWSResource = true`` on the grant operations).
        """
        found = self._via_clients.get(service)
        if found is None:
            caller = self._caller.via(service)
            found = self._via_clients[service] = LocalKmsClient(self._kms, caller)
        assert isinstance(found, LocalKmsClient)
        return found

    def __repr__(self) -> str:
        return f"LocalKmsClient(principal={self._caller.principal!r}, kms={self._kms!r})"

    @property
    def principal(self) -> str:
        return self._caller.principal


def _surface_database_errors(cls: type[LocalKmsClient]) -> None:
    """Wrap each KMS operation so that a SQLite failure (a disk error, a store damaged while
    open) surfaces as ``KmsInternalError`` -- what docs/kms-model.md promises -- never as a raw
    ``sqlite3.Error``. The wrapper adds one frame and no work when nothing fails."""
    for name in _OPERATIONS:
        fn = getattr(cls, name, None)
        if fn is None or getattr(fn, "_surfaces_database_errors", False):
            continue

        def wrapped(self: LocalKmsClient, *args: Any, __fn: Callable[..., Any] = fn, **kwargs: Any) -> Any:
            try:
                return __fn(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise self._kms._store.database_error(exc) from exc

        functools.update_wrapper(wrapped, fn)
        wrapped._surfaces_database_errors = True  # type: ignore[attr-defined]
        setattr(cls, name, wrapped)


#: the operations of the Kms protocol (its public methods)
_OPERATIONS = tuple(name for name, value in vars(Kms).items() if not name.startswith("_") and inspect.isfunction(value))
_surface_database_errors(LocalKmsClient)
