"""The same layer through aws-encryption-sdk-python and tink, when installed."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from benchmarks._harness import (
    Config,
    KeepOpenBytesIO,
    MiB,
    NullSink,
    Report,
    Skip,
    drain_reader,
    gbps,
    need,
    paired,
)
from benchmarks.raw import RawFramer

ESDK_DEFAULT_FRAME = 4096  # aws-encryption-sdk-python's default frame length


def _esdk() -> tuple[Any, Any, Any]:
    sdk = need("aws_encryption_sdk", "EncryptionSDKClient", "CommitmentPolicy")
    from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    key = RawMasterKey(
        provider_id="ecrcrypt-bench",
        key_id=b"layer-key",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=os.urandom(32),
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    client = sdk.EncryptionSDKClient(commitment_policy=sdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    # The committing, unsigned suite: the one ecrcrypt writes (the SDK's default 0x0578 also signs).
    return client, key, Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY


def esdk_stream(data: bytes, frame_length: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """aws-encryption-sdk's streaming encrypt and decrypt of ``data`` (to a null sink / counted)."""
    client, key, suite = _esdk()

    def encrypt(sink: Any) -> None:
        with client.stream(
            mode="e", source=io.BytesIO(data), key_provider=key, frame_length=frame_length, algorithm=suite
        ) as stream:
            for chunk in stream:
                sink.write(chunk)

    out = KeepOpenBytesIO()
    encrypt(out)
    ct = out.getvalue()

    def decrypt() -> None:
        with client.stream(mode="d", source=io.BytesIO(ct), key_provider=key) as stream:
            n = sum(len(chunk) for chunk in stream)
        assert n == len(data)

    return lambda: encrypt(NullSink()), decrypt


def esdk_small_roundtrip(size: int = 4096) -> Any:
    client, key, suite = _esdk()
    data = os.urandom(size)
    context = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/bench"}

    def roundtrip() -> None:
        ct, _ = client.encrypt(source=data, key_provider=key, encryption_context=context, algorithm=suite)
        pt, _ = client.decrypt(source=ct, key_provider=key)
        assert len(pt) == size

    return roundtrip


def _tink() -> Any:
    tink = need("tink")
    streaming_aead = need("tink.streaming_aead")
    streaming_aead.register()
    handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    return handle.primitive(streaming_aead.StreamingAead)


def tink_stream(data: bytes) -> tuple[Callable[[], None], Callable[[], None]]:
    primitive = _tink()
    aad = b"arn:aws:ecr:us-east-1:123456789012:repository/bench"
    view = memoryview(data)

    def encrypt(sink: Any) -> None:
        with primitive.new_encrypting_stream(sink, aad) as stream:
            for i in range(0, len(view), MiB):
                stream.write(view[i : i + MiB])

    out = KeepOpenBytesIO()
    encrypt(out)
    ct = out.getvalue()

    def decrypt() -> None:
        with primitive.new_decrypting_stream(io.BytesIO(ct), aad) as stream:
            n = drain_reader(stream)
        assert n == len(data)

    return lambda: encrypt(NullSink()), decrypt


def _paired_peer(
    report: Report, key: str, label: str, data: bytes, raw: RawFramer, pair: tuple[Callable[[], None], ...], trials: int
) -> None:
    """The peer's encrypt and decrypt, each paired with raw framed AES-GCM over the same bytes."""
    raw_ct = raw.encrypt_to_bytes(data)
    note = f"{len(data) // MiB} MiB"
    baselines = (lambda: raw.encrypt(data, NullSink()), lambda: raw.decrypt(raw_ct, NullSink()))
    for side, base, cand in zip(("encrypt", "decrypt"), baselines, pair, strict=True):
        result = paired(base, cand, trials)
        report.add(f"{key}_{side}_gbps", f"{label} {side}", gbps(len(data), result.cand_s), "GB/s", note)
        report.spread(f"{key}_{side}_raw_ratio", f"{label} {side} ÷ raw AES-GCM (paired)", result.speed())


def run(cfg: Config, report: Report, data: bytes) -> None:
    trials = cfg.reps
    raw = RawFramer(cfg.frame_length)
    try:
        peer_data = data[: cfg.peer_size]
        _paired_peer(
            report,
            "esdk",
            "aws-encryption-sdk (4 KiB frames)",
            peer_data,
            raw,
            esdk_stream(peer_data, ESDK_DEFAULT_FRAME),
            trials,
        )
        _paired_peer(
            report,
            "esdk_same_frame",
            "aws-encryption-sdk (ecrcrypt's frame length)",
            data,
            raw,
            esdk_stream(data, cfg.frame_length),
            trials,
        )
    except Skip as exc:
        report.skip("aws-encryption-sdk", str(exc))
    try:
        _paired_peer(report, "tink", "tink streaming AEAD (AES256_GCM_HKDF_1MB)", data, raw, tink_stream(data), trials)
    except Skip as exc:
        report.skip("tink", str(exc))


def tink_small_roundtrip(data: bytes) -> Any:
    """tink's AEAD (AES256_GCM, one key, no envelope, no key derivation) on ``data``: encrypt + decrypt."""
    tink = need("tink")
    aead = need("tink.aead")
    aead.register()
    primitive = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    associated = b"arn:aws:ecr:us-east-1:123456789012:repository/bench"

    def roundtrip() -> None:
        if primitive.decrypt(primitive.encrypt(data, associated), associated) != data:
            raise AssertionError("tink round trip")

    return roundtrip
