"""A raw AES wrapping key as a :class:`~ecrcrypt.keyprovider.KeyProvider`: the ESDK raw AES keyring.

Byte for byte the spec's ``framework/raw-aes-keyring.md`` (and aws-encryption-sdk-
python's ``RawMasterKey`` with AES-GCM wrapping), so any ESDK configured with the
same namespace, name and key decrypts what this wraps, and the other way round:

* provider id = the key namespace (UTF-8);
* provider info = key name (UTF-8, no length prefix) ‖ tag length in bits (u32 = 128)
  ‖ IV length (u32 = 12) ‖ IV;
* ciphertext = AES-GCM(wrapping key, IV, AAD = serialized encryption context) of
  the data key, tag appended.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from typing import NoReturn

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import DataKeyDecryptionError, ValidationError
from ecrcrypt.format.header import trusted_edk
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey

__all__ = ["RawAesKeyProvider"]

_TAG_BITS_IV_LEN = struct.pack(">II", 128, 12)
_INFO_TAIL = 4 + 4 + 12


def _check_text(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"RawAesKeyProvider.{attribute.name} must be a non-empty str")
    if len(value.encode("utf-8")) > 0xFFFF - _INFO_TAIL:
        raise ValidationError(f"RawAesKeyProvider.{attribute.name} is too long")


def _check_key(instance: object, attribute: attrs.Attribute[bytes], value: object) -> None:
    # Spec raw-aes-keyring.md: wrapping keys are AES-128, AES-192 or AES-256.
    if not isinstance(value, bytes) or len(value) not in (16, 24, 32):
        raise ValidationError("RawAesKeyProvider.wrapping_key must be 16, 24 or 32 bytes")


@attrs.frozen(kw_only=True)
class RawAesKeyProvider:
    """Wraps data keys with a local AES key under a (namespace, name) identity.

    The namespace must not start with ``aws-kms`` (reserved for the KMS keyrings,
    spec keyring-interface.md). Error contract: that of ``KeyProvider``; a wrong
    wrapping key, another context or a foreign EDK all end in
    :class:`DataKeyDecryptionError`.
    """

    key_namespace: str = attrs.field(validator=_check_text)
    key_name: str = attrs.field(validator=_check_text)
    # Key material takes no part in ==/hash (a bytes comparison is not constant-time, and a
    # hash of the key would be a stable fingerprint of it): the identity is (namespace, name).
    wrapping_key: bytes = attrs.field(validator=_check_key, repr=False, eq=False)
    _aead: AESGCM = attrs.field(init=False, repr=False, eq=False)
    _name: bytes = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.key_namespace.startswith("aws-kms"):
            raise ValidationError("RawAesKeyProvider.key_namespace must not start with 'aws-kms' (reserved)")
        object.__setattr__(self, "_aead", AESGCM(self.wrapping_key))
        object.__setattr__(self, "_name", self.key_name.encode("utf-8"))

    def __reduce__(self) -> NoReturn:
        # Pickling would write the wrapping key in the clear (to a file, a queue, another process).
        raise TypeError("RawAesKeyProvider holds a wrapping key and cannot be pickled or copied")

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        if length not in (16, 24, 32):
            raise ValidationError("data keys are 16, 24 or 32 bytes")
        plaintext = os.urandom(length)
        edks = self.encrypt_data_key(plaintext, context)
        return DataKey(plaintext=plaintext, encrypted_data_keys=edks)

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        iv = os.urandom(12)
        ciphertext = self._aead.encrypt(iv, plaintext_key, _aad(context))
        info = self._name + _TAG_BITS_IV_LEN + iv
        if len(ciphertext) > 0xFFFF:  # a "key" no ESDK field can hold: the validator's error
            return (EncryptedDataKey(provider_id=self.key_namespace, provider_info=info, ciphertext=ciphertext),)
        # Valid by construction (namespace and name checked at __init__, the ciphertext bounded
        # just above): the EncryptedDataKey is made without running its validators again.
        return (trusted_edk(self.key_namespace, info, ciphertext),)

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        aad = _aad(context)
        name = self._name
        for edk in encrypted_data_keys:
            info = edk.provider_info
            # Spec: provider id equals the namespace, info = name ‖ 128 ‖ 12 ‖ IV, parsed from the end.
            if edk.provider_id != self.key_namespace or len(info) != len(name) + _INFO_TAIL:
                continue
            if not info.startswith(name) or not info.startswith(_TAG_BITS_IV_LEN, len(name)):
                continue
            try:
                return self._aead.decrypt(info[-12:], edk.ciphertext, aad)
            except InvalidTag:
                continue
        raise DataKeyDecryptionError(
            f"no encrypted data key could be decrypted with raw AES key {self.key_namespace!r}/{self.key_name!r}"
        )


def _aad(context: Mapping[str, str]) -> bytes:
    # The spec's AAD is the canonical (sorted) serialization of the full context.
    return (context if isinstance(context, EncryptionContext) else EncryptionContext(context)).serialize()
