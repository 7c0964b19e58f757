"""GetAuthorizationToken: the registry password a container client logs in with (user ``AWS``).

ECR hands out a token valid for 12 hours that carries the caller's identity: every request made
with it runs as that principal. Here the password is 48 random bytes; the registry's metadata keeps
only its SHA-256 (a stolen database yields no usable password) with the principal and the expiry,
so any process serving the registry accepts it.

A container client sends the token with every request (a pull of a small image is a handful of
them), so a process remembers the tokens it has verified -- their fingerprint, principal and
expiry, never the password -- until they expire: a token is never changed or withdrawn before
its expiry (ECR has no call for that), so the answer from memory is the answer the database
would give, without its round trip. What the principal may do is still decided per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import weakref
from typing import Any

import attrs

from ecrcrypt.ecr import records
from ecrcrypt.ecr.core import RegistryCore
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


#: Verified tokens a process remembers per registry, at most (past it, the expired go, then all).
VERIFIED_TOKENS = 4096


class _Verified:
    """The tokens one registry core has verified: fingerprint -> (principal, expiry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, fingerprint: str) -> tuple[str, float] | None:
        return self._tokens.get(fingerprint)

    def put(self, fingerprint: str, principal: str, expires: float, now: float) -> None:
        with self._lock:
            if len(self._tokens) >= VERIFIED_TOKENS:
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
                if len(self._tokens) >= VERIFIED_TOKENS:
                    self._tokens = {}
            self._tokens[fingerprint] = (principal, expires)


_verified: weakref.WeakKeyDictionary[RegistryCore, _Verified] = weakref.WeakKeyDictionary()
_verified_lock = threading.Lock()


def _verified_of(core: RegistryCore) -> _Verified:
    found = _verified.get(core)
    if found is None:
        with _verified_lock:
            found = _verified.setdefault(core, _Verified())
    return found


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
    fingerprint = _fingerprint(password)
    now = time.time()
    verified = _verified_of(registry._core)
    found = verified.get(fingerprint)
    if found is None:
        found = records.get_token(registry._core.metadata, fingerprint)
        if found is None:
            return None  # never remembered: only what the database holds is
        verified.put(fingerprint, found[0], found[1], now)
    principal, expires = found
    return principal if expires > now else None
