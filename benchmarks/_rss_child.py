"""One memory scenario in a fresh interpreter: prints its peak-RSS growth as JSON.

``python -m benchmarks._rss_child <scenario> <bytes> <frame_length>``. The peak is
reset (``/proc/self/clear_refs`` ← 5) once everything is imported and set up, so the
growth is what streaming ``bytes`` of data costs, not what the interpreter costs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

MiB = 1 << 20


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def generator(total: int, chunk: bytes) -> Iterator[bytes]:
    """``total`` bytes produced on the fly: the same 1 MiB object yielded over and over."""
    full, rest = divmod(total, len(chunk))
    for _ in range(full):
        yield chunk
    if rest:
        yield chunk[:rest]


class _Null:
    def write(self, data: Any) -> int:
        return memoryview(data).nbytes


def _provider() -> tuple[Any, dict[str, str]]:
    from ecrcrypt.providers.raw_aes import RawAesKeyProvider

    provider = RawAesKeyProvider(key_namespace="ecrcrypt-bench", key_name="k", wrapping_key=os.urandom(32))
    return provider, {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/bench"}


def scenario(name: str, total: int, frame: int) -> Callable[[], dict[str, float] | None]:
    chunk = os.urandom(MiB)
    if name == "raw-encrypt-gen":
        from benchmarks.raw import RawFramer

        framer = RawFramer(frame)

        def raw() -> None:
            pending = bytearray()
            for piece in generator(total, chunk):
                pending += piece
                if len(pending) >= frame:
                    framer.encrypt(pending, _Null())
                    pending.clear()
            framer.encrypt(pending, _Null())

        return raw
    if name == "writer-gen":
        from ecrcrypt.streams import EncryptingWriter

        provider, context = _provider()

        def writer() -> None:
            with EncryptingWriter(
                _Null(), provider=provider, context=context, frame_length=frame, compute_sha256=True
            ) as w:
                for piece in generator(total, chunk):
                    w.write(piece)

        return writer
    if name == "iter-roundtrip-gen":
        from ecrcrypt.streams import iter_decrypt, iter_encrypt

        provider, context = _provider()

        def roundtrip() -> None:
            ct = iter_encrypt(generator(total, chunk), provider=provider, context=context, frame_length=frame)
            n = 0
            for piece in iter_decrypt(ct, provider=provider, context=context):
                n += len(piece)
            assert n == total

        return roundtrip
    if name == "reader-gen":
        from ecrcrypt.streams import DecryptingReader, iter_encrypt

        provider, context = _provider()

        class _Source:
            """A ciphertext file produced on the fly (a network body, say)."""

            def __init__(self) -> None:
                self._it = iter_encrypt(generator(total, chunk), provider=provider, context=context, frame_length=frame)
                self._buf = bytearray()

            def read(self, n: int = -1) -> bytes:
                while len(self._buf) < n or n < 0:
                    try:
                        self._buf += next(self._it)
                    except StopIteration:
                        break
                n = len(self._buf) if n < 0 else min(n, len(self._buf))
                out = bytes(self._buf[:n])
                del self._buf[:n]  # CPython drops a bytearray's head without moving the rest
                return out

        def reader() -> None:
            buf = bytearray(MiB)
            with DecryptingReader(_Source(), provider=provider, context=context, compute_sha256=True) as r:
                while r.readinto(buf):
                    pass

        return reader
    if name.startswith(("ecr-", "s3-")):
        from benchmarks.ecr import rss_scenario

        return rss_scenario(name, total, chunk)
    raise SystemExit(f"unknown scenario {name}")


def main() -> None:
    name, total, frame = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fn = scenario(name, total, frame)
    reset = _reset_peak()
    before_rss = _status("VmRSS")
    before_hwm = _status("VmHWM")
    import time

    start = time.perf_counter()
    extra = fn() or {}
    seconds = time.perf_counter() - start
    after_hwm = _status("VmHWM")
    base = before_rss if reset else before_hwm
    print(
        json.dumps(
            {
                **extra,
                "scenario": name,
                "bytes": total,
                "seconds": seconds,
                "growth_mib": (after_hwm - base) / MiB,
                "peak_mib": after_hwm / MiB,
                "peak_reset": reset,
            }
        )
    )


if __name__ == "__main__":
    main()
