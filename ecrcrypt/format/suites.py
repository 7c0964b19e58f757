"""The AWS Encryption SDK algorithm suites, as data.

Source: aws-encryption-sdk-specification ``framework/algorithm-suites.md``. Every
suite is AES-GCM with a 12-byte IV and a 16-byte tag; they differ in key length,
key derivation, key commitment and the footer signature. ecrcrypt writes only
:data:`AES_256_GCM_HKDF_SHA512_COMMIT_KEY` (0x0478) and reads all eleven.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ecrcrypt.errors import UnsupportedAlgorithmError

__all__ = [
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
    "SUITES",
    "AlgorithmSuite",
    "Kdf",
    "Signature",
    "suite_for_id",
]

IV_LENGTH = 12
TAG_LENGTH = 16


class Kdf(enum.Enum):
    """How the content key is derived from the data key (spec ``transitive-requirements.md``)."""

    IDENTITY = "identity"  # v1 NO_KDF suites: the data key is the content key
    HKDF_SHA256 = "sha256"
    HKDF_SHA384 = "sha384"
    HKDF_SHA512 = "sha512"


class Signature(enum.Enum):
    """The footer signature of the signing suites (ECDSA with the named curve and hash)."""

    ECDSA_P256_SHA256 = "p256"
    ECDSA_P384_SHA384 = "p384"


@attrs.frozen(kw_only=True)
class AlgorithmSuite:
    """One ESDK algorithm suite. ``key_length`` is in bytes (data key = content key length)."""

    id: int
    name: str
    message_version: int = attrs.field(validator=attrs.validators.in_((1, 2)))
    key_length: int = attrs.field(validator=attrs.validators.in_((16, 24, 32)))
    kdf: Kdf
    committing: bool
    signature: Signature | None

    @property
    def id_bytes(self) -> bytes:
        return self.id.to_bytes(2, "big")

    @property
    def suite_data_length(self) -> int:
        # v2 committing suites carry the 32-byte commit key as "algorithm suite data".
        return 32 if self.committing else 0

    @property
    def message_id_length(self) -> int:
        # Spec message-header.md: 16 bytes in v1, 32 in v2 (also the HKDF salt there).
        return 32 if self.message_version == 2 else 16

    def __str__(self) -> str:
        return f"{self.name} (0x{self.id:04x})"


def _suite(
    id: int, name: str, version: int, key_length: int, kdf: Kdf, committing: bool, sig: Signature | None
) -> AlgorithmSuite:
    return AlgorithmSuite(
        id=id, name=name, message_version=version, key_length=key_length, kdf=kdf, committing=committing, signature=sig
    )


_P384 = Signature.ECDSA_P384_SHA384
_P256 = Signature.ECDSA_P256_SHA256
AES_256_GCM_HKDF_SHA512_COMMIT_KEY = _suite(
    0x0478, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, Kdf.HKDF_SHA512, True, None
)
AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 = _suite(
    0x0578, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, Kdf.HKDF_SHA512, True, _P384
)

SUITES: Mapping[int, AlgorithmSuite] = MappingProxyType(
    {
        s.id: s
        for s in (
            AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
            AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
            _suite(0x0378, "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 32, Kdf.HKDF_SHA384, False, _P384),
            _suite(0x0346, "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 24, Kdf.HKDF_SHA384, False, _P384),
            _suite(0x0214, "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 1, 16, Kdf.HKDF_SHA256, False, _P256),
            _suite(0x0178, "AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 32, Kdf.HKDF_SHA256, False, None),
            _suite(0x0146, "AES_192_GCM_IV12_TAG16_HKDF_SHA256", 1, 24, Kdf.HKDF_SHA256, False, None),
            _suite(0x0114, "AES_128_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, Kdf.HKDF_SHA256, False, None),
            _suite(0x0078, "AES_256_GCM_IV12_TAG16_NO_KDF", 1, 32, Kdf.IDENTITY, False, None),
            _suite(0x0046, "AES_192_GCM_IV12_TAG16_NO_KDF", 1, 24, Kdf.IDENTITY, False, None),
            _suite(0x0014, "AES_128_GCM_IV12_TAG16_NO_KDF", 1, 16, Kdf.IDENTITY, False, None),
        )
    }
)


def suite_for_id(suite_id: int, *, message_version: int) -> AlgorithmSuite:
    """The suite a header names; unknown ids, and ids of the other format version, are rejected.

    Spec message-header.md: a v2 header names only 0x0478/0x0578, a v1 header only
    the nine non-committing suites.
    """
    suite = SUITES.get(suite_id)
    if suite is None:
        raise UnsupportedAlgorithmError(f"unknown algorithm suite 0x{suite_id:04x}")
    if suite.message_version != message_version:
        raise UnsupportedAlgorithmError(f"algorithm suite {suite} is not valid in a version {message_version} message")
    return suite
