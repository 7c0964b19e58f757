"""The local KMS's hot path: cached plans for GenerateDataKey and Decrypt (private).

A successful GenerateDataKey or Decrypt through the full path (parameter checks,
key resolution, key state, authorization, audit) leaves a *plan*: everything the
same request needs next time -- the key's ARN, the ``AESGCM`` of the material
version, the blob header and the whole AAD, and the audit event's JSON up to its
two per-event fields. The next identical request (same client, key reference,
encryption context, size / blob header) then costs one AES-GCM call and one audit
INSERT.

A plan is a cache of decisions, so it lives exactly as long as the rows it was
decided from: it records the LocalKms cache *epoch*, which moves whenever the
cached keys, aliases and grants are dropped (own writes, or another connection's
state change seen through ``PRAGMA data_version`` + the store's generation). A
revoked grant or a disabled key therefore stops a plan at the very next call, in
every process. A plan also expires at the key's next automatic rotation, which
the full path then performs. Anything unusual -- a request that is not plain
``str``/``dict`` data, an unseen grant token, an authentication failure -- goes
through the full path, which raises and audits as before.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.context import EncryptionContext

# Plans kept per client before the cache is dropped and rebuilt.
MAX_PLANS = 4096


class GeneratePlan:
    """What a repeated GenerateDataKey (WithoutPlaintext) needs."""

    __slots__ = ("aad", "aead", "arn", "column", "epoch", "expires", "head", "header", "length")

    def __init__(
        self,
        *,
        epoch: int,
        expires: float,
        length: int,
        header: bytes,
        aad: bytes,
        aead: AESGCM,
        arn: str,
        head: str,
        column: str,
    ) -> None:
        self.epoch = epoch
        self.expires = expires
        self.length = length
        self.header = header
        self.aad = aad
        self.aead = aead
        self.arn = arn
        self.head = head
        self.column = column


class DecryptPlan:
    """What a repeated Decrypt of blobs with one header (key + material version) needs."""

    __slots__ = ("aad", "aead", "arn", "column", "epoch", "expires", "head")

    def __init__(
        self, *, epoch: int, expires: float, aad: bytes, aead: AESGCM, arn: str, head: str, column: str
    ) -> None:
        self.epoch = epoch
        self.expires = expires
        self.aad = aad
        self.aead = aead
        self.arn = arn
        self.head = head
        self.column = column


class _Uncacheable:
    """Marks a request the hot path leaves to the full path."""


UNCACHEABLE: Hashable = _Uncacheable()


def context_key(value: object) -> Hashable:
    """A hashable stand-in for an encryption-context argument, or ``UNCACHEABLE``.

    A plain ``dict`` of ``str`` is keyed by its items in order (another order is only
    a cache miss); an ``EncryptionContext`` by its canonical bytes (a bytes key never
    equals a tuple key). Anything else -- other mappings, non-``str`` members --
    takes the full path, which validates it.
    """
    if value is None:
        return None
    if type(value) is dict:
        items = tuple(value.items())
        for k, v in items:
            if type(k) is not str or type(v) is not str:
                return UNCACHEABLE
        return items
    if type(value) is EncryptionContext:
        return value.serialize()
    return UNCACHEABLE


def tokens_key(tokens: object) -> Hashable:
    """Grant tokens as a hashable key (``()`` for none), or ``UNCACHEABLE``."""
    if type(tokens) is tuple or type(tokens) is list:
        assert isinstance(tokens, Sequence)
        if not tokens:
            return ()
        for t in tokens:
            if type(t) is not str:
                return UNCACHEABLE
        return tuple(tokens)
    return UNCACHEABLE
