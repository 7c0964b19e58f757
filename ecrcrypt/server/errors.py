"""The distribution spec's error responses, and which library error becomes which.

The spec's body is ``{"errors": [{"code", "message", "detail"}]}`` with a fixed set of codes; clients
act on the code and the HTTP status (a 404 ``BLOB_UNKNOWN`` on a HEAD makes them upload the blob).
Kept apart from the application so that the mapping is readable (and testable) on its own.
"""

from __future__ import annotations

from typing import Any

import attrs

from ecrcrypt.errors import (
    AccessDeniedError,
    DigestMismatchError,
    EcrCryptError,
    EcrKmsError,
    ImageDigestDoesNotMatchError,
    ImageNotFoundError,
    ImageTagAlreadyExistsError,
    InvalidLayerPartError,
    InvalidParameterError,
    LayersNotFoundError,
    ReferencedImagesNotFoundError,
    RepositoryNotFoundError,
    UploadNotFoundError,
)

__all__ = ["DistributionError", "from_library"]


@attrs.frozen
class DistributionError(Exception):
    """An error response: HTTP status, spec code, message (no key material: library messages have none)."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.message, "detail": None}]}


#: (library error, HTTP status, spec code): the first match wins, so subclasses come first.
_MAPPING: tuple[tuple[type[EcrCryptError], int, str], ...] = (
    # The token's principal may not do this (its identity policies, the repository policy).
    (AccessDeniedError, 403, "DENIED"),
    (RepositoryNotFoundError, 404, "NAME_UNKNOWN"),
    (UploadNotFoundError, 404, "BLOB_UPLOAD_UNKNOWN"),
    (InvalidLayerPartError, 416, "BLOB_UPLOAD_INVALID"),
    (DigestMismatchError, 400, "DIGEST_INVALID"),
    (ImageDigestDoesNotMatchError, 400, "DIGEST_INVALID"),
    (LayersNotFoundError, 400, "MANIFEST_BLOB_UNKNOWN"),
    (ReferencedImagesNotFoundError, 400, "MANIFEST_BLOB_UNKNOWN"),
    (ImageNotFoundError, 404, "MANIFEST_UNKNOWN"),
    # What ECR answers a docker push to an immutable tag with (distribution's legacy code).
    (ImageTagAlreadyExistsError, 400, "TAG_INVALID"),
    (InvalidParameterError, 400, "MANIFEST_INVALID"),
    # The repository's key is disabled, its grant revoked...: the request is refused, not broken.
    (EcrKmsError, 403, "DENIED"),
)


def from_library(exc: EcrCryptError) -> DistributionError:
    for cls, status, code in _MAPPING:
        if isinstance(exc, cls):
            return DistributionError(status, code, str(exc))
    return DistributionError(500, "UNKNOWN", f"{exc.code}: {exc}")
