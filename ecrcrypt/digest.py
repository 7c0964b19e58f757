"""Content digests as OCI and ECR write them: ``sha256:<64 lowercase hex>``."""

from __future__ import annotations

import hashlib
import re

import attrs

from ecrcrypt._validate import matches
from ecrcrypt.errors import ValidationError

__all__ = ["Digest"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class Digest:
    """A SHA-256 content digest; the only algorithm ECR's encryption context names."""

    hex: str = attrs.field(validator=matches(_HEX64, "a SHA-256 digest is 64 lowercase hex digits"))

    @classmethod
    def parse(cls, text: str) -> Digest:

        if not isinstance(text, str) or not text.startswith("sha256:"):
            raise ValidationError(f"Digest {text!r} is invalid: expected 'sha256:' and 64 hex digits")
        return cls(text[len("sha256:") :])

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"sha256:{self.hex}"
