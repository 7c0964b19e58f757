"""GetAuthorizationToken: the registry password a container client logs in with (user ``AWS``).

ECR hands out a token valid for 12 hours that carries the caller's identity: every request made
with it runs as that principal. Here the password is 48 random bytes; the registry's metadata keeps
only its SHA-256 (a stolen database yields no usable password) with the principal and the expiry,
so any process serving the registry accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import attrs

from ecrcrypt.ecr import records
from ecrcrypt.ecr.permissions import decide_ecr
from ecrcrypt.ecr.registry import Registry

__all__ = ["TOKEN_LIFETIME", "USERNAME", "AuthorizationData", "authenticate", "get_authorization_token"]

#: ECR: "The authorization token is valid for 12 hours."
TOKEN_LIFETIME = 12 * 3600.0
#: ECR's registry user name for its tokens.
USERNAME = "AWS"


@attrs.frozen(kw_only=True)
class AuthorizationData:
    """GetAuthorizationToken's ``authorizationData`` item (never shows the token in a repr)."""

    authorization_token: str = attrs.field(repr=False)  # base64("AWS:" + password)
    expires_at: float
    proxy_endpoint: str

    @property
    def password(self) -> str:
        return base64.b64decode(self.authorization_token).decode().split(":", 1)[1]

    def to_api(self) -> dict[str, Any]:
        return {
            "authorizationToken": self.authorization_token,
            "expiresAt": self.expires_at,
            "proxyEndpoint": self.proxy_endpoint,
        }


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def get_authorization_token(registry: Registry, *, lifetime: float = TOKEN_LIFETIME) -> AuthorizationData:
    """A token for the registry view's caller (who needs ``ecr:GetAuthorizationToken``; its resource is ``*``)."""
    core = registry._core
    if core.authorization is not None:
        denial = decide_ecr(core.authorization, registry.caller, ("ecr:GetAuthorizationToken",), "*", None)
        if denial is not None:
            raise denial.error()
    password = secrets.token_urlsafe(48)
    at = time.time()
    expires = at + lifetime
    records.insert_token(registry._core.metadata, _fingerprint(password), registry.caller, expires, at)
    return AuthorizationData(
        authorization_token=base64.b64encode(f"{USERNAME}:{password}".encode()).decode(),
        expires_at=expires,
        proxy_endpoint=f"https://{registry.account}.dkr.ecr.{registry.region}.amazonaws.com",
    )


def authenticate(registry: Registry, username: str, password: str) -> str | None:
    """The principal a (user, password) pair logs in as, or ``None`` (unknown, expired, wrong user)."""
    if not hmac.compare_digest(username.encode(), USERNAME.encode()):
        return None
    found = records.get_token(registry._core.metadata, _fingerprint(password))
    if found is None:
        return None
    principal, expires = found
    return principal if expires > time.time() else None
