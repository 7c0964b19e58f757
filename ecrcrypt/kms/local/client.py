"""What every local KMS operation does around its own logic (private).

A client is one caller identity on a service; each call runs under the store lock,
sees other connections' changes, sweeps keys past their deletion date when it
writes or lists, and is audited whether it succeeds or fails. The groups of
operations (:mod:`ecrcrypt.kms.local.ops_keys`, ``_aliases``, ``_crypto``,
``_grants``) build on this base and meet in :class:`~ecrcrypt.kms.local.service.LocalKmsClient`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import NoReturn, TypeVar

from ecrcrypt.errors import EcrCryptError
from ecrcrypt.kms.local.access import Caller, GrantIndex, Verdict, authorize, verdict
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.lifecycle import KmsKeys
from ecrcrypt.kms.local.store import KeyRecord

T = TypeVar("T")

# Calls that list or name aliases or grants without resolving a key first: they
# sweep keys whose deletion waiting period has elapsed before they look.
_SWEEPING = frozenset({"ListAliases", "ListRetirableGrants"})


class ClientBase:
    """One caller's handle on the service, and how each of its calls runs and is audited."""

    def __init__(self, kms: KmsKeys, caller: Caller) -> None:
        self._kms = kms
        self._caller = caller
        # Audit JSON of hot-path requests around their context: (name, reference,
        # key spec, size) -> (text before the context, text after it up to "resources").
        self._heads: dict[Hashable, tuple[str, str]] = {}
        # What the policies say per (key id, operation) when that holds for every call
        # (kms.local.access.verdict): the hot path's authorization, dropped with the caches.
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._verdicts_epoch = -1
        self._via_clients: dict[str, ClientBase] = {}  # LocalKmsClient.via_service

    def _authorize(
        self,
        key: KeyRecord,
        operation: str,
        *,
        grants: GrantIndex | Callable[[], GrantIndex] | None = None,
        context: Mapping[str, str] | None = None,
        pairs: frozenset[tuple[str, str]] | None = None,
    ) -> None:
        """Raise ``AccessDeniedError`` (the engine's explanation) unless this caller may call ``operation``."""
        kms = self._kms
        authorize(
            kms,
            self._caller,
            key,
            operation,
            grants=grants if grants is not None else (lambda: kms._grants_of(key.key_id)),
            context=context,
            pairs=pairs,
        )

    def _verdict(self, key_id: str, operation: str) -> Verdict:
        """:func:`~ecrcrypt.kms.local.access.verdict`, cached until the service's next state change."""
        kms = self._kms
        if self._verdicts_epoch != kms._epoch:
            self._verdicts.clear()
            self._verdicts_epoch = kms._epoch
        found = self._verdicts.get((key_id, operation))
        if found is None:
            key = kms._load_key(key_id)
            if key is None:
                return Verdict.PER_CALL  # let the full path say what is wrong
            found = self._verdicts[(key_id, operation)] = verdict(kms, self._caller, key, operation)
        return found

    def _run(self, call: Call, fn: Callable[[Call], T], *, refreshed: bool = False) -> T:
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

    def _reject(self, call: Call, error: EcrCryptError) -> NoReturn:
        """Audit and raise a request refused before it reaches the service logic."""
        with self._kms._store.lock:
            self._kms._record(self._caller, call, error=error)
        raise error
