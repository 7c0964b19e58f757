"""Peak RSS growth while streaming, each scenario in a fresh subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks._harness import Config, GiB, MiB, Report

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {
    "raw-encrypt-gen": "raw AES-GCM from a generator",
    "writer-gen": "EncryptingWriter (+SHA-256) from a generator",
    "iter-roundtrip-gen": "iter_encrypt → iter_decrypt pipeline",
    "reader-gen": "DecryptingReader (+SHA-256) over a streamed source",
}


def measure(scenario: str, total: int, frame: int, timeout: float = 600) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._rss_child", scenario, str(total), str(frame)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(last)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(cfg: Config, report: Report) -> None:
    # Full mode streams 4 GiB from a generator (the bound: "whatever the layer size").
    total = 4 * GiB if not cfg.quick else cfg.big_size
    f = cfg.frame_length
    budget = (2 * f + 16 * MiB) / MiB
    growths: list[float] = []
    details = {}
    for scenario, label in SCENARIOS.items():
        try:
            r = measure(scenario, total, f)
        except Exception as exc:
            report.skip(f"RSS {scenario}", str(exc)[:200])
            continue
        details[scenario] = r
        note = f"{total / GiB:g} GiB, {r['bytes'] / r['seconds'] / 1e9:.2f} GB/s"
        report.add(f"rss_{scenario.replace('-', '_')}_mib", f"peak RSS growth: {label}", r["growth_mib"], "MiB", note)
        if scenario != "raw-encrypt-gen":
            growths.append(r["growth_mib"])
    if growths:
        report.add(
            "peak_rss_growth_mib",
            "peak RSS growth (worst ecrcrypt scenario)",
            max(growths),
            "MiB",
            f"target ≤ {budget:.0f} MiB (2 frames + 16 MiB)",
        )
    report.extra["rss"] = details
