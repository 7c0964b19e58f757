"""The service-managed wrapping key of AES256 repositories (private).

ECR's AES256 setting is SSE-S3: "Amazon S3-managed encryption keys", no KMS calls
and no grants. ecrcrypt models it with one registry-held AES-256 wrapping key used
through the ESDK raw AES keyring, so that the objects are still ESDK messages with
one data key each. The key is a file created with mode 0600 beside the registry
metadata (or lives only in memory for tests); it never reaches a repr or a log.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecrcrypt._keyfile import load_or_create_key_file
from ecrcrypt.errors import ValidationError

__all__ = ["SERVICE_KEY_NAMESPACE", "ServiceKey"]

SERVICE_KEY_NAMESPACE = "ecrcrypt-service-managed"
_KEY_BYTES = 32


class ServiceKey:
    """A 256-bit wrapping key; load it from ``path`` (created on first use) or generate it in memory."""

    __slots__ = ("_key", "_path")

    def __init__(self, key: bytes, *, path: Path | None = None) -> None:
        if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
            raise ValidationError("the service-managed key must be 32 bytes")
        self._key = key
        self._path = path

    @classmethod
    def generate(cls) -> ServiceKey:
        return cls(os.urandom(_KEY_BYTES))

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> ServiceKey:
        target = Path(path)
        key = load_or_create_key_file(target, _KEY_BYTES)
        if key is None:
            raise ValidationError(f"{target} does not hold a 32-byte service key")
        return cls(key, path=target)

    @property
    def material(self) -> bytes:
        return self._key

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would copy the key material into whatever holds the pickle.
        raise TypeError("ServiceKey holds key material and cannot be pickled or copied")

    def __repr__(self) -> str:
        return f"ServiceKey(path={str(self._path) if self._path else None!r})"
