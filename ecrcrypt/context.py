"""The encryption context: the non-secret, authenticated description of an object.

KMS binds it as additional authenticated data to every data key it wraps, and the
ESDK message stores it in the authenticated header, so the bytes produced here must
be exactly the AWS Encryption SDK's serialization: pairs sorted by the UTF-8 bytes
of the key, each key and value length-prefixed (UInt16), preceded by the pair
count; the empty context serializes to zero bytes.
"""

from __future__ import annotations

import struct
from collections.abc import ItemsView, Iterator, Mapping
from typing import Any

import attrs

from ecrcrypt.arns import RepositoryArn, S3BucketName, S3ObjectArn
from ecrcrypt.digest import Digest
from ecrcrypt.errors import MessageFormatError, ValidationError

__all__ = [
    "ECR_ARN_KEY",
    "MAX_SERIALIZED_CONTEXT",
    "S3_ARN_KEY",
    "EncryptionContext",
]

ECR_ARN_KEY = "aws:ecr:arn"
S3_ARN_KEY = "aws:s3:arn"
# ESDK: the serialized context is carried behind a UInt16 length.
MAX_SERIALIZED_CONTEXT = 0xFFFF
_U16 = struct.Struct(">H")


def _encode(field: str, text: object) -> bytes:
    if not isinstance(text, str):
        raise ValidationError(f"EncryptionContext {field}s must be str, not {type(text).__name__}")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"EncryptionContext {field} {text!r} is not valid Unicode (lone surrogate)") from None
    if len(data) > 0xFFFF:
        raise ValidationError(f"EncryptionContext {field}s are at most 65535 UTF-8 bytes")
    return data


def _freeze(pairs: Mapping[str, str] | None) -> tuple[tuple[bytes, bytes, str, str], ...]:
    if not pairs:
        return ()
    # Fast path for the common case (plain str keys and values); anything unusual takes
    # the checked path below, which names the offending field. Per-field lengths need no
    # check here: the whole serialization is bounded by 65535 bytes in __attrs_post_init__,
    # which re-runs the checked path to name the field when that bound fails.
    try:
        items = pairs.items()
    except AttributeError:
        # A str, a list, a number from a decoded JSON request: the documented error, not AttributeError.
        raise ValidationError(f"an EncryptionContext is a mapping of str to str, not {type(pairs).__name__}") from None
    encoded = []
    for k, v in items:
        if type(k) is not str or type(v) is not str:
            return _freeze_checked(pairs)
        try:
            encoded.append((k.encode(), v.encode(), k, v))
        except UnicodeEncodeError:
            return _freeze_checked(pairs)
    encoded.sort()  # binary order of the UTF-8 key bytes (keys are distinct: never compares further)
    return tuple(encoded)


def _freeze_checked(pairs: Mapping[str, str]) -> tuple[tuple[bytes, bytes, str, str], ...]:
    encoded = [(_encode("key", k), _encode("value", v), k, v) for k, v in pairs.items()]
    encoded.sort(key=lambda e: e[0])  # binary order of the UTF-8 key bytes
    return tuple(encoded)


def _serialize(entries: tuple[tuple[bytes, bytes, str, str], ...]) -> bytes:
    pack = _U16.pack
    parts = [pack(len(entries))]
    for kb, vb, _, _ in entries:
        parts += (pack(len(kb)), kb, pack(len(vb)), vb)
    return b"".join(parts)


