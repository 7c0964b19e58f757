"""The 4 KiB object round trip: new data key, wrap, encrypt, unwrap, decrypt."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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


_WRAP = AESGCM(os.urandom(32))
_IV = bytes(12)
_DATA = os.urandom(SIZE)


def run(cfg: Config, report: Report) -> None:
    n = cfg.small_iterations
    report.add("raw_small_roundtrip_us", "4 KiB round trip, bare AES-GCM", per_op_us(raw_roundtrip, n), "µs")
    try:
        message = need("ecrcrypt.message", "encrypt", "decrypt")
        raw_aes = need("ecrcrypt.raw_aes", "RawAesKeyProvider")
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
