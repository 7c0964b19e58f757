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
import shutil
import statistics
import tempfile
from collections.abc import Callable
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
    need,
    paired,
)
from benchmarks.raw import HashPipe, RawFramer, RawMessageReader

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


def message_file(w: Workloads, directory: str) -> tuple[str, RawMessageReader]:
    """The layer's ecrcrypt message as a real file on disk, and the raw reader of that same file."""
    message = need("ecrcrypt.format.message", "DecryptPolicy", "open_header")
    provider, context = provider_and_context()
    path = os.path.join(directory, "layer.esdk")
    with open(path, "wb") as f:
        f.write(w.ciphertext)
    with open(path, "rb") as f:
        opened = message.open_header(f.read, provider=provider, context=context, policy=message.DecryptPolicy())
        header_length = f.tell()
    raw = RawMessageReader(opened.content_key, opened.header.message_id, header_length, opened.header.frame_length)
    return path, raw


def run(cfg: Config, report: Report, data: bytes) -> None:
    w = Workloads(data, cfg.frame_length)
    size = len(data)
    note = f"{size // MiB} MiB, frame {cfg.frame_length // 1024} KiB"
    # A quick-mode trial lasts a few milliseconds: many of them, so that the median of the per-trial
    # ratios is not decided by which ones a burst of load from another process happened to hit.
    trials = max(cfg.reps, 15)

    need("ecrcrypt.streams", "EncryptingWriter", "DecryptingReader", "iter_encrypt", "iter_decrypt")
    w.ciphertext  # noqa: B018 -- build (and check the digest of) the ciphertext once, untimed
    mv = memoryview(data)
    pipe = HashPipe(MiB)

    def raw_encrypt_sha256() -> None:
        # The ceiling with the digest on: hashlib on the other core while AES runs on this one.
        pipe.reset()
        fut = pipe.pool.submit(pipe.sha.update, mv)
        w.framer.encrypt(mv, NullSink())
        fut.result()

    tmp = tempfile.mkdtemp(prefix="ecrcrypt-bench-streams-")
    try:
        path, raw_reader = message_file(w, tmp)
        expected = hashlib.sha256(data).hexdigest()

        def raw_file() -> None:
            if raw_reader.read_file(path, NullSink()) != size:
                raise AssertionError("the raw reader read a different length")

        def raw_file_sha256() -> None:
            pipe.reset()
            raw_reader.read_file(path, NullSink(), pipe)
            if pipe.drain() != expected:
                raise AssertionError("the raw pipeline hashed other bytes")

        def reader_file(sha: bool) -> Callable[[], None]:
            streams = need("ecrcrypt.streams", "DecryptingReader")
            provider, context = provider_and_context()

            def run() -> None:
                with open(path, "rb") as source:
                    reader = streams.DecryptingReader(source, provider=provider, context=context, compute_sha256=sha)
                    with reader:
                        n = drain_reader(reader)
                if n != size or (sha and str(reader.sha256) != "sha256:" + expected):
                    raise AssertionError("DecryptingReader over the file returned other bytes")

            return run

        # (key, label, baseline key, baseline, candidate, note)
        cases: list[tuple[str, str, str, Callable[[], object], Callable[[], object], str]] = [
            ("encrypt", "EncryptingWriter → null sink", "raw_encrypt", w.raw_encrypt, w.encrypt, "target ≥ 0.90"),
            ("reader_file", "DecryptingReader over a file on disk", "raw_file_decrypt", raw_file, reader_file(False),
             "open(path, 'rb'): readinto + decrypt_into baseline over the same file; target ≥ 0.90"),
            ("reader_bytesio", "DecryptingReader over io.BytesIO (opened in place)", "raw_decrypt", w.raw_decrypt,
             w.decrypt, "in-memory source, read in place"),
            ("encrypt_sha256_pipeline", "EncryptingWriter + SHA-256", "raw_encrypt_sha256", raw_encrypt_sha256,
             lambda: w.encrypt(sha=True), "÷ raw AES ∥ hashlib on two threads; target ≥ 0.90"),
            ("reader_file_sha256_pipeline", "DecryptingReader + SHA-256 over a file", "raw_file_decrypt_sha256",
             raw_file_sha256, reader_file(True), "÷ raw readinto + decrypt_into ∥ hashlib"),
        ]  # fmt: skip
        pchunks = chunks_of(data)
        cases.append(
            ("iter_encrypt", "iter_encrypt, 1 MiB chunks", "raw_encrypt", w.raw_encrypt,
             lambda: w.gen_encrypt(pchunks), "generator of 1 MiB chunks")
        )  # fmt: skip
        frame_step = cfg.frame_length + 32  # one regular frame per chunk: the aligned chunking
        for label, step in (*ITER_DECRYPT_CHUNKINGS, ("frame-aligned", frame_step)):
            cchunks = chunks_of(w.ciphertext, step)
            cases.append(
                (f"iter_decrypt_{label}", f"iter_decrypt, {label} chunks", "raw_decrypt", w.raw_decrypt,
                 functools.partial(w.gen_decrypt, cchunks), f"chunks of {step} bytes; target ≥ 0.90 (≥ 256 KiB)")
            )  # fmt: skip
        baselines: dict[str, list[float]] = {}
        for key, label, base_key, base_fn, fn, target in cases:
            result = paired(base_fn, fn, trials)
            baselines.setdefault(base_key, []).extend(result.base)
            report.add(f"{key}_gbps", label, gbps(size, result.cand_s), "GB/s", note)
            report.spread(f"{key}_ratio", f"{key} ÷ {base_key} (paired)", result.speed(), target)
        for base_key, seconds in baselines.items():
            report.add(f"{base_key}_gbps", f"baseline {base_key}", gbps(size, statistics.median(seconds)), "GB/s", note)
    finally:
        pipe.close()
        shutil.rmtree(tmp, ignore_errors=True)


# iter_decrypt's chunkings (ciphertext chunk sizes): ≥ 256 KiB, aligned to nothing.
ITER_DECRYPT_CHUNKINGS = (("256k", 256 * 1024), ("1m", MiB), ("odd", 384 * 1024 + 7), ("4m", 4 * MiB))


def run_sweep(cfg: Config, report: Report, data: bytes) -> None:
    """Raw and ecrcrypt at each frame length, paired: the evidence for DEFAULT_FRAME_LENGTH."""
    need("ecrcrypt.streams", "EncryptingWriter", "DecryptingReader")
    sweep: dict[str, dict[str, float]] = {}
    trials = max(cfg.reps, 15)
    for f in cfg.sweep:
        w = Workloads(data, f)
        entry: dict[str, float] = {}
        for side, base, cand in (("encrypt", w.raw_encrypt, w.encrypt), ("decrypt", w.raw_decrypt, w.decrypt)):
            result = paired(base, cand, trials)
            k = f"sweep_{f // 1024}k_{side}"
            report.add(f"{k}_gbps", f"frame {f // 1024} KiB: {side}", gbps(len(data), result.cand_s), "GB/s")
            report.add(f"sweep_{f // 1024}k_raw_{side}_gbps", f"frame {f // 1024} KiB: raw {side}",
                       gbps(len(data), result.base_s), "GB/s")  # fmt: skip
            entry[f"{side}_ratio"] = report.spread(f"{k}_ratio", f"frame {f // 1024} KiB: {side} ÷ raw", result.speed())
            entry[f"{side}_gbps"] = gbps(len(data), result.cand_s)
            entry[f"raw_{side}_gbps"] = gbps(len(data), result.base_s)
        sweep[str(f)] = {k: round(v, 4) for k, v in entry.items()}
    report.extra["frame_sweep"] = sweep