@attrs.frozen(repr=False, eq=False, hash=False)
class EncryptionContext(Mapping[str, str]):
    """An immutable ``str → str`` mapping with the ESDK's canonical serialization.

    Equality is the mapping's: order never matters (KMS: "only the order of the
    pairs may differ"); case always does.
    """

    _entries: tuple[tuple[bytes, bytes, str, str], ...] = attrs.field(converter=_freeze, alias="pairs", default=None)
    _serialized: bytes = attrs.field(init=False)
    _map: dict[str, str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        entries = self._entries
        if not entries:
            object.__setattr__(self, "_serialized", b"")
            object.__setattr__(self, "_map", {})
            return
        if len(entries) > 0xFFFF:
            raise ValidationError("EncryptionContext holds at most 65535 pairs")
        data = _serialize(entries)
        if len(data) > MAX_SERIALIZED_CONTEXT:
            _freeze_checked(dict((k, v) for _, _, k, v in entries))  # names an overlong field, if one is
            raise ValidationError(
                f"EncryptionContext serializes to {len(data)} bytes; the ESDK format allows at most "
                f"{MAX_SERIALIZED_CONTEXT}"
            )
        object.__setattr__(self, "_serialized", data)
        object.__setattr__(self, "_map", {k: v for _, _, k, v in entries})

    @classmethod
    def _trusted(cls, entries: tuple[tuple[bytes, bytes, str, str], ...], serialized: bytes) -> EncryptionContext:
        """An instance from entries already validated, sorted and serialized (by :meth:`deserialize`)."""
        self = object.__new__(cls)
        object.__setattr__(self, "_entries", entries)
        object.__setattr__(self, "_serialized", serialized)
        object.__setattr__(self, "_map", {k: v for _, _, k, v in entries})
        return self

    # -- construction --------------------------------------------------------------
    @classmethod
    def for_ecr_object(
        cls,
        *,
        bucket: S3BucketName | str,
        prefix: str,
        digest: Digest | str,
        repository: RepositoryArn | str,
    ) -> EncryptionContext:
        """The two-key context ECR binds to every layer and manifest it stores.

        ``{"aws:s3:arn": "arn:aws:s3:::<bucket>/<prefix>/sha256:<hex>",
        "aws:ecr:arn": "<repository ARN>"}`` -- the object ARN names the content by
        its digest, the repository ARN is what the repository's grants are
        constrained to.
        """
        bucket = bucket if isinstance(bucket, S3BucketName) else S3BucketName(bucket)
        digest = digest if isinstance(digest, Digest) else Digest.parse(digest)
        repository = repository if isinstance(repository, RepositoryArn) else RepositoryArn.parse(repository)
        if not isinstance(prefix, str):
            raise ValidationError(f"prefix must be a str, not {type(prefix).__name__}")
        key = f"{prefix.strip('/')}/{digest}" if prefix.strip("/") else str(digest)
        obj = S3ObjectArn(bucket=bucket, key=key, partition=repository.partition)
        return cls({S3_ARN_KEY: str(obj), ECR_ARN_KEY: str(repository)})

    @classmethod
    def deserialize(cls, data: bytes | memoryview) -> EncryptionContext:
        """Parse the ESDK serialization liberally, as the other SDKs do.

        Pairs need not be sorted (several SDKs have written unsorted contexts); a
        duplicate key, a zero count, a short or overlong buffer, or invalid UTF-8 is
        a :class:`MessageFormatError`.
        """
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n == 0:
            return cls()
        if n < 2:
            raise MessageFormatError("encryption context is truncated")
        if n > MAX_SERIALIZED_CONTEXT:
            return cls(_deserialize_pairs(buf))  # the constructor's error for an overlong context
        return cls._trusted(*_deserialize_entries(buf))

    # -- serialization ---------------------------------------------------------------
    def serialize(self) -> bytes:
        """The canonical ESDK bytes (empty context: ``b""``)."""
        return self._serialized

    def union(self, other: Mapping[str, str]) -> EncryptionContext:
        """This context plus ``other``'s pairs; a key present in both must agree."""
        merged = dict(self)
        for k, v in other.items():
            if k in merged and merged[k] != v:
                raise ValidationError(f"encryption context key {k!r} has two different values")
            merged[k] = v
        return EncryptionContext(merged)

    def is_superset_of(self, other: Mapping[str, str]) -> bool:
        return all(self.get(k) == v for k, v in other.items())

    # -- Mapping ---------------------------------------------------------------------
    def __getitem__(self, key: str) -> str:
        return self._map[key]

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def get(self, key: str, default: Any = None) -> Any:
        return self._map.get(key, default)

    def items(self) -> ItemsView[str, str]:
        # The dict was filled in sorted order, so this iterates like the Mapping does.
        return self._map.items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)  # filled in sorted order

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncryptionContext):
            return self._serialized == other._serialized  # canonical: equal bytes <=> equal mappings
        if isinstance(other, Mapping):
            return self._map == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._serialized)

    def __repr__(self) -> str:
        # The context is not secret (KMS logs it in CloudTrail), so it may be shown.
        return f"EncryptionContext({self._map!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(self._map)


def _deserialize_entries(buf: bytes) -> tuple[tuple[tuple[bytes, bytes, str, str], ...], bytes]:
    """``(sorted entries, canonical bytes)`` of a serialized context; ``buf`` itself when it is canonical."""
    n = len(buf)
    unpack = _U16.unpack_from
    (count,) = unpack(buf, 0)
    if count == 0:
        raise MessageFormatError("encryption context has a pair count of 0 but a non-zero length")
    pos = 2
    entries: list[tuple[bytes, bytes, str, str]] = []
    ordered = True
    previous = b""
    for i in range(count):
        if pos + 2 > n:
            raise MessageFormatError("encryption context is truncated")
        (klen,) = unpack(buf, pos)
        kend = pos + 2 + klen
        if kend + 2 > n:
            raise MessageFormatError("encryption context is truncated")
        (vlen,) = unpack(buf, kend)
        vend = kend + 2 + vlen
        if vend > n:
            raise MessageFormatError("encryption context is truncated")
        kb = buf[pos + 2 : kend]
        vb = buf[kend + 2 : vend]
        try:
            entries.append((kb, vb, kb.decode("utf-8"), vb.decode("utf-8")))
        except UnicodeDecodeError:
            raise MessageFormatError("encryption context is not valid UTF-8") from None
        if i and kb <= previous:
            ordered = False
        previous = kb
        pos = vend
    if pos != n:
        raise MessageFormatError("encryption context has bytes after its last pair")
    if ordered:
        # Strictly sorted, hence no duplicate and already canonical: the input bytes ARE the
        # serialization (same count, same length-prefixed fields in the same order).
        return tuple(entries), buf
    if len({e[0] for e in entries}) != count:
        raise MessageFormatError("encryption context repeats a key")
    # Liberal on order (other SDKs have written unsorted contexts): re-serialize canonically.
    entries.sort(key=lambda e: e[0])
    canonical = tuple(entries)
    return canonical, _serialize(canonical)


def _deserialize_pairs(buf: bytes) -> dict[str, str]:
    return {k: v for _, _, k, v in _deserialize_entries(buf)[0]}
