"""``python -m benchmarks.claims [--check] [--json PATH]``: the performance claims of README.md and
docs/benchmarks.md, rendered from one benchmark run (``make claims``).

Figures typed by hand drift: the README once said "≥ 0.95 of raw" while docs/benchmarks.md said 0.90.
So the figures live only in ``benchmarks/out/latest.json`` (the run ``make bench`` wrote and someone
committed), and the pages carry them between marker comments that this module rewrites::

    <!-- claims:readme:begin --> ... <!-- claims:readme:end -->
    <!-- claims:benchmarks:begin --> ... <!-- claims:benchmarks:end -->

Every figure is the run's median, with the [min..max] of its paired trials when it is a ratio,
beside the date, mode, machine and load of the run. A figure the run does not hold is printed as
missing with the reason (a quick run has no frame sweep, no chunked-upload pair and no S3), never
filled in. ``--check`` rewrites nothing and fails when a page differs from what the JSON renders;
``tests/docs/test_claims.py`` runs the same check in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from benchmarks.report import machine_line

ROOT = Path(__file__).resolve().parent.parent
LATEST = ROOT / "benchmarks" / "out" / "latest.json"
PAGES = {"readme": ROOT / "README.md", "benchmarks": ROOT / "docs" / "benchmarks.md"}


@attrs.frozen
class Claim:
    """One figure the pages state: a metric key of the run, and the target it is held to (if any)."""

    label: str
    key: str
    target: str | None = None  # e.g. "≥ 0.90", "≤ 2.0", "< 60"


# The README's headline figures: what the "What it gives you" list promises.
HEADLINE = (
    Claim("`DecryptingReader` over a file ÷ raw `readinto` + `decrypt_into`", "reader_file_ratio", "≥ 0.90"),
    Claim("`EncryptingWriter` ÷ raw `AESGCM.encrypt_into`", "encrypt_ratio"),
    Claim("writer with SHA-256 ÷ the raw two-thread AES + SHA-256 pipeline", "encrypt_sha256_pipeline_ratio", "≥ 0.90"),
    Claim("4 KiB encrypt + decrypt ÷ its floor of primitive calls", "small_roundtrip_floor_ratio", "≤ 2.0"),
    Claim("registry push ÷ the raw push pipeline (fsync'd)", "push_pipeline_ratio", "≥ 0.85"),
    Claim("registry pull ÷ the raw pull pipeline", "pull_pipeline_ratio", "≥ 0.85"),
    Claim("local KMS GenerateDataKey + Decrypt through a grant ÷ its floor", "kms_pair_floor_ratio", "≤ 2.0"),
    Claim("peak RSS growth, worst streaming scenario", "peak_rss_growth_mib", "≤ 18"),
)

# docs/benchmarks.md: the targets of issue 13 (and 11), each against the run.
TARGETS = (
    Claim("4 KiB round trip ÷ floor", "small_roundtrip_floor_ratio", "≤ 2.0"),
    Claim("4 KiB encrypt ÷ floor", "small_encrypt_floor_ratio", "≤ 2.0"),
    Claim("4 KiB decrypt ÷ floor", "small_decrypt_floor_ratio", "≤ 2.0"),
    Claim("reader over a file ÷ raw", "reader_file_ratio", "≥ 0.90"),
    Claim("encrypt + SHA-256 ÷ pipeline", "encrypt_sha256_pipeline_ratio", "≥ 0.90"),
    Claim("`iter_decrypt`, 256 KiB chunks", "iter_decrypt_256k_ratio", "≥ 0.90"),
    Claim("`iter_decrypt`, 384 KiB + 7 chunks", "iter_decrypt_odd_ratio", "≥ 0.90"),
    Claim("`iter_decrypt`, 1 MiB chunks", "iter_decrypt_1m_ratio", "≥ 0.90"),
    Claim("`iter_decrypt`, 4 MiB chunks", "iter_decrypt_4m_ratio", "≥ 0.90"),
    Claim("`iter_decrypt`, one frame per chunk", "iter_decrypt_frame-aligned_ratio", "≥ 0.90"),
    Claim("registry push ÷ pipeline", "push_pipeline_ratio", "≥ 0.85"),
    Claim("chunked upload ÷ pipeline", "upload_pipeline_ratio", "≥ 0.85"),
    Claim("registry pull ÷ pipeline", "pull_pipeline_ratio", "≥ 0.85"),
    Claim("local KMS pair ÷ floor", "kms_pair_floor_ratio", "≤ 2.0"),
    Claim("policy set ÷ default policy (through the grant)", "policy_overhead_ratio", "≤ 1.25"),
    Claim("peak RSS growth, worst streaming scenario (MiB)", "peak_rss_growth_mib", "≤ 18"),
    Claim("peak RSS growth, ECR push + pull (MiB)", "ecr_rss_growth_mib", "≤ 18"),
)

# Which keys only some runs have, and why: said instead of a number when they are absent.
_ONLY_IN = (
    ("sweep_", "the frame sweep runs in full mode only"),
    ("upload_pipeline", "the chunked-upload pair runs in full mode only"),
    ("s3_", "streams and the ECR model over S3 on moto (`s3_*`, `aws_ecr_*`) run in full mode or with --s3"),
    ("aws_ecr_", "streams and the ECR model over S3 on moto (`s3_*`, `aws_ecr_*`) run in full mode or with --s3"),
)
_SECTION_OF = (
    ("small_", "small"),
    ("floor_small", "small"),
    ("rss_", "memory"),
    ("peak_rss", "memory"),
    ("kms_policy", "policy"),
    ("policy_", "policy"),
    ("kms_", "kms"),
    ("esdk_", "peers"),
    ("tink_", "peers"),
    ("server_", "server"),
    ("distribution_", "server"),
    ("migrate_", "server"),
    ("ecr_", "ecr"),
    ("raw_push", "ecr"),
    ("raw_pull", "ecr"),
    ("push_", "ecr"),
    ("pull_", "ecr"),
    ("upload_", "ecr"),
)


class ClaimsError(Exception):
    """The run cannot be rendered (no file, not a benchmark run) or a page has no markers."""


def load(path: Path = LATEST) -> dict[str, Any]:
    if not path.exists():
        raise ClaimsError(
            f"{path} does not exist: run `make bench` (or `make bench ARGS=--quick`), then `make claims`, "
            "and commit both"
        )
    run = json.loads(path.read_text())
    if not isinstance(run, dict) or not isinstance(run.get("meta"), dict) or "when" not in run["meta"]:
        raise ClaimsError(f"{path} is not the output of `python -m benchmarks` (no meta.when)")
    return run


def _missing_reason(run: Mapping[str, Any], key: str) -> str:
    for prefix, reason in _ONLY_IN:
        if key.startswith(prefix):
            return reason
    section = next((s for prefix, s in _SECTION_OF if key.startswith(prefix)), "streams")
    skipped = run.get("skipped", {})
    if section in skipped:
        return f"section {section} skipped: {skipped[section]}"
    return "not measured by this run"


def _unit(key: str) -> tuple[str, str]:
    """(format, unit) of a metric, from the suffix the harness gives each kind of figure."""
    for suffix, fmt, unit in (
        ("_ratio", "{:.2f}", "x"),
        ("_gbps", "{:.2f}", " GB/s"),
        ("_mibs", "{:.0f}", " MiB/s"),
        ("_per_s", "{:,.0f}", " /s"),
        ("_us", "{:.1f}", " µs"),
        ("_client_mib", "{:.0f}", " MiB"),
        ("_mib", "{:.1f}", " MiB"),
        ("_s", "{:.2f}", " s"),
    ):
        if key.endswith(suffix):
            return fmt, unit
    return "{:.4g}", ""


def figure(run: Mapping[str, Any], key: str) -> str:
    """``0.95x [0.89..1.25] (15 trials)``, or ``—`` with the reason it is missing."""
    value = run.get(key)
    if not isinstance(value, int | float):
        return f"— ({_missing_reason(run, key)})"
    fmt, unit = _unit(key)
    text = fmt.format(value) + unit
    spread = run.get("spreads", {}).get(key)
    if spread:
        text += f" [{spread['min']:.2f}..{spread['max']:.2f}] ({spread['trials']} trials)"
    return text


def _met(value: float, target: str) -> bool:
    op, bound = target.split()
    limit = float(bound)
    return {"≥": value >= limit, "≤": value <= limit, "<": value < limit}[op]


def verdict(run: Mapping[str, Any], claim: Claim) -> str:
    value = run.get(claim.key)
    if claim.target is None:
        return ""
    if not isinstance(value, int | float):
        return f"{claim.target} (not measured)"
    return f"{claim.target} {'✔' if _met(float(value), claim.target) else '✘'}"


def run_line(run: Mapping[str, Any]) -> str:
    meta = run["meta"]
    when = str(meta["when"]).replace("T", " ").replace("+00:00", " UTC")
    sizes = f"{meta.get('layer_mib', '?')} MiB streams, {meta.get('big_gib', '?')} GiB registry layer"
    return (
        f"`make bench` in {meta.get('mode', '?')} mode on {when} ({sizes}; {meta.get('seconds', '?')} s; "
        f"Python {meta.get('python', '?')}); machine: {machine_line(meta)}"
    )


def _table(run: Mapping[str, Any], claims: tuple[Claim, ...], with_key: bool) -> list[str]:
    head = "| figure | key | median [min..max] | target |" if with_key else "| figure | median [min..max] | target |"
    lines = [head, "|---|---|---|---|" if with_key else "|---|---|---|"]
    for c in claims:
        cells = [c.label, f"`{c.key}`"] if with_key else [c.label]
        lines.append("| " + " | ".join([*cells, figure(run, c.key), verdict(run, c)]) + " |")
    return lines


def render_readme(run: Mapping[str, Any]) -> str:
    lines = [
        "Medians of paired trials (ecrcrypt and its ceiling or floor alternating in the same process), with",
        "their [min..max]; a throughput ratio of 1.0 is the ceiling's speed, a floor ratio of 1.0 no overhead.",
        f"From {run_line(run)}.",
        "",
        *_table(run, HEADLINE, with_key=False),
        "",
        "Every figure of the run, and how each is made: `docs/benchmarks.md`.",
    ]
    return "\n".join(lines)


def render_benchmarks(run: Mapping[str, Any]) -> str:
    skipped = run.get("skipped") or {}
    lines = [f"From {run_line(run)}.", "", "### Targets", "", *_table(run, TARGETS, with_key=True)]
    if run["meta"].get("mode") == "quick":
        lines += ["", f"The quick run itself took {run['meta'].get('seconds', '?')} s (target: under 60 s)."]
    lines += ["", "### Every figure of the run", "", "| key | median [min..max] |", "|---|---|"]
    for key, value in run.items():
        if key in ("meta", "spreads", "skipped", "details") or not isinstance(value, int | float):
            continue
        lines.append(f"| `{key}` | {figure(run, key)} |")
    absent = sorted({reason for prefix, reason in _ONLY_IN if not any(k.startswith(prefix) for k in run)})
    if absent or skipped:
        lines += ["", "Not in this run:"]
        lines += [f"- {reason}" for reason in absent]
        lines += [f"- section {name} skipped: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines)


RENDERERS = {"readme": render_readme, "benchmarks": render_benchmarks}


def _markers(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- claims:{name}:begin -->\n)(.*?)(<!-- claims:{name}:end -->)",
        re.S,
    )


def splice(text: str, name: str, body: str, where: Path) -> str:
    """``text`` with the region ``name`` replaced by ``body``."""
    pattern = _markers(name)
    if len(pattern.findall(text)) != 1:
        raise ClaimsError(f"{where} needs exactly one <!-- claims:{name}:begin --> ... end --> region")
    return pattern.sub(
        lambda m: m.group(1) + "<!-- generated by `make claims`: do not edit -->\n" + body + "\n" + m.group(3), text
    )


def rendered_pages(run: Mapping[str, Any]) -> dict[Path, str]:
    """Every page as it must read for ``run``."""
    return {path: splice(path.read_text(), name, RENDERERS[name](run), path) for name, path in PAGES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.claims", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=LATEST, help="the run to render (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="change nothing; fail when a page differs")
    args = parser.parse_args(argv)
    try:
        pages = rendered_pages(load(args.json))
    except ClaimsError as exc:
        print(f"claims: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in pages.items() if path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"claims: {path.relative_to(ROOT)} differs from {args.json.name}: run `make claims`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(pages[path])
        print(f"claims: rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
