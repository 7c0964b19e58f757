"""What every local KMS operation does around its own logic (private).

A client is one caller identity on a service; each call runs under the store lock,
sees other connections' changes, sweeps keys past their deletion date when it
writes or lists, and is audited whether it succeeds or fails. The groups of
operations (:mod:`ecrcrypt.kms.local.ops_keys`, ``_aliases``, ``_crypto``,
``_grants``) build on this base and meet in :class:`~ecrcrypt.kms.local.service.LocalKmsClient`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import NoReturn, TypeVar

from ecrcrypt.errors import EcrCryptError
from ecrcrypt.kms.local.access import Caller
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.lifecycle import KmsKeys

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
        # KMS's default key policy gives the key's account every operation on a
        # customer managed key; an explicit deny takes the full path.
        self._policy_account = None if caller.denies else caller.account

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
