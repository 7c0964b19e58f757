"""Layer streaming: ecrcrypt's writer/reader/iterators against raw AES-GCM and hashlib.

Each ecrcrypt figure is measured *paired* with its baseline: the two run alternately,
repetition by repetition, so both see the same load on a shared machine, and the
ratio quoted is the median of the per-repetition ratios.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks._harness import (
    Config,
    MiB,
    NullSink,
    Report,
    chunks_of,
    drain_reader,
    gbps,
    iterate,
    median_seconds,
    need,
)
from benchmarks.raw import RawFramer

NAMESPACE = "ecrcrypt-bench"


@functools.cache
def provider_and_context() -> tuple[Any, dict[str, str]]:
    """One wrapping key and one ECR context for the whole run (ciphertexts are shared)."""
    raw_aes = need("ecrcrypt.providers.raw_aes", "RawAesKeyProvider")
    provider = raw_aes.RawAesKeyProvider(key_namespace=NAMESPACE, key_name="layer-key", wrapping_key=os.urandom(32))
    context = {
        "aws:s3:arn": "arn:aws:s3:::ecr-bench/layers/sha256:" + "0" * 64,
        "aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/bench",
    }
    return provider, context


def paired(baseline: Callable[[], object], candidate: Callable[[], object], reps: int) -> tuple[float, float, float]:
    """(median baseline s, median candidate s, median of baseline_s / candidate_s), run alternately."""
    baseline()
    candidate()
    a: list[float] = []
    b: list[float] = []
    for _ in range(reps):
        for fn, out in ((baseline, a), (candidate, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b, strict=True))


class Workloads:
    """The closures that are timed, over one in-memory layer at one frame length."""

    def __init__(self, data: bytes, frame_length: int) -> None:
        self.data = data
        self.f = frame_length
        self.framer = RawFramer(frame_length)
        self.raw_ct = self.framer.encrypt_to_bytes(data)
        self._ct: bytes | None = None

    # -- baselines ---------------------------------------------------------------------
    def raw_encrypt(self) -> None:
        self.framer.encrypt(self.data, NullSink())

    def raw_decrypt(self) -> None:
        self.framer.decrypt(self.raw_ct, NullSink())

    def sha_alone(self) -> None:
        mv = memoryview(self.data)
        h = hashlib.sha256()
        for i in range(0, len(mv), MiB):
            h.update(mv[i : i + MiB])

    # -- ecrcrypt ----------------------------------------------------------------------
    def _writer(self, sink: Any, sha: bool) -> Any:
        streams = need("ecrcrypt.streams", "EncryptingWriter")
        provider, context = provider_and_context()
        with streams.EncryptingWriter(
            sink, provider=provider, context=context, frame_length=self.f, compute_sha256=sha
        ) as writer:
            writer.write(self.data)
        return writer

    @property
    def ciphertext(self) -> bytes:
        if self._ct is None:
            buf = io.BytesIO()
            writer = self._writer(buf, True)
            expected = "sha256:" + hashlib.sha256(self.data).hexdigest()
            if str(writer.sha256) != expected:
                raise AssertionError("EncryptingWriter.sha256 differs from hashlib's")
            self._ct = buf.getvalue()
        return self._ct

    def encrypt(self, sha: bool = False) -> None:
        self._writer(NullSink(), sha)

    def decrypt(self, sha: bool = False) -> None:
        streams = need("ecrcrypt.streams", "DecryptingReader")
        provider, context = provider_and_context()
        reader = streams.DecryptingReader(
            io.BytesIO(self.ciphertext), provider=provider, context=context, compute_sha256=sha
        )
        with reader:
            n = drain_reader(reader)
        if n != len(self.data):
            raise AssertionError("DecryptingReader returned a different length")

    def gen_encrypt(self, chunks: list[bytes]) -> None:
        streams = need("ecrcrypt.streams", "iter_encrypt")
        provider, context = provider_and_context()
        for _ in streams.iter_encrypt(iterate(chunks), provider=provider, context=context, frame_length=self.f):
            pass

    def gen_decrypt(self, chunks: list[bytes]) -> None:
        streams = need("ecrcrypt.streams", "iter_decrypt")
        provider, context = provider_and_context()
        n = 0
        for piece in streams.iter_decrypt(iterate(chunks), provider=provider, context=context):
            n += len(piece)
        if n != len(self.data):
            raise AssertionError("iter_decrypt returned a different length")


def run(cfg: Config, report: Report, data: bytes) -> None:
    w = Workloads(data, cfg.frame_length)
    size = len(data)
    note = f"{size // MiB} MiB, frame {cfg.frame_length // 1024} KiB"
    reps = cfg.reps

    report.add(
        "raw_encrypt_gbps", "raw AESGCM.encrypt_into", gbps(size, median_seconds(w.raw_encrypt, reps)), "GB/s", note
    )
    report.add(
        "raw_decrypt_gbps", "raw AESGCM.decrypt_into", gbps(size, median_seconds(w.raw_decrypt, reps)), "GB/s", note
    )
    report.add("sha256_gbps", "hashlib.sha256 alone", gbps(size, median_seconds(w.sha_alone, reps)), "GB/s", note)

    pool = ThreadPoolExecutor(1)
    mv = memoryview(data)

    def raw_overlapped() -> None:
        # Reference: hash on the other core while AES runs on this one.
        h = hashlib.sha256()
        fut = pool.submit(h.update, mv)
        w.framer.encrypt(mv, NullSink())
        fut.result()

    report.add(
        "raw_encrypt_sha256_gbps",
        "raw encrypt ∥ hashlib (thread)",
        gbps(size, median_seconds(raw_overlapped, reps)),
        "GB/s",
        note,
    )
    pool.shutdown()

    need("ecrcrypt.streams", "EncryptingWriter", "DecryptingReader", "iter_encrypt", "iter_decrypt")
    w.ciphertext  # noqa: B018 -- build (and check the digest of) the ciphertext once, untimed
    cases: list[tuple[str, str, str, Callable[[], object], Callable[[], object], str]] = [
        ("encrypt", "ecrcrypt EncryptingWriter", "raw_encrypt_gbps", w.raw_encrypt, w.encrypt, "target ≥ 0.90"),
        ("decrypt", "ecrcrypt DecryptingReader", "raw_decrypt_gbps", w.raw_decrypt, w.decrypt, "target ≥ 0.90"),
    ]
    pchunks, cchunks = chunks_of(data), chunks_of(w.ciphertext)
    cases += [
        ("encrypt_gen", "ecrcrypt iter_encrypt (generator)", "raw_encrypt_gbps", w.raw_encrypt,
         lambda: w.gen_encrypt(pchunks), "1 MiB chunks"),
        ("decrypt_gen", "ecrcrypt iter_decrypt (generator)", "raw_decrypt_gbps", w.raw_decrypt,
         lambda: w.gen_decrypt(cchunks), "1 MiB chunks"),
        ("encrypt_sha256", "ecrcrypt encrypt + SHA-256", "sha256_gbps", w.sha_alone,
         lambda: w.encrypt(sha=True), "÷ hashlib alone; target ≥ 0.90"),
        ("decrypt_sha256", "ecrcrypt decrypt + SHA-256", "sha256_gbps", w.sha_alone,
         lambda: w.decrypt(sha=True), "÷ hashlib alone"),
    ]  # fmt: skip
    for key, label, base_key, base_fn, fn, target in cases:
        _, cand_s, ratio = paired(base_fn, fn, reps)
        report.add(f"{key}_gbps", label, gbps(size, cand_s), "GB/s", note)
        report.add(f"{key}_ratio", f"{key} ÷ {base_key.removesuffix('_gbps')} (paired)", ratio, "x", target)


def run_sweep(cfg: Config, report: Report, data: bytes) -> None:
    """Raw and ecrcrypt at each frame length: the evidence for DEFAULT_FRAME_LENGTH."""
    sweep: dict[str, dict[str, float]] = {}
    for f in cfg.sweep:
        w = Workloads(data, f)
        entry: dict[str, float] = {}
        try:
            need("ecrcrypt.streams", "EncryptingWriter", "DecryptingReader")
            raw_e, enc, ratio_e = paired(w.raw_encrypt, w.encrypt, cfg.reps)
            raw_d, dec, ratio_d = paired(w.raw_decrypt, w.decrypt, cfg.reps)
            entry = {
                "raw_encrypt_gbps": gbps(len(data), raw_e),
                "raw_decrypt_gbps": gbps(len(data), raw_d),
                "encrypt_gbps": gbps(len(data), enc),
                "decrypt_gbps": gbps(len(data), dec),
                "encrypt_ratio": ratio_e,
                "decrypt_ratio": ratio_d,
            }
        except Exception as exc:
            report.skip(f"sweep {f // 1024} KiB (ecrcrypt)", f"{type(exc).__name__}: {exc}")
            entry = {
                "raw_encrypt_gbps": gbps(len(data), median_seconds(w.raw_encrypt, cfg.reps)),
                "raw_decrypt_gbps": gbps(len(data), median_seconds(w.raw_decrypt, cfg.reps)),
            }
        for key, value in entry.items():
            unit = "x" if "ratio" in key else "GB/s"
            report.add(f"sweep_{f // 1024}k_{key}", f"frame {f // 1024} KiB: {key}", value, unit)
        sweep[str(f)] = {k: round(v, 4) for k, v in entry.items()}
    report.extra["frame_sweep"] = sweep
