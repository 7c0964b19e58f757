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

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ecrcrypt.errors import ValidationError
from ecrcrypt.kms import Kms
from ecrcrypt.kms.local.access import Caller
from ecrcrypt.kms.local.lifecycle import KmsKeys
from ecrcrypt.kms.local.ops_aliases import AliasOps
from ecrcrypt.kms.local.ops_crypto import CryptoOps
from ecrcrypt.kms.local.ops_grants import GrantOps
from ecrcrypt.kms.local.ops_keys import KeyOps

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
    (default ``<path>.rootkey``, created with mode 0600 when missing). Several
    ``LocalKms`` objects, threads and processes may share one file.
    """

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


class LocalKmsClient(KeyOps, AliasOps, CryptoOps, GrantOps, Kms):
    """The KMS API of a :class:`LocalKms`, acting as one caller. See :class:`ecrcrypt.kms.Kms`."""

    def __repr__(self) -> str:
        return f"LocalKmsClient(principal={self._caller.principal!r}, kms={self._kms!r})"

    @property
    def principal(self) -> str:
        return self._caller.principal
