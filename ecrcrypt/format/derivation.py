"""Content-key derivation and key commitment (spec ``framework/transitive-requirements.md``).

v2 (0x0478/0x0578): HKDF-SHA512 with the 32-byte message id as salt; the content
key uses info ``suite id ‖ "DERIVEKEY"``, the commit key info ``"COMMITKEY"``.
v1 HKDF suites: no salt, info ``suite id ‖ message id``. v1 NO_KDF: the data key
itself. The commit key binds a message to exactly one data key, so two EDKs of a
message can never open to two different plaintexts.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from ecrcrypt.errors import AuthenticationError
from ecrcrypt.format.suites import AlgorithmSuite, Kdf

__all__ = ["check_commitment", "derive_keys"]

_HASHES: dict[Kdf, hashes.HashAlgorithm] = {
    # Hash algorithm objects are immutable parameter holders: one instance serves every call.
    Kdf.HKDF_SHA256: hashes.SHA256(),
    Kdf.HKDF_SHA384: hashes.SHA384(),
    Kdf.HKDF_SHA512: hashes.SHA512(),
}
_COMMIT_INFO = b"COMMITKEY"
_EXTRACT = getattr(HKDF, "extract", None)  # cryptography >= 47


def derive_keys(suite: AlgorithmSuite, data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    """``(content key, commit key)``; the commit key is ``b""`` for non-committing suites."""
    if suite.kdf is Kdf.IDENTITY:
        return data_key, b""
    algorithm = _HASHES[suite.kdf]
    if suite.committing:
        enc_info = suite.id_bytes + b"DERIVEKEY"
        if _EXTRACT is None:
            enc = HKDF(algorithm, suite.key_length, salt=message_id, info=enc_info).derive(data_key)
            return enc, HKDF(algorithm, 32, salt=message_id, info=_COMMIT_INFO).derive(data_key)
        # One Extract, two Expands: the same keys as two full HKDF calls (RFC 5869: HKDF =
        # Expand(Extract(salt, IKM), info, L), and both calls share salt and IKM), at 3 HMACs not 4.
        prk = _EXTRACT(algorithm, message_id, data_key)
        enc = HKDFExpand(algorithm, suite.key_length, info=enc_info).derive(prk)
        return enc, HKDFExpand(algorithm, 32, info=_COMMIT_INFO).derive(prk)
    return HKDF(algorithm, suite.key_length, salt=None, info=suite.id_bytes + message_id).derive(data_key), b""


def check_commitment(expected: bytes, stored: bytes) -> None:
    """Compare the recomputed commit key with the header's, in constant time.

    Spec decrypt.md: the check happens before the content key is used at all.
    """
    if not hmac.compare_digest(expected, stored):
        raise AuthenticationError("message authentication failed")
