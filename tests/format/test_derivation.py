"""HKDF as ecrcrypt composes it from cryptography's HMAC: RFC 5869's vectors, cryptography's own HKDF,
and every suite's derivation (the ESDK vectors in test_vectors.py decrypt through it as well)."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ecrcrypt.format.derivation import derive_keys, hkdf_expand, hkdf_extract
from ecrcrypt.format.suites import SUITES, AlgorithmSuite, Kdf

_RANGE_2 = bytes(range(0x00, 0x50))
_SALT_2 = bytes(range(0x60, 0xB0))
_INFO_2 = bytes(range(0xB0, 0x100))

# RFC 5869 appendix A: (hash, IKM, salt, info, L, PRK, OKM); salt None = "not provided".
RFC5869 = [
    pytest.param(
        hashes.SHA256(), b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42,
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        id="A.1",
    ),
    pytest.param(
        hashes.SHA256(), _RANGE_2, _SALT_2, _INFO_2, 82,
        "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
        "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        id="A.2",
    ),
    pytest.param(
        hashes.SHA256(), b"\x0b" * 22, b"", b"", 42,
        "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        id="A.3",
    ),
    pytest.param(
        hashes.SHA1(), b"\x0b" * 11, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42,
        "9b6c18c432a7bf8f0e71c8eb88f4b30baa2ba243",
        "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896",
        id="A.4",
    ),
    pytest.param(
        hashes.SHA1(), _RANGE_2, _SALT_2, _INFO_2, 82,
        "8adae09a2a307059478d309b26c4115a224cfaf6",
        "0bd770a74d1160f7c9f12cd5912a06ebff6adcae899d92191fe4305673ba2ffe8fa3f1a4e5ad79f3f334b3b202b2173c"
        "486ea37ce3d397ed034c7f9dfeb15c5e927336d0441f4c4300e2cff0d0900b52d3b4",
        id="A.5",
    ),
    pytest.param(
        hashes.SHA1(), b"\x0b" * 22, b"", b"", 42,
        "da8c8a73c7fa77288ec6f5e7c297786aa0d32d01",
        "0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0ea00033de03984d34918",
        id="A.6",
    ),
    pytest.param(
        hashes.SHA1(), b"\x0c" * 22, None, b"", 42,
        "2adccada18779e7c2077ad2eb19d3f3e731385dd",
        "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5673a081d70cce7acfc48",
        id="A.7",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("algorithm", "ikm", "salt", "info", "length", "prk", "okm"), RFC5869)
def test_rfc5869_vectors(
    algorithm: hashes.HashAlgorithm, ikm: bytes, salt: bytes | None, info: bytes, length: int, prk: str, okm: str
) -> None:
    assert hkdf_extract(algorithm, salt, ikm).hex() == prk
    assert hkdf_expand(algorithm, bytes.fromhex(prk), info, length).hex() == okm


def test_expand_refuses_more_than_255_blocks_or_nothing() -> None:
    prk = bytes(32)
    assert len(hkdf_expand(hashes.SHA256(), prk, b"", 255 * 32)) == 255 * 32
    for length in (0, 255 * 32 + 1):
        with pytest.raises(ValueError, match="at most"):
            hkdf_expand(hashes.SHA256(), prk, b"", length)


_ALGORITHMS = {Kdf.HKDF_SHA256: hashes.SHA256(), Kdf.HKDF_SHA384: hashes.SHA384(), Kdf.HKDF_SHA512: hashes.SHA512()}


@pytest.mark.parametrize("suite", list(SUITES.values()), ids=lambda s: f"0x{s.id:04x}")
def test_every_suite_derives_what_cryptographys_hkdf_derives(suite: AlgorithmSuite) -> None:
    """The composed derivation equals two full HKDF calls (v2) or one unsalted HKDF (v1), as the spec writes them."""
    for _ in range(4):
        data_key = os.urandom(suite.key_length)
        message_id = os.urandom(suite.message_id_length)
        enc, commit = derive_keys(suite, data_key, message_id)
        if suite.kdf is Kdf.IDENTITY:
            assert (enc, commit) == (data_key, b"")
            continue
        algorithm = _ALGORITHMS[suite.kdf]
        if suite.committing:
            info = suite.id_bytes + b"DERIVEKEY"
            assert enc == HKDF(algorithm, suite.key_length, salt=message_id, info=info).derive(data_key)
            assert commit == HKDF(algorithm, 32, salt=message_id, info=b"COMMITKEY").derive(data_key)
        else:
            info = suite.id_bytes + message_id
            assert enc == HKDF(algorithm, suite.key_length, salt=None, info=info).derive(data_key)
            assert commit == b""
