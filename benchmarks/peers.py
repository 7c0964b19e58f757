"""The same layer through aws-encryption-sdk-python and tink, when installed."""

from __future__ import annotations

import io
import os
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
    median_seconds,
    need,
)

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


def esdk_stream(data: bytes, frame_length: int, reps: int) -> tuple[float, float]:
    client, key, suite = _esdk()

    def encrypt(sink: Any) -> None:
        with client.stream(
            mode="e", source=io.BytesIO(data), key_provider=key, frame_length=frame_length, algorithm=suite
        ) as stream:
            for chunk in stream:
                sink.write(chunk)

    enc = median_seconds(lambda: encrypt(NullSink()), reps, warmup=False)
    out = KeepOpenBytesIO()
    encrypt(out)
    ct = out.getvalue()

    def decrypt() -> None:
        with client.stream(mode="d", source=io.BytesIO(ct), key_provider=key) as stream:
            n = sum(len(chunk) for chunk in stream)
        assert n == len(data)

    dec = median_seconds(decrypt, reps, warmup=False)
    return gbps(len(data), enc), gbps(len(data), dec)


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


def tink_stream(data: bytes, reps: int) -> tuple[float, float]:
    primitive = _tink()
    aad = b"arn:aws:ecr:us-east-1:123456789012:repository/bench"
    view = memoryview(data)

    def encrypt(sink: Any) -> None:
        with primitive.new_encrypting_stream(sink, aad) as stream:
            for i in range(0, len(view), MiB):
                stream.write(view[i : i + MiB])

    enc = median_seconds(lambda: encrypt(NullSink()), reps)
    out = KeepOpenBytesIO()
    encrypt(out)
    ct = out.getvalue()

    def decrypt() -> None:
        with primitive.new_decrypting_stream(io.BytesIO(ct), aad) as stream:
            n = drain_reader(stream)
        assert n == len(data)

    dec = median_seconds(decrypt, reps)
    return gbps(len(data), enc), gbps(len(data), dec)


def run(cfg: Config, report: Report, data: bytes) -> None:
    peer_data = data[: cfg.peer_size]
    note = f"{len(peer_data) // MiB} MiB"
    try:
        reps = 1 if cfg.quick else 3
        e, d = esdk_stream(peer_data, ESDK_DEFAULT_FRAME, reps)
        report.add("esdk_encrypt_gbps", "aws-encryption-sdk encrypt (4 KiB frames)", e, "GB/s", note)
        report.add("esdk_decrypt_gbps", "aws-encryption-sdk decrypt (4 KiB frames)", d, "GB/s", note)
        f = cfg.frame_length
        e, d = esdk_stream(data, f, max(2, cfg.reps - 2))
        note_f = f"{len(data) // MiB} MiB, frame {f // 1024} KiB"
        report.add("esdk_encrypt_same_frame_gbps", "aws-encryption-sdk encrypt (same frame)", e, "GB/s", note_f)
        report.add("esdk_decrypt_same_frame_gbps", "aws-encryption-sdk decrypt (same frame)", d, "GB/s", note_f)
    except Skip as exc:
        report.skip("aws-encryption-sdk", str(exc))
    try:
        e, d = tink_stream(data, cfg.reps)
        note_t = f"{len(data) // MiB} MiB, AES256_GCM_HKDF_1MB"
        report.add("tink_encrypt_gbps", "tink streaming AEAD encrypt", e, "GB/s", note_t)
        report.add("tink_decrypt_gbps", "tink streaming AEAD decrypt", d, "GB/s", note_t)
    except Skip as exc:
        report.skip("tink", str(exc))
