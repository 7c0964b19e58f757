"""Shared machinery: configuration, timing, sinks, data, and the result report."""

from __future__ import annotations

import importlib
import io
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

MiB = 1 << 20
GiB = 1 << 30
GB = 1e9  # throughput is quoted in GB/s (10^9 bytes), like the targets


class Skip(Exception):
    """A section cannot run here (module not written yet, extra not installed)."""


def need(module: str, *names: str) -> ModuleType:
    """Import ``module`` (and check it has ``names``) or raise :class:`Skip` saying why."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"{module} not importable ({exc})") from None
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise Skip(f"{module} lacks {', '.join(missing)}")
    return mod


@dataclass
class Config:
    quick: bool
    layer_size: int  # bytes of the in-memory layer
    reps: int  # repetitions per measurement (median quoted)
    big_size: int  # bytes of the from-a-generator RSS run and of the ECR push/pull layer
    frame_length: int  # ecrcrypt's DEFAULT_FRAME_LENGTH when known
    sweep: tuple[int, ...]  # frame lengths of the sweep (empty in quick mode)
    peer_size: int  # bytes given to the slow peers (aws-encryption-sdk at 4 KiB frames)
    small_iterations: int

    @classmethod
    def make(cls, *, quick: bool, gib: float | None, frame_length: int) -> Config:
        if quick:
            return cls(
                quick=True,
                layer_size=64 * MiB,
                reps=5,
                big_size=int((gib or 0.125) * GiB),
                frame_length=frame_length,
                sweep=(),
                peer_size=16 * MiB,
                small_iterations=4000,
            )
        return cls(
            quick=False,
            layer_size=256 * MiB,
            reps=5,
            big_size=int((gib or 1) * GiB),
            frame_length=frame_length,
            sweep=(64 * 1024, 256 * 1024, MiB, 4 * MiB),
            peer_size=256 * MiB,
            small_iterations=40000,
        )


@dataclass
class Row:
    key: str  # name in latest.json
    label: str
    value: float
    unit: str
    note: str = ""
    lo: float | None = None  # the spread of a paired ratio: min and max over its trials
    hi: float | None = None
    trials: int = 0


@dataclass(frozen=True)
class Spread:
    """Median, min and max of the per-trial ratios of one paired measurement."""

    median: float
    lo: float
    hi: float
    trials: int

    @classmethod
    def of(cls, ratios: list[float]) -> Spread:
        return cls(statistics.median(ratios), min(ratios), max(ratios), len(ratios))


@dataclass(frozen=True)
class Paired:
    """Per-trial seconds of a baseline and a candidate run alternately (trial i of each side
    ran back to back, so a burst of load from another process hits both).

    ``speed`` is candidate throughput ÷ baseline throughput (≤ 1 when the baseline is a
    ceiling); ``cost`` is candidate time ÷ baseline time (≥ 1 when the baseline is a floor).
    Each is the median, min and max of the per-trial quotients, never a quotient of medians.
    """

    base: list[float]
    cand: list[float]

    @property
    def base_s(self) -> float:
        return statistics.median(self.base)

    @property
    def cand_s(self) -> float:
        return statistics.median(self.cand)

    def speed(self) -> Spread:
        return Spread.of([b / c for b, c in zip(self.base, self.cand, strict=True)])

    def cost(self) -> Spread:
        return Spread.of([c / b for b, c in zip(self.base, self.cand, strict=True)])


def paired(
    baseline: Callable[[], object],
    candidate: Callable[[], object],
    trials: int,
    *,
    warmup: bool = True,
    before: Callable[[], object] | None = None,
) -> Paired:
    """Run ``baseline`` and ``candidate`` alternately ``trials`` times each, the order flipped
    every trial (ABBA...) so neither side always runs on a cache the other warmed.

    ``before`` runs untimed ahead of every timed call (e.g. a fresh repository per push).
    """
    if warmup:
        for fn in (baseline, candidate):
            if before is not None:
                before()
            fn()
    base: list[float] = []
    cand: list[float] = []
    for i in range(trials):
        order = ((baseline, base), (candidate, cand)) if i % 2 == 0 else ((candidate, cand), (baseline, base))
        for fn, out in order:
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return Paired(base, cand)


def paired_per_op(
    baseline: Callable[[], object], candidate: Callable[[], object], iterations: int, trials: int
) -> Paired:
    """:func:`paired` for microsecond operations: each trial times a batch of calls per side
    (``iterations // trials`` of them) and records the mean seconds of one call."""
    batch = max(1, iterations // trials)

    def looped(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(batch):
                fn()

        return run

    for _ in range(min(batch, 50)):
        baseline()
        candidate()
    result = paired(looped(baseline), looped(candidate), trials, warmup=False)
    return Paired([s / batch for s in result.base], [s / batch for s in result.cand])


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, label: str, value: float, unit: str, note: str = "") -> float:
        self.rows.append(Row(key, label, value, unit, note))
        return value

    def spread(self, key: str, label: str, spread: Spread, note: str = "") -> float:
        """A paired ratio: its median is the figure, its min and max are printed and stored beside it."""
        self.rows.append(Row(key, label, spread.median, "x", note, spread.lo, spread.hi, spread.trials))
        return spread.median

    def get(self, key: str) -> float | None:
        for row in self.rows:
            if row.key == key:
                return row.value
        return None

    def skip(self, section: str, reason: str) -> None:
        self.skipped[section] = reason
        print(f"  [skip] {section}: {reason}", flush=True)

    def metrics(self) -> dict[str, float]:
        return {row.key: round(row.value, 4) for row in self.rows}

    def spreads(self) -> dict[str, dict[str, float]]:
        """``key -> {median, min, max, trials}`` of every paired ratio."""
        return {
            r.key: {"median": round(r.value, 4), "min": round(r.lo, 4), "max": round(r.hi, 4), "trials": r.trials}
            for r in self.rows
            if r.lo is not None and r.hi is not None
        }


def median_seconds(fn: Callable[[], object], reps: int, *, warmup: bool = True) -> float:
    """Median wall time of ``fn`` over ``reps`` runs (after one warm-up run)."""
    if warmup:
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / GB


class NullSink(io.RawIOBase):
    """A destination that keeps nothing: measures the pipeline, not memcpy into a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.count += n
        return n


class KeepOpenBytesIO(io.BytesIO):
    """BytesIO whose close() does nothing (some peers close their destination)."""

    def close(self) -> None:
        pass


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def chunks_of(data: bytes | memoryview, size: int = MiB) -> list[bytes]:
    """The data cut into ``bytes`` chunks (cut before timing: a generator's producer is free)."""
    view = memoryview(data)
    return [bytes(view[i : i + size]) for i in range(0, len(view), size)]


def iterate(chunks: list[bytes]) -> Iterator[bytes]:
    yield from chunks


def drain_reader(reader: Any, bufsize: int = MiB) -> int:
    """Read a file-like to EOF with readinto into one reused buffer; returns the byte count."""
    buf = bytearray(bufsize)
    total = 0
    if hasattr(reader, "readinto"):
        while True:
            n = reader.readinto(buf)
            if not n:
                return total
            total += n
    while True:
        chunk = reader.read(bufsize)
        if not chunk:
            return total
        total += len(chunk)
