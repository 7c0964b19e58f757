"""The 4 KiB object round trip: new data key, wrap, encrypt, unwrap, decrypt."""

from __future__ import annotations

import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from benchmarks._harness import Config, Report, Skip, need, per_op_us

SIZE = 4096
CONTEXT = {
    "aws:s3:arn": "arn:aws:s3:::ecr-bench/manifests/sha256:" + "0" * 64,
    "aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/bench",
}


def raw_roundtrip() -> None:
    """The floor: the same steps with bare AES-GCM (no header, no KDF, no commitment)."""
    wrapping = _WRAP
    data_key = os.urandom(32)
    iv = os.urandom(12)
    wrapped = wrapping.encrypt(iv, data_key, b"ctx")
    ct = AESGCM(data_key).encrypt(_IV, _DATA, b"aad")
    key = wrapping.decrypt(iv, wrapped, b"ctx")
    AESGCM(key).decrypt(_IV, ct, b"aad")


def _derive(data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    """Suite 0x0478's key derivation with the fewest HMACs ``cryptography`` allows: one Extract, two Expands."""
    if _EXTRACT is None:
        enc = HKDF(_SHA512, 32, salt=message_id, info=_ENC_INFO).derive(data_key)
        return enc, HKDF(_SHA512, 32, salt=message_id, info=b"COMMITKEY").derive(data_key)
    prk = _EXTRACT(_SHA512, message_id, data_key)
    return HKDFExpand(_SHA512, 32, info=_ENC_INFO).derive(prk), HKDFExpand(_SHA512, 32, info=b"COMMITKEY").derive(prk)


def format_floor_roundtrip() -> None:
    """The floor of the format itself: only the primitive calls one ESDK v2 round trip must make.

    No parsing, no objects, no checks beyond the commitment compare: three ``os.urandom``,
    wrap, HKDF (extract + two expands) and the content key schedule, header tag, frame;
    then unwrap, HKDF again, commitment compare, key schedule, header tag, frame. Whatever
    ``small_roundtrip_us`` spends above this is ecrcrypt's own Python.
    """
    data_key = os.urandom(32)
    message_id = os.urandom(32)
    iv = os.urandom(12)
    wrapped = _WRAP.encrypt(iv, data_key, _HEADER)
    enc, commit = _derive(data_key, message_id)
    sealer = AESGCM(enc)
    tag = sealer.encrypt(_IV, b"", _HEADER)
    ct = sealer.encrypt(_IV, _DATA, _FRAME_AAD)
    key = _WRAP.decrypt(iv, wrapped, _HEADER)
    enc2, commit2 = _derive(key, message_id)
    if not hmac.compare_digest(commit, commit2):
        raise AssertionError("commitment")
    opener = AESGCM(enc2)
    opener.decrypt(_IV, tag, _HEADER)
    opener.decrypt(_IV, ct, _FRAME_AAD)


_WRAP = AESGCM(os.urandom(32))
_IV = bytes(12)
_DATA = os.urandom(SIZE)
_SHA512 = hashes.SHA512()
_EXTRACT = getattr(HKDF, "extract", None)  # cryptography >= 47; looked up once, outside the timed loop
_ENC_INFO = b"\x04\x78DERIVEKEY"
_HEADER = os.urandom(400)  # about the size of a v2 header with the ECR context and one raw-AES EDK
_FRAME_AAD = os.urandom(32) + b"AWSKMSEncryptionClient Final Frame" + bytes(12)


def _check_floor_derivation() -> None:
    """The floor must make the format's calls, not cheaper ones: its keys equal ecrcrypt's (checked untimed)."""
    keys = need("ecrcrypt.format.derivation", "derive_keys")
    suite = need("ecrcrypt.format.message", "WRITE_SUITE").WRITE_SUITE
    data_key, message_id = os.urandom(32), os.urandom(32)
    if suite.id_bytes + b"DERIVEKEY" != _ENC_INFO:
        raise AssertionError("the floor derives keys for another suite than the one ecrcrypt writes")
    if _derive(data_key, message_id) != keys.derive_keys(suite, data_key, message_id):
        raise AssertionError("the floor's key derivation differs from ecrcrypt's")


def run(cfg: Config, report: Report) -> None:
    n = cfg.small_iterations
    report.add("raw_small_roundtrip_us", "4 KiB round trip, bare AES-GCM", per_op_us(raw_roundtrip, n), "µs")
    report.add(
        "floor_small_roundtrip_us",
        "4 KiB round trip, the format's primitive calls only",
        per_op_us(format_floor_roundtrip, n),
        "µs",
        "cryptography alone: the floor",
    )
    try:
        message = need("ecrcrypt.streams.oneshot", "encrypt", "decrypt")
        raw_aes = need("ecrcrypt.providers.raw_aes", "RawAesKeyProvider")
        _check_floor_derivation()
        provider = raw_aes.RawAesKeyProvider(
            key_namespace="ecrcrypt-bench", key_name="manifest-key", wrapping_key=os.urandom(32)
        )

        def roundtrip() -> None:
            ct = message.encrypt(_DATA, provider=provider, context=CONTEXT)
            assert message.decrypt(ct, provider=provider, context=CONTEXT) == _DATA

        report.add(
            "small_roundtrip_us",
            "4 KiB round trip, ecrcrypt (RawAesKeyProvider)",
            per_op_us(roundtrip, n),
            "µs",
            "target ≤ 20 µs",
        )
        report.ratio(
            "small_roundtrip_floor_ratio",
            "small round trip ÷ the format's floor",
            "small_roundtrip_us",
            "floor_small_roundtrip_us",
            "1.0 = no Python overhead",
        )
    except Skip as exc:
        report.skip("ecrcrypt 4 KiB round trip", str(exc))
    try:
        from benchmarks.peers import esdk_small_roundtrip

        report.add(
            "esdk_small_roundtrip_us",
            "4 KiB round trip, aws-encryption-sdk (raw AES)",
            per_op_us(esdk_small_roundtrip(SIZE), max(200, n // 20)),
            "µs",
        )
    except Skip as exc:
        report.skip("aws-encryption-sdk 4 KiB round trip", str(exc))
