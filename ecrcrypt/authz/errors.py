"""The errors the authorization layer raises, defined in :mod:`ecrcrypt.errors`.

They live with every other ecrcrypt error so that :func:`ecrcrypt.errors.error_for_code`
maps their AWS codes (``MalformedPolicyDocumentException`` from botocore becomes
:class:`MalformedPolicyDocumentError`); this module keeps the engine's own import path.
"""

from __future__ import annotations

from ecrcrypt.errors import MalformedPolicyDocumentError, PolicyAccessDeniedError, PolicySizeLimitExceededError

__all__ = ["MalformedPolicyDocumentError", "PolicyAccessDeniedError", "PolicySizeLimitExceededError"]
