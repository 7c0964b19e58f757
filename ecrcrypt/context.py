"""The encryption context: the non-secret, authenticated description of an object.

KMS binds it as additional authenticated data to every data key it wraps, and the
ESDK message stores it in the authenticated header, so the bytes produced here must
be exactly the AWS Encryption SDK's serialization: pairs sorted by the UTF-8 bytes
of the key, each key and value length-prefixed (UInt16), preceded by the pair
count; the empty context serializes to zero bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
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
    items = [] if pairs is None else list(pairs.items())
    encoded = [(_encode("key", k), _encode("value", v), k, v) for k, v in items]
    encoded.sort(key=lambda e: e[0])  # binary order of the UTF-8 key bytes
    return tuple(encoded)


@attrs.frozen(repr=False, eq=False, hash=False)
class EncryptionContext(Mapping[str, str]):
    """An immutable ``str → str`` mapping with the ESDK's canonical serialization.

    Equality is the mapping's: order never matters (KMS: "only the order of the
    pairs may differ"); case always does.
    """

    _entries: tuple[tuple[bytes, bytes, str, str], ...] = attrs.field(converter=_freeze, alias="pairs", default=None)
    _serialized: bytes = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not self._entries:
            object.__setattr__(self, "_serialized", b"")
            return
        if len(self._entries) > 0xFFFF:
            raise ValidationError("EncryptionContext holds at most 65535 pairs")
        parts = [_U16.pack(len(self._entries))]
        for kb, vb, _, _ in self._entries:
            parts += (_U16.pack(len(kb)), kb, _U16.pack(len(vb)), vb)
        data = b"".join(parts)
        if len(data) > MAX_SERIALIZED_CONTEXT:
            raise ValidationError(
                f"EncryptionContext serializes to {len(data)} bytes; the ESDK format allows at most "
                f"{MAX_SERIALIZED_CONTEXT}"
            )
        object.__setattr__(self, "_serialized", data)

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
        view = memoryview(data)
        if len(view) == 0:
            return cls()
        if len(view) < 2:
            raise MessageFormatError("encryption context is truncated")
        (count,) = _U16.unpack_from(view, 0)
        if count == 0:
            raise MessageFormatError("encryption context has a pair count of 0 but a non-zero length")
        pos = 2
        result: dict[str, str] = {}
        for _ in range(count):
            texts = []
            for _field in ("key", "value"):
                if pos + 2 > len(view):
                    raise MessageFormatError("encryption context is truncated")
                (n,) = _U16.unpack_from(view, pos)
                pos += 2
                if pos + n > len(view):
                    raise MessageFormatError("encryption context is truncated")
                try:
                    texts.append(bytes(view[pos : pos + n]).decode("utf-8"))
                except UnicodeDecodeError:
                    raise MessageFormatError("encryption context is not valid UTF-8") from None
                pos += n
            if texts[0] in result:
                raise MessageFormatError("encryption context repeats a key")
            result[texts[0]] = texts[1]
        if pos != len(view):
            raise MessageFormatError("encryption context has bytes after its last pair")
        return cls(result)

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
        for _, _, k, v in self._entries:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for _, _, k, _ in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._serialized)

    def __repr__(self) -> str:
        # The context is not secret (KMS logs it in CloudTrail), so it may be shown.
        return f"EncryptionContext({dict(self.items())!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.items())
