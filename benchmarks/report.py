"""Print the results (rich when installed) and write benchmarks/out/latest.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks._harness import Report

OUT = Path(__file__).resolve().parent / "out"


def _fmt(value: float, unit: str, lo: float | None = None, hi: float | None = None, *, markup: bool = False) -> str:
    if unit == "x":
        if lo is not None and hi is not None:
            return f"{value:.3f}x \\[{lo:.2f}..{hi:.2f}]" if markup else f"{value:.3f}x [{lo:.2f}..{hi:.2f}]"
        return f"{value:.3f}x"
    if unit in ("µs", "MiB"):
        return f"{value:,.1f} {unit}"
    if unit == "GB/s":
        return f"{value:.3f} {unit}"
    return f"{value:,.1f} {unit}"


def machine_line(meta: dict[str, object]) -> str:
    """One line saying what the absolute figures depend on (CPU, its flags, OpenSSL, load)."""
    flags = meta.get("cpu_flags") or {}
    assert isinstance(flags, dict)
    on = ",".join(k for k, v in flags.items() if v) or "?"
    load = meta.get("load_average")
    load_text = "/".join(f"{x:.1f}" for x in load) if isinstance(load, tuple | list) else "?"
    return (
        f"{meta.get('cpu', '?')} ({meta.get('cpus', '?')} cpus; {on}); cryptography {meta.get('cryptography', '?')} "
        f"on {meta.get('openssl_cryptography', '?')}; hashlib on {meta.get('openssl_hashlib', '?')}; "
        f"load average {load_text} at start"
    )


def print_table(report: Report) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max((len(r.label) for r in report.rows), default=10)
        for r in report.rows:
            print(f"{r.label:<{width}}  {_fmt(r.value, r.unit, r.lo, r.hi):>24}  {r.key:<34} {r.note}")
        for section, reason in report.skipped.items():
            print(f"skipped {section}: {reason}")
        print(machine_line(report.meta))
        return
    table = Table(title="ecrcrypt benchmarks (medians; paired ratios with \\[min..max] over their trials)")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_column("json key", style="dim")
    table.add_column("note", style="dim")
    for r in report.rows:
        style = "bold" if r.unit == "x" or r.key in ("peak_rss_growth_mib", "small_roundtrip_us") else None
        table.add_row(r.label, _fmt(r.value, r.unit, r.lo, r.hi, markup=True), r.key, r.note, style=style)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for section, reason in report.skipped.items():
        console.print(f"[yellow]skipped[/] {section}: {reason}")
    console.print(machine_line(report.meta), markup=False)


def write_json(report: Report, path: Path | None = None) -> Path:
    path = path or OUT / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **report.metrics(),
        "meta": report.meta,
        "spreads": report.spreads(),
        "skipped": report.skipped,
        "details": report.extra,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    return path
