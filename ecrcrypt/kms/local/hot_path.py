"""The local KMS's hot path: per-key state for GenerateDataKey and Decrypt (private).

ECR asks KMS for a data key with a *new* encryption context on every call (each
object's context names its digest in ``aws:s3:arn``), so what can be reused from one
call to the next is what depends on the key, not on the request. A successful
GenerateDataKey or Decrypt through the full path leaves, on its ``LocalKms``, a
:class:`HotKey`: the key's ARN and account, the ``AESGCM`` of its current material,
the blob header and the AAD up to the context, the audit event's ``resources``
JSON and column, and when it stops being valid (its next automatic rotation). A
Decrypt also leaves a :class:`HotMaterial` under the blob header it opened (key +
material version). The next call on the key then does only what its own request
needs: serialize the context once (:func:`context_parts`), check a grant against the
key's index when the caller is not the key's account, one AES-GCM call and one audit
INSERT.

Per-key state is a cache of rows, so it lives exactly as long as they do: the
``LocalKms`` drops it together with the cached keys, aliases and grants -- after
its own state changes, and whenever ``PRAGMA data_version`` and the store's
generation show another connection's. A disabled key, a retargeted alias or a key
scheduled for deletion therefore takes the full path at the very next call, in every
process. Grants are not part of it: they are looked up per call in the key's
``GrantIndex``, which this process updates in place and reloads on another
connection's change. Anything unusual -- an explicit deny, an argument that is not
plain ``str``/``dict``/``int`` data, a context that fails validation, a grant that
does not allow the call, a blob that does not open -- takes the full path, which
validates, raises and audits.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.context import MAX_SERIALIZED_CONTEXT, EncryptionContext
from ecrcrypt.kms.local.access import fold_items
from ecrcrypt.kms.local.params import json_text

# Entries kept per LocalKms before a cache is dropped and rebuilt.
MAX_ENTRIES = 4096

_U16 = struct.Struct(">H").pack


class HotKey:
    """What a GenerateDataKey or Decrypt on one Enabled key needs besides its request."""

    __slots__ = (
        "aad_prefix",
        "account",
        "aead",
        "arn",
        "column",
        "customer",
        "expires",
        "header",
        "key_id",
        "resources_tail",
    )

    def __init__(
        self,
        *,
        key_id: str,
        arn: str,
        account: str,
        customer: bool,
        expires: float,
        header: bytes,
        aead: AESGCM,
        resources_tail: str,
        column: str,
    ) -> None:
        self.key_id = key_id
        self.arn = arn
        self.account = account
        self.customer = customer  # customer managed: the default key policy applies
        self.expires = expires  # the next automatic rotation, which the full path performs
        self.header = header  # blob header of the current material version
        self.aad_prefix = aad_prefix(header, arn)
        self.aead = aead
        # The audit event from its "resources" value up to its eventTime value.
        self.resources_tail = resources_tail
        self.column = column  # the audit table's resources column


class HotMaterial:
    """A material version of a hot key, filed under the blob header naming it."""

    __slots__ = ("aad_prefix", "aead", "key")

    def __init__(self, key: HotKey, header: bytes, aead: AESGCM) -> None:
        self.key = key
        self.aead = aead
        self.aad_prefix = aad_prefix(header, key.arn)


def aad_prefix(header: bytes, arn: str) -> bytes:
    """The blob AAD up to the serialized context (see ``kms.local.ciphertext.aad``)."""
    raw = arn.encode()
    return header + _U16(len(raw)) + raw


class ContextParts:
    """One encryption context as the hot path uses it, computed once per context."""

    __slots__ = ("_folded", "json", "pairs", "serialized")

    def __init__(self, serialized: bytes, json: str, pairs: tuple[tuple[str, str], ...]) -> None:
        self.serialized = serialized  # EncryptionContext(...).serialize(): the AAD's tail
        self.json = json  # requestParameters.encryptionContext, as the full path logs it
        self.pairs = pairs  # in canonical order
        self._folded: frozenset[tuple[str, str]] | None = None

    def folded(self) -> frozenset[tuple[str, str]]:
        """The pairs as grant constraints compare them (``fold_pairs``)."""
        if self._folded is None:
            self._folded = fold_items(self.pairs)
        return self._folded


EMPTY_PARTS = ContextParts(b"", "{}", ())


def context_parts(value: object) -> ContextParts | None:
    """An encryption-context argument as its canonical bytes, audit JSON and sorted pairs.

    The bytes are ``EncryptionContext(value).serialize()`` and the JSON is what the
    full path logs (the pairs in canonical order, compact separators), computed once
    without building the ``EncryptionContext``. ``None`` for anything but ``None``, an
    ``EncryptionContext`` or a plain ``dict`` of ``str`` that serializes within the
    ESDK bound: the full path validates those and raises what it raises.
    """
    if value is None:
        return EMPTY_PARTS
    if type(value) is EncryptionContext:
        if not value:
            return EMPTY_PARTS
        pairs = tuple(value.items())  # in canonical order
        texts = [f"{json_text(k)}:{json_text(v)}" for k, v in pairs]
        return ContextParts(value.serialize(), "{" + ",".join(texts) + "}", pairs)
    if type(value) is not dict:
        return None
    if not value:
        return EMPTY_PARTS
    encoded = []
    for k, v in value.items():
        if type(k) is not str or type(v) is not str:
            return None
        try:
            encoded.append((k.encode(), v.encode(), k, v))
        except UnicodeEncodeError:
            return None
    encoded.sort()  # binary order of the UTF-8 key bytes (keys are distinct), as EncryptionContext
    pack = _U16
    texts = []
    try:
        chunks = [pack(len(encoded))]
        for kb, vb, k, v in encoded:
            chunks += (pack(len(kb)), kb, pack(len(vb)), vb)
            texts.append(f"{json_text(k)}:{json_text(v)}")
    except struct.error:  # a field or the pair count beyond UInt16
        return None
    serialized = b"".join(chunks)
    if len(serialized) > MAX_SERIALIZED_CONTEXT:
        return None
    return ContextParts(serialized, "{" + ",".join(texts) + "}", tuple([(k, v) for _, _, k, v in encoded]))


# Recent contexts remembered: a GenerateDataKey and the Decrypts of its data key
# (ECR: one by ECR, one by the storage side) come close together.
RECENT_CONTEXTS = 64


class RecentContexts:
    """:func:`context_parts` of the last few contexts, so that the calls of one object
    (GenerateDataKey, then Decrypt) serialize its context once.

    A ``dict`` is remembered by its items in order (equal items serialize equally;
    another order is only a miss), an ``EncryptionContext`` by its canonical bytes.
    """

    def __init__(self) -> None:
        self._seen: dict[Hashable, ContextParts] = {}

    def parts(self, value: object) -> ContextParts | None:
        if value is None:
            return EMPTY_PARTS
        if type(value) is dict:
            try:
                key: Hashable = tuple(value.items())
                found = self._seen.get(key)
            except TypeError:  # an unhashable value: the full path refuses it
                return None
        elif type(value) is EncryptionContext:
            key = value.serialize()
            found = self._seen.get(key)
        else:
            return None
        if found is None:
            found = context_parts(value)
            if found is None:
                return None
            seen = self._seen
            if len(seen) >= RECENT_CONTEXTS:
                seen.clear()
            seen[key] = found
        return found
