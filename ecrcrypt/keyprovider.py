"""The key-provider interface: where data keys come from and how they are wrapped.

The message layer asks a provider for a fresh data key for an encryption context
and stores the encrypted forms it returns (ESDK "encrypted data keys") in the
message header; to decrypt, it hands those back with the same context. Providers
never see message bodies, and the message layer never sees wrapping keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NoReturn, Protocol, runtime_checkable

import attrs

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import ValidationError

__all__ = ["DataKey", "EncryptedDataKey", "KeyProvider"]


def _u16_bytes(field: str) -> Any:
    def check(instance: object, attribute: object, value: object) -> None:
        if not isinstance(value, bytes):
            raise ValidationError(f"EncryptedDataKey.{field} must be bytes, not {type(value).__name__}")
        if len(value) > 0xFFFF:
            raise ValidationError(f"EncryptedDataKey.{field} is at most 65535 bytes")

    return check


@attrs.frozen(kw_only=True)
class EncryptedDataKey:
    """One wrapped copy of a data key, in the ESDK's three-field layout.

    ``provider_id`` names the kind of wrapping (``aws-kms``, or a raw key's
    namespace), ``provider_info`` which key (a KMS key ARN, or the raw key's name
    and IV), ``ciphertext`` the wrapped key itself.
    """

    provider_id: str = attrs.field()
    provider_info: bytes = attrs.field(validator=_u16_bytes("provider_info"))
    ciphertext: bytes = attrs.field(validator=_u16_bytes("ciphertext"), repr=lambda b: f"<{len(b)} bytes>")

    @provider_id.validator
    def _check_pid(self, attribute: object, value: object) -> None:
        if not isinstance(value, str) or not 0 < len(value.encode("utf-8", "surrogatepass")) <= 0xFFFF:
            raise ValidationError("EncryptedDataKey.provider_id must be a non-empty str of at most 65535 bytes")


def _edk_tuple(value: Iterable[EncryptedDataKey]) -> tuple[EncryptedDataKey, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class DataKey:
    """A plaintext data key and its encrypted copies. The plaintext never reaches a repr."""

    # Not in ==/hash either: a bytes comparison is not constant-time and a hash fingerprints it.
    plaintext: bytes = attrs.field(repr=False, eq=False)
    encrypted_data_keys: tuple[EncryptedDataKey, ...] = attrs.field(converter=_edk_tuple)

    def __reduce__(self) -> NoReturn:
        # Pickling would write the plaintext key in the clear (to a file, a queue, another process).
        raise TypeError("DataKey holds a plaintext key and cannot be pickled or copied")

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.plaintext, bytes):
            raise ValidationError("DataKey.plaintext must be bytes")
        if not self.encrypted_data_keys:
            raise ValidationError("DataKey needs at least one encrypted data key")


@runtime_checkable
class KeyProvider(Protocol):
    """Generates, wraps and unwraps data keys for an encryption context.

    Error contract (implementations must keep it, callers may rely on it):

    * ``generate_data_key`` / ``encrypt_data_key`` raise the key service's error
      (an :class:`ecrcrypt.errors.KmsError` subclass such as ``DisabledError`` or
      ``AccessDeniedError``) when the wrapping key cannot be used; they never return
      a key that the same provider could not unwrap under the same context.
    * ``decrypt_data_key`` returns the plaintext data key only when one of the
      encrypted data keys was made by this provider for exactly this context.
      When none of them belongs to the provider, or every one that does fails to open
      (wrong wrapping key, different context, corrupted), it raises
      :class:`ecrcrypt.errors.DataKeyDecryptionError`. A failure that says the key
      itself is unusable (disabled, pending deletion, access denied, revoked grant)
      is raised as that error rather than folded into ``DataKeyDecryptionError``, so
      that the caller learns the cause.
    * Nothing raised or logged contains a plaintext or wrapping key.
    """

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        """A fresh random data key of ``length`` bytes and its encrypted forms."""
        ...

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        """Wrap an existing data key under ``context`` (for a header written last)."""
        ...

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        """Unwrap the first encrypted data key this provider can open under ``context``."""
        ...
