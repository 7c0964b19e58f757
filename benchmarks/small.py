"""The 4 KiB object: ecrcrypt's round trip, encrypt and decrypt against the format's floor, paired.

The floor is only the ``cryptography`` calls one ESDK v2 message of suite 0x0478 needs, made the
cheapest way that library allows: three ``os.urandom``, the data key wrap and unwrap (raw AES keyring:
AES-GCM with the serialized context as AAD), per side one HKDF-SHA512 extract and two expands done
with ``cryptography``'s HMAC (the expand HMAC keyed once and copied for the second expand), the
content key schedule, the header tag over a real ecrcrypt header, one frame, the commitment compare.
Its key derivation is checked, untimed, to produce ecrcrypt's keys. Whatever ecrcrypt spends above
it is its own Python. Every ratio comes from batches of the two run alternately in this process.
"""

from __future__ import annotations

import hmac as std_hmac
import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks._harness import Config, Paired, Report, Skip, need, paired_per_op

SIZE = 4096
CONTEXT = {
    "aws:s3:arn": "arn:aws:s3:::ecr-bench/manifests/sha256:" + "0" * 64,
    "aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/bench",
}
_SHA512 = hashes.SHA512()
_ENC_INFO = b"\x04\x78DERIVEKEY\x01"  # suite id ‖ "DERIVEKEY" ‖ the expand's block counter
_COMMIT_INFO = b"COMMITKEY\x01"
_ZERO_IV = bytes(12)
_FRAME_IV = bytes(11) + b"\x01"
_WRAPPING_KEY = os.urandom(32)
_WRAP = AESGCM(_WRAPPING_KEY)
_DATA = os.urandom(SIZE)


