"""Content-key derivation and key commitment (spec ``framework/transitive-requirements.md``).

v2 (0x0478/0x0578): HKDF-SHA512 with the 32-byte message id as salt; the content
key uses info ``suite id ‖ "DERIVEKEY"``, the commit key info ``"COMMITKEY"``.
v1 HKDF suites: no salt, info ``suite id ‖ message id``. v1 NO_KDF: the data key
itself. The commit key binds a message to exactly one data key, so two EDKs of a
message can never open to two different plaintexts.

HKDF is RFC 5869 composed from ``cryptography``'s HMAC primitive, not its ``HKDF``
classes: a one-block Expand is one HMAC, and building the KDF objects cost more than
the hashing (≈ 4 µs of a 5 µs derivation). Both v2 keys share the Extract (RFC 5869:
HKDF = Expand(Extract(salt, IKM), info, L), and both calls share salt and IKM), and the
Expand HMAC is keyed once with the PRK and copied for the second key. Checked against
RFC 5869's test vectors and the ESDK's (tests/format/test_derivation.py).
"""

from __future__ import annotations

import hmac as _constant_time

from cryptography.hazmat.primitives import hashes, hmac

from ecrcrypt.errors import AuthenticationError
from ecrcrypt.format.suites import SUITES, AlgorithmSuite, Kdf

__all__ = ["check_commitment", "derive_keys", "hkdf_expand", "hkdf_extract"]

_HASHES: dict[Kdf, hashes.HashAlgorithm] = {
    # Hash algorithm objects are immutable parameter holders: one instance serves every call.
    Kdf.HKDF_SHA256: hashes.SHA256(),
    Kdf.HKDF_SHA384: hashes.SHA384(),
    Kdf.HKDF_SHA512: hashes.SHA512(),
}
_COMMIT_INFO_BLOCK = b"COMMITKEY\x01"  # the commit key's info ‖ RFC 5869's first block counter
_COMMIT_LENGTH = 32


def hkdf_extract(algorithm: hashes.HashAlgorithm, salt: bytes | None, ikm: bytes) -> bytes:
    """RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); a missing salt is HashLen zero bytes."""
    h = hmac.HMAC(salt if salt else bytes(algorithm.digest_size), algorithm)
    h.update(ikm)
    return h.finalize()


def hkdf_expand(algorithm: hashes.HashAlgorithm, prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 §2.3: T(i) = HMAC-Hash(PRK, T(i-1) ‖ info ‖ i), OKM = the first ``length`` bytes."""
    size = algorithm.digest_size
    if not 0 < length <= 255 * size:
        raise ValueError(f"HKDF can expand to at most {255 * size} bytes")
    keyed = hmac.HMAC(prk, algorithm)
    blocks: list[bytes] = []
    previous = b""
    for counter in range(1, -(-length // size) + 1):
        h = keyed.copy()
        h.update(previous + info + bytes((counter,)))
        previous = h.finalize()
        blocks.append(previous)
    return b"".join(blocks)[:length]


def _committing(
    algorithm: hashes.HashAlgorithm, enc_info_block: bytes, data_key: bytes, salt: bytes
) -> tuple[bytes, bytes]:
    """Both v2 keys from one Extract and one keyed Expand HMAC (copied): three HMAC computations."""
    extract = hmac.HMAC(salt, algorithm)
    extract.update(data_key)
    enc = hmac.HMAC(extract.finalize(), algorithm)
    commit = enc.copy()
    enc.update(enc_info_block)
    commit.update(_COMMIT_INFO_BLOCK)
    # A key of ≤ HashLen bytes is the first block: 32 ≤ 64 for SHA-512.
    return enc.finalize(), commit.finalize()[:_COMMIT_LENGTH]


def derive_keys(suite: AlgorithmSuite, data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    """``(content key, commit key)``; the commit key is ``b""`` for non-committing suites."""
    plan = _COMMITTING.get(suite.id)
    if plan is not None:
        algorithm, enc_info_block, key_length = plan
        enc, commit = _committing(algorithm, enc_info_block, data_key, message_id)
        return enc[:key_length], commit
    if suite.kdf is Kdf.IDENTITY:
        return data_key, b""
    algorithm = _HASHES[suite.kdf]
    prk = hkdf_extract(algorithm, None, data_key)
    return hkdf_expand(algorithm, prk, suite.id_bytes + message_id, suite.key_length), b""


# Per committing suite, what its derivation needs: the hash, the content key's info with RFC 5869's
# first block counter appended (both keys fit one block), and the key length.
_COMMITTING = {
    s.id: (_HASHES[s.kdf], s.id_bytes + b"DERIVEKEY\x01", s.key_length) for s in SUITES.values() if s.committing
}


def check_commitment(expected: bytes, stored: bytes) -> None:
    """Compare the recomputed commit key with the header's, in constant time.

    Spec decrypt.md: the check happens before the content key is used at all.
    """
    if not _constant_time.compare_digest(expected, stored):
        raise AuthenticationError("message authentication failed")
