"""Request parameters of the local KMS: parsing and validation with KMS's rules (private).

Each limit quotes its source ([BC-KMS]: botocore's KMS service model).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii

from ecrcrypt.arns import AliasArn, AliasName, KeyArn, KeyId, parse_key_reference
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import InvalidArnError, InvalidGrantTokenError, InvalidMarkerError, NotFoundError, ValidationError
from ecrcrypt.kms import SYMMETRIC_GRANT_OPERATIONS, DataKeySpec, GrantOperation

# CreateGrant GranteePrincipal / RetiringPrincipal: ^[\w+=,.@:/-]+$, 1-256 (botocore).
PRINCIPAL_PATTERN = re.compile(r"[\w+=,.@:/-]{1,256}")
# KMS: PlaintextType 1-4096 bytes; NumberOfBytes 1-1024; GrantTokens at most 10.
MAX_PLAINTEXT = 4096
MAX_DATA_KEY_BYTES = 1024
MAX_GRANT_TOKENS = 10
# KMS ListGrants / ListAliases: "Limit ... between 1 and 100, inclusive. The default value is 50."
MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT = 100, 50
# KMS CreateGrant Name: ^[a-zA-Z0-9:/_-]+$, 1-256.
GRANT_NAME = re.compile(r"[a-zA-Z0-9:/_-]{1,256}")
# KMS GrantIdType: the ids KMS issues are 64 hex digits.
GRANT_ID = re.compile(r"[0-9a-f]{64}")
TOKEN_PREFIX = b"\x01ecrcrypt-grant"


MAX_KEY_ID = 2048


@functools.lru_cache(maxsize=4096)
def parse_ref(text: str) -> KeyId | KeyArn | AliasName | AliasArn:
    if not 1 <= len(text) <= MAX_KEY_ID:
        # botocore's KMS model, KeyIdType: length 1 to 2048 (a ValidationException before any lookup).
        raise ValidationError(f"KeyId must be 1 to {MAX_KEY_ID} characters long, not {len(text)}")
    try:
        return parse_key_reference(text)
    except InvalidArnError:
        raise
    except ValidationError:
        # KMS answers an unparseable KeyId with NotFoundException ("Invalid keyId").
        raise NotFoundError(f"Invalid keyId '{text}'") from None


def as_context(value: Mapping[str, str] | None) -> EncryptionContext:
    if isinstance(value, EncryptionContext):
        return value
    if value is None:
        return EMPTY_CONTEXT
    if not isinstance(value, Mapping):
        raise ValidationError(f"EncryptionContext must be a mapping, not {type(value).__name__}")
    return EncryptionContext(value)


EMPTY_CONTEXT = EncryptionContext()


def check_tokens(tokens: Sequence[str]) -> None:
    if isinstance(tokens, str):
        raise ValidationError("GrantTokens is a list of grant tokens, not a str")
    if len(tokens) > MAX_GRANT_TOKENS:
        raise ValidationError(f"GrantTokens holds at most {MAX_GRANT_TOKENS} tokens")
    for token in tokens:
        token_grant_id(token)


def new_token(grant_id: str) -> str:
    raw = TOKEN_PREFIX + bytes.fromhex(grant_id) + os.urandom(16)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_grant_id(token: object) -> str:
    """The grant a token names; ``InvalidGrantTokenError`` if it is not one of ours."""
    if not isinstance(token, str) or not 0 < len(token) <= 8192:
        raise InvalidGrantTokenError("The grant token is invalid.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidGrantTokenError("The grant token is invalid.") from None
    if len(raw) != len(TOKEN_PREFIX) + 48 or not raw.startswith(TOKEN_PREFIX):
        raise InvalidGrantTokenError("The grant token is invalid.")
    return raw[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 32].hex()


def encode_marker(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode_marker(kind: str, marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith(f"{kind}:"):
        # KMS: InvalidMarkerException, "the marker that specifies where pagination
        # should next begin is not valid".
        raise InvalidMarkerError(f"The marker {marker!r} is not valid")
    return text[len(kind) + 1 :]


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIST_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValidationError(f"Limit must be between 1 and {MAX_LIST_LIMIT}")
    return limit


dumps = functools.partial(json.dumps, separators=(",", ":"))


def json_text(text: str) -> str:
    """``json.dumps`` of a str (``ensure_ascii``): the encoder's own C function, without
    the ``dumps`` call around it, for the ids, ARNs and contexts of the hot path."""
    return encode_basestring_ascii(text)


def json_scalar(value: object) -> str:
    return str(value) if type(value) is int else dumps(value)


def data_key_length(number_of_bytes: int | None, key_spec: DataKeySpec | str | None) -> int:
    # KMS: "You must specify either the KeySpec or the NumberOfBytes parameter (but not both)".
    if (number_of_bytes is None) == (key_spec is None):
        raise ValidationError("Specify either KeySpec or NumberOfBytes, but not both")
    if key_spec is not None:
        try:
            return DataKeySpec(key_spec).number_of_bytes
        except ValueError:
            raise ValidationError(f"KeySpec must be AES_256 or AES_128, not {key_spec!r}") from None
    assert number_of_bytes is not None
    if not isinstance(number_of_bytes, int) or isinstance(number_of_bytes, bool):
        raise ValidationError("NumberOfBytes must be an int")
    if not 1 <= number_of_bytes <= MAX_DATA_KEY_BYTES:
        raise ValidationError(f"NumberOfBytes must be between 1 and {MAX_DATA_KEY_BYTES}")
    return number_of_bytes


# botocore's KMS model, ServicePrincipalType: 1-128 characters, dotted (``ecr.us-east-1.amazonaws.com``).
SERVICE_PRINCIPAL_PATTERN = re.compile(r"([A-Za-z0-9\-]+)\.([A-Za-z0-9\-]+)(\.[A-Za-z0-9\-]+)+")


def check_service_principal(value: object, field: str) -> str:
    if not isinstance(value, str) or len(value) > 128 or SERVICE_PRINCIPAL_PATTERN.fullmatch(value) is None:
        raise ValidationError(
            f"{field} must match ^([A-Za-z0-9\\-]+)\\.([A-Za-z0-9\\-]+)(\\.[A-Za-z0-9\\-]+)+$ "
            "and be 1 to 128 characters"
        )
    return value


def check_principal(value: object, field: str) -> str:
    if not isinstance(value, str) or PRINCIPAL_PATTERN.fullmatch(value) is None:
        raise ValidationError(f"{field} must match ^[\\w+=,.@:/-]+$ and be 1 to 256 characters")
    return value


def check_operations(values: Sequence[GrantOperation | str]) -> frozenset[GrantOperation]:
    if isinstance(values, str) or not values:
        raise ValidationError("Operations must be a non-empty list of grant operations")
    ops: set[GrantOperation] = set()
    for v in values:
        try:
            op = GrantOperation(v)
        except ValueError:
            raise ValidationError(f"{v!r} is not a grant operation") from None
        if op not in SYMMETRIC_GRANT_OPERATIONS:
            # KMS: an operation the key does not support gives ValidationException.
            raise ValidationError(f"The grant operation {op.value} is not valid for a symmetric encryption key")
        ops.add(op)
    return frozenset(ops)