def floor_derive(data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    """RFC 5869 for suite 0x0478 at its cheapest: Extract, then both one-block Expands from one keyed HMAC."""
    extract = hmac.HMAC(message_id, _SHA512)
    extract.update(data_key)
    expand = hmac.HMAC(extract.finalize(), _SHA512)
    commit = expand.copy()
    expand.update(_ENC_INFO)
    commit.update(_COMMIT_INFO)
    return expand.finalize()[:32], commit.finalize()[:32]


class Floor:
    """The primitive calls of one message, over the bytes ecrcrypt itself would hash (untimed set-up)."""

    def __init__(self, header_body: bytes, context_aad: bytes) -> None:
        self.header = header_body
        self.context_aad = context_aad
        self.frame_aad = os.urandom(32) + b"AWSKMSEncryptionClient Final Frame" + bytes(12)
        # One sealed message for the decrypt floor.
        self.sealed = self.encrypt()

    def encrypt(self) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
        data_key = os.urandom(32)
        message_id = os.urandom(32)
        iv = os.urandom(12)
        wrapped = _WRAP.encrypt(iv, data_key, self.context_aad)
        enc, commit = floor_derive(data_key, message_id)
        sealer = AESGCM(enc)
        tag = sealer.encrypt(_ZERO_IV, b"", self.header)
        return message_id, iv, wrapped, commit, tag, sealer.encrypt(_FRAME_IV, _DATA, self.frame_aad)

    def decrypt(self, sealed: tuple[bytes, bytes, bytes, bytes, bytes, bytes] | None = None) -> bytes:
        message_id, iv, wrapped, commit, tag, frame = sealed or self.sealed
        data_key = _WRAP.decrypt(iv, wrapped, self.context_aad)
        enc, commit2 = floor_derive(data_key, message_id)
        if not std_hmac.compare_digest(commit, commit2):
            raise AssertionError("commitment")
        opener = AESGCM(enc)
        opener.decrypt(_ZERO_IV, tag, self.header)
        return opener.decrypt(_FRAME_IV, frame, self.frame_aad)

    def roundtrip(self) -> None:
        self.decrypt(self.encrypt())


def _check_floor_derivation() -> None:
    """The floor must make the format's calls, not cheaper ones: its keys equal ecrcrypt's (checked untimed)."""
    keys = need("ecrcrypt.format.derivation", "derive_keys")
    suite = need("ecrcrypt.format.message", "WRITE_SUITE").WRITE_SUITE
    if suite.id_bytes + b"DERIVEKEY\x01" != _ENC_INFO:
        raise AssertionError("the floor derives keys for another suite than the one ecrcrypt writes")
    for _ in range(8):
        data_key, message_id = os.urandom(32), os.urandom(32)
        if floor_derive(data_key, message_id) != keys.derive_keys(suite, data_key, message_id):
            raise AssertionError("the floor's key derivation differs from ecrcrypt's")


def _ecrcrypt_floor() -> tuple[Any, Any, Floor]:
    """The one-shot module, a raw AES provider, and a floor over the header ecrcrypt writes for them."""
    oneshot = need("ecrcrypt.streams.oneshot", "encrypt", "decrypt")
    raw_aes = need("ecrcrypt.providers.raw_aes", "RawAesKeyProvider")
    context_mod = need("ecrcrypt.context", "EncryptionContext")
    _check_floor_derivation()
    provider = raw_aes.RawAesKeyProvider(
        key_namespace="ecrcrypt-bench", key_name="manifest-key", wrapping_key=_WRAPPING_KEY
    )
    sample = oneshot.encrypt(_DATA, provider=provider, context=CONTEXT)
    header_body = bytes(sample[: len(sample) - SIZE - 40 - 16])  # body, tag and header tag stripped
    return oneshot, provider, Floor(header_body, context_mod.EncryptionContext(CONTEXT).serialize())


def _report(report: Report, key: str, label: str, result: Paired, floor_key: str, note: str = "") -> None:
    report.add(f"{key}_us", label, result.cand_s * 1e6, "µs")
    report.add(f"{floor_key}_us", f"{label}: the floor (same batches)", result.base_s * 1e6, "µs", "cryptography alone")
    report.spread(f"{key}_floor_ratio", f"{key} ÷ its floor (paired)", result.cost(), note)


def run(cfg: Config, report: Report) -> None:
    n = cfg.small_iterations
    # Many short batches (20 calls, well under a scheduler time slice): a burst of load lands in
    # few of them, and the median of the per-batch ratios shrugs it off (the [min..max] shows it).
    trials = max(cfg.reps, n // 20)
    try:
        oneshot, provider, floor = _ecrcrypt_floor()
    except Skip as exc:
        report.skip("ecrcrypt 4 KiB object", str(exc))
        return

    def roundtrip() -> None:
        ct = oneshot.encrypt(_DATA, provider=provider, context=CONTEXT)
        if oneshot.decrypt(ct, provider=provider, context=CONTEXT) != _DATA:
            raise AssertionError("round trip")

    message = oneshot.encrypt(_DATA, provider=provider, context=CONTEXT)
    cases: list[tuple[str, str, Callable[[], object], Callable[[], object], str]] = [
        ("small_roundtrip", "4 KiB round trip (RawAesKeyProvider)", floor.roundtrip, roundtrip, "target ≤ 2.0"),
        ("small_encrypt", "4 KiB encrypt", floor.encrypt,
         lambda: oneshot.encrypt(_DATA, provider=provider, context=CONTEXT), "target ≤ 2.0"),
        ("small_decrypt", "4 KiB decrypt", floor.decrypt,
         lambda: oneshot.decrypt(message, provider=provider, context=CONTEXT), "target ≤ 2.0"),
    ]  # fmt: skip
    for key, label, base, cand, note in cases:
        _report(report, key, label, paired_per_op(base, cand, n, trials), key.replace("small", "floor_small"), note)
    try:
        from benchmarks.peers import esdk_small_roundtrip

        result = paired_per_op(floor.roundtrip, esdk_small_roundtrip(SIZE), max(200, n // 20), max(cfg.reps, 20))
        label = "4 KiB round trip, aws-encryption-sdk (raw AES)"
        report.add("esdk_small_roundtrip_us", label, result.cand_s * 1e6, "µs")
        report.spread("esdk_small_roundtrip_floor_ratio", "aws-encryption-sdk round trip ÷ the floor", result.cost())
    except Skip as exc:
        report.skip("aws-encryption-sdk 4 KiB round trip", str(exc))
    try:
        from benchmarks.peers import tink_small_roundtrip

        result = paired_per_op(floor.roundtrip, tink_small_roundtrip(_DATA), n, trials)
        report.add("tink_small_roundtrip_us", "4 KiB round trip, tink AEAD (no envelope)", result.cand_s * 1e6, "µs")
        report.spread("tink_small_roundtrip_floor_ratio", "tink AEAD round trip ÷ the floor", result.cost())
    except Skip as exc:
        report.skip("tink 4 KiB round trip", str(exc))
